//! Golden test of the leaderboard over the committed fixture records (`fixtures/records`):
//! snapshots of both CSVs, values recomputed independently, determinism, and error messages.

use shiftbench::record::{Role, RunRecord};
use shiftbench::report::{self, Leaderboard};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records")
}

fn fixture_records() -> Vec<RunRecord> {
    report::load_records(&fixture_dir()).expect("fixture records load")
}

fn fixture_leaderboard() -> Leaderboard {
    report::build(&fixture_records()).expect("fixture leaderboard builds")
}

fn logit(acc_percent: f64) -> f64 {
    let p = acc_percent / 100.0;
    (p / (1.0 - p)).ln()
}

/// The field of `column` in the CSV row whose first four fields are role, model, regime, seed.
fn csv_field(csv: &str, key: [&str; 4], column: &str) -> String {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let index = reader.headers().unwrap().iter().position(|h| h == column).expect("column exists");
    let row =
        reader.records().map(Result::unwrap).find(|r| r.iter().take(4).eq(key.iter().copied())).expect("row exists");
    row[index].to_string()
}

#[test]
fn fixture_set_is_complete() {
    let records = fixture_records();
    // 6 testbed models × (val + 4 shifts) + 2 entry models × 4 regimes × (val + 4 shifts + gen-val).
    assert_eq!(records.len(), 6 * 5 + 2 * 4 * 6);
    for r in &records {
        assert_eq!(r.per_class_correct.iter().sum::<u64>(), r.correct, "{}", r.file_name());
        assert_eq!(r.per_class_total.iter().sum::<u64>(), r.n, "{}", r.file_name());
    }
}

#[test]
fn leaderboard_csv_matches_snapshot() {
    insta::assert_snapshot!("leaderboard_csv", fixture_leaderboard().leaderboard_csv);
}

#[test]
fn fits_csv_matches_snapshot() {
    insta::assert_snapshot!("fits_csv", fixture_leaderboard().fits_csv);
}

#[test]
fn markdown_matches_snapshot() {
    insta::assert_snapshot!("markdown", report::markdown(&fixture_leaderboard()));
}

#[test]
fn v2_fit_and_one_er_agree_with_a_hand_computation() {
    let records = fixture_records();
    let testbed_acc = |model: &str, domain: &str| {
        let r = records.iter().find(|r| r.role == Role::Testbed && r.model == model && r.domain == domain).unwrap();
        100.0 * r.correct as f64 / r.n as f64
    };
    let mut models: Vec<&str> = records.iter().filter(|r| r.role == Role::Testbed).map(|r| r.model.as_str()).collect();
    models.sort();
    models.dedup();
    assert_eq!(models.len(), 6);

    // Textbook OLS on logit accuracies, written out independently of `metrics::fit_line`.
    let xs: Vec<f64> = models.iter().map(|m| logit(testbed_acc(m, "val"))).collect();
    let ys: Vec<f64> = models.iter().map(|m| logit(testbed_acc(m, "v2"))).collect();
    let n = xs.len() as f64;
    let (sx, sy) = (xs.iter().sum::<f64>(), ys.iter().sum::<f64>());
    let sxx: f64 = xs.iter().map(|x| x * x).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| x * y).sum();
    let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    let intercept = (sy - slope * sx) / n;

    let lb = report::build(&records).unwrap();
    let v2 = &lb.fits[0];
    assert_eq!(v2.shift, "v2");
    assert_eq!(v2.n, 6);
    let fit = v2.line().unwrap();
    assert!((fit.slope - slope).abs() < 1e-9, "{} vs {slope}", fit.slope);
    assert!((fit.intercept - intercept).abs() < 1e-9, "{} vs {intercept}", fit.intercept);
    let fits_row = lb.fits_csv.lines().nth(1).unwrap();
    assert_eq!(fits_row, format!("v2,val,logit,6,{slope:.4},{intercept:.4},{:.4}", fit.r));

    // resnet-m trained on real + generated: 730/1000 on val, 610/1000 on v2.
    let key = ["entry", "resnet-m", "real+generated", "0"];
    assert_eq!(csv_field(&lb.leaderboard_csv, key, "acc_val"), "73.00");
    assert_eq!(csv_field(&lb.leaderboard_csv, key, "acc_v2"), "61.00");
    let predicted = 100.0 / (1.0 + (-(slope * logit(73.0) + intercept)).exp());
    assert_eq!(csv_field(&lb.leaderboard_csv, key, "er_v2"), format!("{:.2}", 61.0 - predicted));
    assert_eq!(csv_field(&lb.leaderboard_csv, key, "gen_degradation"), format!("{:.2}", 73.0 - 78.4));
}

