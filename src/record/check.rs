//! Checks a run record before anything trusts it. A record is only counts and names, so a record
//! edited by hand, truncated by a bad copy or taken from another folder parses as well as a good
//! one; what it must satisfy is checked here, in two steps: [`well_formed`] (what every record
//! of any suite must satisfy: counts that add up, names that are names) and [`against_plan`]
//! (what the suite that made the folder says the record must be: its suite, seed, vocabulary and
//! set sizes). Both are pure; the callers name the file and the fix.

use super::{DomainRole, Protocol, Role, RunRecord, OLDEST_READABLE_SCHEMA, RECORD_SCHEMA};
use crate::plan::Plan;
use std::collections::{BTreeMap, BTreeSet};

/// Why a record cannot be trusted, in words that follow "record PATH ".
pub type Defect = String;

/// What every record must satisfy, whichever suite wrote it.
pub fn well_formed(r: &RunRecord) -> Result<(), Defect> {
    if !(OLDEST_READABLE_SCHEMA..=RECORD_SCHEMA).contains(&r.schema) {
        return Err(format!("has record schema {}, but this harness reads schemas {OLDEST_READABLE_SCHEMA} to {RECORD_SCHEMA}", r.schema));
    }
    if r.schema >= 2 && (r.provenance.suite_seed.is_none() || r.provenance.checkpoint_sha256.is_none()) {
        return Err(format!("is schema {} but lacks provenance.suite_seed or provenance.checkpoint_sha256", r.schema));
    }
    if let Some(sha) = &r.provenance.checkpoint_sha256 {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("has provenance.checkpoint_sha256 {sha:?}, which is not a sha256"));
        }
    }
    for (what, name) in [("suite", &r.suite), ("model", &r.model), ("regime", &r.regime), ("domain", &r.domain)] {
        crate::fsutil::checked_name(name, what).map_err(|e| format!("names {e}"))?;
    }
    check_protocol(&r.protocol)?;
    let expected_role = if r.domain == r.protocol.id_domain || r.protocol.id_axes.contains(&r.domain) {
        Some(DomainRole::Id)
    } else if r.protocol.shifts.contains(&r.domain) {
        Some(DomainRole::Shift)
    } else if r.protocol.generated_eval.as_ref() == Some(&r.domain) {
        Some(DomainRole::Generated)
    } else {
        None
    };
    match expected_role {
        None => return Err(format!("is of domain `{}`, which its protocol does not name", r.domain)),
        Some(role) if role != r.domain_role => return Err(format!("calls domain `{}` {:?}, but its protocol makes it {role:?}", r.domain, r.domain_role)),
        Some(_) => {}
    }
    check_counts(r)
}

fn check_protocol(p: &Protocol) -> Result<(), Defect> {
    let names = std::iter::once(&p.id_domain).chain(&p.id_axes).chain(&p.shifts).chain(&p.generated_eval);
    let mut seen = BTreeSet::new();
    for name in names {
        crate::fsutil::checked_name(name, "protocol domain").map_err(|e| format!("names {e}"))?;
        if !seen.insert(name) {
            return Err(format!("names domain `{name}` twice in its protocol"));
        }
    }
    let Ok(transform) = p.transform.parse::<crate::metrics::Transform>() else {
        return Err(format!("has protocol transform {:?}, not logit, probit or linear", p.transform));
    };
    if let Some(t) = &p.baseline_table {
        if t.transform != p.transform {
            return Err(format!("has a baseline table on the {} scale but a protocol on the {} scale", t.transform, p.transform));
        }
        for f in &t.fits {
            if !p.shifts.contains(&f.shift) || !(f.id_domain == p.id_domain || p.id_axes.contains(&f.id_domain)) {
                return Err(format!("has a baseline-table fit of `{}` against `{}`, which its protocol does not name as a shift and an ID domain", f.shift, f.id_domain));
            }
            // A table baseline that cannot carry a line would leave its ER columns empty as if
            // not measured; `er` refuses such a baseline, and so does a record.
            let models: Vec<String> = f.points.iter().map(|p| p.model.clone()).collect();
            let points: Vec<(f64, f64)> = f.points.iter().map(|p| (p.id, p.shift)).collect();
            if let Some(defect) = crate::robustness::report::baseline_defect(&models, &points, transform) {
                return Err(format!("has a baseline-table fit of `{}` that {defect}", f.shift));
            }
        }
    }
    Ok(())
}

