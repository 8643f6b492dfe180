//! The `shiftbench` command line: parses arguments and hands each command to its module.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shiftbench",
    version,
    about = "Does training on generated images make classifiers robust to distribution shift?",
    long_about = "shiftbench runs benchmark suites that train image classifiers on real data, generated \
data, or both, evaluate them on shifted test sets, and publish leaderboards of accuracy, effective \
robustness and generated-data degradation (Bansal & Grover, 2023).",
    after_help = "Start with:\n  shiftbench run                        # the offline `shapes` suite into runs/shapes/ (minutes)\n  shiftbench run --quick                # the same, scaled down (seconds)\n  shiftbench reproduce results/shapes   # re-run the published results, compare byte for byte"
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
        after_help = "Examples:\n  shiftbench run                               # suites/shapes.toml into runs/shapes/\n  shiftbench run --quick                       # tiny profile into runs/shapes-quick/\n  shiftbench run --out results/shapes          # (re)publish into the committed results folder\n  shiftbench run suites/shapes.toml --seed 1 --out /tmp/shapes-seed1 --jobs 2"
    )]
    Run(cli::run::RunArgs),
    /// Rebuild leaderboard.csv, fits.csv and leaderboard.md from the run records in a results folder.
    #[command(
        long_about = "Rebuild leaderboard.csv, fits.csv and leaderboard.md from DIR/records/ alone, without \
training or reading the suite. Records from several machines (e.g. shards) can be copied into one \
folder and merged this way.",
        after_help = "Example:\n  shiftbench leaderboard results/shapes"
    )]
    Leaderboard(cli::leaderboard::LeaderboardArgs),
    /// Write paper.md: the paper's five research questions (RQ1–RQ5) from a folder's run records.
    #[command(long_about = cli::paper::LONG_ABOUT, after_help = cli::paper::AFTER_HELP)]
    Paper(cli::paper::PaperArgs),
    /// Re-run the suite behind a published results folder and compare every record and file.
    #[command(
        long_about = "Reproduce a published results folder: read which suite (by sha256), seed and profile made it \
(DIR/run.json), find that suite file in suites/, re-run it from scratch into a fresh folder, and compare \
every run record and every leaderboard file (CSV, Markdown, plots) with the published ones, the git \
revision aside. Exit status 0 only when all are identical; otherwise each difference is printed (which \
record, which counts or classes, which line of which file), the re-run folder is kept, and the exit \
status is 1.",
        after_help = "Examples:\n  shiftbench reproduce results/shapes\n  shiftbench reproduce results/shapes --scratch /tmp/shapes-again --keep"
    )]
    Reproduce(cli::reproduce::ReproduceArgs),
    /// Effective robustness of any classifiers from a table of their accuracies (no training).
    #[command(
        long_about = "Fit the accuracy-on-the-line of baseline models and score every model's effective \
robustness, from a wide accuracy table: a `model` column and one column per evaluation setting, top-1 \
percent, empty where not evaluated (the format of imagenet-testbed's robustness_top1s.csv). Writes \
OUT/fits.csv (shift,id_column,shift_column,transform,n,slope,intercept,r) and \
OUT/effective_robustness.csv (model,shift,id_acc,shift_acc,predicted,er,er_lo,er_hi; er_lo/er_hi are \
a seeded bootstrap 95% interval over the baseline models).\n\nThe preset imagenet-testbed pairs \
ImageNetV2 and ImageNet-Sketch with `val`, ImageNet-R with `val-on-imagenet-r-classes` and ObjectNet \
with `val-on-objectnet-classes`; its baseline is STANDARD models (natural_shift_model_type for V2 and \
ObjectNet, model_type otherwise) minus names containing subsample/aws/batch64, with ID accuracy >= 55 \
(>= 75 for ImageNet-R). Explicit flags override the preset.",
        after_help = "Examples:\n  shiftbench er --table robustness_top1s.csv --types model_types.csv --preset imagenet-testbed --out er/\n  shiftbench er --table accs.csv --id val --shift sketch --shift v2 --baseline baseline.txt --out er/\n  shiftbench er --table accs.csv --types types.csv --baseline-types STANDARD --id val --shift v2 --min-id-acc 55 --transform probit --out er/\n  shiftbench er --table my_accuracies.csv --fits suites/imagenet-testbed-fits.toml --out er/"
    )]
    Er(cli::er::ErArgs),
    /// Evaluate a classifier trained elsewhere on a suite's evaluation sets and add it to the leaderboard.
    #[command(long_about = cli::compare::LONG_ABOUT, after_help = cli::compare::AFTER_HELP)]
    Compare(cli::compare::CompareArgs),
    /// Top-5 classes (and logits) of a torchvision ResNet for image files or folders.
    #[command(long_about = cli::predict::LONG_ABOUT, after_help = cli::predict::AFTER_HELP)]
    Predict(cli::predict::PredictArgs),
    /// Check a suite file and print what it would run, without running it.
    #[command(after_help = "Example:\n  shiftbench check suites/shapes.toml")]
    Check(cli::check::CheckArgs),
    /// Generate (or resume) one generated set of a suite, optionally one shard of it; or merge shards.
    #[command(
        long_about = "Generate the images of one `[[generated]]` set into the folder `run` reads it from (runs/<suite>/work/generated/<set>-<hash>/, or under --out), resuming whatever is already there and verified. With --shard I/N only images whose index % N == I are made, into <set folder>.shard-I-of-N/; `generate --merge OUT SHARD_DIR...` then joins shard folders into OUT, giving exactly the folder an unsharded run makes.",
        after_help = "Examples:\n  shiftbench generate suites/sd.toml --set sd-train --weights ~/models/sd-turbo\n  shiftbench generate suites/sd.toml --set sd-train --shard $SLURM_ARRAY_TASK_ID/8\n  shiftbench generate --merge runs/sd/work/generated/sd-train-0123abcd runs/sd/work/generated/sd-train-0123abcd.shard-*"
    )]
    Generate(cli::generate::GenerateArgs),
    /// Download (or copy from a mirror) and verify the artifacts pinned in datasets.lock.
    #[command(
        long_about = "Put artifacts of datasets.lock in the cache, verified against their pinned sha256 and size, \
and extract archives. Sources, in order: the cache, --mirror folders (files named by sha256 or by file \
name), then the artifact's URLs (resumed with HTTP Range, retried, next mirror on failure). A file that \
fails verification is moved to CACHE/quarantine/ and never used.\n\nExit status 0 means every named \
artifact is verified and in place.",
        after_help = "Examples:\n  shiftbench fetch imagenet-testbed-top1s\n  shiftbench fetch suites/imagenet.toml --offline      # list what is missing\n  shiftbench fetch --print-path imagenet-testbed-top1s --mirror ../shared/reference/imagenet-testbed"
    )]
    Fetch(cli::fetch::FetchArgs),
    /// Inspect and maintain datasets.lock: verify the cache, pin an unpinned artifact.
    Lock {
        #[command(subcommand)]
        action: cli::fetch::LockCommand,
    },
}

fn main() -> ExitCode {
    quiet_on_closed_or_full_stdout();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2 for a usage error, as clap exits for the ones it catches; 1 for the rest.
            if shiftbench::usage::is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Output to a closed pipe (`shiftbench check | head -1`) ends the process quietly, as Unix
/// tools do; output to a full disk is one error line and exit status 1. Both would otherwise be
/// a panic inside `println!`, which is what the standard library does on a failed write.
fn quiet_on_closed_or_full_stdout() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts; Rust's
    // runtime sets it to "ignore", which turns a closed pipe into a write error.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied()).unwrap_or("");
        if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write to standard output ({cause}); free some space or redirect it elsewhere");
            std::process::exit(1);
        }
        default(info);
    }));
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => cli::run::run(args),
        Command::Leaderboard(args) => cli::leaderboard::run(args),
        Command::Paper(args) => cli::paper::run(args),
        Command::Reproduce(args) => cli::reproduce::run(args),
        Command::Er(args) => cli::er::run(args),
        Command::Compare(args) => cli::compare::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Generate(args) => cli::generate::run(args),
        Command::Fetch(args) => cli::fetch::run(args),
        Command::Lock { action } => cli::fetch::lock(action),
    }
}
