//! Golden test of the across-seeds summary over committed three-seed records
//! (`fixtures/records-seeds`): snapshots of `summary.csv` and of the Markdown tables, and the
//! numbers recomputed independently from the records' counts.

use shiftbench::record::{Role, RunRecord};
use shiftbench::report::{self, summary};
use std::path::Path;

fn records() -> Vec<RunRecord> {
    report::load_records(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records-seeds")).expect("fixture records load")
}

fn accuracy(records: &[RunRecord], regime: &str, seed: u64, domain: &str) -> f64 {
    let r = records
        .iter()
        .find(|r| r.role == Role::Entry && r.regime == regime && r.seed == seed && r.domain == domain)
        .unwrap_or_else(|| panic!("no record for {regime} seed {seed} on {domain}"));
    100.0 * r.correct as f64 / r.n as f64
}

fn field(csv: &str, regime: &str, metric: &str, column: &str) -> String {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let index = reader.headers().unwrap().iter().position(|h| h == column).expect("column exists");
    let row = reader.records().map(Result::unwrap).find(|r| &r[1] == regime && &r[2] == metric).expect("row exists");
    row[index].to_string()
}

#[test]
fn summary_csv_matches_snapshot() {
    let lb = report::build(&records()).unwrap();
    insta::assert_snapshot!("summary_csv", summary::summary_csv(&summary::summarize(&lb)).unwrap());
}

#[test]
fn markdown_has_the_seed_tables() {
    let lb = report::build(&records()).unwrap();
    let md = report::markdown(&lb);
    let start = md.find("Across training seeds").expect("a multi-seed leaderboard gets the across-seeds tables");
    let end = md.find("Baseline fits").unwrap();
    insta::assert_snapshot!("summary_markdown", &md[start..end]);
}

#[test]
fn spread_and_paired_gain_equal_a_hand_computation() {
    let records = records();
    let csv = summary::summary_csv(&summary::summarize(&report::build(&records).unwrap())).unwrap();
    for domain in ["val", "sketch", "v2"] {
        let metric = format!("acc_{domain}");
        let values: Vec<f64> = (0..3).map(|s| accuracy(&records, "real+generated", s, domain)).collect();
        let mean = values.iter().sum::<f64>() / 3.0;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert_eq!(field(&csv, "real+generated", &metric, "seeds"), "3");
        assert_eq!(field(&csv, "real+generated", &metric, "mean"), format!("{mean:.2}"));
        assert_eq!(field(&csv, "real+generated", &metric, "sd"), format!("{sd:.2}"));
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(field(&csv, "real+generated", &metric, "min"), format!("{lo:.2}"));

        // Paired over seeds against `real`; t(0.975, 2) = 4.302653 from a t table.
        let d: Vec<f64> = (0..3).map(|s| values[s] - accuracy(&records, "real", s as u64, domain)).collect();
        let dm = d.iter().sum::<f64>() / 3.0;
        let dsd = (d.iter().map(|v| (v - dm).powi(2)).sum::<f64>() / 2.0).sqrt();
        let half = 4.302653 * dsd / 3f64.sqrt();
        assert_eq!(field(&csv, "real+generated", &metric, "gain_pairs"), "3");
        assert_eq!(field(&csv, "real+generated", &metric, "gain"), format!("{dm:.2}"));
        assert_eq!(field(&csv, "real+generated", &metric, "gain_lo"), format!("{:.2}", dm - half));
        assert_eq!(field(&csv, "real+generated", &metric, "gain_hi"), format!("{:.2}", dm + half));
        // The reference regime has no gain over itself.
        assert_eq!(field(&csv, "real", &metric, "gain"), "");
    }
}

#[test]
fn one_seed_gives_no_spread_and_no_interval() {
    let one: Vec<RunRecord> = records().into_iter().filter(|r| r.role == Role::Testbed || r.seed == 0).collect();
    let lb = report::build(&one).unwrap();
    assert!(!summary::has_seed_spread(&lb));
    assert!(!report::markdown(&lb).contains("Across training seeds"));
    let csv = summary::summary_csv(&summary::summarize(&lb)).unwrap();
    assert_eq!(field(&csv, "real+generated", "acc_val", "seeds"), "1");
    assert_eq!(field(&csv, "real+generated", "acc_val", "sd"), "");
    assert_eq!(field(&csv, "real+generated", "acc_val", "gain_pairs"), "1");
    assert_eq!(field(&csv, "real+generated", "acc_val", "gain_lo"), "");
}
