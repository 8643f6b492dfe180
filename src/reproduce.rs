//! Reproduction: re-run the suite behind a published results folder and compare, record by
//! record and file by file, what comes out with what was published.
//!
//! A results folder names what made it: `run.json` (the [`crate::folder::RunManifest`] every `run` writes:
//! suite name and sha256, suite seed, profile) and the records' provenance. The suite file is
//! found by its sha256, so an edited suite is never mistaken for the published one. Two folders
//! agree when every record is equal and every leaderboard file is byte-identical, with one
//! exception: the git revision the binary was built from, which differs between any two
//! checkouts that have the same code.

use crate::folder::{RunManifest, MANIFEST_FILE};
use crate::record::RunRecord;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The suite file among `candidates` whose bytes hash to `hash`.
pub fn find_suite(hash: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find(|p| std::fs::read(p).is_ok_and(|b| crate::fsutil::sha256_hex(&b) == hash)).cloned()
}

/// The `.toml` files of a folder, sorted.
pub fn suite_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// One way two results folders differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// A record published but not produced again, or produced but never published.
    MissingRecord { path: String },
    ExtraRecord { path: String },
    /// A record produced again with other contents; `fields` says which.
    Record { path: String, fields: Vec<String> },
    /// A leaderboard file (CSV, Markdown, plot) whose bytes differ, with its first differing line.
    File { path: String, detail: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::MissingRecord { path } => write!(f, "{path}: published, not produced by the re-run"),
            Difference::ExtraRecord { path } => write!(f, "{path}: produced by the re-run, not published"),
            Difference::Record { path, fields } => write!(f, "{path}: {}", fields.join("; ")),
            Difference::File { path, detail } => write!(f, "{path}: {detail}"),
        }
    }
}

/// Compares a published folder with a re-run of it: records first, then every leaderboard file
/// outside `records/` and `work/`. Empty when they agree.
pub fn compare(published: &Path, rerun: &Path) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    let (a, b) = (records_by_path(published)?, records_by_path(rerun)?);
    for (path, ra) in &a {
        match b.get(path) {
            None => out.push(Difference::MissingRecord { path: path.clone() }),
            Some(rb) => {
                let fields = record_differences(ra, rb);
                if !fields.is_empty() {
                    out.push(Difference::Record { path: path.clone(), fields });
                }
            }
        }
    }
    out.extend(b.keys().filter(|p| !a.contains_key(*p)).map(|p| Difference::ExtraRecord { path: p.clone() }));
    let revisions: Vec<String> = a.values().chain(b.values()).map(|r| r.provenance.git_revision.clone()).collect();
    let (fa, fb) = (report_files(published)?, report_files(rerun)?);
    for path in fa.iter().chain(fb.iter().filter(|p| !fa.contains(p))) {
        let read = |root: &Path| std::fs::read(root.join(path)).ok();
        let detail = match (read(published), read(rerun)) {
            (Some(x), Some(y)) => file_difference(&x, &y, &revisions),
            (Some(_), None) => Some("published, not produced by the re-run".to_string()),
            (None, _) => Some("produced by the re-run, not published".to_string()),
        };
        if let Some(detail) = detail {
            out.push(Difference::File { path: path.clone(), detail });
        }
    }
    Ok(out)
}

