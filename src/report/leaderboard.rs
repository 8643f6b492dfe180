//! The leaderboard: a pure function from run records to typed rows and two CSV files.
//!
//! - `fits.csv`: one "accuracy on the line" fit per shift, over the testbed classifiers.
//! - `leaderboard.csv`: one row per trained classifier (role, model, regime, seed) with its
//!   accuracies, effective robustness per shift and generated-data degradation.
//!
//! Same records in any order → byte-identical CSV: rows have a fixed sort order, numbers fixed
//! decimals, the bootstrap is seeded (`BOOTSTRAP_SEED`), and nothing depends on the clock or the
//! machine.

/// Version of the `leaderboard.csv` column layout (documented in the README). 2 added the
/// `*_lo`/`*_hi` interval columns.
pub const LEADERBOARD_SCHEMA: u32 = 2;

/// Seed of the leaderboard's bootstrap over testbed models (stream purpose
/// `leaderboard/bootstrap/<shift>`): fixed, so a leaderboard is a pure function of its records.
pub const BOOTSTRAP_SEED: u64 = 0;

use crate::csvfmt::{self, fixed, line_fields, value_and_interval};
use crate::metrics::{self, Interval, LinearFit, Transform};
use crate::robustness::fit::{BaselineFit, Score};
use crate::record::{Protocol, Provenance, Role, RunRecord, SweepPoint, TrainSummary};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// The baseline fit of one shift.
#[derive(Clone, Debug, PartialEq)]
pub struct ShiftFit {
    pub shift: String,
    /// The domain of the fit's x axis: the protocol's `id_domain`, or a reference fit's own.
    pub id_domain: String,
    /// Testbed classifiers with both an ID and a shifted accuracy (the points of the fit).
    pub n: usize,
    /// With `metrics::DEFAULT_RESAMPLES` bootstrap refits over the testbed classifiers (none
    /// for a reference fit, which comes without its points). `None` when fewer than two testbed
    /// classifiers (or no spread in ID accuracy) allow a line.
    pub fit: Option<BaselineFit>,
    /// The fit's (ID, shifted) testbed points, percent, in classifier order.
    pub points: Vec<(f64, f64)>,
    /// A suite's published line (`reference_fits`), not fitted here: no points, no `r`.
    pub reference: bool,
}

impl ShiftFit {
    /// The fitted line, if any.
    pub fn line(&self) -> Option<LinearFit> {
        self.fit.as_ref().map(|f| f.line)
    }

    /// The bootstrap refits; empty without a fit.
    pub fn resampled(&self) -> &[LinearFit] {
        self.fit.as_ref().map_or(&[], |f| &f.resampled)
    }
}

/// A baseline fitted from the suite's accuracy table (`[metrics.baseline_table]`), refitted from
/// the points its records carry: `shiftbench er`'s line and bootstrap for the same table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableFit {
    /// The shift domain and the domain of its x axis.
    pub shift: String,
    pub id_domain: String,
    /// The preset's name of the pairing (`imagenet-sketch`), as `shiftbench er` prints it.
    pub pairing: String,
    /// `None` when the points allow no line (`record::check` refuses such records first).
    pub fit: Option<BaselineFit>,
    /// Baseline models, table order, and their (ID, shifted) points, percent.
    pub models: Vec<String>,
    pub points: Vec<(f64, f64)>,
}

