//! `shiftbench reproduce`: re-run a published results folder and compare.

use anyhow::{bail, Result};
use shiftbench::folder::RunManifest;
use shiftbench::reproduce::{check_manifest, compare, find_suite, suite_files};
use shiftbench::run::{run_suite, RunOptions};
use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// Published results folder (with run.json and records/), e.g. results/shapes.
    pub dir: PathBuf,
    /// Suite file to re-run [default: the file in suites/ whose sha256 the folder names].
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Folder for the re-run; must not exist yet [default: a new folder under the system's
    /// temporary directory]. Kept when the comparison fails, removed when it passes.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Training jobs to run at once (see `run --jobs`).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Keep the re-run folder even when it matches.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: ReproduceArgs) -> Result<()> {
    let manifest = RunManifest::read(&args.dir)?;
    check_manifest(&args.dir, &manifest)?;
    let suite_path = match &args.suite {
        Some(p) => p.clone(),
        None => find_suite(&manifest.suite_hash, &suite_files(Path::new("suites"))).ok_or_else(|| {
            anyhow::anyhow!(
                "no file in suites/ has sha256 {} (suite `{}` as published in {}): the suite was edited or removed since; check out the revision the records name (provenance.git_revision) or pass --suite FILE",
                manifest.suite_hash, manifest.suite, args.dir.display()
            )
        })?,
    };
    let suite = Suite::load(&suite_path)?;
    if suite.hash != manifest.suite_hash {
        bail!("{} has sha256 {}, but {} was made by sha256 {}; pass the suite file it was made with", suite_path.display(), suite.hash, args.dir.display(), manifest.suite_hash);
    }
    let scratch = args.scratch.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("shiftbench-reproduce-{}-{}", manifest.suite, std::process::id())));
    if scratch.exists() {
        bail!("{} already exists; a re-run must start empty (results in it would be reused, not reproduced): remove it or pass another --scratch", scratch.display());
    }
    let jobs = super::run::job_count(args.jobs);
    println!("re-running suite `{}` ({}, seed {}{}) into {}", manifest.suite, suite_path.display(), manifest.seed, if manifest.quick { ", quick" } else { "" }, scratch.display());
    let started = std::time::Instant::now();
    let summary = run_suite(&suite, &RunOptions { out: scratch.clone(), seed: Some(manifest.seed), quick: manifest.quick, jobs, weights: None })?;
    println!("{} jobs trained in {:.1} s; comparing with {}", summary.trained, started.elapsed().as_secs_f64(), args.dir.display());
    // `run` does not write the report; a published folder that has one (`shiftbench paper`) gets
    // it rebuilt from the re-run's records, so the report is compared like every other file.
    if args.dir.join(shiftbench::report::paper::PAPER_FILE).exists() {
        super::paper::write_report(&scratch)?;
    }
    let differences = compare(&args.dir, &scratch)?;
    if differences.is_empty() {
        println!("reproduced: every record and every leaderboard file of {} is identical (git revision aside)", args.dir.display());
        if !args.keep {
            std::fs::remove_dir_all(&scratch).ok();
        }
        return Ok(());
    }
    for d in &differences {
        println!("differs: {d}");
    }
    bail!("{} differences between {} and the re-run in {} (kept for inspection)", differences.len(), args.dir.display(), scratch.display())
}
