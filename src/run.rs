//! Runs a plan: makes its data, schedules its jobs, resumes what a killed run left, writes run
//! records, and cleans up records the plan no longer produces.
//!
//! A job's inputs hash to a key ([`crate::keys`]); its checkpoint is stored under that key and
//! each of its evaluation records carries the key extended with the evaluation set's own inputs.
//! Re-running skips every job whose records are all present with matching keys, re-evaluates
//! from a checkpoint when only records are missing, and trains the rest. With
//! `training.checkpoint_every_steps`, a job killed mid-training continues from its last partial
//! checkpoint (under `work/partial/`) to the same weights; without it, a killed run loses at
//! most the jobs in flight.

use crate::eval::RecordSubject;
use crate::model::{Classifier, ResNet};
use crate::plan::{Job, Plan};
use crate::prepare::Datasets;
use crate::record::check::Expected;
use crate::record::{record_file_name, DomainRole, Provenance, RunRecord, TrainSummary};
use crate::suite::Suite;
use crate::train::{total_steps, train_with, CheckpointPlan, TrainData, TrainOptions};
use anyhow::{Context, Result};
use candle_core::Device;
use indicatif::MultiProgress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How a suite is to be run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Overrides the suite's seed.
    pub seed: Option<u64>,
    pub quick: bool,
    /// Training jobs run at once.
    pub jobs: usize,
    /// Stable Diffusion weights for every `stable-diffusion` generator (`--weights`).
    pub weights: Option<String>,
}

/// What a run did, for the closing summary and for tests of resumption.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub jobs: usize,
    /// Jobs trained in this invocation (from scratch or from a partial checkpoint).
    pub trained: usize,
    /// Of those, jobs that continued from a partial checkpoint of a killed run.
    pub resumed_mid_training: usize,
    /// Jobs whose checkpoint existed and only needed (re-)evaluation.
    pub evaluated_from_checkpoint: usize,
    /// Jobs whose every record was already present.
    pub skipped: usize,
    pub records_written: usize,
}

/// What `check` and `run` refuse before any work: a suite whose `[suite] artifacts` are not in
/// `datasets.lock`, or that needs more memory or disk than this machine has for `out`
/// ([`crate::suite::budget`]).
pub fn check_before_work(suite: &Suite, out: &Path) -> Result<()> {
    check_artifacts(suite)?;
    crate::suite::budget::check_machine(&suite.config, out)
}

/// The suite's `[suite] artifacts` are artifacts of `datasets.lock`.
pub fn check_artifacts(suite: &Suite) -> Result<()> {
    if !suite.config.artifacts.is_empty() {
        let lock = crate::fetch::lock::Lock::load(Path::new(crate::fetch::lock::LOCK_FILE))?;
        crate::fetch::artifacts::suite_artifacts(suite, &lock)?;
    }
    Ok(())
}

pub fn run_suite(suite: &Suite, opts: &RunOptions) -> Result<RunSummary> {
    let config = &suite.config;
    anyhow::ensure!(
        config.trains(),
        "suite `{}` is evaluation-only (no [training]): it scores classifiers trained elsewhere; run `shiftbench compare {} --name NAME --arch ARCH --weights FILE` for each",
        suite.name(),
        suite.path.display()
    );
    // Training reads in-memory sets (the procedural world, generated sets), and generators
    // prompt with the procedural classes' names.
    anyhow::ensure!(
        !config.classes.is_empty(),
        "suite `{}` trains on ImageNet's classes from file-backed sets, which this harness cannot do yet (it trains on the procedural world and generated sets); `shiftbench check` validates the suite, and `shiftbench compare` evaluates classifiers trained elsewhere on its evaluation sets",
        suite.name()
    );
    check_before_work(suite, &opts.out)?;
    let mut plan = Plan::new(config, opts.seed.unwrap_or(config.seed), opts.quick);
    plan.protocol.baseline_table = crate::robustness::baseline::protocol_table(config, Path::new(crate::fetch::lock::LOCK_FILE))?;
    let work = opts.out.join("work");
    let manifest = crate::folder::RunManifest { suite: suite.name().to_string(), suite_hash: suite.hash.clone(), seed: plan.seed, quick: opts.quick };
    let _owner = crate::folder::claim(&opts.out, &manifest)?;
    let lock = Path::new(crate::fetch::lock::LOCK_FILE);
    // Stable Diffusion weights are located and hashed before any work, so a missing file is the
    // first thing a user sees, not an error after hours of rendering.
    let sd = crate::generate::sd::prepare(config, &suite.path, plan.seed, opts.weights.as_deref(), lock)?;
    let mut generators = crate::generate::PreparedGenerators { sd, ..Default::default() };
    let multi = MultiProgress::new();
    if !crate::progress::is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }

    // 1. Data: procedural domains in memory, generated sets on disk (resumable), file-backed
    //    domains listed and counted.
    let datasets = crate::prepare::datasets(config, &plan, &mut generators, &work, lock, &multi)?;

    // 2. Jobs, longest first so parallel workers finish together.
    let ctx = JobContext {
        suite,
        plan: &plan,
        datasets: &datasets,
        out: &opts.out,
        work: &work,
        device: Device::Cpu,
        lock_hash: lock_hash(suite, opts.weights.as_deref(), lock)?,
        multi: &multi,
        abort_after_step: abort_after_step()?,
    };
    move_stale_records(&opts.out, &work, &Expected::new(&plan, suite.name(), &suite.hash))?;
    let mut order: Vec<usize> = (0..plan.jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.job_cost(&plan.jobs[i])));
    let summary = run_in_parallel(&ctx, &order, opts.jobs)?;

    // 3. Leaderboard from the records alone.
    let records = crate::report::load_records(&opts.out)?;
    let lb = crate::report::build(&records)?;
    crate::report::write(&opts.out, &lb)?;
    Ok(summary)
}

