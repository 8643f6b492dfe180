//! Fixed baseline fits carried in a TOML file (`[[reference_fits]]`), so a classifier's
//! effective robustness can be computed from its accuracies alone, without a testbed.
//! `suites/imagenet-testbed-fits.toml` ships the four imagenet-testbed fits of DESIGN.md §5.
//!
//! Validation is as strict as a suite's: unknown keys, wrong types, bad values and duplicate
//! shifts are one `ConfigError` naming the file, line, column and key. A reference fit is a
//! `BaselineFit` without resamples, scored like any fitted pairing.

use crate::config_error::{error_at, parse_toml, ConfigError};
use crate::metrics::{self, LinearFit, Transform};
use crate::robustness::fit::BaselineFit;
use crate::robustness::pairing::Pairing;
use crate::robustness::report::{score_rows, ErReport, PairingFit};
use crate::robustness::table::AccuracyTable;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceFitsFile {
    reference_fits: Vec<ReferenceFitSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceFitSpec {
    shift: Spanned<String>,
    id_column: Spanned<String>,
    shift_column: Spanned<String>,
    transform: Spanned<String>,
    slope: Spanned<f64>,
    intercept: Spanned<f64>,
    n: Spanned<usize>,
    provenance: Spanned<String>,
}

/// One validated fixed fit.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceFit {
    pub shift: String,
    pub id_column: String,
    pub shift_column: String,
    /// The published line; r is not part of a published fit, so `fit.line.r` is 0 (unknown).
    pub fit: BaselineFit,
    pub provenance: String,
}

/// Reads and validates a reference-fits file.
pub fn load(path: &Path) -> anyhow::Result<Vec<ReferenceFit>> {
    let text = crate::fsutil::read_text_file(path)
        .map_err(|e| anyhow::anyhow!("cannot read reference fits {}: {e}; pass a file such as suites/imagenet-testbed-fits.toml", path.display()))?;
    Ok(parse(&text, path)?)
}

/// Parses and validates reference-fits text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Vec<ReferenceFit>, ConfigError> {
    let error = |span: std::ops::Range<usize>, key: String, message: String| error_at(path, text, span, key, message);
    let file: ReferenceFitsFile = parse_toml(text, path)?;
    if file.reference_fits.is_empty() {
        return Err(error(0..0, "reference_fits".into(), "no fits; add at least one [[reference_fits]] table".into()));
    }
    let mut fits: Vec<ReferenceFit> = Vec::new();
    for spec in file.reference_fits {
        let transform: Transform = spec.transform.get_ref().parse().map_err(|e: metrics::UnknownTransform| {
            error(spec.transform.span(), "reference_fits.transform".into(), e.to_string())
        })?;
        for (value, key) in [(&spec.slope, "reference_fits.slope"), (&spec.intercept, "reference_fits.intercept")] {
            if !value.get_ref().is_finite() {
                return Err(error(value.span(), key.into(), "must be a finite number".into()));
            }
        }
        if *spec.n.get_ref() < 2 {
            return Err(error(spec.n.span(), "reference_fits.n".into(), "a fit needs at least 2 baseline models".into()));
        }
        if fits.iter().any(|f| &f.shift == spec.shift.get_ref()) {
            return Err(error(
                spec.shift.span(),
                "reference_fits.shift".into(),
                format!("`{}` already has a fit above; keep one per shift", spec.shift.get_ref()),
            ));
        }
        if let Some(first) = fits.first() {
            if first.fit.transform != transform {
                return Err(error(
                    spec.transform.span(),
                    "reference_fits.transform".into(),
                    format!("`{transform}` differs from the first fit's `{}`; one file uses one transform", first.fit.transform),
                ));
            }
        }
        fits.push(ReferenceFit {
            shift: spec.shift.into_inner(),
            id_column: spec.id_column.into_inner(),
            shift_column: spec.shift_column.into_inner(),
            fit: BaselineFit::fixed(
                LinearFit { slope: *spec.slope.get_ref(), intercept: *spec.intercept.get_ref(), r: 0.0, n: *spec.n.get_ref() },
                transform,
            ),
            provenance: spec.provenance.into_inner(),
        });
    }
    Ok(fits)
}

