//! Plans a suite into training jobs, runs what is not done yet, and writes run records.
//!
//! A job is one classifier: (role, model, regime, training seed). Its inputs hash to a key;
//! its checkpoint is stored under that key and each of its evaluation records carries the key
//! extended with the evaluation set's own inputs. Re-running skips every job whose records are
//! all present with matching keys, re-evaluates from a checkpoint when only records are
//! missing, and trains the rest. With `training.checkpoint_every_steps`, a job killed mid-training
//! continues from its last partial checkpoint (under `work/partial/`) to the same weights; without
//! it, a killed run loses at most the jobs in flight.

use crate::data::procedural::render_domain;
use crate::data::ImageSet;
use crate::generate::sd::SdGenerator;
use crate::generate::{generate_set_with, Generator, ProceduralGenerator, SetOptions};
use crate::model::{ArchConfig, ResNet};
use crate::record::{record_file_name, DomainRole, Protocol, Provenance, Role, RunRecord, TrainSummary, RECORD_SCHEMA};
use crate::suite::{Augment, DomainSpec, GeneratedSpec, ModelSpec, Suite};
use crate::train::{predict_with, total_steps, train_with, CheckpointPlan, Mix, TrainConfig, TrainData, TrainOptions};
use anyhow::{Context, Result};
use candle_core::Device;
use indicatif::MultiProgress;
use serde_json::json;
use std::collections::BTreeMap;
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

/// A labelled image set with the fingerprint of everything that determines its bytes.
struct Dataset {
    name: String,
    images: ImageSet,
    key: serde_json::Value,
    /// Made by a generator (per-batch mixing draws these separately).
    generated: bool,
}

/// A training job after the suite's profile (quick or full) has been applied.
#[derive(Clone, Debug)]
struct Job {
    role: Role,
    /// Row name: the model for entries, the member name for testbed models.
    name: String,
    model: ArchConfig,
    regime: String,
    train_sets: Vec<String>,
    train_fraction: f64,
    config: TrainConfig,
    seed: u64,
}

/// Sizes and epochs after the `--quick` profile.
struct Profile {
    size_scale: f64,
    epoch_scale: f64,
    classes: usize,
}

impl Profile {
    /// The suite's full profile, or its `[quick]` one.
    fn of(suite: &Suite, quick: bool) -> Profile {
        let spec = &suite.spec;
        let classes = spec.suite.classes.len();
        if quick {
            Profile { size_scale: *spec.quick.size_scale.get_ref(), epoch_scale: *spec.quick.epoch_scale.get_ref(), classes }
        } else {
            Profile { size_scale: 1.0, epoch_scale: 1.0, classes }
        }
    }
    fn size(&self, n: usize) -> usize {
        if self.size_scale >= 1.0 {
            n
        } else {
            ((n as f64 * self.size_scale).round() as usize).max(self.classes)
        }
    }
    fn epochs(&self, e: u32) -> u32 {
        ((e as f64 * self.epoch_scale).round() as u32).max(1)
    }
}