fn check_counts(r: &RunRecord) -> Result<(), Defect> {
    if r.correct > r.n {
        return Err(format!("counts {} correct predictions out of {} images", r.correct, r.n));
    }
    if r.per_class_total.is_empty() || r.per_class_total.len() != r.per_class_correct.len() {
        return Err(format!("has {} per-class totals and {} per-class correct counts", r.per_class_total.len(), r.per_class_correct.len()));
    }
    if let Some(c) = (0..r.per_class_total.len()).find(|&c| r.per_class_correct[c] > r.per_class_total[c]) {
        return Err(format!("counts {} correct of {} images in class {c}", r.per_class_correct[c], r.per_class_total[c]));
    }
    let sum = |v: &[u64]| v.iter().try_fold(0u64, |a, &x| a.checked_add(x));
    if sum(&r.per_class_total) != Some(r.n) {
        return Err(format!("has per-class totals that do not add up to n = {}", r.n));
    }
    if sum(&r.per_class_correct) != Some(r.correct) {
        return Err(format!("has per-class correct counts that do not add up to correct = {}", r.correct));
    }
    match r.correct_top5 {
        None if r.schema >= 3 => return Err(format!("is schema {} but lacks correct_top5", r.schema)),
        Some(t) if t < r.correct || t > r.n => return Err(format!("counts {t} top-5 correct predictions, outside [{} top-1 correct, {} images]", r.correct, r.n)),
        _ => {}
    }
    if let Some(s) = &r.scoring {
        if crate::eval::ScoringRule::from_name(&s.name).is_none() {
            return Err(format!("was scored by `{}`, a protocol this harness does not know", s.name));
        }
        if s.classes != r.per_class_total.len() as u64 {
            return Err(format!("was scored over {} classes but has {} per-class totals", s.classes, r.per_class_total.len()));
        }
    }
    Ok(())
}

/// What the plan of a results folder's suite says its records are.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub suite: String,
    pub suite_hash: String,
    pub seed: u64,
    pub classes: usize,
    pub protocol: Protocol,
    /// Every record file the plan writes (relative to the folder), with its domain's role and
    /// the images of that domain.
    pub records: BTreeMap<String, (DomainRole, u64)>,
    /// Row names per role, for messages.
    names: BTreeMap<Role, BTreeSet<String>>,
    /// Every evaluation set, with its role and images (0: a file-backed set, whose count the
    /// plan does not know before it is listed): what a compared classifier's records may be of.
    eval_sets: BTreeMap<String, (DomainRole, u64)>,
}

impl Expected {
    pub fn new(plan: &Plan, suite: &str, suite_hash: &str) -> Expected {
        let mut records = BTreeMap::new();
        let mut names: BTreeMap<Role, BTreeSet<String>> = BTreeMap::new();
        for job in &plan.jobs {
            names.entry(job.role).or_default().insert(job.name.clone());
            for (set, role) in &plan.eval_sets {
                let path = super::record_file_name(job.role, &job.name, &job.regime, job.seed, set);
                records.insert(path, (*role, plan.set_size(set) as u64));
            }
        }
        let eval_sets = plan.eval_sets.iter().map(|(set, role)| (set.clone(), (*role, plan.set_size(set) as u64))).collect();
        Expected { suite: suite.to_string(), suite_hash: suite_hash.to_string(), seed: plan.seed, classes: plan.num_classes, protocol: plan.protocol.clone(), records, names, eval_sets }
    }
}

/// What a record of a folder whose `run.json` is `m` must be, when its suite file is not at
/// hand (only the suite's hash and seed are known then).
pub fn against_manifest(r: &RunRecord, m: &crate::folder::RunManifest) -> Result<(), Defect> {
    if r.suite != m.suite || r.provenance.suite_hash != m.suite_hash {
        return Err(format!("is of suite `{}` (sha256 {}), but the folder's run.json names suite `{}` (sha256 {})", r.suite, r.provenance.suite_hash, m.suite, m.suite_hash));
    }
    match r.provenance.suite_seed {
        Some(seed) if seed != m.seed => Err(format!("was made with suite seed {seed}, but the folder's run.json names seed {}", m.seed)),
        _ => Ok(()),
    }
}