/// Runs the jobs in `order` on `workers` threads; the first error stops the others.
fn run_in_parallel(ctx: &JobContext, order: &[usize], workers: usize) -> Result<RunSummary> {
    let jobs = &ctx.plan.jobs;
    let overall = ctx.multi.add(crate::progress::bar(jobs.len() as u64, "jobs"));
    let summary = Mutex::new(RunSummary { jobs: jobs.len(), ..Default::default() });
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let failed = || first_error.lock().map_or(true, |e| e.is_some());
    let threads = workers.max(1).min(jobs.len().max(1));
    let work = || loop {
        if failed() {
            return;
        }
        let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) else { return };
        let outcome = ctx.run_job(&jobs[i]);
        let Ok(mut s) = summary.lock() else { return };
        match outcome {
            Ok(JobOutcome::Skipped) => s.skipped += 1,
            Ok(JobOutcome::Evaluated(n)) => {
                s.evaluated_from_checkpoint += 1;
                s.records_written += n
            }
            Ok(JobOutcome::Trained { records, resumed }) => {
                s.trained += 1;
                s.resumed_mid_training += resumed as usize;
                s.records_written += records
            }
            Err(e) => {
                if let Ok(mut slot) = first_error.lock() {
                    slot.get_or_insert(e.context(format!("job {} / {} / seed {}", jobs[i].name, jobs[i].regime, jobs[i].seed)));
                }
                return;
            }
        }
        overall.inc(1);
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                if threads == 1 {
                    return work();
                }
                // Side by side, each job gets a rayon pool of its own: sharing the global pool
                // (one thread when jobs run in parallel) made every job's products queue on the
                // same thread, and two jobs ran at the speed of one (measured: 1.03 cores busy).
                match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(&work),
                    Err(_) => work(),
                }
            });
        }
    });
    overall.finish_and_clear();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(summary.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The sha256 of the lock file when the suite reads it, else `none`.
/// sha256 of the lock file when the suite reads it (artifacts, SD weights from the lock), else `none`.
pub(crate) fn lock_hash(suite: &Suite, weights_override: Option<&str>, lock: &Path) -> Result<String> {
    if !crate::plan::reads_lock(&suite.config, weights_override) {
        return Ok("none".to_string());
    }
    let bytes = std::fs::read(lock).with_context(|| format!("suite {} reads {}, which cannot be read", suite.path.display(), lock.display()))?;
    Ok(crate::fsutil::sha256_hex(&bytes))
}

enum JobOutcome {
    Skipped,
    Evaluated(usize),
    Trained { records: usize, resumed: bool },
}

/// Fault injection for the kill-and-resume tests: with `SHIFTBENCH_ABORT_AFTER_STEP=S`, the
/// process exits abruptly (no clean-up, as if killed) once any job completes step S.
const ABORT_ENV: &str = "SHIFTBENCH_ABORT_AFTER_STEP";

fn abort_after_step() -> Result<Option<u64>> {
    match std::env::var(ABORT_ENV) {
        Ok(v) => Ok(Some(v.trim().parse().with_context(|| format!("{ABORT_ENV}={v:?} is not a step number; unset it"))?)),
        Err(_) => Ok(None),
    }
}

struct JobContext<'a> {
    suite: &'a Suite,
    plan: &'a Plan,
    datasets: &'a Datasets,
    out: &'a Path,
    work: &'a Path,
    device: Device,
    lock_hash: String,
    multi: &'a MultiProgress,
    abort_after_step: Option<u64>,
}

