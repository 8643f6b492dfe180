//! No input panics: the suite, lock, record, accuracy-table and reference-fit parsers (and what
//! runs on what they accept) and the command line, fed the real files with random byte edits,
//! truncations, deleted or repeated lines and extreme values. Each parser either accepts the
//! text or returns an error; nothing here may unwind.

use proptest::prelude::*;
use shiftbench::record::RunRecord;
use std::path::Path;

const SHAPES: &str = include_str!("../suites/shapes.toml");
const LOCK: &str = include_str!("../datasets.lock");
const FITS: &str = include_str!("../suites/imagenet-testbed-fits.toml");
const RECORD: &str = include_str!("../results/shapes/records/entry/resnet-w16/real/seed-0/sketch.json");
const TABLE: &str = "model,val,v2,sketch\na,60,48,20\nb,70,59,\nc,80,70.5,31\nd,75,80,40\ne,50,30,10\nf,76,70,45\n";

/// Values that break naive code: overflowing, negative, non-finite, empty, wrong type.
const EXTREMES: &[&str] = &[
    "0", "-1", "1e12", "9223372036854775807", "18446744073709551616", "-9223372036854775809", "nan", "inf", "1e308", "0.0", "\"\"",
    "\"../../x\"", "[]", "{}", "true", "\"a\"", "[0, 0]", "4294967296",
];

/// One way of damaging a text.
#[derive(Clone, Debug)]
enum Edit {
    Byte { at: usize, value: u8 },
    Truncate { at: usize },
    DeleteLine { line: usize },
    RepeatLine { line: usize },
    /// Replaces the value after the `index`-th `=` or `:` with an extreme one.
    Value { index: usize, extreme: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Edit::Byte { at, value }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        any::<usize>().prop_map(|line| Edit::DeleteLine { line }),
        any::<usize>().prop_map(|line| Edit::RepeatLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(index, extreme)| Edit::Value { index, extreme }),
    ]
}

