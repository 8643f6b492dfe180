//! Reproduces the imagenet-testbed baseline fits of DESIGN.md §5 from the testbed's own
//! accuracy table, through the public `metrics` API only.
//!
//! Needs `../shared/reference/imagenet-testbed/` next to the crate (see its README); without it
//! the test prints a note and passes.

use shiftbench::metrics::{fit_line, Transform};
use std::collections::HashMap;
use std::path::PathBuf;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/imagenet-testbed");

/// Which model-type column classifies the models for a shift (the testbed's own choice).
#[derive(Clone, Copy)]
enum TypeColumn {
    ModelType,
    NaturalShiftModelType,
}

struct Expected {
    shift: &'static str,
    id_column: &'static str,
    shift_column: &'static str,
    types: TypeColumn,
    min_id_acc: f64,
    models: usize,
    slope: &'static str,
    intercept: &'static str,
}

const TABLE: [Expected; 4] = [
    Expected {
        shift: "ImageNetV2",
        id_column: "val",
        shift_column: "imagenetv2-matched-frequency-format-val",
        types: TypeColumn::NaturalShiftModelType,
        min_id_acc: 55.0,
        models: 85,
        slope: "0.9232",
        intercept: "-0.4977",
    },
    Expected {
        shift: "ImageNet-Sketch",
        id_column: "val",
        shift_column: "imagenet-sketch",
        types: TypeColumn::ModelType,
        min_id_acc: 55.0,
        models: 85,
        slope: "1.0709",
        intercept: "-2.3701",
    },
    Expected {
        shift: "ImageNet-R",
        id_column: "val-on-imagenet-r-classes",
        shift_column: "imagenet-r",
        types: TypeColumn::ModelType,
        min_id_acc: 75.0,
        models: 80,
        slope: "0.6368",
        intercept: "-2.1077",
    },
    Expected {
        shift: "ObjectNet",
        id_column: "val-on-objectnet-classes",
        shift_column: "objectnet-1.0-beta",
        types: TypeColumn::NaturalShiftModelType,
        min_id_acc: 55.0,
        models: 85,
        slope: "0.9809",
        intercept: "-1.9283",
    },
];

/// Rows of a CSV file as column → value maps.
fn read_table(path: &PathBuf) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            headers.iter().zip(row.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

/// The testbed's baseline rule: STANDARD models, minus subsampled / AWS / batch-64 variants,
/// with both accuracies present and the ID accuracy at or above the threshold.
fn baseline_points(
    accuracies: &[HashMap<String, String>],
    types: &HashMap<String, (String, String)>,
    expected: &Expected,
) -> Vec<(f64, f64)> {
    accuracies
        .iter()
        .filter_map(|row| {
            let model = row["model"].as_str();
            let (model_type, natural_shift_type) = types.get(model)?;
            let model_type = match expected.types {
                TypeColumn::ModelType => model_type,
                TypeColumn::NaturalShiftModelType => natural_shift_type,
            };
            if model_type != "STANDARD" || ["subsample", "aws", "batch64"].iter().any(|s| model.contains(s)) {
                return None;
            }
            let id: f64 = row.get(expected.id_column)?.parse().ok()?;
            let shift: f64 = row.get(expected.shift_column)?.parse().ok()?;
            (id >= expected.min_id_acc).then_some((id, shift))
        })
        .collect()
}

#[test]
fn testbed_baseline_fits_match_the_design_table() {
    let dir = PathBuf::from(REFERENCE);
    if !dir.is_dir() {
        eprintln!("note: {} is absent; skipping the imagenet-testbed fit check", dir.display());
        return;
    }
    let accuracies = read_table(&dir.join("robustness_top1s.csv"));
    let types: HashMap<String, (String, String)> = read_table(&dir.join("model_types.csv"))
        .into_iter()
        .map(|row| (row["model"].clone(), (row["model_type"].clone(), row["natural_shift_model_type"].clone())))
        .collect();
    assert_eq!(accuracies.len(), 338);

    for expected in &TABLE {
        let points = baseline_points(&accuracies, &types, expected);
        let fit = fit_line(&points, Transform::Logit).expect("enough baseline models for a fit");
        println!(
            "{}: n={} slope={:.6} intercept={:.6} r={:.4}",
            expected.shift, fit.n, fit.slope, fit.intercept, fit.r
        );
        assert_eq!(fit.n, expected.models, "{}", expected.shift);
        assert_eq!(format!("{:.4}", fit.slope), expected.slope, "{} slope", expected.shift);
        assert_eq!(format!("{:.4}", fit.intercept), expected.intercept, "{} intercept", expected.shift);
    }
}
