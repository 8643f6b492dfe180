//! The result of `shiftbench er`: every pairing's baseline fit and every model's effective
//! robustness, and their two CSV files.
//!
//! `compute` and the CSV renderings are pure; `write` is the only I/O.

use crate::csvfmt::{self, fixed, line_fields, value_and_interval};
use crate::fsutil::write_atomic;
use crate::robustness::fit::{BaselineFit, Score, FITS_FILE};
use crate::robustness::pairing::{BaselineSet, ErOptions, Pairing};
use crate::robustness::table::AccuracyTable;
use crate::metrics::Transform;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// File written by `write`: one row per (model, pairing) with both accuracies. (`FITS_FILE`,
/// one row per pairing, is the other.)
pub const ER_FILE: &str = "effective_robustness.csv";

/// A fitted pairing.
#[derive(Clone, Debug, PartialEq)]
pub struct PairingFit {
    pub pairing: Pairing,
    /// `ErOptions::resamples` bootstrap refits, none for a reference fit.
    pub fit: BaselineFit,
    /// The baseline models, in table order (empty for a reference fit).
    pub baseline_models: Vec<String>,
    /// Their (ID, shifted) accuracies, percent, in the same order: the points of the fit.
    pub points: Vec<(f64, f64)>,
}

/// Name of a pairing's bootstrap stream. A suite's baseline table (`robustness::baseline`) is
/// refitted by the leaderboard from the same points on the same stream, so its intervals are
/// `shiftbench er`'s to the bit.
pub fn bootstrap_purpose(shift: &str) -> String {
    format!("er/bootstrap/{shift}")
}

/// One model scored on one pairing. Accuracies percent.
#[derive(Clone, Debug, PartialEq)]
pub struct ErRow {
    pub model: String,
    pub shift: String,
    pub id_acc: f64,
    pub shift_acc: f64,
    /// Against the pairing's fit; the interval is `None` with zero resamples or a reference fit.
    pub score: Score,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ErReport {
    pub fits: Vec<PairingFit>,
    /// Table order of models, then pairing order.
    pub rows: Vec<ErRow>,
}

/// Fits every pairing and scores every model that has both of its accuracies.
///
/// Fails when a column is missing, when a pairing has fewer than two baseline models with
/// distinct ID accuracies, or when a baseline filter needs a type column the types table lacks.
pub fn compute(table: &AccuracyTable, options: &ErOptions) -> Result<ErReport> {
    let mut fits = Vec::new();
    for pairing in &options.pairings {
        let id = table.column(&pairing.id_column)?;
        let shift = table.column(&pairing.shift_column)?;
        let type_index = match &options.baseline {
            BaselineSet::Types { types, .. } => Some(types.column(&pairing.type_column)?),
            _ => None,
        };
        let mut baseline_models = Vec::new();
        let mut points = Vec::new();
        for (model, accs) in table.models.iter().zip(&table.values) {
            let (Some(id_acc), Some(shift_acc)) = (accs[id], accs[shift]) else { continue };
            if id_acc < pairing.min_id_acc || options.exclude_name_parts.iter().any(|p| model.contains(p.as_str())) {
                continue;
            }
            if options.baseline.admits(model, type_index) {
                baseline_models.push(model.clone());
                points.push((id_acc, shift_acc));
            }
        }
        if let Some(defect) = baseline_defect(&baseline_models, &points, options.transform) {
            bail!("{}: the baseline of `{}` against `{}` {defect}", table.source, pairing.shift_column, pairing.id_column);
        }
        let purpose = bootstrap_purpose(&pairing.shift);
        let fit = BaselineFit::fit(&points, options.transform, options.resamples, options.seed, &purpose).ok_or_else(|| {
            anyhow!(
                "{}: `{}` against `{}` has {} baseline model(s) with both accuracies and ID accuracy ≥ {}; a fit needs \
                 at least two with different ID accuracies — widen the baseline set or lower --min-id-acc",
                table.source,
                pairing.shift_column,
                pairing.id_column,
                points.len(),
                pairing.min_id_acc
            )
        })?;
        fits.push(PairingFit { pairing: pairing.clone(), fit, baseline_models, points });
    }
    let rows = score_rows(table, &fits)?;
    Ok(ErReport { fits, rows })
}

/// Why a baseline cannot carry an "accuracy on the line" fit, if it cannot. `er` refuses such a
/// baseline rather than warning: each case prints confident numbers that mean nothing (two
/// models give r = 1 and zero-width intervals; equal ID accuracies give any slope; 0 % or 100 %
/// is infinite under logit and probit, and its clamped stand-in drags the line flat).
pub fn baseline_defect(models: &[String], points: &[(f64, f64)], transform: Transform) -> Option<String> {
    if points.len() < MIN_BASELINE_MODELS {
        return Some(format!(
            "has {} baseline model(s) with both accuracies; a fit needs at least {MIN_BASELINE_MODELS} (through two points any line has r = 1 and no uncertainty) — widen the baseline set or lower --min-id-acc",
            points.len()
        ));
    }
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| (lo.min(x), hi.max(x)));
    if hi - lo < MIN_ID_SPREAD {
        return Some(format!(
            "has ID accuracies within {MIN_ID_SPREAD} points of each other ({lo}–{hi}), so they fix no slope; add baseline models of other ID accuracy"
        ));
    }
    if transform != Transform::Linear {
        let edge = models.iter().zip(points).find_map(|(m, &(x, y))| [("ID", x), ("shifted", y)].into_iter().find(|&(_, a)| a <= 0.0 || a >= 100.0).map(|(w, a)| (m, w, a)));
        if let Some((model, which, acc)) = edge {
            return Some(format!(
                "includes `{model}` with {which} accuracy {acc}, which the {transform} transform maps to infinity; drop it from the baseline (--exclude, --min-id-acc) or pass --transform linear"
            ));
        }
    }
    None
}