/// Which fields of two records of the same evaluation differ (git revision aside).
pub fn record_differences(a: &RunRecord, b: &RunRecord) -> Vec<String> {
    let changed = |name: &str, x: String, y: String| (x != y).then(|| format!("{name} {x} -> {y}"));
    let per_class: Vec<String> = (0..a.per_class_correct.len().max(b.per_class_correct.len()))
        .filter_map(|c| {
            let at = |v: &[u64]| v.get(c).copied();
            let (ca, cb) = ((at(&a.per_class_correct), at(&a.per_class_total)), (at(&b.per_class_correct), at(&b.per_class_total)));
            (ca != cb).then(|| format!("class {c}: {}/{} -> {}/{}", show(ca.0), show(ca.1), show(cb.0), show(cb.1)))
        })
        .collect();
    let mut pa = a.provenance.clone();
    let mut pb = b.provenance.clone();
    pa.git_revision.clear();
    pb.git_revision.clear();
    // A record published before `train.sources` existed says nothing about them; the re-run's
    // are not a difference.
    let mut train_b = b.train.clone();
    if a.train.sources.is_none() {
        train_b.sources = None;
        // Written together with `sources`.
        train_b.augment = None;
        train_b.generated_fraction = None;
    }
    let identity = |r: &RunRecord| format!("{} {:?} {} {} {} {} {:?}", r.suite, r.role, r.model, r.regime, r.seed, r.domain, r.domain_role);
    // A record published under an older schema is compared on what that schema held: the
    // re-run's newer fields (schema 3's top-5 count and scoring) were never published. A
    // re-run under an older schema than the published record is a difference.
    let schema = (a.schema > b.schema).then(|| format!("schema {} -> {}", a.schema, b.schema));
    let top5 = match (a.correct_top5, b.correct_top5) {
        (Some(x), Some(y)) if x != y => Some(format!("correct_top5 {x} -> {y}")),
        _ => None,
    };
    let scoring = (a.schema >= 3 && a.scoring != b.scoring).then(|| format!("scoring {:?} -> {:?}", a.scoring, b.scoring));
    [
        changed("n", a.n.to_string(), b.n.to_string()),
        changed("correct", a.correct.to_string(), b.correct.to_string()),
        (!per_class.is_empty()).then(|| format!("per-class correct/total {}", per_class.join(", "))),
        changed("train", json(&a.train), json(&train_b)),
        changed("protocol", json(&a.protocol), json(&b.protocol)),
        changed("provenance", json(&pa), json(&pb)),
        changed("identity", identity(a), identity(b)),
        schema,
        top5,
        scoring,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn show(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// JSON text of a record part, for readable field comparisons.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<{e}>"))
}

/// The first difference between two versions of a leaderboard file, after replacing every git
/// revision named by the records with a placeholder (the only field two checkouts of the same
/// code may disagree on).
fn file_difference(a: &[u8], b: &[u8], revisions: &[String]) -> Option<String> {
    if a == b {
        return None;
    }
    let (Ok(ta), Ok(tb)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return Some(format!("binary contents differ ({} vs {} bytes)", a.len(), b.len()));
    };
    let mask = |t: &str| revisions.iter().filter(|r| !r.is_empty()).fold(t.to_string(), |t, r| t.replace(r.as_str(), "<git-revision>"));
    let (ma, mb) = (mask(ta), mask(tb));
    if ma == mb {
        return None;
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (ma.lines().collect(), mb.lines().collect());
    let i = (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i)).unwrap_or(0);
    Some(format!("line {} differs:\n    published: {}\n    re-run:    {}", i + 1, la.get(i).unwrap_or(&"<end of file>"), lb.get(i).unwrap_or(&"<end of file>")))
}

/// Records of a folder by their path under it (records are stored at [`RunRecord::file_name`]).
fn records_by_path(dir: &Path) -> Result<BTreeMap<String, RunRecord>> {
    Ok(crate::report::load_records(dir)?.into_iter().map(|r| (r.file_name(), r)).collect())
}

/// Leaderboard files of a folder: everything but records, the run manifest and the work cache.
fn report_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if ["records", "work", MANIFEST_FILE].contains(&name.as_str()) || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(files_under(&path)?.iter().map(|p| relative(dir, p)));
        } else {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// Checks that a folder can be reproduced here: its manifest agrees with its records.
pub fn check_manifest(dir: &Path, manifest: &RunManifest) -> Result<()> {
    for (path, r) in records_by_path(dir)? {
        if r.provenance.suite_hash != manifest.suite_hash || r.suite != manifest.suite {
            bail!(
                "{}/{path} was made by suite `{}` (sha256 {}), but {MANIFEST_FILE} names `{}` (sha256 {}); the folder mixes runs, so it cannot be reproduced as one",
                dir.display(), r.suite, r.provenance.suite_hash, manifest.suite, manifest.suite_hash
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_masked_and_other_changes_named_by_line() {
        let revs = vec!["abc123".to_string(), "def456".to_string()];
        assert_eq!(file_difference(b"x,abc123\n", b"x,def456\n", &revs), None);
        let d = file_difference(b"a\nb,1.00\n", b"a\nb,2.00\n", &revs).unwrap();
        assert!(d.contains("line 2") && d.contains("b,1.00") && d.contains("b,2.00"), "{d}");
        assert!(file_difference(&[0xff, 1], &[0xff, 2], &revs).unwrap().contains("binary"));
    }

    #[test]
    fn record_differences_name_counts_and_classes() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("results/shapes/records/entry/resnet-w16/real/seed-0/val.json")).unwrap();
        let a: RunRecord = serde_json::from_str(&text).unwrap();
        let mut b = a.clone();
        b.provenance.git_revision = "another-checkout".into();
        assert!(record_differences(&a, &b).is_empty(), "the git revision alone is no difference");
        b.correct -= 1;
        b.per_class_correct[3] -= 1;
        let d = record_differences(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("correct ") && d[1].contains("class 3:"), "{d:?}");
    }
}