pub fn run_suite(suite: &Suite, opts: &RunOptions) -> Result<RunSummary> {
    let spec = &suite.spec;
    let seed = opts.seed.unwrap_or(spec.suite.seed);
    let classes = suite.class_indices();
    let size = *spec.suite.image_size.get_ref();
    let profile = Profile::of(suite, opts.quick);
    let work = opts.out.join("work");
    // Stable Diffusion weights are located and hashed before any work, so a missing file is the
    // first thing a user sees, not an error after hours of rendering.
    let sd = crate::generate::sd::prepare(suite, seed, Path::new(crate::lock::LOCK_FILE))?;
    let device = Device::Cpu;
    let device_name = "cpu".to_string();
    let multi = MultiProgress::new();
    if !crate::progress::is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }

    // 1. Data: procedural domains in memory, generated sets on disk (resumable).
    let mut datasets: BTreeMap<String, Dataset> = BTreeMap::new();
    for d in &spec.domains {
        let ds = render_real_domain(d, seed, &classes, size, &profile, &multi);
        datasets.insert(ds.name.clone(), ds);
    }
    for g in &spec.generated {
        let ds = make_generated_set(&generated_set_plan(suite, g, seed, opts.quick, &work, &sd), &multi)?;
        datasets.insert(ds.name.clone(), ds);
    }

    // 2. Jobs.
    let jobs = plan_jobs(suite, seed, &profile);
    let protocol = Protocol {
        id_domain: spec.metrics.id_domain.get_ref().clone(),
        shifts: spec.metrics.shifts.iter().map(|s| s.get_ref().clone()).collect(),
        generated_eval: spec.metrics.generated_eval.as_ref().map(|g| g.get_ref().clone()),
        transform: spec.metrics.transform.to_string(),
        flip_tta: spec.evaluation.flip_tta,
    };
    let mut eval_sets: Vec<(String, DomainRole)> = vec![(protocol.id_domain.clone(), DomainRole::Id)];
    eval_sets.extend(protocol.shifts.iter().map(|s| (s.clone(), DomainRole::Shift)));
    if let Some(g) = &protocol.generated_eval {
        eval_sets.push((g.clone(), DomainRole::Generated));
    }

    let ctx = JobContext {
        suite_name: suite.name().to_string(),
        suite_hash: suite.hash.clone(),
        datasets: &datasets,
        eval_sets: &eval_sets,
        protocol: &protocol,
        out: &opts.out,
        work: &work,
        device: &device,
        device_name: &device_name,
        multi: &multi,
        class_count: classes.len(),
        checkpoint_every_steps: spec.training.checkpoint_every_steps.as_ref().map(|n| *n.get_ref()),
        abort_after_step: abort_after_step()?,
    };
    move_stale_records(&opts.out, &work, &jobs, &eval_sets)?;

    // Longest jobs first so parallel workers finish together.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(job_cost(&jobs[i], &datasets)));
    let overall = multi.add(crate::progress::bar(jobs.len() as u64, "jobs"));
    let summary = Mutex::new(RunSummary { jobs: jobs.len(), ..Default::default() });
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| loop {
                if first_error.lock().expect("error slot").is_some() {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = order.get(k) else { return };
                match ctx.run_job(&jobs[i]) {
                    Ok(outcome) => {
                        let mut s = summary.lock().expect("summary");
                        match outcome {
                            JobOutcome::Skipped => s.skipped += 1,
                            JobOutcome::Evaluated(n) => {
                                s.evaluated_from_checkpoint += 1;
                                s.records_written += n
                            }
                            JobOutcome::Trained { records, resumed } => {
                                s.trained += 1;
                                s.resumed_mid_training += resumed as usize;
                                s.records_written += records
                            }
                        }
                        overall.inc(1);
                    }
                    Err(e) => {
                        *first_error.lock().expect("error slot") = Some(e.context(format!("job {} / {} / seed {}", jobs[i].name, jobs[i].regime, jobs[i].seed)));
                        return;
                    }
                }
            });
        }
    });
    overall.finish_and_clear();
    if let Some(e) = first_error.into_inner().expect("error slot") {
        return Err(e);
    }

    // 3. Leaderboard from the records alone.
    let records = crate::report::load_records(&opts.out)?;
    let lb = crate::report::build(&records)?;
    crate::report::write(&opts.out, &lb)?;
    Ok(summary.into_inner().expect("summary"))
}

fn render_real_domain(d: &DomainSpec, seed: u64, classes: &[usize], size: u32, profile: &Profile, multi: &MultiProgress) -> Dataset {
    let count = profile.size(*d.size.get_ref());
    let name = d.name.get_ref().clone();
    let pb = multi.add(crate::progress::bar(count as u64, &name));
    let images = render_domain(seed, &name, d.style, classes, count, size, &pb);
    pb.finish_and_clear();
    let key = json!({"kind": "procedural", "name": name, "style": d.style, "count": count, "size": size, "seed": seed, "classes": classes});
    Dataset { name, images, key, generated: false }
}

/// A suite's generator, ready to render.
pub enum SuiteGenerator<'a> {
    Procedural(ProceduralGenerator),
    StableDiffusion(&'a SdGenerator),
}

impl SuiteGenerator<'_> {
    pub fn as_dyn(&self) -> &dyn Generator {
        match self {
            SuiteGenerator::Procedural(g) => g,
            SuiteGenerator::StableDiffusion(g) => *g,
        }
    }

    /// What identifies the generator in cache keys (the procedural id alone, as before SD existed).
    fn key(&self) -> serde_json::Value {
        match self {
            SuiteGenerator::Procedural(g) => json!(g.id()),
            SuiteGenerator::StableDiffusion(g) => g.key(),
        }
    }
}