/// One trained classifier's line of the leaderboard. Accuracies are percent, ER and degradation
/// percentage points; `None` where a record (or a fit) is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardRow {
    pub role: Role,
    pub model: String,
    pub regime: String,
    pub seed: u64,
    pub arch: String,
    pub parameters: u64,
    /// Unknown (`None`) for a compared classifier.
    pub train_images: Option<u64>,
    pub epochs: Option<u32>,
    pub acc_id: Option<f64>,
    /// 95% Clopper–Pearson interval of `acc_id`.
    pub acc_id_ci: Option<Interval>,
    /// One per `protocol.id_axes`, same order.
    pub acc_id_axes: Vec<Option<f64>>,
    pub acc_id_axes_ci: Vec<Option<Interval>>,
    /// One per `protocol.shifts`, same order.
    pub acc_shifts: Vec<Option<f64>>,
    pub acc_shifts_ci: Vec<Option<Interval>>,
    /// Accuracy on `protocol.generated_eval` (always `None` when the protocol has none).
    pub acc_generated: Option<f64>,
    pub acc_generated_ci: Option<Interval>,
    /// Effective robustness, one per `protocol.shifts`, same order.
    pub er: Vec<Option<f64>>,
    /// 95% bootstrap interval of each `er` over the testbed classifiers.
    pub er_ci: Vec<Option<Interval>>,
    /// Mean of the available entries of `er`.
    pub er_mean: Option<f64>,
    /// Effective robustness against the baseline table's fits, one per `Leaderboard::table_fits`,
    /// same order, with the 95% bootstrap interval over the table's baseline models.
    pub er_table: Vec<Option<f64>>,
    pub er_table_ci: Vec<Option<Interval>>,
    /// `acc_id − acc_generated`.
    pub gen_degradation: Option<f64>,
    /// Provenance of the classifier's ID record (or of its first record by domain name when the
    /// ID record is missing).
    pub provenance: Provenance,
    /// The sweep value of the classifier's regime, when a `[[sweeps]]` entry derived it.
    pub sweep: Option<SweepPoint>,
    /// How it was trained (its ID record's `train`): what the paper report groups regimes by.
    pub train: TrainSummary,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Leaderboard {
    pub protocol: Protocol,
    pub transform: Transform,
    /// One per `protocol.shifts`, same order.
    pub fits: Vec<ShiftFit>,
    /// One per fit of `protocol.baseline_table` (empty without one), in its order.
    pub table_fits: Vec<TableFit>,
    /// Sorted by role (entries first), model, regime, seed.
    pub rows: Vec<LeaderboardRow>,
    pub fits_csv: String,
    /// `table_fits.csv` (`shiftbench er`'s `fits.csv` format), when the protocol has a table.
    pub table_fits_csv: Option<String>,
    pub leaderboard_csv: String,
}

/// Builds the leaderboard from run records; touches no file.
///
/// Fails when there are no records, when records disagree on the protocol, the suite or the
/// suite seed, when a record is not well formed ([`crate::record::check::well_formed`]: counts
/// that do not add up, a domain its protocol does not name, ...), when two records of one
/// domain count different images, or when two records describe the same classifier on the same
/// domain.
pub fn build(records: &[RunRecord]) -> Result<Leaderboard> {
    let protocol = common_protocol(records)?;
    one_suite(records)?;
    let transform: Transform = protocol
        .transform
        .parse()
        .with_context(|| format!("the protocol of record {} is unusable", records[0].file_name()))?;
    for record in records {
        crate::record::check::well_formed(record)
            .map_err(|defect| anyhow::anyhow!("run record {} {defect}; delete it and re-run `shiftbench run` to regenerate it", record.file_name()))?;
    }
    one_evaluation_set_per_domain(records)?;
    let classifiers = group_by_classifier(records)?;

    let fits: Vec<ShiftFit> =
        protocol.shifts.iter().map(|shift| fit_shift(&classifiers, &protocol, shift, transform)).collect();
    let table_fits = table_fits(&protocol);
    let rows: Vec<LeaderboardRow> =
        classifiers.iter().map(|(key, domains)| leaderboard_row(key, domains, &protocol, &fits, &table_fits)).collect();

    let fits_csv = fits_to_csv(&fits, transform)?;
    let table_fits_csv = match &protocol.baseline_table {
        Some(_) => Some(table_fits_to_csv(&table_fits)?),
        None => None,
    };
    let leaderboard_csv = rows_to_csv(&rows, &protocol, &table_fits)?;
    Ok(Leaderboard { protocol, transform, fits, table_fits, rows, fits_csv, table_fits_csv, leaderboard_csv })
}

fn table_fits(protocol: &Protocol) -> Vec<TableFit> {
    let Some(table) = &protocol.baseline_table else { return Vec::new() };
    table
        .fits
        .iter()
        .map(|f| TableFit {
            shift: f.shift.clone(),
            id_domain: f.id_domain.clone(),
            pairing: f.pairing.clone(),
            fit: crate::robustness::baseline::refit(table, f),
            models: f.points.iter().map(|p| p.model.clone()).collect(),
            points: f.points.iter().map(|p| (p.id, p.shift)).collect(),
        })
        .collect()
}