/// What a record of a folder made by the suite of `e` must be; assumes [`well_formed`].
pub fn against_plan(r: &RunRecord, e: &Expected) -> Result<(), Defect> {
    if r.suite != e.suite || r.provenance.suite_hash != e.suite_hash {
        return Err(format!("is of suite `{}` (sha256 {}), but the folder is suite `{}` (sha256 {})", r.suite, r.provenance.suite_hash, e.suite, e.suite_hash));
    }
    if let Some(seed) = r.provenance.suite_seed.filter(|&s| s != e.seed) {
        return Err(format!("was made with suite seed {seed}, but the folder is seed {}", e.seed));
    }
    let planned = match r.role {
        // Any name may be compared (`shiftbench compare --name`), on the suite's evaluation sets.
        Role::Compared => e.eval_sets.get(&r.domain),
        _ => e.records.get(&r.file_name()),
    };
    let Some(&(_, n)) = planned else {
        let known = e.names.get(&r.role).map(|s| s.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        return Err(format!(
            "describes {:?} `{}` / regime `{}` / seed {} / domain `{}`, which the suite does not train or evaluate (its {:?} rows: {known})",
            r.role, r.model, r.regime, r.seed, r.domain, r.role
        ));
    };
    // A plan is made without reading the suite's baseline table (an artifact): its points enter
    // the protocol when `compare` or `run` reads the table. Against such a plan the rest of the
    // protocol is compared; the suite hash above already ties the record to the suite naming it.
    let mut protocol = std::borrow::Cow::Borrowed(&r.protocol);
    if e.protocol.baseline_table.is_none() && r.protocol.baseline_table.is_some() {
        protocol.to_mut().baseline_table = None;
    }
    if *protocol != e.protocol {
        return Err("has another evaluation protocol than the suite's".to_string());
    }
    if r.scoring.is_none() && r.per_class_total.len() != e.classes {
        return Err(format!("has {} classes, but the suite has {}", r.per_class_total.len(), e.classes));
    }
    // File-backed sets are counted when opened (and checked against their `expect` then).
    if n > 0 && r.n != n {
        return Err(format!("counts n = {} images of `{}`, but the suite's set has {n}", r.n, r.domain));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn shapes_plan() -> (Plan, Suite) {
        let suite = Suite::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml")).unwrap();
        (Plan::new(&suite.config, 0, false), suite)
    }

    fn published() -> RunRecord {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/shapes/records/entry/resnet-w16/real/seed-0/val.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_published_records_are_well_formed_and_match_their_plan() {
        let (plan, suite) = shapes_plan();
        let e = Expected::new(&plan, suite.name(), &suite.hash);
        let r = published();
        assert_eq!(well_formed(&r), Ok(()));
        assert_eq!(against_plan(&r, &e), Ok(()));
    }

    #[test]
    fn counts_that_do_not_add_up_are_defects() {
        let mut r = published();
        r.n = 1_000_000_000_000_000_000;
        r.correct = r.n - 1;
        assert!(well_formed(&r).unwrap_err().contains("do not add up"));
        let mut r = published();
        r.per_class_correct[0] += 1;
        assert!(well_formed(&r).unwrap_err().contains("correct"));
        let mut r = published();
        r.per_class_correct[3] = r.per_class_total[3] + 1;
        r.correct = r.per_class_correct.iter().sum();
        assert!(well_formed(&r).is_err());
        let mut r = published();
        r.per_class_total.pop();
        assert!(well_formed(&r).unwrap_err().contains("per-class"));
        let mut r = published();
        r.per_class_total = vec![u64::MAX, 2];
        r.per_class_correct = vec![0, 0];
        r.correct = 0;
        assert!(well_formed(&r).is_err());
    }

    #[test]
    fn names_outside_the_vocabulary_or_of_another_seed_are_defects() {
        let (plan, suite) = shapes_plan();
        let e = Expected::new(&plan, suite.name(), &suite.hash);
        let mut r = published();
        r.model = "resnet-w99".into();
        assert!(against_plan(&r, &e).unwrap_err().contains("does not train"));
        let mut r = published();
        r.provenance.suite_seed = Some(7);
        assert!(against_plan(&r, &e).unwrap_err().contains("suite seed 7"));
        let mut r = published();
        r.domain = "../x".into();
        assert!(well_formed(&r).unwrap_err().contains("cannot name a file"));
        let mut r = published();
        r.domain = "sketch".into();
        assert!(well_formed(&r).unwrap_err().contains("protocol makes it Shift"));
        let mut r = published();
        r.n = 999;
        r.per_class_total[0] -= 1;
        r.per_class_correct[0] = r.per_class_correct[0].min(r.per_class_total[0]);
        r.correct = r.per_class_correct.iter().sum();
        // Top-5 counts (schema 3) lie between the top-1 count and the images; a model right on
        // every image in top-5 would now exceed the smaller set.
        r.correct_top5 = r.correct_top5.map(|top5| top5.min(r.n));
        assert_eq!(well_formed(&r), Ok(()));
        assert!(against_plan(&r, &e).unwrap_err().contains("n = 999"));
    }
}