/// How one generated set is made under a profile: where `run` keeps it (and `generate` writes
/// it), its images, its generator and its dataset key.
pub struct GeneratedSetPlan<'a> {
    pub name: String,
    pub dir: PathBuf,
    pub count: usize,
    pub generator: SuiteGenerator<'a>,
    pub key: serde_json::Value,
    seed: u64,
    classes: Vec<usize>,
    size: u32,
}

impl GeneratedSetPlan<'_> {
    /// Generates (or resumes) the images `opts` selects into `dir` (the plan's own folder, or
    /// another such as a shard's); see [`generate_set_with`].
    pub fn generate(&self, dir: &Path, progress: &indicatif::ProgressBar, opts: &SetOptions) -> Result<(ImageSet, Vec<crate::generate::manifest::ManifestRow>, crate::generate::GenerateStats)> {
        generate_set_with(self.generator.as_dyn(), self.seed, &self.name, &self.classes, self.count, self.size, dir, progress, opts)
            .with_context(|| format!("generating set `{}` in {}", self.name, dir.display()))
    }
}

/// The plan of generated set `g` of `suite` (quick or full profile), with its folder under `work`.
pub fn generated_set_plan<'a>(suite: &Suite, g: &GeneratedSpec, seed: u64, quick: bool, work: &Path, sd: &'a BTreeMap<String, SdGenerator>) -> GeneratedSetPlan<'a> {
    let classes = suite.class_indices();
    let size = *suite.spec.suite.image_size.get_ref();
    let generator_spec = suite.generator(g.generator.get_ref()).expect("validated generator reference");
    let generator = match sd.get(generator_spec.name.get_ref()) {
        Some(s) => SuiteGenerator::StableDiffusion(s),
        None => SuiteGenerator::Procedural(ProceduralGenerator { templates: generator_spec.templates }),
    };
    let count = Profile::of(suite, quick).size(*g.size.get_ref());
    let name = g.name.get_ref().clone();
    let key = json!({"kind": "generated", "name": name, "generator": generator.key(), "count": count, "size": size, "seed": seed, "classes": classes});
    // Folder keyed by inputs: changing the generator or sizes never mixes old and new images.
    let dir = work.join("generated").join(format!("{name}-{}", &short_hash(&key)));
    GeneratedSetPlan { name, dir, count, generator, key, seed, classes, size }
}

fn make_generated_set(plan: &GeneratedSetPlan, multi: &MultiProgress) -> Result<Dataset> {
    let pb = multi.add(crate::progress::bar(plan.count as u64, &plan.name));
    let (images, _manifest, stats) = plan.generate(&plan.dir, &pb, &SetOptions::default())?;
    pb.finish_and_clear();
    crate::progress::say(format!("{}: {} images generated, {} reused from {}", plan.name, stats.rendered, stats.reused, plan.dir.display()));
    Ok(Dataset { name: plan.name.clone(), images, key: plan.key.clone(), generated: true })
}

fn model_config(m: &ModelSpec, classes: usize, size: u32) -> ArchConfig {
    m.arch(classes, size as usize)
}