/// `shiftbench er`'s `fits.csv` rendering of the table fits, so the two files compare line by line.
fn table_fits_to_csv(fits: &[TableFit]) -> Result<String> {
    use crate::robustness::pairing::Pairing;
    use crate::robustness::report::{ErReport, PairingFit};
    let fits = fits
        .iter()
        .filter_map(|f| {
            Some(PairingFit {
                pairing: Pairing { shift: f.pairing.clone(), id_column: f.id_domain.clone(), shift_column: f.shift.clone(), type_column: String::new(), min_id_acc: 0.0 },
                fit: f.fit.clone()?,
                baseline_models: f.models.clone(),
                points: f.points.clone(),
            })
        })
        .collect();
    ErReport { fits, rows: Vec::new() }.fits_csv()
}

/// Records of one suite file only: rows of another suite (other epochs, other data) would sit in
/// the same table and look comparable. Shards of one suite share its hash and still merge.
fn one_suite(records: &[RunRecord]) -> Result<()> {
    let Some(first) = records.first() else { return Ok(()) };
    if let Some(other) = records.iter().find(|r| r.provenance.suite_seed != first.provenance.suite_seed) {
        let seed = |r: &RunRecord| r.provenance.suite_seed.map_or("unknown (record schema 1)".to_string(), |s| s.to_string());
        bail!(
            "records of two suite seeds in one folder: {} (suite seed {}) and {} (suite seed {}); a leaderboard is built from one seed's records — move the other seed's records into their own results folder",
            first.file_name(), seed(first), other.file_name(), seed(other)
        );
    }
    if let Some(other) = records.iter().find(|r| r.provenance.suite_hash != first.provenance.suite_hash || r.suite != first.suite) {
        bail!(
            "records of two suites in one folder: {} (suite `{}`, sha256 {}) and {} (suite `{}`, sha256 {}); a leaderboard is built from one suite's records — move the other suite's records into their own results folder",
            first.file_name(), first.suite, first.provenance.suite_hash, other.file_name(), other.suite, other.provenance.suite_hash
        );
    }
    Ok(())
}

/// The protocol every record carries, or an error naming two records that disagree.
fn common_protocol(records: &[RunRecord]) -> Result<Protocol> {
    let Some(first) = records.first() else {
        bail!("no run records to build a leaderboard from; run `shiftbench run` first");
    };
    if let Some(other) = records.iter().find(|r| r.protocol != first.protocol) {
        bail!(
            "run records disagree on the evaluation protocol, so they cannot share one leaderboard: \
             {} has {:?} but {} has {:?}; build leaderboards from the records of one suite at a time",
            first.file_name(),
            first.protocol,
            other.file_name(),
            other.protocol
        );
    }
    Ok(first.protocol.clone())
}

/// Every classifier is evaluated on the same images of a domain, so all records of a domain
/// count the same images per class; one that does not was edited or comes from another run.
fn one_evaluation_set_per_domain(records: &[RunRecord]) -> Result<()> {
    let mut first: BTreeMap<&str, &RunRecord> = BTreeMap::new();
    for r in records {
        let f = *first.entry(r.domain.as_str()).or_insert(r);
        if f.per_class_total != r.per_class_total {
            bail!(
                "run records {} ({} images) and {} ({} images) count different images of domain `{}`, which every classifier is evaluated on alike; delete the one that is wrong and re-run `shiftbench run` to regenerate it",
                f.file_name(), f.n, r.file_name(), r.n, r.domain
            );
        }
    }
    Ok(())
}

/// Identifies one trained classifier. Field order is the leaderboard's sort order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ClassifierKey {
    role: Role,
    model: String,
    regime: String,
    seed: u64,
}

/// A classifier's records by domain name.
type DomainRecords<'a> = BTreeMap<&'a str, &'a RunRecord>;

