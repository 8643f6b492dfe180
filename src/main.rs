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

/// Where a suite's results go and under which seed, profile and weights (`run` and `generate`).
#[derive(clap::Args)]
struct SuiteTarget {
    /// Results folder: records, leaderboard.csv, fits.csv and work/ (data, generated sets,
    /// checkpoints) [default: results/<suite>/, or results/<suite>-quick/ with --quick]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the suite's seed (data, generation, initialisation and shuffling all change).
    #[arg(long)]
    seed: Option<u64>,
    /// Use the suite's small `[quick]` profile (fewer images and epochs) for smoke runs and tests.
    #[arg(long)]
    quick: bool,
    /// Stable Diffusion weights for `stable-diffusion` generators: a diffusers-layout folder,
    /// hf:ORG/NAME[@REV] (Hugging Face cache) or artifact:NAME [default: $SHIFTBENCH_SD_WEIGHTS,
    /// else the generator's `weights` key, else the preset's repository in the HF cache]
    #[arg(long, value_name = "SOURCE")]
    weights: Option<String>,
}

impl SuiteTarget {
    /// The results folder for `suite`.
    fn out_dir(&self, suite: &Suite) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let name = if self.quick { format!("{}-quick", suite.name()) } else { suite.name().to_string() };
            Path::new("results").join(name)
        })
    }
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
        #[command(flatten)]
        target: SuiteTarget,
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
    Er(ErArgs),
    /// Check a suite file and print what it would run, without running it.
    #[command(after_help = "Example:\n  shiftbench check suites/shapes.toml")]
    Check {
        #[arg(default_value = "suites/shapes.toml")]
        suite: PathBuf,
        /// Stable Diffusion weights (see `run --weights`); checked to be complete.
        #[arg(long, value_name = "SOURCE")]
        weights: Option<String>,
    },
    /// Generate (or resume) one generated set of a suite, optionally one shard of it; or merge shards.
    #[command(
        long_about = "Generate the images of one `[[generated]]` set into the folder `run` reads it from (results/<suite>/work/generated/<set>-<hash>/), resuming whatever is already there and verified. With --shard I/N only images whose index % N == I are made, into <set folder>.shard-I-of-N/; `generate --merge OUT SHARD_DIR...` then joins shard folders into OUT, giving exactly the folder an unsharded run makes.",
        after_help = "Examples:\n  shiftbench generate suites/sd.toml --set sd-train --weights ~/models/sd-turbo\n  shiftbench generate suites/sd.toml --set sd-train --shard $SLURM_ARRAY_TASK_ID/8\n  shiftbench generate --merge results/sd/work/generated/sd-train-0123abcd results/sd/work/generated/sd-train-0123abcd.shard-*"
    )]
    Generate {
        /// Suite file.
        #[arg(required_unless_present = "merge")]
        suite: Option<PathBuf>,
        /// Name of the `[[generated]]` set.
        #[arg(long, required_unless_present = "merge")]
        set: Option<String>,
        /// Make only shard I of N (0-based): images with index % N == I.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        target: SuiteTarget,
        /// Write the set (or shard) into exactly this folder instead of the results folder's.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Stop after this many newly rendered images (resume later with the same command).
        #[arg(long, value_name = "N")]
        max_new: Option<usize>,
        /// Merge shard folders: OUT first, then the shard folders.
        #[arg(long, num_args = 2.., value_name = "DIR", conflicts_with_all = ["suite", "set", "shard"])]
        merge: Option<Vec<PathBuf>>,
    },
    /// Download (or copy from a mirror) and verify the artifacts pinned in datasets.lock.
    #[command(
        long_about = "Put artifacts of datasets.lock in the cache, verified against their pinned sha256 and size, \
and extract archives. Sources, in order: the cache, --mirror folders (files named by sha256 or by file \
name), then the artifact's URLs (resumed with HTTP Range, retried, next mirror on failure). A file that \
fails verification is moved to CACHE/quarantine/ and never used.\n\nExit status 0 means every named \
artifact is verified and in place.",
        after_help = "Examples:\n  shiftbench fetch imagenet-testbed-top1s\n  shiftbench fetch suites/imagenet.toml --offline      # list what is missing\n  shiftbench fetch --print-path imagenet-testbed-top1s --mirror ../shared/reference/imagenet-testbed"
    )]
    Fetch {
        /// Suite files (their `[suite] artifacts`) or artifact names.
        #[arg(required_unless_present = "print_path")]
        targets: Vec<String>,
        /// Fetch and verify one artifact, then print only its path (for scripts).
        #[arg(long, value_name = "NAME", conflicts_with = "targets")]
        print_path: Option<String>,
        #[command(flatten)]
        artifacts: shiftbench::artifacts::ArtifactArgs,
    },
    /// Inspect and maintain datasets.lock: verify the cache, pin an unpinned artifact.
    Lock {
        #[command(subcommand)]
        action: LockCommand,
    },
}

