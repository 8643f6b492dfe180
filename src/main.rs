//! The `shiftbench` command line: parses arguments and hands each command to its module.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use shiftbench::run::{run_suite, RunOptions};
use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shiftbench",
    version,
    about = "Does training on generated images make classifiers robust to distribution shift?",
    long_about = "shiftbench runs benchmark suites that train image classifiers on real data, generated \
data, or both, evaluate them on shifted test sets, and publish leaderboards of accuracy, effective \
robustness and generated-data degradation (Bansal & Grover, 2023).",
    after_help = "Start with:\n  shiftbench run                 # the built-in offline `shapes` suite, a few minutes on a laptop\n  shiftbench run --quick         # the same suite scaled down, under a minute\n  shiftbench leaderboard results/shapes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a suite: make its data, train its classifiers, evaluate them, write the leaderboard.
    #[command(
        long_about = "Run a suite end to end: render or generate its data, train the baseline testbed and every \
(model, regime, seed) entry, evaluate each on the in-distribution set, every shifted set and the \
generated evaluation set, write one run record per evaluation, and build leaderboard.csv and \
fits.csv from the records.\n\nRe-running resumes: finished jobs are skipped, and a job whose \
checkpoint exists is only re-evaluated. Changing a section of the suite re-runs only what depends on it.",
        after_help = "Examples:\n  shiftbench run                               # suites/shapes.toml into results/shapes/\n  shiftbench run --quick                       # tiny profile into results/shapes-quick/\n  shiftbench run suites/shapes.toml --seed 1 --out /tmp/shapes-seed1 --jobs 2"
    )]
    Run {
        /// Suite file to run.
        #[arg(default_value = "suites/shapes.toml")]
        suite: PathBuf,
        /// Output folder for records, leaderboard.csv and fits.csv [default: results/<suite>/, or results/<suite>-quick/ with --quick]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the suite's seed (data, generation, initialisation and shuffling all change).
        #[arg(long)]
        seed: Option<u64>,
        /// Use the suite's small `[quick]` profile (fewer images and epochs) for smoke runs and tests.
        #[arg(long)]
        quick: bool,
        /// Training jobs to run at once [default: the number of CPU cores]. With more than one,
        /// each job's matrix kernels run single-threaded: small models train faster side by side
        /// than split across threads. Results do not depend on this setting.
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Rebuild leaderboard.csv, fits.csv and leaderboard.md from the run records in a results folder.
    #[command(
        long_about = "Rebuild leaderboard.csv, fits.csv and leaderboard.md from DIR/records/ alone, without \
training or reading the suite. Records from several machines (e.g. shards) can be copied into one \
folder and merged this way.",
        after_help = "Example:\n  shiftbench leaderboard results/shapes"
    )]
    Leaderboard {
        /// Results folder holding a `records/` directory.
        dir: PathBuf,
    },
    /// Check a suite file and print what it would run, without running it.
    #[command(after_help = "Example:\n  shiftbench check suites/shapes.toml")]
    Check {
        #[arg(default_value = "suites/shapes.toml")]
        suite: PathBuf,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Run { suite, out, seed, quick, jobs } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
            if jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                // candle reads this for its GEMM thread count. Set before any thread starts.
                std::env::set_var("RAYON_NUM_THREADS", "1");
            }
            let suite = Suite::load(&suite)?;
            let out = out.unwrap_or_else(|| default_out(&suite, quick));
            let started = std::time::Instant::now();
            let summary = run_suite(&suite, &RunOptions { out: out.clone(), seed, quick, jobs })?;
            println!(
                "{} jobs: {} trained, {} re-evaluated from checkpoints, {} already done; {} records written in {:.1} s",
                summary.jobs, summary.trained, summary.evaluated_from_checkpoint, summary.skipped, summary.records_written,
                started.elapsed().as_secs_f64()
            );
            print_leaderboard(&out)
        }
        Command::Leaderboard { dir } => {
            let records = shiftbench::report::load_records(&dir)?;
            anyhow::ensure!(!records.is_empty(), "no run records under {}; run `shiftbench run` first", dir.join("records").display());
            let lb = shiftbench::report::build(&records)?;
            shiftbench::report::write(&dir, &lb)?;
            shiftbench::fsutil::write_atomic(&dir.join("leaderboard.md"), shiftbench::report::markdown(&lb).as_bytes())?;
            print_leaderboard(&dir)
        }
        Command::Check { suite } => {
            let s = Suite::load(&suite)?;
            let spec = &s.spec;
            println!("{}: valid suite `{}` (sha256 {})", suite.display(), s.name(), &s.hash[..12]);
            println!("  classes: {}", spec.suite.classes.iter().map(|c| c.get_ref().as_str()).collect::<Vec<_>>().join(", "));
            println!("  domains: {}", spec.domains.iter().map(|d| format!("{} ({})", d.name.get_ref(), d.size.get_ref())).collect::<Vec<_>>().join(", "));
            println!("  generated sets: {}", spec.generated.iter().map(|g| format!("{} ({})", g.name.get_ref(), g.size.get_ref())).collect::<Vec<_>>().join(", "));
            println!("  testbed: {} models on regime `{}`", spec.testbed.members.len(), spec.testbed.regime.get_ref());
            println!(
                "  leaderboard: {} models × {} regimes × {} seeds",
                spec.leaderboard.models.len(), spec.leaderboard.regimes.len(), spec.leaderboard.seeds.len()
            );
            Ok(())
        }
    }
}

fn default_out(suite: &Suite, quick: bool) -> PathBuf {
    let name = if quick { format!("{}-quick", suite.name()) } else { suite.name().to_string() };
    Path::new("results").join(name)
}

fn print_leaderboard(dir: &Path) -> Result<()> {
    let path = dir.join("leaderboard.md");
    let md = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    println!("\n{md}");
    println!("wrote {}, {} and {}", dir.join("leaderboard.csv").display(), dir.join("fits.csv").display(), path.display());
    Ok(())
}
