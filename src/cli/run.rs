//! `shiftbench run`: a suite end to end.

use super::common::SuiteTarget;
use anyhow::Result;
use shiftbench::run::{run_suite, RunOptions};
use shiftbench::suite::Suite;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Suite file to run.
    #[arg(default_value = "suites/shapes.toml")]
    pub suite: PathBuf,
    #[command(flatten)]
    pub target: SuiteTarget,
    /// Training jobs to run at once [default: the number of CPU cores]. With more than one,
    /// each job's matrix kernels run single-threaded: small models train faster side by side
    /// than split across threads. Results do not depend on this setting.
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Training jobs to run at once: `jobs`, else one per core. With several, each job's matrix
/// kernels run single-threaded (set here, before any thread starts): small models train faster
/// side by side than split across threads, and results do not depend on it.
pub fn job_count(jobs: Option<usize>) -> usize {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    if jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    jobs
}

pub fn run(args: RunArgs) -> Result<()> {
    let jobs = job_count(args.jobs);
    let target = &args.target;
    let suite = Suite::load(&args.suite)?;
    let out = target.out_dir(&suite);
    let started = std::time::Instant::now();
    let summary = run_suite(&suite, &RunOptions { out: out.clone(), seed: target.seed, quick: target.quick, jobs, weights: target.weights.clone() })?;
    println!(
        "{} jobs: {} trained{}, {} re-evaluated from checkpoints, {} already done; {} records written in {:.1} s",
        summary.jobs,
        summary.trained,
        if summary.resumed_mid_training > 0 { format!(" ({} resumed mid-training)", summary.resumed_mid_training) } else { String::new() },
        summary.evaluated_from_checkpoint,
        summary.skipped,
        summary.records_written,
        started.elapsed().as_secs_f64()
    );
    super::leaderboard::print(&out)
}
