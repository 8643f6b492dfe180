//! End to end on the `--quick` profile of the shipped `shapes` suite: reproducibility,
//! the leaderboard snapshot, and resumption after a kill.

use shiftbench::run::{run_suite, RunOptions, RunSummary};
use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shapes() -> Suite {
    Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml")).expect("shapes suite")
}

fn quick_run(out: &Path, seed: Option<u64>, jobs: usize) -> RunSummary {
    run_suite(&shapes(), &RunOptions { out: out.to_path_buf(), seed, quick: true, jobs, weights: None }).expect("quick run")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CSV with the git revision column blanked: it changes with every commit, nothing else may.
fn without_git_revision(csv_text: &str) -> String {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let col = headers.iter().position(|h| h == "git_revision").expect("git_revision column");
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    writer.write_record(&headers).unwrap();
    for row in reader.records() {
        let row = row.expect("CSV row");
        writer.write_record(row.iter().enumerate().map(|(i, f)| if i == col { "[git]" } else { f })).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

fn record_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("records")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn quick_profile_is_reproducible_seed_sensitive_and_snapshotted() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));

    let first = quick_run(&a, None, 1);
    assert_eq!(first.jobs, 18, "6 testbed models + 1 model × 4 regimes × 3 seeds");
    assert_eq!(first.trained, 18);
    // Two jobs at once must not change a single byte: every job owns its random streams.
    quick_run(&b, None, 2);
    for file in ["leaderboard.csv", "fits.csv"] {
        assert_eq!(read(a.join(file)), read(b.join(file)), "{file} differs between two runs of the same seed");
    }
    quick_run(&c, Some(1), 2);
    assert_ne!(read(a.join("leaderboard.csv")), read(c.join("leaderboard.csv")), "a different seed must change the numbers");

    let leaderboard = read(a.join("leaderboard.csv"));
    let rows: Vec<&str> = leaderboard.lines().collect();
    assert_eq!(rows.len(), 19, "header + 18 classifiers");
    assert_eq!(record_files(&a).len(), 18 * 6, "one record per classifier and evaluation set");
    insta::assert_snapshot!("quick_leaderboard_csv", without_git_revision(&leaderboard));
    insta::assert_snapshot!("quick_fits_csv", read(a.join("fits.csv")));
}

#[test]
fn a_killed_run_resumes_without_redoing_or_duplicating_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("killed");
    let bin = env!("CARGO_BIN_EXE_shiftbench");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml");
    let args = |o: &Path| vec!["run".to_string(), suite.display().to_string(), "--quick".into(), "--out".into(), o.display().to_string()];

    // Start a run and kill it as soon as its first job has written all of its records.
    let mut child = Command::new(bin).args(args(&out)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start run");
    let deadline = Instant::now() + Duration::from_secs(300);
    while record_files(&out).len() < 6 {
        assert!(Instant::now() < deadline, "no job finished within 5 minutes");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill run");
    child.wait().unwrap();
    let is_temp = |f: &PathBuf| f.file_name().unwrap().to_string_lossy().starts_with('.');
    // A write in flight at the kill may leave a hidden temporary file; never a partial record.
    let survivors: Vec<PathBuf> = record_files(&out).into_iter().filter(|f| !is_temp(f)).collect();
    assert!(survivors.len() < 108, "the run was killed before it finished");
    for f in &survivors {
        let text = read(f.clone());
        assert!(text.ends_with("}\n"), "{} is truncated", f.display());
    }
    let done_before: Vec<(PathBuf, Vec<u8>)> = survivors.iter().map(|f| (f.clone(), std::fs::read(f).unwrap())).collect();

    // Resume with a single matrix-kernel thread: the thread count must not change any result.
    let resumed = Command::new(bin).args(args(&out)).env("RAYON_NUM_THREADS", "1").output().expect("resume run");
    assert!(resumed.status.success(), "resume failed: {}", String::from_utf8_lossy(&resumed.stderr));
    let said = String::from_utf8_lossy(&resumed.stdout);
    // Two jobs write records at once, so count the classifiers whose six records all survived.
    let mut per_classifier: std::collections::BTreeMap<PathBuf, usize> = std::collections::BTreeMap::new();
    for (path, _) in &done_before {
        *per_classifier.entry(path.parent().unwrap().to_path_buf()).or_default() += 1;
    }
    let complete_jobs = per_classifier.values().filter(|&&n| n == 6).count();
    assert!(said.contains(&format!("{complete_jobs} already done")) || complete_jobs == 0, "{said}");
    for (path, bytes) in &done_before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} was rewritten", path.display());
    }
    let files = record_files(&out);
    assert!(!files.iter().any(is_temp), "temporary files left behind: {files:?}");
    assert_eq!(files.len(), 108, "every record exactly once");

    // The resumed results equal an uninterrupted run.
    let clean = tmp.path().join("clean");
    quick_run(&clean, None, 1);
    assert_eq!(read(out.join("leaderboard.csv")), read(clean.join("leaderboard.csv")));
    assert_eq!(read(out.join("fits.csv")), read(clean.join("fits.csv")));

    // A second resume has nothing left to do.
    let again = Command::new(bin).args(args(&out)).output().expect("third run");
    assert!(String::from_utf8_lossy(&again.stdout).contains("18 already done"), "{}", String::from_utf8_lossy(&again.stdout));
}