/// Fewer baseline models than this are refused (see [`baseline_defect`]).
pub const MIN_BASELINE_MODELS: usize = 3;

/// Baseline ID accuracies spanning less than this many points are refused: a table rounds to
/// hundredths, so a smaller spread is rounding, not a slope.
pub const MIN_ID_SPREAD: f64 = 0.01;

/// Scores every model of `table` that has both accuracies of a fit against that fit, in table
/// order of models, then fit order. Fails when a fit's column is missing from the table.
pub(crate) fn score_rows(table: &AccuracyTable, fits: &[PairingFit]) -> Result<Vec<ErRow>> {
    let mut columns = Vec::new();
    for f in fits {
        columns.push((table.column(&f.pairing.id_column)?, table.column(&f.pairing.shift_column)?));
    }
    let mut rows = Vec::new();
    for (model, accs) in table.models.iter().zip(&table.values) {
        for (f, &(id, shift)) in fits.iter().zip(&columns) {
            let (Some(id_acc), Some(shift_acc)) = (accs[id], accs[shift]) else { continue };
            rows.push(ErRow {
                model: model.clone(),
                shift: f.pairing.shift.clone(),
                id_acc,
                shift_acc,
                score: f.fit.score(id_acc, shift_acc),
            });
        }
    }
    Ok(rows)
}

impl ErReport {
    /// `shift,id_column,shift_column,transform,n,slope,intercept,r`; slope, intercept and r with
    /// 4 decimals, rows in pairing order.
    pub fn fits_csv(&self) -> Result<String> {
        let mut w = csvfmt::writer();
        w.write_record(["shift", "id_column", "shift_column", "transform", "n", "slope", "intercept", "r"])?;
        for f in &self.fits {
            let pairing = [
                f.pairing.shift.clone(),
                f.pairing.id_column.clone(),
                f.pairing.shift_column.clone(),
                f.fit.transform.to_string(),
                f.fit.line.n.to_string(),
            ];
            w.write_record(pairing.into_iter().chain(line_fields(Some(f.fit.line))))?;
        }
        csvfmt::finish(w)
    }

    /// `model,shift,id_acc,shift_acc,predicted,er,er_lo,er_hi`; percent and points with 2
    /// decimals, rows in table order of models, then pairing order. `er_lo`/`er_hi` are empty
    /// with `--resamples 0` and for reference fits.
    pub fn er_csv(&self) -> Result<String> {
        let mut w = csvfmt::writer();
        w.write_record(["model", "shift", "id_acc", "shift_acc", "predicted", "er", "er_lo", "er_hi"])?;
        for r in &self.rows {
            let accuracies = [
                r.model.clone(),
                r.shift.clone(),
                fixed(Some(r.id_acc), 2),
                fixed(Some(r.shift_acc), 2),
                fixed(Some(r.score.predicted), 2),
            ];
            w.write_record(accuracies.into_iter().chain(value_and_interval(Some(r.score.er), r.score.interval)))?;
        }
        csvfmt::finish(w)
    }
}