impl JobContext<'_> {
    fn run_job(&self, job: &Job) -> Result<JobOutcome> {
        let train_key = crate::keys::train_job(job, |s| &self.datasets[s].key);
        let train_hash = crate::keys::hash(&train_key);
        let pending: Vec<(&str, DomainRole, String)> = self
            .plan
            .eval_sets
            .iter()
            .map(|(set, role)| (set.as_str(), *role, crate::keys::record(&train_hash, &self.datasets[set].key, &self.plan.protocol)))
            .filter(|(set, _, key)| !record_matches(&self.out.join(record_file_name(job.role, &job.name, &job.regime, job.seed, set)), key))
            .collect();
        if pending.is_empty() {
            return Ok(JobOutcome::Skipped);
        }

        let mut model = ResNet::new(job.model.clone(), crate::rng::derive_seed(job.config.seed, "init", 0), &self.device)?;
        let checkpoint = self.work.join("checkpoints").join(format!("{train_hash}.safetensors"));
        let stale = self.work.join("stale-checkpoints");
        let (trained, resumed, final_loss, checkpoint_sha256) = match crate::checkpoints::open(&checkpoint, &train_key, &mut model, &stale)? {
            Some(verified) => (false, false, verified.final_loss, verified.sha256),
            None => {
                // A checkpoint that failed its checks may have half-loaded into the model.
                model = ResNet::new(job.model.clone(), crate::rng::derive_seed(job.config.seed, "init", 0), &self.device)?;
                let (loss, resumed) = self.train(job, &mut model, &train_hash)?;
                let sha256 = crate::checkpoints::save(&model, &checkpoint, &train_key, loss)?;
                // Only now that the finished checkpoint is in place may the partial ones go.
                let partial = self.partial_dir(&train_hash);
                if partial.exists() {
                    std::fs::remove_dir_all(&partial).with_context(|| format!("cannot remove finished job's partial checkpoints {}", partial.display()))?;
                }
                (true, resumed, loss, sha256)
            }
        };

        let info = model.info();
        let summary = TrainSummary {
            arch: info.arch,
            parameters: info.parameters,
            train_images: Some(self.plan.train_images(job) as u64),
            epochs: Some(job.config.epochs),
            final_loss: Some(round_to(final_loss, 6)),
            sources: Some(crate::plan::train_sources(&self.suite.config, self.plan, job)),
            augment: serde_json::to_value(job.config.augment).ok().and_then(|v| v.as_str().map(str::to_string)),
            generated_fraction: match job.config.mix {
                crate::train::Mix::GeneratedFraction(f) => Some(f),
                crate::train::Mix::Concat => None,
            },
        };
        for (set, role, key) in &pending {
            let dataset = &self.datasets[*set];
            let data = dataset.images.source();
            let pb = self.multi.add(crate::progress::bar(data.len() as u64, &format!("eval {set}")));
            let loader = crate::data::imageset::Loader::with_batch(crate::eval::EVAL_BATCH);
            let predictions = crate::eval::predict_with(&mut model, data, self.plan.protocol.flip_tta, &dataset.scoring, &loader, &pb).with_context(|| format!("evaluating on `{set}`"))?;
            pb.finish_and_clear();
            let labels: Vec<u32> = (0..data.len()).map(|i| data.label(i)).collect();
            let counts = crate::eval::count(&predictions, &labels, dataset.scoring.classes())?;
            let subject = RecordSubject { suite: self.suite.name(), role: job.role, model: &job.name, regime: &job.regime, seed: job.seed, domain: set, domain_role: *role, sweep: job.sweep.as_ref() };
            let record = crate::eval::record(&subject, counts, &dataset.scoring, &self.plan.protocol, &summary, self.provenance(key, &checkpoint_sha256));
            let mut text = serde_json::to_string_pretty(&record)?;
            text.push('\n');
            crate::fsutil::write_atomic(&self.out.join(record.file_name()), text.as_bytes())?;
        }
        Ok(if trained { JobOutcome::Trained { records: pending.len(), resumed } } else { JobOutcome::Evaluated(pending.len()) })
    }

    /// Trains `model` for `job` (continuing from a partial checkpoint of a killed run when there
    /// is one); returns the final loss and whether it resumed.
    fn train(&self, job: &Job, model: &mut ResNet, train_hash: &str) -> Result<(f64, bool)> {
        // Only a job that trains needs its images gathered into one set.
        let (train_images, generated_start) = crate::prepare::training_set(job, self.datasets, self.plan.train_images(job))?;
        let data = TrainData { images: &train_images, generated_start };
        let label = format!("{}/{}", job.name, job.regime);
        let steps = total_steps(data, &job.config)?;
        let partial = self.partial_dir(train_hash);
        self.set_aside_bad_partial(job, &partial)?;
        let every = self.suite.config.training.as_ref().and_then(|t| t.checkpoint_every_steps);
        let opts = TrainOptions { checkpoint: every.map(|every_steps| CheckpointPlan { dir: partial.clone(), every_steps }), ..TrainOptions::default() };
        let pb = self.multi.add(crate::progress::bar(steps, &label));
        let abort = self.abort_after_step;
        let outcome = train_with(model, data, &job.config, &opts, &self.device, |step, _, loss| {
            pb.inc(1);
            pb.set_message(format!("loss {loss:.3}"));
            if abort == Some(step) {
                eprintln!("{ABORT_ENV}: exiting after step {step} of {label}");
                std::process::exit(3);
            }
        })?;
        pb.finish_and_clear();
        Ok((outcome.final_loss, outcome.resumed_from.is_some()))
    }

    /// Moves a job's partial checkpoints to `work/stale-checkpoints/` when the newest cannot be
    /// resumed from (see [`crate::train::checkpoint::defect`]), so the job starts over instead
    /// of failing.
    fn set_aside_bad_partial(&self, job: &Job, partial: &Path) -> Result<()> {
        let Some(step) = crate::train::checkpoint::latest(partial)? else { return Ok(()) };
        let mut scratch = ResNet::new(job.model.clone(), 0, &self.device)?;
        if let Some(defect) = crate::train::checkpoint::defect(partial, step, &mut scratch, &job.config) {
            let dest = crate::fsutil::move_aside(partial, &self.work.join("stale-checkpoints"))?;
            crate::progress::warn(format!("partial checkpoint of step {step}: {defect}; moved {} to {}, training the job from the start", partial.display(), dest.display()));
        }
        Ok(())
    }

    /// Where a job's partial checkpoints live while it trains.
    fn partial_dir(&self, train_hash: &str) -> PathBuf {
        self.work.join("partial").join(train_hash)
    }

    fn provenance(&self, record_key: &str, checkpoint_sha256: &str) -> Provenance {
        Provenance {
            harness_version: crate::HARNESS_VERSION.to_string(),
            git_revision: crate::GIT_REVISION.to_string(),
            suite_hash: self.suite.hash.clone(),
            lock_hash: self.lock_hash.clone(),
            job_hash: record_key.to_string(),
            device: if self.device.is_cpu() { "cpu" } else { "cuda" }.to_string(),
            suite_seed: Some(self.plan.seed),
            checkpoint_sha256: Some(checkpoint_sha256.to_string()),
        }
    }
}