#[test]
fn leaderboard_command_rebuilds_the_same_csv_from_records_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q");
    quick_run(&out, None, 2);
    let before = read(out.join("leaderboard.csv"));
    std::fs::remove_file(out.join("leaderboard.csv")).unwrap();
    std::fs::remove_file(out.join("fits.csv")).unwrap();
    std::fs::remove_dir_all(out.join("work")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_shiftbench")).args(["leaderboard", out.to_str().unwrap()]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(read(out.join("leaderboard.csv")), before);
}

/// `work/checkpoints/*` of a results folder: name → bytes.
fn checkpoints(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("work/checkpoints"))
        .expect("checkpoint folder")
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    // Partial checkpoints every 4 steps; how often a job checkpoints is not part of its key.
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml")).unwrap();
    let text = text.replacen("peak_epoch = 2.0\n", "peak_epoch = 2.0\ncheckpoint_every_steps = 4\n", 1);
    let suite = tmp.path().join("shapes.toml");
    std::fs::write(&suite, &text).unwrap();
    let out = tmp.path().join("killed");
    let run = |abort: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiftbench"));
        cmd.args(["run", suite.to_str().unwrap(), "--quick", "--jobs", "1", "--out", out.to_str().unwrap()]);
        if let Some(step) = abort {
            cmd.env("SHIFTBENCH_ABORT_AFTER_STEP", step);
        }
        cmd.output().expect("start run")
    };

    // The first job dies after step 6, as under a kill: nothing after the step runs.
    let killed = run(Some("6"));
    assert!(!killed.status.success(), "the run should have been cut short");
    assert!(String::from_utf8_lossy(&killed.stderr).contains("exiting after step 6"), "{}", String::from_utf8_lossy(&killed.stderr));
    let partial: Vec<PathBuf> = std::fs::read_dir(out.join("work/partial")).expect("partial checkpoints").map(|e| e.unwrap().path()).collect();
    assert_eq!(partial.len(), 1, "one job in flight");
    let mut left: Vec<String> = std::fs::read_dir(&partial[0]).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["model-000000000004.safetensors", "optim-000000000004.safetensors"]);
    assert!(!out.join("work/checkpoints").exists() || checkpoints(&out).is_empty(), "no job finished");

    let resumed = run(None);
    assert!(resumed.status.success(), "resume failed: {}", String::from_utf8_lossy(&resumed.stderr));
    let said = String::from_utf8_lossy(&resumed.stdout);
    assert!(said.contains("18 trained (1 resumed mid-training)"), "{said}");
    assert!(std::fs::read_dir(out.join("work/partial")).unwrap().next().is_none(), "partial checkpoints of finished jobs are removed");

    // Every final checkpoint equals an uninterrupted run's, byte for byte.
    let clean = tmp.path().join("clean");
    quick_run(&clean, None, 1);
    let (got, want) = (checkpoints(&out), checkpoints(&clean));
    assert_eq!(got.len(), 36, "a .safetensors and a .json per job");
    for ((name, bytes), (clean_name, clean_bytes)) in got.iter().zip(&want) {
        assert_eq!(name, clean_name);
        assert!(bytes == clean_bytes, "{name} differs from the uninterrupted run");
    }
}