fn plan_jobs(suite: &Suite, seed: u64, profile: &Profile) -> Vec<Job> {
    let spec = &suite.spec;
    let classes = spec.suite.classes.len();
    let size = *spec.suite.image_size.get_ref();
    let t = &spec.training;
    let config_for = |epochs: u32, augment: Augment, mix: Mix, job_seed: u64| TrainConfig {
        epochs: profile.epochs(epochs),
        batch_size: *t.batch_size.get_ref(),
        lr: *t.lr.get_ref(),
        momentum: *t.momentum.get_ref(),
        nesterov: t.nesterov,
        weight_decay: *t.weight_decay.get_ref(),
        label_smoothing: *t.label_smoothing.get_ref(),
        schedule: *t.schedule.get_ref(),
        peak_epoch: t.warmup() * profile.epoch_scale,
        milestones: t.milestones().iter().map(|m| m * profile.epoch_scale).collect(),
        gamma: t.gamma(),
        clip_grad_norm: t.clip_grad_norm.as_ref().map(|c| *c.get_ref()),
        augment,
        mix,
        seed: job_seed,
    };
    let mix_of = |r: &crate::suite::RegimeSpec| r.mix.as_ref().map_or(Mix::Concat, |m| Mix::GeneratedFraction(*m.generated_fraction.get_ref()));
    let mut jobs = Vec::new();
    let testbed_regime = suite.regime(spec.testbed.regime.get_ref()).expect("validated regime");
    for m in &spec.testbed.members {
        let model = suite.model(m.model.get_ref()).expect("validated model");
        let epochs = m.epochs.as_ref().map(|e| *e.get_ref()).unwrap_or(*t.epochs.get_ref());
        let job_seed = crate::rng::derive_seed(seed, &format!("job/testbed/{}", m.name.get_ref()), 0);
        jobs.push(Job {
            role: Role::Testbed,
            name: m.name.get_ref().clone(),
            model: model_config(model, classes, size),
            regime: testbed_regime.name.get_ref().clone(),
            train_sets: testbed_regime.train_on.iter().map(|s| s.get_ref().clone()).collect(),
            train_fraction: *m.train_fraction.get_ref(),
            config: config_for(epochs, testbed_regime.augment, mix_of(testbed_regime), job_seed),
            seed: spec.suite.seed,
        });
    }
    for model_name in &spec.leaderboard.models {
        let model = suite.model(model_name.get_ref()).expect("validated model");
        for regime_name in &spec.leaderboard.regimes {
            let regime = suite.regime(regime_name.get_ref()).expect("validated regime");
            for &train_seed in &spec.leaderboard.seeds {
                let purpose = format!("job/entry/{}/{}", model_name.get_ref(), regime_name.get_ref());
                jobs.push(Job {
                    role: Role::Entry,
                    name: model_name.get_ref().clone(),
                    model: model_config(model, classes, size),
                    regime: regime_name.get_ref().clone(),
                    train_sets: regime.train_on.iter().map(|s| s.get_ref().clone()).collect(),
                    train_fraction: 1.0,
                    config: config_for(*t.epochs.get_ref(), regime.augment, mix_of(regime), crate::rng::derive_seed(seed, &purpose, train_seed)),
                    seed: train_seed,
                });
            }
        }
    }
    jobs
}

fn job_train_images(job: &Job, datasets: &BTreeMap<String, Dataset>) -> usize {
    let n: usize = job.train_sets.iter().map(|s| datasets[s].images.len()).sum();
    ((n as f64 * job.train_fraction).round() as usize).max(1)
}

/// Rough cost of a job (image-steps × a width factor), for scheduling only.
fn job_cost(job: &Job, datasets: &BTreeMap<String, Dataset>) -> u64 {
    (job_train_images(job, datasets) as u64) * job.config.epochs as u64 * job.model.cost_factor()
}

fn short_hash(v: &serde_json::Value) -> String {
    crate::fsutil::sha256_hex(v.to_string().as_bytes())[..16].to_string()
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
    suite_name: String,
    suite_hash: String,
    datasets: &'a BTreeMap<String, Dataset>,
    eval_sets: &'a [(String, DomainRole)],
    protocol: &'a Protocol,
    out: &'a Path,
    work: &'a Path,
    device: &'a Device,
    device_name: &'a str,
    multi: &'a MultiProgress,
    class_count: usize,
    checkpoint_every_steps: Option<u64>,
    abort_after_step: Option<u64>,
}

