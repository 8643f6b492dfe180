//! A `shiftbench er` request: the command's flags resolved into `ErOptions` (explicit flags
//! override a preset), then the one call that reads the inputs, computes and writes the report.

use crate::metrics::{self, Transform};
use crate::robustness::pairing::{BaselineSet, ErOptions, Pairing, ProtocolPreset};
use crate::robustness::reference;
use crate::robustness::report::{compute, write, ErReport};
use crate::robustness::table::{AccuracyTable, ModelTypes};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `shiftbench er` was asked, before any file is read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErRequest {
    pub table: PathBuf,
    pub types: Option<PathBuf>,
    pub preset: Option<ProtocolPreset>,
    /// ID column for `shift_columns` (without a preset).
    pub id_column: Option<String>,
    pub shift_columns: Vec<String>,
    /// File of baseline model names.
    pub baseline_file: Option<PathBuf>,
    /// Allowed model types (needs `types`).
    pub baseline_types: Vec<String>,
    /// Type column for every pairing (default: the preset's per-pairing choice, else `model_type`).
    pub type_column: Option<String>,
    /// Name parts that exclude a model from the baseline (default: the preset's, else none).
    pub exclude: Option<Vec<String>>,
    /// Minimum baseline ID accuracy for every pairing (default: the preset's, else 0).
    pub min_id_acc: Option<f64>,
    pub transform: Option<Transform>,
    pub resamples: Option<usize>,
    pub seed: u64,
    /// Fixed fits (`[[reference_fits]]` TOML) to score against instead of fitting a baseline.
    pub reference_fits: Option<PathBuf>,
}

/// Bootstrap resamples `er` accepts.
pub const RESAMPLES: std::ops::RangeInclusive<usize> = 100..=100_000;

impl ErRequest {
    /// Resolves flags and preset into pairings and a baseline rule; explicit flags override the
    /// preset. Reads the types table and the baseline list when named.
    pub fn options(&self) -> Result<ErOptions> {
        let mut pairings = match (self.preset, &self.id_column, self.shift_columns.is_empty()) {
            (Some(_), Some(_), _) | (Some(_), _, false) => {
                return Err(crate::usage::usage("--preset chooses the columns itself; drop --id/--shift, or drop --preset to pick columns by hand"))
            }
            (Some(preset), None, true) => preset.pairings(),
            (None, Some(id), false) => self
                .shift_columns
                .iter()
                .map(|shift| Pairing {
                    shift: shift.clone(),
                    id_column: id.clone(),
                    shift_column: shift.clone(),
                    type_column: "model_type".into(),
                    min_id_acc: 0.0,
                })
                .collect(),
            _ => return Err(crate::usage::usage("say which columns to compare: --preset imagenet-testbed, or --id COLUMN with one or more --shift COLUMN")),
        };
        for p in &mut pairings {
            if let Some(min) = self.min_id_acc {
                p.min_id_acc = min;
            }
            if let Some(column) = &self.type_column {
                p.type_column = column.clone();
            }
        }
        let baseline = match (&self.baseline_file, self.baseline_types.is_empty()) {
            (Some(_), false) => return Err(crate::usage::usage("--baseline and --baseline-types both choose the baseline; use one")),
            (Some(file), true) => BaselineSet::names_from_file(file)?,
            (None, allowed_given) => {
                let allowed = if allowed_given {
                    self.preset.map(ProtocolPreset::baseline_types).unwrap_or_default()
                } else {
                    self.baseline_types.clone()
                };
                match (&self.types, allowed.is_empty()) {
                    (_, true) => BaselineSet::All,
                    (Some(path), false) => BaselineSet::Types { types: ModelTypes::load(path)?, allowed },
                    (None, false) => return Err(crate::usage::usage(format!(
                        "the baseline is models of type {}, which needs --types MODEL_TYPES.csv (columns model,model_type,...); \
                         or name the baseline models with --baseline FILE",
                        allowed.join(", ")
                    ))),
                }
            }
        };
        let exclude_name_parts = match &self.exclude {
            Some(parts) => parts.clone(),
            None => self.preset.map(ProtocolPreset::excluded_name_parts).unwrap_or_default(),
        };
        let resamples = self.resamples.unwrap_or(metrics::DEFAULT_RESAMPLES);
        if !RESAMPLES.contains(&resamples) {
            return Err(crate::usage::usage(format!(
                "--resamples {resamples} is outside {}..={}: fewer give a percentile interval too coarse to trust (it may exclude the ER itself), more only cost time and memory; the default is {}",
                RESAMPLES.start(), RESAMPLES.end(), metrics::DEFAULT_RESAMPLES
            )));
        }
        Ok(ErOptions {
            pairings,
            baseline,
            exclude_name_parts,
            transform: self.transform.unwrap_or(Transform::Logit),
            resamples,
            seed: self.seed,
        })
    }

    /// Loads the table, computes the report and writes it to `out`.
    pub fn run(&self, out: &Path) -> Result<ErReport> {
        if let Some(fits_path) = &self.reference_fits {
            if self.preset.is_some() || self.id_column.is_some() || !self.shift_columns.is_empty() {
                return Err(crate::usage::usage("--fits names the columns and fits itself; drop --preset/--id/--shift"));
            }
            let fits = reference::load(fits_path)?;
            let report = reference::score(&AccuracyTable::load(&self.table)?, &fits)?;
            write(out, &report)?;
            return Ok(report);
        }
        let options = self.options()?;
        let table = AccuracyTable::load(&self.table)?;
        let report = compute(&table, &options)?;
        write(out, &report)?;
        Ok(report)
    }
}