#[derive(Subcommand)]
enum LockCommand {
    /// Re-hash every cached artifact against the lock; quarantine and report mismatches, list
    /// missing and unpinned ones.
    #[command(after_help = "Example:\n  shiftbench lock verify --cache /data/shiftbench-cache")]
    Verify {
        #[command(flatten)]
        artifacts: shiftbench::artifacts::ArtifactArgs,
    },
    /// Record the sha256 and size of an unpinned artifact (one whose host publishes no hash)
    /// in the lock, from a file you obtained, a mirror, or its URLs.
    #[command(after_help = "Example:\n  shiftbench lock pin objectnet --from ~/Downloads/objectnet-1.0.zip")]
    Pin {
        /// Artifact name.
        name: String,
        /// Take the bytes from this file instead of a mirror or a download.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        #[command(flatten)]
        artifacts: shiftbench::artifacts::ArtifactArgs,
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
        Command::Run { suite, target, jobs } => {
            set_weights_env(target.weights.as_deref());
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
            if jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                // candle reads this for its GEMM thread count. Set before any thread starts.
                std::env::set_var("RAYON_NUM_THREADS", "1");
            }
            let suite = Suite::load(&suite)?;
            let out = target.out_dir(&suite);
            let started = std::time::Instant::now();
            let summary = run_suite(&suite, &RunOptions { out: out.clone(), seed: target.seed, quick: target.quick, jobs })?;
            println!(
                "{} jobs: {} trained{}, {} re-evaluated from checkpoints, {} already done; {} records written in {:.1} s",
                summary.jobs, summary.trained,
                if summary.resumed_mid_training > 0 { format!(" ({} resumed mid-training)", summary.resumed_mid_training) } else { String::new() },
                summary.evaluated_from_checkpoint, summary.skipped, summary.records_written,
                started.elapsed().as_secs_f64()
            );
            print_leaderboard(&out)
        }
        Command::Leaderboard { dir } => {
            let records = shiftbench::report::load_records(&dir)?;
            anyhow::ensure!(!records.is_empty(), "no run records under {}; run `shiftbench run` first", dir.join("records").display());
            let lb = shiftbench::report::build(&records)?;
            shiftbench::report::write(&dir, &lb)?;
            print_leaderboard(&dir)
        }
        Command::Er(args) => {
            let report = args.request().run(&args.out)?;
            for f in &report.fits {
                println!(
                    "{}: {} against {}, {} baseline models: slope {:.4}, intercept {:.4}, r {:.4}",
                    f.pairing.shift, f.pairing.shift_column, f.pairing.id_column, f.fit.line.n, f.fit.line.slope, f.fit.line.intercept, f.fit.line.r
                );
            }
            println!(
                "wrote {} and {} ({} rows)",
                args.out.join(shiftbench::robustness::fit::FITS_FILE).display(),
                args.out.join(shiftbench::robustness::report::ER_FILE).display(),
                report.rows.len()
            );
            Ok(())
        }
        Command::Fetch { targets, print_path, artifacts } => match print_path {
            Some(name) => shiftbench::artifacts::print_path(&artifacts, &name),
            None => shiftbench::artifacts::fetch_command(&artifacts, &targets),
        },
        Command::Lock { action: LockCommand::Verify { artifacts } } => shiftbench::artifacts::lock_verify(&artifacts),
        Command::Lock { action: LockCommand::Pin { name, from, artifacts } } => {
            shiftbench::artifacts::lock_pin(&artifacts, &name, from.as_deref())
        }
        Command::Check { suite, weights } => {
            set_weights_env(weights.as_deref());
            let s = Suite::load(&suite)?;
            let spec = &s.spec;
            let sd = shiftbench::generate::sd::locate_all(&s, Path::new(shiftbench::lock::LOCK_FILE))?;
            println!("{}: valid suite `{}` (sha256 {})", suite.display(), s.name(), &s.hash[..12]);
            println!("  classes: {}", spec.suite.classes.iter().map(|c| c.get_ref().as_str()).collect::<Vec<_>>().join(", "));
            println!("  domains: {}", spec.domains.iter().map(|d| format!("{} ({})", d.name.get_ref(), d.size.get_ref())).collect::<Vec<_>>().join(", "));
            println!("  generated sets: {}", spec.generated.iter().map(|g| format!("{} ({})", g.name.get_ref(), g.size.get_ref())).collect::<Vec<_>>().join(", "));
            println!("  testbed: {} models on regime `{}`", spec.testbed.members.len(), spec.testbed.regime.get_ref());
            println!(
                "  leaderboard: {} models × {} regimes × {} seeds",
                spec.leaderboard.models.len(), spec.leaderboard.regimes.len(), spec.leaderboard.seeds.len()
            );
            for (name, root, _) in sd {
                println!("  generator {name}: stable-diffusion weights complete in {}", root.display());
            }
            Ok(())
        }
        Command::Generate { suite, set, shard, target, dir, max_new, merge } => {
            if let Some(dirs) = merge {
                let rows = shiftbench::generate::merge_shards(&dirs[0], &dirs[1..])?;
                println!("merged {} shard folders into {} ({} images)", dirs.len() - 1, dirs[0].display(), rows.len());
                return Ok(());
            }
            set_weights_env(target.weights.as_deref());
            let (suite, set) = (suite.expect("clap requires a suite"), set.expect("clap requires --set"));
            generate_command(&suite, &set, shard.as_deref(), &target, dir, max_new)
        }
    }
}