fn group_by_classifier(records: &[RunRecord]) -> Result<BTreeMap<ClassifierKey, DomainRecords<'_>>> {
    let mut groups: BTreeMap<ClassifierKey, DomainRecords<'_>> = BTreeMap::new();
    for record in records {
        let key = ClassifierKey {
            role: record.role,
            model: record.model.clone(),
            regime: record.regime.clone(),
            seed: record.seed,
        };
        let domains = groups.entry(key).or_default();
        if domains.insert(record.domain.as_str(), record).is_some() {
            bail!("two run records describe {}; keep one of them and rebuild the leaderboard", record.file_name());
        }
    }
    Ok(groups)
}

/// Accuracy on `domain`, if the classifier was evaluated on a non-empty set of it.
fn accuracy_on(domains: &DomainRecords<'_>, domain: &str) -> Option<f64> {
    domains.get(domain).filter(|r| r.n > 0).map(|r| metrics::accuracy(r.correct, r.n))
}

/// Clopper–Pearson interval of the accuracy on `domain`, when measured.
fn interval_on(domains: &DomainRecords<'_>, domain: &str) -> Option<Interval> {
    domains.get(domain).and_then(|r| metrics::clopper_pearson(r.correct, r.n))
}

fn fit_shift(
    classifiers: &BTreeMap<ClassifierKey, DomainRecords<'_>>,
    protocol: &Protocol,
    shift: &str,
    transform: Transform,
) -> ShiftFit {
    // A suite's fixed line wins: it is what the suite says ER is measured against. Its transform
    // is the file's, checked against the protocol's by the suite validator's reader.
    if let Some(r) = protocol.reference_fits.iter().find(|f| f.shift == shift) {
        let line = LinearFit { slope: r.slope, intercept: r.intercept, r: 0.0, n: r.n as usize };
        let transform = r.transform.parse().unwrap_or(transform);
        return ShiftFit { shift: shift.to_string(), id_domain: r.id_domain.clone(), n: r.n as usize, fit: Some(BaselineFit::fixed(line, transform)), points: Vec::new(), reference: true };
    }
    let points: Vec<(f64, f64)> = classifiers
        .iter()
        .filter(|(key, _)| key.role == Role::Testbed)
        .filter_map(|(_, domains)| Some((accuracy_on(domains, &protocol.id_domain)?, accuracy_on(domains, shift)?)))
        .collect();
    let purpose = format!("leaderboard/bootstrap/{shift}");
    let fit = BaselineFit::fit(&points, transform, metrics::DEFAULT_RESAMPLES, BOOTSTRAP_SEED, &purpose);
    ShiftFit { shift: shift.to_string(), id_domain: protocol.id_domain.clone(), n: points.len(), fit, points, reference: false }
}