#[test]
fn reproduce_passes_on_its_own_output_and_names_every_tampered_count_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let published = tmp.path().join("published");
    quick_run(&published, Some(3), 2);
    // A published folder carries its report; the re-run must rebuild it, not report it missing.
    let paper = Command::new(env!("CARGO_BIN_EXE_shiftbench")).args(["paper", published.to_str().unwrap()]).output().unwrap();
    assert!(paper.status.success(), "{}", String::from_utf8_lossy(&paper.stderr));
    let manifest = read(published.join("run.json"));
    assert!(manifest.contains("\"seed\": 3") && manifest.contains("\"quick\": true"), "{manifest}");
    let reproduce = |scratch: &str| {
        Command::new(env!("CARGO_BIN_EXE_shiftbench"))
            .args(["reproduce", published.to_str().unwrap(), "--scratch", tmp.path().join(scratch).to_str().unwrap()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let ok = reproduce("again");
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    assert!(!tmp.path().join("again").exists(), "a matching re-run is cleaned up");

    // One evaluation loses a correct prediction of its best class; one CSV cell changes.
    let record = published.join("records/entry/resnet-w16/real/seed-0/val.json");
    let mut r: serde_json::Value = serde_json::from_str(&read(record.clone())).unwrap();
    let counts: Vec<u64> = serde_json::from_value(r["per_class_correct"].clone()).unwrap();
    let best = (0..counts.len()).max_by_key(|&c| counts[c]).unwrap();
    r["per_class_correct"][best] = (counts[best] - 1).into();
    r["correct"] = (r["correct"].as_u64().unwrap() - 1).into();
    std::fs::write(&record, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let fits = published.join("fits.csv");
    std::fs::write(&fits, read(fits.clone()).replacen("logit", "probit", 1)).unwrap();
    let report = published.join("paper.md");
    std::fs::write(&report, read(report.clone()).replacen("seed", "seeds", 1)).unwrap();
    let bad = reproduce("tampered");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("records/entry/resnet-w16/real/seed-0/val.json: correct") && stdout.contains(&format!("class {best}:")), "{stdout}");
    assert!(stdout.contains("fits.csv: line 2 differs"), "{stdout}");
    assert!(stdout.contains("paper.md: line"), "the rebuilt report is compared too: {stdout}");
    assert!(tmp.path().join("tampered/records").exists(), "a failing re-run is kept for inspection");

    // An edited suite is not the published one: the error names the hash it looked for.
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["suite_hash"] = "0".repeat(64).into();
    std::fs::write(published.join("run.json"), m.to_string()).unwrap();
    let missing = reproduce("never");
    assert!(String::from_utf8_lossy(&missing.stderr).contains(&"0".repeat(64)));
    assert!(!missing.status.success());
}

#[test]
fn a_results_folder_belongs_to_one_suite_seed_and_profile_and_one_run_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let opts = |seed: Option<u64>, quick: bool| RunOptions { out: out.clone(), seed, quick, jobs: 1, weights: None };
    // A folder being written by another run is refused, before any work.
    let manifest = shiftbench::folder::RunManifest { suite: "shapes".into(), suite_hash: shapes().hash, seed: 0, quick: true };
    let held = shiftbench::folder::claim(&out, &manifest).unwrap();
    let err = run_suite(&shapes(), &opts(None, true)).unwrap_err().to_string();
    assert!(err.contains("another shiftbench run is writing into") && err.contains("--out"), "{err}");
    drop(held);
    // The folder now belongs to (shapes, seed 0, quick): another seed or the full profile is refused.
    for (seed, quick) in [(Some(1), true), (None, false)] {
        let err = run_suite(&shapes(), &opts(seed, quick)).unwrap_err().to_string();
        assert!(err.contains("holds the results of suite `shapes`") && err.contains("pass a new --out"), "{err}");
    }
    assert!(!out.join("records").exists(), "nothing was written by the refused runs");
}