/// `--weights` wins over the environment; setting the variable hands it to the library, which
/// reads it when locating weights. Called before any thread starts.
fn set_weights_env(weights: Option<&str>) {
    if let Some(w) = weights {
        std::env::set_var(shiftbench::generate::sd::WEIGHTS_ENV, w);
    }
}

fn generate_command(suite: &Path, set: &str, shard: Option<&str>, target: &SuiteTarget, dir: Option<PathBuf>, max_new: Option<usize>) -> Result<()> {
    use shiftbench::generate::{SetOptions, Shard};
    let suite = Suite::load(suite)?;
    let g = suite.generated_set(set).with_context(|| {
        format!("suite {} has no generated set `{set}`; defined: {}", suite.path.display(), suite.spec.generated.iter().map(|g| g.name.get_ref().as_str()).collect::<Vec<_>>().join(", "))
    })?;
    let shard = shard.map(Shard::parse).transpose()?.unwrap_or(Shard::WHOLE);
    let seed = target.seed.unwrap_or(suite.spec.suite.seed);
    let out = target.out_dir(&suite);
    let sd = shiftbench::generate::sd::prepare(&suite, seed, Path::new(shiftbench::lock::LOCK_FILE))?;
    let plan = shiftbench::run::generated_set_plan(&suite, g, seed, target.quick, &out.join("work"), &sd);
    let set_dir = &plan.dir;
    let target = match dir {
        Some(d) => d,
        None if shard == Shard::WHOLE => set_dir.clone(),
        None => set_dir.with_file_name(format!("{}.shard-{}-of-{}", set_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), shard.index, shard.count)),
    };
    let mine = (0..plan.count as u64).filter(|&i| shard.contains(i)).count();
    let pb = shiftbench::progress::bar(mine as u64, set);
    let started = std::time::Instant::now();
    let opts = SetOptions { shard, max_new, ..Default::default() };
    let (_, rows, stats) = plan.generate(&target, &pb, &opts)?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{set}: {} of {mine} images in {} ({} rendered at {:.2} images/s, {} reused)",
        rows.len(), target.display(), stats.rendered, stats.rendered as f64 / secs.max(1e-9), stats.reused
    );
    if shard != Shard::WHOLE {
        println!("when every shard is done: shiftbench generate --merge {} {}", set_dir.display(), set_dir.with_file_name(format!("{}.shard-*", set_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())).display());
    }
    Ok(())
}