/// Writes `out/fits.csv` and `out/effective_robustness.csv` atomically, creating `out`.
pub fn write(out: &Path, report: &ErReport) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(FITS_FILE), report.fits_csv()?.as_bytes())?;
    write_atomic(&out.join(ER_FILE), report.er_csv()?.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{self, Transform};
    use crate::robustness::pairing::ProtocolPreset;
    use crate::robustness::table::tests::TABLE;
    use crate::robustness::table::ModelTypes;

    fn options(baseline: BaselineSet) -> ErOptions {
        ErOptions {
            pairings: vec![Pairing {
                shift: "v2".into(),
                id_column: "val".into(),
                shift_column: "v2".into(),
                type_column: "model_type".into(),
                min_id_acc: 55.0,
            }],
            baseline,
            exclude_name_parts: vec!["aws".into()],
            transform: Transform::Logit,
            resamples: 200,
            seed: 0,
        }
    }

    #[test]
    fn baseline_rule_filters_threshold_names_and_exclusions() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let report = compute(&t, &options(BaselineSet::All)).unwrap();
        // e is below 55, d-aws is excluded by name.
        assert_eq!(report.fits[0].baseline_models, ["a", "b", "c", "f"]);
        let types = ModelTypes::parse("types.csv", "model,model_type\na,STANDARD\nb,MORE_DATA\nc,STANDARD\nf,STANDARD\n")
            .unwrap();
        let report =
            compute(&t, &options(BaselineSet::Types { types, allowed: vec!["STANDARD".into()] })).unwrap();
        assert_eq!(report.fits[0].baseline_models, ["a", "c", "f"]);
        let names = BaselineSet::Names(["a", "c", "f"].map(String::from).into());
        let report = compute(&t, &options(names)).unwrap();
        assert_eq!(report.fits[0].baseline_models, ["a", "c", "f"]);
        // Every model with both accuracies gets a row, baseline or not.
        assert_eq!(report.rows.len(), 6);
        let d = report.rows.iter().find(|r| r.model == "d-aws").unwrap();
        assert!(d.score.er > 10.0, "{d:?}");
    }

    #[test]
    fn er_rows_agree_with_metrics_and_bracket_their_interval() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let report = compute(&t, &options(BaselineSet::All)).unwrap();
        let fit = report.fits[0].fit.line;
        assert_eq!(report.fits[0].fit.resampled.len(), 200);
        for r in &report.rows {
            assert_eq!(r.score.er, metrics::effective_robustness(&fit, Transform::Logit, r.id_acc, r.shift_acc));
            assert!((r.shift_acc - r.score.predicted - r.score.er).abs() < 1e-12);
            let i = r.score.interval.unwrap();
            assert!(i.lo <= i.hi, "{r:?}");
        }
        let csv = report.er_csv().unwrap();
        assert!(csv.starts_with("model,shift,id_acc,shift_acc,predicted,er,er_lo,er_hi\na,v2,60.00,48.00,"), "{csv}");
        let fits = report.fits_csv().unwrap();
        assert!(fits.starts_with("shift,id_column,shift_column,transform,n,slope,intercept,r\nv2,val,v2,logit,4,"), "{fits}");
        // Same inputs, same bytes.
        assert_eq!(csv, compute(&t, &options(BaselineSet::All)).unwrap().er_csv().unwrap());
    }

    #[test]
    fn unusable_pairings_are_clear_errors() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let mut o = options(BaselineSet::All);
        o.pairings[0].shift_column = "v3".into();
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("t.csv: no column `v3`"), "{err}");
        let mut o = options(BaselineSet::All);
        o.pairings[0].min_id_acc = 79.0;
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("1 baseline model(s)") && err.contains("--min-id-acc"), "{err}");
        let types = ModelTypes::parse("types.csv", "model,model_type\na,STANDARD\n").unwrap();
        let mut o = options(BaselineSet::Types { types, allowed: vec!["STANDARD".into()] });
        o.pairings[0].type_column = "natural_shift_model_type".into();
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("types.csv: no type column `natural_shift_model_type`"), "{err}");
        assert!("imagenet".parse::<ProtocolPreset>().is_err());
    }

    #[test]
    fn degenerate_baselines_are_refused_naming_the_case() {
        let refused = |table: &str, transform: Transform| {
            let t = AccuracyTable::parse("t.csv", table).unwrap();
            let mut o = options(BaselineSet::All);
            o.pairings[0].min_id_acc = 0.0;
            o.transform = transform;
            compute(&t, &o).map(|_| ()).map_err(|e| e.to_string())
        };
        let two = refused("model,val,v2\na,60,50\nb,70,62\n", Transform::Logit).unwrap_err();
        assert!(two.contains("2 baseline model(s)") && two.contains("at least 3"), "{two}");
        let flat = refused("model,val,v2\na,70,50\nb,70,62\nc,70,55\n", Transform::Logit).unwrap_err();
        assert!(flat.contains("fix no slope"), "{flat}");
        for (table, who) in [("model,val,v2\na,60,50\nb,70,62\nc,100,90\n", "`c` with ID accuracy 100"), ("model,val,v2\na,60,0\nb,70,62\nc,80,70\n", "`a` with shifted accuracy 0")] {
            for t in [Transform::Logit, Transform::Probit] {
                let err = refused(table, t).unwrap_err();
                assert!(err.contains(who) && err.contains("--transform linear"), "{err}");
            }
            assert_eq!(refused(table, Transform::Linear), Ok(()), "a linear fit takes 0 % and 100 %");
        }
        assert_eq!(refused("model,val,v2\na,60,50\nb,70,62\nc,80,70\n", Transform::Logit), Ok(()));
    }
}
