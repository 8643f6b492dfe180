//! A suite's baseline table (`[metrics.baseline_table]`): effective robustness against lines
//! fitted from an accuracy table such as the imagenet-testbed's `robustness_top1s.csv`, with
//! bootstrap intervals over its baseline models, for classifiers the suite evaluates.
//!
//! The baselines are `shiftbench er --preset`'s, computed by the same code (`ErRequest::options`,
//! `report::compute`). Records must be all the leaderboard needs, so what a record carries is
//! not the fitted line but its points (baseline model, ID and shifted accuracy), the transform,
//! the resample count and the seed; the leaderboard refits them on `er`'s bootstrap stream
//! ([`refit`]), which gives `er`'s numbers to the bit. `protocol_table` is the only I/O: it reads
//! the two artifacts from the fetch cache when `compare` (or `run`) makes records.

use crate::fetch::lock::Lock;
use crate::metrics::{self, Transform};
use crate::record::{BaselinePoint, ProtocolTable, ProtocolTableFit};
use crate::robustness::fit::BaselineFit;
use crate::robustness::report::{bootstrap_purpose, compute};
use crate::robustness::request::ErRequest;
use crate::robustness::table::AccuracyTable;
use crate::suite::{BaselineTable, SuiteConfig};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// Bootstrap refits of a table baseline: `shiftbench er`'s default, DESIGN.md §4's 1000.
pub const RESAMPLES: usize = metrics::DEFAULT_RESAMPLES;

/// Seed of the refits' streams: `shiftbench er`'s default `--seed`, and the leaderboard's
/// `BOOTSTRAP_SEED`.
pub const SEED: u64 = crate::report::BOOTSTRAP_SEED;

/// The baselines of `config`'s table, read from the fetch cache (`lock` names the artifacts);
/// `None` when the suite names no table. Fails, naming the artifact and the fix, when a file is
/// not fetched, is not a plain file, or cannot carry a fit.
pub fn protocol_table(config: &SuiteConfig, lock: &Path) -> Result<Option<ProtocolTable>> {
    let Some(spec) = &config.metrics.baseline_table else { return Ok(None) };
    let lock = Lock::load(lock)?;
    let (table_path, table_sha256) = cached_file(&lock, &spec.table, "table")?;
    let (types_path, types_sha256) = cached_file(&lock, &spec.types, "types")?;
    let context = || format!("suite `{}`: `[metrics.baseline_table]` (artifacts `{}` and `{}`)", config.name, spec.table, spec.types);
    let table = AccuracyTable::load(&table_path).with_context(context)?;
    let fits = fit_points(&table, &types_path, spec, config.metrics.transform).with_context(context)?;
    Ok(Some(ProtocolTable {
        table: spec.table.clone(),
        table_sha256,
        types: spec.types.clone(),
        types_sha256,
        preset: spec.preset.name().to_string(),
        transform: config.metrics.transform.to_string(),
        resamples: RESAMPLES as u64,
        seed: SEED,
        fits,
    }))
}

/// The suite's pairings fitted as `shiftbench er --table TABLE --types TYPES --preset P` fits
/// them, reduced to their points.
fn fit_points(table: &AccuracyTable, types: &Path, spec: &BaselineTable, transform: Transform) -> Result<Vec<ProtocolTableFit>> {
    let request = ErRequest {
        table: PathBuf::from(&table.source),
        types: Some(types.to_path_buf()),
        preset: Some(spec.preset),
        transform: Some(transform),
        resamples: Some(RESAMPLES),
        seed: SEED,
        ..ErRequest::default()
    };
    let mut options = request.options()?;
    options.pairings = spec.pairings.clone();
    let report = compute(table, &options)?;
    Ok(report
        .fits
        .into_iter()
        .map(|f| ProtocolTableFit {
            shift: f.pairing.shift_column,
            id_domain: f.pairing.id_column,
            pairing: f.pairing.shift,
            points: f.baseline_models.into_iter().zip(f.points).map(|(model, (id, shift))| BaselinePoint { model, id, shift }).collect(),
        })
        .collect())
}

/// The cached, verified file of a plain-file artifact, and its pinned sha256.
fn cached_file(lock: &Lock, name: &str, what: &str) -> Result<(PathBuf, String)> {
    let artifact = lock.get(name)?;
    if artifact.format.is_archive() {
        return Err(anyhow!(
            "the baseline {what} `{name}` is a {} archive in {}; `[metrics.baseline_table]` reads a plain file (format = \"file\"): name such an artifact",
            artifact.format,
            lock.path.display()
        ));
    }
    let mut opts = crate::fetch::FetchOptions::new(crate::fetch::default_cache_dir()?);
    opts.offline = true;
    let fetched = crate::fetch::fetch(artifact, &opts).map_err(|e| anyhow!("the baseline {what} `{name}`: {e}; run `shiftbench fetch {name}` first"))?;
    Ok((fetched.path, artifact.sha256().unwrap_or_default().to_string()))
}

/// The line and bootstrap of one table baseline, refitted from a record's points: what
/// `shiftbench er` computes for the same table. `None` when the record's transform is unknown
/// or its points allow no line (`record::check` refuses such records first).
pub fn refit(table: &ProtocolTable, fit: &ProtocolTableFit) -> Option<BaselineFit> {
    let transform: Transform = table.transform.parse().ok()?;
    let points: Vec<(f64, f64)> = fit.points.iter().map(|p| (p.id, p.shift)).collect();
    BaselineFit::fit(&points, transform, table.resamples as usize, table.seed, &bootstrap_purpose(&fit.pairing))
}