fn print_leaderboard(dir: &Path) -> Result<()> {
    let path = dir.join("leaderboard.md");
    let md = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    println!("\n{md}");
    println!("wrote {}, {} and {}", dir.join("leaderboard.csv").display(), dir.join("fits.csv").display(), path.display());
    Ok(())
}

/// Flags of `shiftbench er`; `shiftbench::robustness::request::ErRequest` documents what each means.
#[derive(clap::Args)]
struct ErArgs {
    /// Wide accuracy table: a `model` column, then one column per evaluation setting (percent).
    #[arg(long, value_name = "ACCURACIES.csv")]
    table: PathBuf,
    /// Model types: `model,model_type[,natural_shift_model_type]` (imagenet-testbed's model_types.csv).
    #[arg(long, value_name = "MODEL_TYPES.csv")]
    types: Option<PathBuf>,
    /// Named protocol for columns and baseline rule: imagenet-testbed.
    #[arg(long, value_name = "NAME")]
    preset: Option<shiftbench::robustness::pairing::Preset>,
    /// ID-accuracy column (x axis) for the --shift columns.
    #[arg(long = "id", value_name = "COLUMN")]
    id_column: Option<String>,
    /// Shifted-accuracy column (y axis); repeat for several shifts.
    #[arg(long = "shift", value_name = "COLUMN")]
    shift_columns: Vec<String>,
    /// File of baseline model names, one per line (`#` comments allowed).
    #[arg(long = "baseline", value_name = "FILE")]
    baseline_file: Option<PathBuf>,
    /// Baseline = models of these types (comma-separated), read from --types.
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    baseline_types: Vec<String>,
    /// Column of --types to filter on, for every shift [default: the preset's choice, else model_type].
    #[arg(long, value_name = "COLUMN")]
    type_column: Option<String>,
    /// Drop baseline models whose name contains this; repeat for several [default: the preset's: subsample, aws, batch64].
    #[arg(long, value_name = "TEXT")]
    exclude: Option<Vec<String>>,
    /// Minimum ID accuracy (percent) of a baseline model, for every shift [default: the preset's, else 0].
    #[arg(long, value_name = "PERCENT")]
    min_id_acc: Option<f64>,
    /// Scale of the fit: logit, probit or linear [default: logit].
    #[arg(long)]
    transform: Option<shiftbench::metrics::Transform>,
    /// Bootstrap resamples of the baseline models for the ER intervals [default: 1000].
    #[arg(long)]
    resamples: Option<usize>,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Score against fixed fits from a `[[reference_fits]]` TOML file (e.g.
    /// suites/imagenet-testbed-fits.toml) instead of fitting a baseline; rows get no interval.
    #[arg(long = "fits", value_name = "FITS.toml")]
    reference_fits: Option<PathBuf>,
    /// Output folder for fits.csv and effective_robustness.csv.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

impl ErArgs {
    fn request(&self) -> shiftbench::robustness::request::ErRequest {
        shiftbench::robustness::request::ErRequest {
            table: self.table.clone(),
            types: self.types.clone(),
            preset: self.preset,
            id_column: self.id_column.clone(),
            shift_columns: self.shift_columns.clone(),
            baseline_file: self.baseline_file.clone(),
            baseline_types: self.baseline_types.clone(),
            type_column: self.type_column.clone(),
            exclude: self.exclude.clone(),
            min_id_acc: self.min_id_acc,
            transform: self.transform,
            resamples: self.resamples,
            seed: self.seed,
            reference_fits: self.reference_fits.clone(),
        }
    }
}