fn apply(text: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut t = text.to_vec();
    for e in edits {
        if t.is_empty() {
            break;
        }
        match *e {
            Edit::Byte { at, value } => {
                let i = at % t.len();
                t[i] = value;
            }
            Edit::Truncate { at } => t.truncate(at % t.len()),
            Edit::DeleteLine { line } | Edit::RepeatLine { line } => {
                let lines: Vec<&[u8]> = t.split(|&b| b == b'\n').collect();
                let k = line % lines.len();
                let mut out: Vec<&[u8]> = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    if i != k || matches!(e, Edit::RepeatLine { .. }) {
                        out.push(l);
                    }
                    if i == k && matches!(e, Edit::RepeatLine { .. }) {
                        out.push(l);
                    }
                }
                t = out.join(&b'\n');
            }
            Edit::Value { index, extreme } => {
                let seps: Vec<usize> = t.iter().enumerate().filter(|(_, &b)| b == b'=' || b == b':').map(|(i, _)| i).collect();
                if seps.is_empty() {
                    continue;
                }
                let start = seps[index % seps.len()] + 1;
                let end = t[start..].iter().position(|&b| b == b'\n' || b == b',').map_or(t.len(), |p| start + p);
                let mut out = t[..start].to_vec();
                out.extend_from_slice(b" ");
                out.extend_from_slice(EXTREMES[extreme % EXTREMES.len()].as_bytes());
                out.extend_from_slice(&t[end..]);
                t = out;
            }
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// A damaged suite is an error or a suite whose plan, record expectations and budget can be
    /// computed.
    #[test]
    fn suite_parser_never_panics(edits in prop::collection::vec(edit(), 1..4)) {
        let text = String::from_utf8_lossy(&apply(SHAPES.as_bytes(), &edits)).into_owned();
        if let Ok(suite) = shiftbench::suite::Suite::parse(&text, Path::new("fuzz.toml")) {
            for quick in [false, true] {
                let plan = shiftbench::plan::Plan::new(&suite.config, suite.config.seed, quick);
                let _ = shiftbench::record::check::Expected::new(&plan, suite.name(), &suite.hash);
            }
            let _ = shiftbench::suite::budget::estimate(&suite.config);
        }
    }

    #[test]
    fn lock_and_reference_fit_parsers_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let lock = String::from_utf8_lossy(&apply(LOCK.as_bytes(), &edits)).into_owned();
        if let Ok(lock) = shiftbench::fetch::lock::Lock::parse(&lock, Path::new("fuzz.lock")) {
            for a in &lock.artifacts {
                let _ = lock.pinned_text(&a.name, &"0".repeat(64), 1);
            }
        }
        let fits = String::from_utf8_lossy(&apply(FITS.as_bytes(), &edits)).into_owned();
        let _ = shiftbench::robustness::reference::parse(&fits, Path::new("fuzz.toml"));
    }

    /// A damaged record is refused when parsed or checked, or builds a leaderboard (alone and
    /// with the published records) without panicking.
    #[test]
    fn record_parser_and_checks_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let bytes = apply(RECORD.as_bytes(), &edits);
        if let Ok(record) = serde_json::from_slice::<RunRecord>(&bytes) {
            let _ = shiftbench::record::check::well_formed(&record);
            let _ = record.file_name();
            let _ = shiftbench::report::build(std::slice::from_ref(&record));
            let mut all = published();
            all.retain(|r| r.file_name() != record.file_name());
            all.push(record);
            if let Ok(lb) = shiftbench::report::build(&all) {
                let _ = shiftbench::report::markdown(&lb);
            }
        }
    }

    /// Any counts at all in an otherwise real record.
    #[test]
    fn any_counts_are_checked_without_panicking(n in any::<u64>(), correct in any::<u64>(), per_class in prop::collection::vec((any::<u64>(), any::<u64>()), 0..12)) {
        let mut r: RunRecord = serde_json::from_str(RECORD).unwrap();
        r.n = n;
        r.correct = correct;
        r.per_class_total = per_class.iter().map(|p| p.0).collect();
        r.per_class_correct = per_class.iter().map(|p| p.1).collect();
        let _ = shiftbench::record::check::well_formed(&r);
        let _ = shiftbench::report::build(&[r]);
    }

    #[test]
    fn accuracy_tables_and_er_never_panic(edits in prop::collection::vec(edit(), 1..4), resamples in 0usize..300) {
        let text = String::from_utf8_lossy(&apply(TABLE.as_bytes(), &edits)).into_owned();
        if let Ok(table) = shiftbench::robustness::table::AccuracyTable::parse("fuzz.csv", &text) {
            let options = shiftbench::robustness::pairing::ErOptions {
                pairings: vec![shiftbench::robustness::pairing::Pairing { shift: "v2".into(), id_column: "val".into(), shift_column: "v2".into(), type_column: "model_type".into(), min_id_acc: 0.0 }],
                baseline: shiftbench::robustness::pairing::BaselineSet::All,
                exclude_name_parts: vec![],
                transform: shiftbench::metrics::Transform::Logit,
                resamples,
                seed: 0,
            };
            if let Ok(report) = shiftbench::robustness::report::compute(&table, &options) {
                let _ = report.er_csv();
            }
        }
    }
}

fn published() -> Vec<RunRecord> {
    shiftbench::report::load_records(&Path::new(env!("CARGO_MANIFEST_DIR")).join("results/shapes")).unwrap()
}

/// Words the command line is made of; the working folder is empty, so every suite, lock, table
/// and results folder is missing and no command can start real work or reach a network.
const WORDS: &[&str] = &[
    "run", "check", "leaderboard", "reproduce", "er", "fetch", "lock", "verify", "pin", "generate", "--quick", "--seed", "--jobs", "--out",
    "--table", "--id", "--shift", "--preset", "imagenet-testbed", "--resamples", "--transform", "probit", "--offline", "--print-path",
    "--from", "--max-bytes", "--set", "--shard", "0/0", "1/0", "--merge", "--weights", "--lock", "--mirror", "x", "0", "-1",
    "18446744073709551616", "nan", "", "/dev/zero", "../..", "--", "-h",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn command_lines_never_panic(words in prop::collection::vec(0..WORDS.len(), 0..7)) {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = words.iter().map(|&i| WORDS[i].to_string()).collect();
        // Every command that reads artifacts stays offline and in a cache of its own.
        if args.iter().any(|a| a == "fetch" || a == "lock") {
            args.extend(["--offline".into(), "--cache".into(), dir.path().join("cache").display().to_string()]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shiftbench"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("SHIFTBENCH_MIRROR")
            .env_remove("SHIFTBENCH_SD_WEIGHTS")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        prop_assert!(out.status.code().is_some_and(|c| c <= 2) && !err.contains("panicked"), "{args:?}: {:?} {err}", out.status);
    }
}