/// Rounds for storage so a record's bytes do not hinge on the last bits of a float sum.
fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// True when `path` holds a current-schema record produced from exactly these inputs. (Records
/// that are not well formed were moved aside before, by [`move_stale_records`].)
pub(crate) fn record_matches(path: &Path, key: &str) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
        .is_some_and(|r| r.schema == crate::record::RECORD_SCHEMA && r.provenance.job_hash == key)
}

/// Moves records out of `records/` that the current plan would not write (a model or domain
/// removed from the suite, a renamed regime) or that fail their checks (counts that do not add
/// up, names outside the suite's vocabulary, another seed: [`crate::record::check`]), so they
/// cannot leak into the leaderboard; the plan's missing records are then regenerated. They are
/// kept, not deleted, under `work/stale-records/`. (Temporary files of writes that a kill
/// interrupted are gone already: [`crate::folder::claim`] removes them under the folder lock.)
fn move_stale_records(out: &Path, work: &Path, expected: &Expected) -> Result<()> {
    let root = out.join("records");
    if !root.exists() {
        return Ok(());
    }
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let Ok(rel) = path.strip_prefix(out) else { continue };
                let why = if expected.records.contains_key(&rel.to_string_lossy().into_owned()) {
                    match crate::report::read_record(out, &path) {
                        Err(e) => Some(format!("{e:#}")),
                        Ok(r) => crate::record::check::against_plan(&r, expected).err().map(|d| format!("run record {} {d}", rel.display())),
                    }
                } else {
                    Some(format!("run record {} is not one the suite produces", rel.display()))
                };
                let Some(why) = why else { continue };
                let dest = work.join("stale-records").join(rel);
                let dest = crate::fsutil::move_aside(&path, dest.parent().unwrap_or(work))?;
                crate::progress::warn(format!("{}; moved it to {}, regenerating what the suite needs", why.split("; delete").next().unwrap_or(&why), dest.display()));
            }
        }
    }
    Ok(())
}
