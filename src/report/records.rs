//! Reading run records back from a results folder.

use crate::record::RunRecord;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Reads every `*.json` under `dir/records/` (any depth), in sorted path order so the result
/// does not depend on the file system's listing order.
///
/// Every record is checked as it is read ([`crate::record::check::well_formed`], and that it
/// lies at the path its own names give): the first that fails is an error naming its path.
///
/// Names starting with `.` are skipped: they are temporary files of an atomic write in flight
/// (or editor droppings), never finished records. Symlinked folders are not followed.
pub fn load_records(dir: &Path) -> Result<Vec<RunRecord>> {
    let root = dir.join("records");
    if !root.is_dir() {
        bail!(
            "no run records at {}: the folder does not exist; run `shiftbench run` to produce records first",
            root.display()
        );
    }
    let mut paths = Vec::new();
    collect_json_files(&root, &mut paths)?;
    paths.sort();
    paths.iter().map(|path| read_record(dir, path)).collect()
}

fn collect_json_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().with_context(|| format!("cannot inspect {}", path.display()))?;
        if kind.is_dir() {
            collect_json_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and checks the record at `path` inside the results folder `dir`.
pub fn read_record(dir: &Path, path: &Path) -> Result<RunRecord> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read run record {}", path.display()))?;
    let record: RunRecord = serde_json::from_slice(&bytes).map_err(|err| {
        anyhow::anyhow!(
            "{} is not a valid run record: {err}; delete it and re-run `shiftbench run` to regenerate it",
            path.display()
        )
    })?;
    let defect = crate::record::check::well_formed(&record)
        .err()
        .or_else(|| (dir.join(record.file_name()) != path).then(|| format!("names itself {}, another record's path", record.file_name())));
    if let Some(defect) = defect {
        bail!("run record {} {defect}; delete it and re-run `shiftbench run` to regenerate it", path.display());
    }
    Ok(record)
}