fn leaderboard_row(
    key: &ClassifierKey,
    domains: &DomainRecords<'_>,
    protocol: &Protocol,
    fits: &[ShiftFit],
    table_fits: &[TableFit],
) -> LeaderboardRow {
    // Every record of a classifier shares its training; the ID record is the canonical source,
    // and a group always holds at least one record.
    let representative = domains
        .get(protocol.id_domain.as_str())
        .or_else(|| domains.values().next())
        .expect("a classifier group is created with its first record");

    let acc_id = accuracy_on(domains, &protocol.id_domain);
    let acc_shifts: Vec<Option<f64>> = protocol.shifts.iter().map(|s| accuracy_on(domains, s)).collect();
    let acc_generated = protocol.generated_eval.as_deref().and_then(|g| accuracy_on(domains, g));

    let scores: Vec<Option<Score>> = fits
        .iter()
        .zip(&acc_shifts)
        .map(|(shift_fit, acc_shift)| Some(shift_fit.fit.as_ref()?.score(accuracy_on(domains, &shift_fit.id_domain)?, (*acc_shift)?)))
        .collect();
    let er: Vec<Option<f64>> = scores.iter().map(|s| s.map(|s| s.er)).collect();
    let er_ci: Vec<Option<Interval>> = scores.iter().map(|s| s.and_then(|s| s.interval)).collect();
    let available: Vec<f64> = er.iter().flatten().copied().collect();
    let er_mean = (!available.is_empty()).then(|| available.iter().sum::<f64>() / available.len() as f64);
    let gen_degradation =
        acc_id.zip(acc_generated).map(|(id, generated)| metrics::generated_degradation(id, generated));
    let table_scores: Vec<Option<Score>> = table_fits
        .iter()
        .map(|t| Some(t.fit.as_ref()?.score(accuracy_on(domains, &t.id_domain)?, accuracy_on(domains, &t.shift)?)))
        .collect();

    LeaderboardRow {
        role: key.role,
        model: key.model.clone(),
        regime: key.regime.clone(),
        seed: key.seed,
        arch: representative.train.arch.clone(),
        parameters: representative.train.parameters,
        train_images: representative.train.train_images,
        epochs: representative.train.epochs,
        acc_id,
        acc_id_ci: interval_on(domains, &protocol.id_domain),
        acc_id_axes: protocol.id_axes.iter().map(|a| accuracy_on(domains, a)).collect(),
        acc_id_axes_ci: protocol.id_axes.iter().map(|a| interval_on(domains, a)).collect(),
        acc_shifts_ci: protocol.shifts.iter().map(|s| interval_on(domains, s)).collect(),
        acc_shifts,
        acc_generated_ci: protocol.generated_eval.as_deref().and_then(|g| interval_on(domains, g)),
        acc_generated,
        er,
        er_ci,
        er_mean,
        er_table: table_scores.iter().map(|s| s.map(|s| s.er)).collect(),
        er_table_ci: table_scores.iter().map(|s| s.and_then(|s| s.interval)).collect(),
        gen_degradation,
        provenance: representative.provenance.clone(),
        sweep: representative.sweep.clone(),
        train: representative.train.clone(),
    }
}

fn fits_to_csv(fits: &[ShiftFit], transform: Transform) -> Result<String> {
    let mut w = csvfmt::writer();
    w.write_record(["shift", "id_domain", "transform", "n", "slope", "intercept", "r"])?;
    for f in fits {
        let transform = f.fit.as_ref().map_or(transform, |fit| fit.transform);
        let shift = [f.shift.clone(), f.id_domain.clone(), transform.to_string(), f.n.to_string()];
        let mut line: Vec<String> = line_fields(f.line()).into_iter().collect();
        if f.reference {
            // A published line comes without its points' correlation.
            if let Some(r) = line.last_mut() {
                r.clear();
            }
        }
        w.write_record(shift.into_iter().chain(line))?;
    }
    csvfmt::finish(w)
}

/// The columns a leaderboard with swept regimes ends with: the sweep's name and the row's value.
pub const SWEEP_COLUMNS: [&str; 2] = ["sweep", "sweep_value"];

/// Column names of `leaderboard.csv` for a protocol; [`SWEEP_COLUMNS`] follow when a row comes
/// from a sweep (so leaderboards of suites without sweeps keep their columns), and the
/// `er_table_<shift>` columns follow `er_mean` when the protocol has a baseline table.
pub fn leaderboard_header(protocol: &Protocol, with_sweeps: bool) -> Vec<String> {
    let mut header: Vec<String> =
        ["role", "model", "regime", "seed", "arch", "parameters", "train_images", "epochs"].map(String::from).to_vec();
    // Each value is followed by its 95% interval: `acc_val, acc_val_lo, acc_val_hi`.
    let with_interval = |name: String| [name.clone(), format!("{name}_lo"), format!("{name}_hi")];
    header.extend(with_interval(format!("acc_{}", protocol.id_domain)));
    for a in &protocol.id_axes {
        header.extend(with_interval(format!("acc_{a}")));
    }
    for s in &protocol.shifts {
        header.extend(with_interval(format!("acc_{s}")));
    }
    if let Some(generated) = &protocol.generated_eval {
        header.extend(with_interval(format!("acc_{generated}")));
    }
    for s in &protocol.shifts {
        header.extend(with_interval(format!("er_{s}")));
    }
    header.push("er_mean".into());
    for f in protocol.baseline_table.iter().flat_map(|t| &t.fits) {
        header.extend(with_interval(format!("er_table_{}", f.shift)));
    }
    header.extend(["gen_degradation", "suite_hash", "git_revision", "harness_version", "device"].map(String::from));
    if with_sweeps {
        header.extend(SWEEP_COLUMNS.map(String::from));
    }
    header
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Entry => "entry",
        Role::Testbed => "testbed",
        Role::Compared => "compared",
    }
}

