//! `shiftbench er --preset imagenet-testbed` on the imagenet-testbed accuracy table reproduces the
//! baseline fits of DESIGN.md §5 to 4 decimals, through the command line that outside scripts call.
//!
//! Needs `../shared/reference/imagenet-testbed/` next to the crate (see its README); without it
//! the test prints why and passes.

use std::path::Path;
use std::process::Command;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/imagenet-testbed");

/// (shift, id_column, shift_column, n, slope, intercept) from DESIGN.md §5.
const DESIGN_FITS: [(&str, &str, &str, &str, &str, &str); 4] = [
    ("imagenet-v2", "val", "imagenetv2-matched-frequency-format-val", "85", "0.9232", "-0.4977"),
    ("imagenet-sketch", "val", "imagenet-sketch", "85", "1.0709", "-2.3701"),
    ("imagenet-r", "val-on-imagenet-r-classes", "imagenet-r", "80", "0.6368", "-2.1077"),
    ("objectnet", "val-on-objectnet-classes", "objectnet-1.0-beta", "85", "0.9809", "-1.9283"),
];

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect();
    (header, rows)
}

#[test]
fn preset_imagenet_testbed_reproduces_the_design_fits() {
    let reference = Path::new(REFERENCE);
    if !reference.is_dir() {
        eprintln!("note: {} is absent; skipping the `shiftbench er` reference check", reference.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shiftbench"))
        .arg("er")
        .arg("--table")
        .arg(reference.join("robustness_top1s.csv"))
        .arg("--types")
        .arg(reference.join("model_types.csv"))
        .args(["--preset", "imagenet-testbed", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "shiftbench er failed: {}", String::from_utf8_lossy(&output.stderr));

    let (header, fits) = read_csv(&out.path().join("fits.csv"));
    assert_eq!(header, ["shift", "id_column", "shift_column", "transform", "n", "slope", "intercept", "r"]);
    assert_eq!(fits.len(), 4);
    for (row, (shift, id, column, n, slope, intercept)) in fits.iter().zip(DESIGN_FITS) {
        assert_eq!(row[..7], [shift, id, column, "logit", n, slope, intercept], "fits.csv row {row:?}");
    }

    let (header, rows) = read_csv(&out.path().join("effective_robustness.csv"));
    assert_eq!(header, ["model", "shift", "id_acc", "shift_acc", "predicted", "er", "er_lo", "er_hi"]);
    // Every model with both accuracies of a pairing has a row; every row brackets its ER.
    assert!(rows.len() > 4 * 200, "{} rows", rows.len());
    for row in &rows {
        let num = |i: usize| row[i].parse::<f64>().unwrap_or_else(|_| panic!("{row:?}"));
        assert!((num(3) - num(4) - num(5)).abs() <= 0.011, "er = shift_acc − predicted: {row:?}");
        assert!(num(6) <= num(7), "{row:?}");
    }
    // The classic baseline model is scored on the stylised shift.
    let has = |model_part: &str, shift: &str| rows.iter().any(|r| r[0].contains(model_part) && r[1] == shift);
    assert!(has("resnet50", "imagenet-sketch"));
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("accs.csv");
    std::fs::write(&table, "model,val,v2\na,70,60\nb,80,n/a\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shiftbench"))
        .arg("er")
        .arg("--table")
        .arg(&table)
        .args(["--id", "val", "--shift", "v2", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("accs.csv:3: column `v2` of model `b`: `n/a` is not a number"), "{stderr}");

    // The preset's baseline rule needs the types table.
    let output = Command::new(env!("CARGO_BIN_EXE_shiftbench"))
        .arg("er")
        .arg("--table")
        .arg(&table)
        .args(["--preset", "imagenet-testbed", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("needs --types"), "{stderr}");
}

#[test]
fn shipped_reference_fits_score_like_the_preset() {
    let reference = Path::new(REFERENCE);
    if !reference.is_dir() {
        eprintln!("note: {} is absent; skipping the reference-fits check", reference.display());
        return;
    }
    let run = |extra: &[&str], out: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_shiftbench"))
            .arg("er")
            .arg("--table")
            .arg(reference.join("robustness_top1s.csv"))
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        read_csv(&out.join("effective_robustness.csv")).1
    };
    let dir = tempfile::tempdir().unwrap();
    let types = reference.join("model_types.csv");
    let fitted = run(&["--types", types.to_str().unwrap(), "--preset", "imagenet-testbed"], &dir.path().join("a"));
    let fits_file = concat!(env!("CARGO_MANIFEST_DIR"), "/suites/imagenet-testbed-fits.toml");
    let fixed = run(&["--fits", fits_file], &dir.path().join("b"));
    assert_eq!(fitted.len(), fixed.len());
    for (a, b) in fitted.iter().zip(&fixed) {
        assert_eq!(a[..2], b[..2]);
        // The shipped fits are the fitted ones rounded to 4 decimals: ER agrees to a few hundredths.
        let (ea, eb): (f64, f64) = (a[5].parse().unwrap(), b[5].parse().unwrap());
        assert!((ea - eb).abs() <= 0.05, "{a:?} vs {b:?}");
        assert_eq!(b[6..], ["", ""], "fixed fits carry no interval");
    }
}