impl JobContext<'_> {
    /// Everything that determines the trained weights. Options added after the first release
    /// enter only when they differ from their default, so existing jobs keep their keys.
    fn train_key(&self, job: &Job) -> serde_json::Value {
        let c = &job.config;
        let mut key = json!({
            "harness": crate::HARNESS_VERSION,
            "model": job.model.key(),
            "train_sets": job.train_sets.iter().map(|s| &self.datasets[s].key).collect::<Vec<_>>(),
            "train_fraction": job.train_fraction,
            "config": {
                "epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr, "momentum": c.momentum, "nesterov": c.nesterov,
                "weight_decay": c.weight_decay, "label_smoothing": c.label_smoothing, "schedule": c.schedule,
                "peak_epoch": c.peak_epoch, "augment": c.augment, "seed": c.seed,
            },
        });
        let config = key["config"].as_object_mut().expect("config is an object");
        if c.schedule == crate::suite::Schedule::Step {
            config.insert("milestones".into(), json!(c.milestones));
            config.insert("gamma".into(), json!(c.gamma));
        }
        if let Some(clip) = c.clip_grad_norm {
            config.insert("clip_grad_norm".into(), json!(clip));
        }
        if let Mix::GeneratedFraction(f) = c.mix {
            config.insert("generated_fraction".into(), json!(f));
        }
        key
    }

    fn record_key(&self, train_hash: &str, eval_set: &str) -> String {
        let v = json!({"train": train_hash, "eval": self.datasets[eval_set].key, "protocol": self.protocol});
        crate::fsutil::sha256_hex(v.to_string().as_bytes())
    }

    fn run_job(&self, job: &Job) -> Result<JobOutcome> {
        let train_key = self.train_key(job);
        let train_hash = crate::fsutil::sha256_hex(train_key.to_string().as_bytes());
        let pending: Vec<(&str, DomainRole, String)> = self
            .eval_sets
            .iter()
            .map(|(set, role)| (set.as_str(), *role, self.record_key(&train_hash, set)))
            .filter(|(set, _, key)| {
                let path = self.out.join(record_file_name(job.role, &job.name, &job.regime, job.seed, set));
                !record_matches(&path, key)
            })
            .collect();
        if pending.is_empty() {
            return Ok(JobOutcome::Skipped);
        }

        let mut model = ResNet::new(job.model.clone(), crate::rng::derive_seed(job.config.seed, "init", 0), self.device)?;
        let checkpoint = self.work.join("checkpoints").join(format!("{train_hash}.safetensors"));
        let meta_path = checkpoint.with_extension("json");
        let (trained, resumed, final_loss) = if checkpoint.exists() && meta_path.exists() {
            // A checkpoint from before torchvision naming has the right key but other tensor names.
            model.load(&checkpoint).with_context(|| format!("delete {} and {} to retrain this job", checkpoint.display(), meta_path.display()))?;
            let corrupt = || format!("{} is corrupt; delete it and its .safetensors to retrain", meta_path.display());
            let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path)?).with_context(corrupt)?;
            (false, false, meta["final_loss"].as_f64().with_context(corrupt)?)
        } else {
            // Only a job that trains needs its images gathered into one set.
            let (train_images, generated_start) = self.training_set(job);
            let data = TrainData { images: &train_images, generated_start };
            let label = format!("{}/{}", job.name, job.regime);
            let steps = total_steps(data, &job.config)?;
            let partial = self.work.join("partial").join(&train_hash);
            let opts = TrainOptions {
                checkpoint: self.checkpoint_every_steps.map(|every_steps| CheckpointPlan { dir: partial.clone(), every_steps }),
                ..TrainOptions::default()
            };
            let pb = self.multi.add(crate::progress::bar(steps, &label));
            let abort = self.abort_after_step;
            let outcome = train_with(&mut model, data, &job.config, &opts, self.device, |step, _, loss| {
                pb.inc(1);
                pb.set_message(format!("loss {loss:.3}"));
                if abort == Some(step) {
                    eprintln!("{ABORT_ENV}: exiting after step {step} of {label}");
                    std::process::exit(3);
                }
            })?;
            pb.finish_and_clear();
            model.save(&checkpoint)?;
            crate::fsutil::write_atomic(&meta_path, json!({"final_loss": outcome.final_loss, "key": train_key}).to_string().as_bytes())?;
            if partial.exists() {
                std::fs::remove_dir_all(&partial).with_context(|| format!("cannot remove finished job's partial checkpoints {}", partial.display()))?;
            }
            (true, outcome.resumed_from.is_some(), outcome.final_loss)
        };

        let summary = TrainSummary {
            arch: job.model.describe(),
            parameters: model.parameter_count(),
            train_images: job_train_images(job, self.datasets) as u64,
            epochs: job.config.epochs,
            final_loss: round_to(final_loss, 6),
        };
        for (set, role, key) in &pending {
            let data = &self.datasets[*set].images;
            let predictions = predict_with(&mut model, data, self.device, self.protocol.flip_tta)?;
            let record = self.record(job, set, *role, data, &predictions, &summary, key);
            let path = self.out.join(record.file_name());
            let mut text = serde_json::to_string_pretty(&record)?;
            text.push('\n');
            crate::fsutil::write_atomic(&path, text.as_bytes())?;
        }
        Ok(if trained { JobOutcome::Trained { records: pending.len(), resumed } } else { JobOutcome::Evaluated(pending.len()) })
    }

    /// The job's training images, and the index where its generated images start when they are
    /// mixed per batch (real sets first, then generated ones).
    fn training_set(&self, job: &Job) -> (ImageSet, usize) {
        let fraction = |set: ImageSet| {
            // Sets are label-balanced in index order, so a prefix stays balanced.
            if job.train_fraction < 1.0 {
                let n = ((set.len() as f64 * job.train_fraction).round() as usize).max(1);
                set.truncated(n)
            } else {
                set
            }
        };
        if job.config.mix == Mix::Concat {
            let parts: Vec<&ImageSet> = job.train_sets.iter().map(|s| &self.datasets[s].images).collect();
            let all = ImageSet::concat(&parts);
            let all = if job.train_fraction < 1.0 { all.truncated(job_train_images(job, self.datasets)) } else { all };
            let n = all.len();
            return (all, n);
        }
        let part = |generated: bool| {
            let sets: Vec<&ImageSet> =
                job.train_sets.iter().map(|s| &self.datasets[s]).filter(|d| d.generated == generated).map(|d| &d.images).collect();
            fraction(ImageSet::concat(&sets))
        };
        let (real, generated) = (part(false), part(true));
        let start = real.len();
        (ImageSet::concat(&[&real, &generated]), start)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(&self, job: &Job, set: &str, role: DomainRole, data: &ImageSet, predictions: &[u32], summary: &TrainSummary, record_key: &str) -> RunRecord {
        let mut per_class_total = vec![0u64; self.class_count];
        let mut per_class_correct = vec![0u64; self.class_count];
        for (&p, &l) in predictions.iter().zip(&data.labels) {
            per_class_total[l as usize] += 1;
            if p == l {
                per_class_correct[l as usize] += 1;
            }
        }
        RunRecord {
            schema: RECORD_SCHEMA,
            suite: self.suite_name.clone(),
            role: job.role,
            model: job.name.clone(),
            regime: job.regime.clone(),
            seed: job.seed,
            domain: set.to_string(),
            domain_role: role,
            n: data.len() as u64,
            correct: per_class_correct.iter().sum(),
            per_class_total,
            per_class_correct,
            protocol: self.protocol.clone(),
            train: summary.clone(),
            provenance: Provenance {
                harness_version: crate::HARNESS_VERSION.to_string(),
                git_revision: crate::GIT_REVISION.to_string(),
                suite_hash: self.suite_hash.clone(),
                lock_hash: "none".to_string(),
                job_hash: record_key.to_string(),
                device: self.device_name.to_string(),
            },
        }
    }
}