#[test]
fn building_is_deterministic_and_order_independent() {
    let records = fixture_records();
    let once = report::build(&records).unwrap();
    let twice = report::build(&records).unwrap();
    assert_eq!(once, twice);

    let mut reversed = records.clone();
    reversed.reverse();
    // A fixed interleaving: every 7th record first, then the rest, from a rotated start.
    let mut shuffled: Vec<RunRecord> = records.iter().step_by(7).cloned().collect();
    shuffled.extend(records.iter().enumerate().filter(|(i, _)| i % 7 != 0).map(|(_, r)| r.clone()));
    shuffled.rotate_left(13);
    for permuted in [reversed, shuffled] {
        let lb = report::build(&permuted).unwrap();
        assert_eq!(lb.leaderboard_csv, once.leaderboard_csv);
        assert_eq!(lb.fits_csv, once.fits_csv);
    }
}

#[test]
fn write_puts_both_csvs_in_the_results_folder() {
    let lb = fixture_leaderboard();
    let dir = tempfile::tempdir().unwrap();
    report::write(dir.path(), &lb).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("leaderboard.csv")).unwrap(), lb.leaderboard_csv);
    assert_eq!(std::fs::read_to_string(dir.path().join("fits.csv")).unwrap(), lb.fits_csv);
}

/// Copies the fixture records into a fresh results folder the test may damage.
fn scratch_results() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for record in fixture_records() {
        let path = dir.path().join(record.file_name());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }
    dir
}

#[test]
fn hidden_temp_files_are_ignored() {
    let dir = scratch_results();
    let folder = dir.path().join("records/entry/resnet-m/real/seed-0");
    std::fs::write(folder.join(".val.json.4242.tmp"), b"{ half writt").unwrap();
    std::fs::write(folder.join(".partial.json"), b"{").unwrap();
    assert_eq!(report::load_records(dir.path()).unwrap(), fixture_records());
}

#[test]
fn a_malformed_record_is_named_in_the_error() {
    let dir = scratch_results();
    let bad = dir.path().join("records/entry/resnet-s/generated/seed-0/sketch.json");
    std::fs::write(&bad, b"{\"schema\": 1, \"suite\": ").unwrap();
    let err = report::load_records(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("is not a valid run record"), "{err}");
    assert!(err.contains("shiftbench run"), "{err}");
}

#[test]
fn a_missing_records_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = report::load_records(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no run records"), "{err}");
}

#[test]
fn records_with_different_protocols_do_not_mix() {
    let mut records = fixture_records();
    let odd = records.iter_mut().find(|r| r.role == Role::Entry && r.domain == "sketch").unwrap();
    odd.protocol.transform = "probit".into();
    let odd_name = odd.file_name();
    let err = report::build(&records).unwrap_err().to_string();
    assert!(err.contains("disagree on the evaluation protocol"), "{err}");
    assert!(err.contains(&odd_name), "{err}");
    assert!(err.contains(&records[0].file_name()), "{err}");
}

#[test]
fn a_shift_name_that_is_a_path_never_becomes_a_file_outside_the_folder() {
    for evil in ["../../escaped", "/tmp/absolute", "sub/dir"] {
        let mut records = fixture_records();
        for r in &mut records {
            for s in &mut r.protocol.shifts {
                if s == "sketch" {
                    *s = evil.to_string();
                }
            }
            if r.domain == "sketch" {
                r.domain = evil.to_string();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b/results");
        let err = report::build(&records).and_then(|lb| report::write(&out, &lb)).unwrap_err().to_string();
        assert!(err.contains("cannot name a file") && err.contains(evil), "{err}");
        let escaped = |p: &Path| p.with_extension("svg").exists() || p.with_extension("png").exists();
        assert!(!escaped(&dir.path().join("a/escaped")) && !escaped(Path::new("/tmp/absolute")), "{evil} escaped");
    }
}

#[test]
fn records_of_two_suites_never_make_one_leaderboard() {
    let mut records = fixture_records();
    let odd = records.iter_mut().find(|r| r.role == Role::Entry && r.domain == "v2").unwrap();
    odd.provenance.suite_hash = "f".repeat(64);
    let odd_name = odd.file_name();
    let err = report::build(&records).unwrap_err().to_string();
    assert!(err.contains("records of two suites") && err.contains(&odd_name) && err.contains(&"f".repeat(64)), "{err}");
}