/// Scores every model of `table` that has both accuracies of a fit against that fixed fit.
/// There is no baseline to resample, so rows carry no ER interval.
pub fn score(table: &AccuracyTable, fits: &[ReferenceFit]) -> anyhow::Result<ErReport> {
    let fits: Vec<PairingFit> = fits
        .iter()
        .map(|f| PairingFit {
            pairing: Pairing {
                shift: f.shift.clone(),
                id_column: f.id_column.clone(),
                shift_column: f.shift_column.clone(),
                type_column: String::new(),
                min_id_acc: 0.0,
            },
            fit: f.fit.clone(),
            baseline_models: Vec::new(),
            points: Vec::new(),
        })
        .collect();
    let rows = score_rows(table, &fits)?;
    Ok(ErReport { fits, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../suites/imagenet-testbed-fits.toml");

    #[test]
    fn shipped_file_carries_the_design_fits() {
        let fits = parse(SHIPPED, Path::new("suites/imagenet-testbed-fits.toml")).unwrap();
        let got: Vec<(&str, f64, f64, usize)> =
            fits.iter().map(|f| (f.shift.as_str(), f.fit.line.slope, f.fit.line.intercept, f.fit.line.n)).collect();
        assert_eq!(
            got,
            [
                ("imagenet-v2", 0.9232, -0.4977, 85),
                ("imagenet-sketch", 1.0709, -2.3701, 85),
                ("imagenet-r", 0.6368, -2.1077, 80),
                ("objectnet", 0.9809, -1.9283, 85),
            ]
        );
        assert!(fits.iter().all(|f| f.fit.transform == Transform::Logit && !f.provenance.is_empty()));
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let path = Path::new("fits.toml");
        let bad_key = SHIPPED.replacen("intercept = -0.4977", "intercept = -0.4977\nintercpt = 1", 1);
        let err = parse(&bad_key, path).unwrap_err().to_string();
        assert!(err.starts_with("fits.toml:") && err.contains("intercpt"), "{err}");
        let bad_transform = SHIPPED.replacen("transform = \"logit\"", "transform = \"logits\"", 1);
        let err = parse(&bad_transform, path).unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (21, "reference_fits.transform"), "{err}");
        let duplicate = SHIPPED.replacen("shift = \"imagenet-sketch\"", "shift = \"imagenet-v2\"", 1);
        let err = parse(&duplicate, path).unwrap_err().to_string();
        assert!(err.contains("key `reference_fits.shift`: `imagenet-v2` already has a fit"), "{err}");
        let err = parse(&SHIPPED.replacen("n = 85", "n = 1", 1), path).unwrap_err().to_string();
        assert!(err.contains("reference_fits.n") && err.contains("at least 2"), "{err}");
        let err = parse(&SHIPPED.replacen("slope = 0.9232\n", "", 1), path).unwrap_err().to_string();
        assert!(err.contains("slope"), "{err}");
    }

    #[test]
    fn scores_against_fixed_fits() {
        let fits = parse(SHIPPED, Path::new("f.toml")).unwrap();
        let table = AccuracyTable::parse("t.csv", "model,val,imagenet-sketch,imagenetv2-matched-frequency-format-val\nmine,74.3,34.3,\n").unwrap();
        // Only the sketch pairing has both columns filled; the R and ObjectNet columns are absent.
        let err = score(&table, &fits).unwrap_err().to_string();
        assert!(err.contains("no column `val-on-imagenet-r-classes`"), "{err}");
        let report = score(&table, &fits[..2]).unwrap();
        assert_eq!(report.rows.len(), 1);
        // The paper's real+generated model: 34.3 on Sketch against 22.56 predicted (hand check in metrics).
        assert!((report.rows[0].score.er - (34.3 - 22.5620)).abs() < 1e-3, "{:?}", report.rows[0]);
        assert!(report.er_csv().unwrap().ends_with("mine,imagenet-sketch,74.30,34.30,22.56,11.74,,\n"));
    }
}
