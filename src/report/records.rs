//! Reading run records back from a results folder.

use crate::record::{RunRecord, RECORD_SCHEMA};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Reads every `*.json` under `dir/records/` (any depth), in sorted path order so the result
/// does not depend on the file system's listing order.
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
    paths.iter().map(|path| read_record(path)).collect()
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

fn read_record(path: &Path) -> Result<RunRecord> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read run record {}", path.display()))?;
    let record: RunRecord = serde_json::from_slice(&bytes).map_err(|err| {
        anyhow::anyhow!(
            "{} is not a valid run record: {err}; delete it and re-run `shiftbench run` to regenerate it",
            path.display()
        )
    })?;
    if record.schema != RECORD_SCHEMA {
        bail!(
            "{} was written with record schema {} but this harness reads schema {RECORD_SCHEMA}; \
             delete it and re-run `shiftbench run` to regenerate it",
            path.display(),
            record.schema
        );
    }
    Ok(record)
}