/// Rounds for storage so a record's bytes do not hinge on the last bits of a float sum.
fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// True when `path` holds a readable record produced from exactly these inputs.
fn record_matches(path: &Path, key: &str) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
        .is_some_and(|r| r.provenance.job_hash == key)
}

/// Moves records that the current plan would not write (a model or domain removed from the
/// suite, a renamed regime) out of `records/` so they cannot leak into the leaderboard.
/// They are kept, not deleted, under `work/stale-records/`. Temporary files of writes that a
/// kill interrupted are removed.
fn move_stale_records(out: &Path, work: &Path, jobs: &[Job], eval_sets: &[(String, DomainRole)]) -> Result<()> {
    let root = out.join("records");
    if !root.exists() {
        return Ok(());
    }
    let expected: std::collections::BTreeSet<PathBuf> = jobs
        .iter()
        .flat_map(|j| eval_sets.iter().map(move |(s, _)| out.join(record_file_name(j.role, &j.name, &j.regime, j.seed, s))))
        .collect();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_dir() {
                stack.push(path);
            } else if hidden && path.extension().is_some_and(|e| e == "tmp") {
                // A write interrupted by a kill: never a record, safe to drop.
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            } else if path.extension().is_some_and(|e| e == "json") && !expected.contains(&path) {
                let rel = path.strip_prefix(out).expect("under out");
                let dest = work.join("stale-records").join(rel);
                std::fs::create_dir_all(dest.parent().expect("has parent"))?;
                std::fs::rename(&path, &dest).with_context(|| format!("cannot move stale record {}", path.display()))?;
                crate::progress::say(format!("moved stale record {} to {}", rel.display(), dest.display()));
            }
        }
    }
    Ok(())
}