fn rows_to_csv(rows: &[LeaderboardRow], protocol: &Protocol, table_fits: &[TableFit]) -> Result<String> {
    debug_assert_eq!(table_fits.len(), protocol.baseline_table.as_ref().map_or(0, |t| t.fits.len()));
    let mut w = csvfmt::writer();
    let with_sweeps = rows.iter().any(|r| r.sweep.is_some());
    w.write_record(leaderboard_header(protocol, with_sweeps))?;
    for row in rows {
        let mut fields = vec![
            role_name(row.role).to_string(),
            row.model.clone(),
            row.regime.clone(),
            row.seed.to_string(),
            row.arch.clone(),
            row.parameters.to_string(),
            row.train_images.map_or(String::new(), |n| n.to_string()),
            row.epochs.map_or(String::new(), |n| n.to_string()),
        ];
        fields.extend(value_and_interval(row.acc_id, row.acc_id_ci));
        for (&a, &ci) in row.acc_id_axes.iter().zip(&row.acc_id_axes_ci) {
            fields.extend(value_and_interval(a, ci));
        }
        for (&a, &ci) in row.acc_shifts.iter().zip(&row.acc_shifts_ci) {
            fields.extend(value_and_interval(a, ci));
        }
        if protocol.generated_eval.is_some() {
            fields.extend(value_and_interval(row.acc_generated, row.acc_generated_ci));
        }
        for (&e, &ci) in row.er.iter().zip(&row.er_ci) {
            fields.extend(value_and_interval(e, ci));
        }
        fields.push(fixed(row.er_mean, 2));
        for (&e, &ci) in row.er_table.iter().zip(&row.er_table_ci) {
            fields.extend(value_and_interval(e, ci));
        }
        fields.extend([
            fixed(row.gen_degradation, 2),
            row.provenance.suite_hash.clone(),
            row.provenance.git_revision.clone(),
            row.provenance.harness_version.clone(),
            row.provenance.device.clone(),
        ]);
        if with_sweeps {
            fields.push(row.sweep.as_ref().map_or(String::new(), |p| p.sweep.clone()));
            fields.push(row.sweep.as_ref().map_or(String::new(), |p| crate::suite::sweep_value_label(p.value)));
        }
        w.write_record(&fields)?;
    }
    csvfmt::finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{DomainRole, RECORD_SCHEMA};

    fn protocol() -> Protocol {
        Protocol {
            id_domain: "val".into(),
            shifts: vec!["v2".into(), "sketch".into()],
            generated_eval: Some("gen".into()),
            transform: "logit".into(),
            flip_tta: false,
            id_axes: Vec::new(),
            reference_fits: Vec::new(),
            baseline_table: None,
        }
    }

    fn record(role: Role, model: &str, seed: u64, domain: &str, correct: u64) -> RunRecord {
        let domain_role = match domain {
            "val" => DomainRole::Id,
            "gen" => DomainRole::Generated,
            _ => DomainRole::Shift,
        };
        RunRecord {
            schema: RECORD_SCHEMA,
            suite: "unit".into(),
            role,
            model: model.into(),
            regime: "real".into(),
            seed,
            domain: domain.into(),
            domain_role,
            n: 200,
            correct,
            correct_top5: Some(correct),
            per_class_total: vec![100, 100],
            per_class_correct: vec![correct / 2, correct - correct / 2],
            protocol: protocol(),
            scoring: None,
            train: TrainSummary { arch: "mlp".into(), parameters: 10, train_images: Some(100), epochs: Some(1), final_loss: Some(0.5), sources: None, augment: None, generated_fraction: None },
            provenance: Provenance {
                harness_version: "0.1.0".into(),
                git_revision: "abc".into(),
                suite_hash: "s".into(),
                lock_hash: "none".into(),
                job_hash: "j".into(),
                device: "cpu".into(),
                suite_seed: Some(0),
                checkpoint_sha256: Some("c".repeat(64)),
            },
            sweep: None,
        }
    }

    /// A testbed model whose shifted accuracies sit exactly at `val − 20` points (v2) and half
    /// of val (sketch), in counts out of 200.
    fn testbed(model: &str, val: u64) -> Vec<RunRecord> {
        vec![
            record(Role::Testbed, model, 0, "val", val),
            record(Role::Testbed, model, 0, "v2", val - 40),
            record(Role::Testbed, model, 0, "sketch", val / 2),
        ]
    }

    #[test]
    fn rows_sort_by_role_model_regime_then_numeric_seed() {
        let mut records = testbed("a", 120);
        for seed in [10, 2, 1] {
            records.push(record(Role::Entry, "z", seed, "val", 100));
        }
        records.push(record(Role::Entry, "b", 7, "val", 100));
        let lb = build(&records).unwrap();
        let order: Vec<(Role, &str, u64)> = lb.rows.iter().map(|r| (r.role, r.model.as_str(), r.seed)).collect();
        assert_eq!(
            order,
            [
                (Role::Entry, "b", 7),
                (Role::Entry, "z", 1),
                (Role::Entry, "z", 2),
                (Role::Entry, "z", 10),
                (Role::Testbed, "a", 0)
            ]
        );
    }

    #[test]
    fn reference_fits_measure_compared_rows_against_their_own_id_axis() {
        // v2 is measured against `val`, sketch against the ID axis `val-sub`.
        let mut p = protocol();
        p.generated_eval = None;
        p.id_axes = vec!["val-sub".into()];
        p.reference_fits = vec![
            crate::record::ProtocolFit { shift: "v2".into(), id_domain: "val".into(), transform: "logit".into(), slope: 1.0, intercept: 0.0, n: 85, provenance: "unit".into() },
            crate::record::ProtocolFit { shift: "sketch".into(), id_domain: "val-sub".into(), transform: "logit".into(), slope: 1.0, intercept: -1.0, n: 80, provenance: "unit".into() },
        ];
        let rec = |domain: &str, correct: u64| {
            let mut r = record(Role::Compared, "outside", 0, domain, correct);
            r.protocol = p.clone();
            r.regime = "external".into();
            r.train = TrainSummary { arch: "resnet50".into(), parameters: 1, train_images: None, epochs: None, final_loss: None, sources: None, augment: None, generated_fraction: None };
            if domain == "val-sub" {
                r.domain_role = DomainRole::Id;
            }
            r
        };
        let lb = build(&[rec("val", 150), rec("val-sub", 100), rec("v2", 140), rec("sketch", 60)]).unwrap();
        let row = &lb.rows[0];
        // v2: line y = x, so ER = 70 − 75. sketch: logit(y) = logit(50%) − 1 → 26.89%, ER = 30 − 26.89.
        assert!((row.er[0].unwrap() - (-5.0)).abs() < 1e-9, "{:?}", row.er);
        assert!((row.er[1].unwrap() - (30.0 - 100.0 / (1.0 + std::f64::consts::E))).abs() < 1e-6, "{:?}", row.er);
        assert_eq!(row.er_ci, vec![None, None], "a fixed line has no bootstrap");
        assert_eq!((row.train_images, row.epochs), (None, None));
        assert_eq!(lb.fits_csv.lines().nth(2).unwrap(), "sketch,val-sub,logit,80,1.0000,-1.0000,");
        let header = lb.leaderboard_csv.lines().next().unwrap();
        assert!(header.contains("acc_val,acc_val_lo,acc_val_hi,acc_val-sub,acc_val-sub_lo,acc_val-sub_hi,acc_v2"), "{header}");
        let line = lb.leaderboard_csv.lines().nth(1).unwrap();
        assert!(line.starts_with("compared,outside,external,0,resnet50,1,,,75.00,"), "{line}");
    }

    #[test]
    fn one_testbed_model_gives_no_fit_and_empty_er() {
        let mut records = testbed("a", 120);
        records.push(record(Role::Entry, "e", 0, "val", 150));
        records.push(record(Role::Entry, "e", 0, "v2", 110));
        let lb = build(&records).unwrap();
        assert!(lb.fits.iter().all(|f| f.n == 1 && f.fit.is_none()));
        assert_eq!(
            lb.fits_csv,
            "shift,id_domain,transform,n,slope,intercept,r\nv2,val,logit,1,,,\nsketch,val,logit,1,,,\n"
        );
        let entry = &lb.rows[0];
        assert_eq!(entry.er, vec![None, None]);
        assert_eq!(entry.er_mean, None);
        assert_eq!(entry.acc_id, Some(75.0));
        assert_eq!(entry.acc_shifts, vec![Some(55.0), None]);
        assert_eq!(entry.gen_degradation, None);
        let line = lb.leaderboard_csv.lines().nth(1).unwrap();
        // Clopper–Pearson bounds of 150/200 and 110/200 (SciPy 1.17.1 agrees to 2 decimals).
        assert_eq!(line, "entry,e,real,0,mlp,10,100,1,75.00,68.40,80.84,55.00,47.82,62.02,,,,,,,,,,,,,,,s,abc,0.1.0,cpu");
        assert_eq!(entry.er_ci, vec![None, None]);
    }

    #[test]
    fn er_mean_averages_the_shifts_that_have_an_er() {
        let mut records = [testbed("a", 100), testbed("b", 140), testbed("c", 170)].concat();
        // On the v2 line (val − 20 points is not linear in logit space, so compare to the fit).
        records.push(record(Role::Entry, "e", 0, "val", 150));
        records.push(record(Role::Entry, "e", 0, "v2", 130));
        records.push(record(Role::Entry, "e", 0, "gen", 100));
        let lb = build(&records).unwrap();
        let fit = lb.fits[0].line().unwrap();
        let want = 65.0 - fit.predict(Transform::Logit, 75.0);
        let entry = &lb.rows[0];
        assert!((entry.er[0].unwrap() - want).abs() < 1e-12);
        assert_eq!(entry.er[1], None);
        assert_eq!(entry.er_mean, entry.er[0]);
        let ci = entry.er_ci[0].unwrap();
        assert!(ci.lo <= entry.er[0].unwrap() && entry.er[0].unwrap() <= ci.hi, "{ci:?}");
        assert_eq!(lb.fits[0].resampled().len(), metrics::DEFAULT_RESAMPLES);
        assert_eq!(entry.gen_degradation, Some(25.0));
        // Testbed rows get their residuals too.
        assert!(lb.rows.iter().filter(|r| r.role == Role::Testbed).all(|r| r.er.iter().all(Option::is_some)));
    }

    #[test]
    fn duplicate_records_are_an_error() {
        let mut records = testbed("a", 120);
        records.push(record(Role::Testbed, "a", 0, "val", 121));
        let err = build(&records).unwrap_err().to_string();
        assert!(err.contains("records/testbed/a/real/seed-0/val.json"), "{err}");
    }

    #[test]
    fn impossible_counts_and_unknown_transforms_are_errors() {
        let mut records = testbed("a", 120);
        records[0].correct = 201;
        let err = build(&records).unwrap_err().to_string();
        assert!(err.contains("201 correct predictions out of 200"), "{err}");

        let mut records = testbed("a", 120);
        for r in &mut records {
            r.protocol.transform = "log".into();
        }
        let err = format!("{:#}", build(&records).unwrap_err());
        assert!(err.contains("unknown accuracy transform `log`"), "{err}");
        assert!(build(&[]).is_err());
    }

    #[test]
    fn no_generated_eval_means_no_generated_column() {
        let mut records = testbed("a", 120);
        for r in &mut records {
            r.protocol.generated_eval = None;
        }
        let lb = build(&records).unwrap();
        let header = lb.leaderboard_csv.lines().next().unwrap();
        assert_eq!(
            header,
            "role,model,regime,seed,arch,parameters,train_images,epochs,acc_val,acc_val_lo,acc_val_hi,\
             acc_v2,acc_v2_lo,acc_v2_hi,acc_sketch,acc_sketch_lo,acc_sketch_hi,er_v2,er_v2_lo,er_v2_hi,\
             er_sketch,er_sketch_lo,er_sketch_hi,er_mean,gen_degradation,suite_hash,git_revision,harness_version,device"
        );
    }
}
