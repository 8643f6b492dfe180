//! Planning: a resolved suite, a seed and a profile in; the data to make, the training jobs and
//! the evaluation protocol out. Pure: nothing here reads or writes files, so `run`, `generate`
//! and `check` see one plan, and tests can inspect it without training anything.

use crate::data::procedural::DomainStyle;
use crate::data::ImageSet;
use crate::generate::{generate_set_with, Conditioning, GenerateStats, Generator, ManifestRow, RealSource, SetOptions};
use crate::model::ArchConfig;
use crate::record::{DomainRole, Protocol, Role, SourceKind, SweepPoint, TrainSource};
use crate::generate::sd::WeightsSource;
use crate::suite::{DomainData, GeneratorBackend, GeneratorConfig, Regime, SuiteConfig};
use crate::train::TrainConfig;
use anyhow::{Context, Result};
use std::path::Path;

/// Sizes and epochs after the `--quick` profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    size_scale: f64,
    epoch_scale: f64,
    classes: usize,
}

impl Profile {
    /// The suite's full profile, or its `[quick]` one.
    pub fn of(config: &SuiteConfig, quick: bool) -> Profile {
        let classes = config.classes.len();
        if quick {
            Profile { size_scale: config.quick.size_scale, epoch_scale: config.quick.epoch_scale, classes }
        } else {
            Profile { size_scale: 1.0, epoch_scale: 1.0, classes }
        }
    }

    /// Images of a set of `n` (at least one per class when scaled down).
    pub fn size(&self, n: usize) -> usize {
        if self.size_scale >= 1.0 {
            n
        } else {
            ((n as f64 * self.size_scale).round() as usize).max(self.classes)
        }
    }

    pub fn epochs(&self, e: u32) -> u32 {
        ((e as f64 * self.epoch_scale).round() as u32).max(1)
    }

    /// Optimiser steps of a generator that trains for `n` (at least one): its work scales with
    /// both the data and the epochs, so the quick profile scales it by both.
    pub fn steps(&self, n: u64) -> u64 {
        ((n as f64 * self.epoch_scale * self.size_scale.min(1.0)).round() as u64).max(1)
    }
}

/// One procedural domain to render (file-backed domains are not planned: they are read as they are).
#[derive(Clone, Debug, PartialEq)]
pub struct DomainPlan {
    pub name: String,
    pub style: DomainStyle,
    pub count: usize,
}

/// How one generated set is made under a profile.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedSetPlan {
    pub name: String,
    /// Whose random streams its images come from (the name, or a swept set's base set).
    pub stream: String,
    /// The `[[generators]]` entry that makes it.
    pub generator: String,
    pub count: usize,
    pub size: u32,
    pub seed: u64,
    pub classes: Vec<usize>,
    /// The real images an image-conditioned generator starts from, as this plan renders them.
    pub source: Option<RealSource>,
}

impl GeneratedSetPlan {
    /// Generates (or resumes) the images `opts` selects into `dir` (the set's own folder, or
    /// another such as a shard's); see [`generate_set_with`].
    pub fn generate(&self, generator: &dyn Generator, dir: &Path, progress: &indicatif::ProgressBar, opts: &SetOptions) -> Result<(ImageSet, Vec<ManifestRow>, GenerateStats)> {
        generate_set_with(generator, self.seed, &self.stream, &self.classes, self.count, self.size, dir, progress, opts)
            .with_context(|| format!("generating set `{}` in {}", self.name, dir.display()))
    }
}

/// A training job: one classifier, (role, model, regime, training seed).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub role: Role,
    /// Row name: the model for entries, the member name for testbed models.
    pub name: String,
    pub model: ArchConfig,
    pub regime: String,
    pub train_sets: Vec<String>,
    pub train_fraction: f64,
    pub config: TrainConfig,
    /// The seed recorded in the job's rows (the training seed of an entry).
    pub seed: u64,
    /// The sweep value its regime was derived with, recorded in its rows.
    pub sweep: Option<SweepPoint>,
}

/// Everything a run of a suite does, before it does it.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The suite seed in force (`--seed` or the suite's).
    pub seed: u64,
    pub image_size: u32,
    /// The procedural world's classes, in label order (empty for a published vocabulary).
    pub classes: Vec<usize>,
    /// Classes of the suite's label space.
    pub num_classes: usize,
    pub profile: Profile,
    pub domains: Vec<DomainPlan>,
    pub generated: Vec<GeneratedSetPlan>,
    pub jobs: Vec<Job>,
    pub protocol: Protocol,
    /// Every job is evaluated on these sets, in this order.
    pub eval_sets: Vec<(String, DomainRole)>,
}

impl Plan {
    /// The plan of `config` under `seed` and the quick or full profile.
    pub fn new(config: &SuiteConfig, seed: u64, quick: bool) -> Plan {
        let profile = Profile::of(config, quick);
        // File-backed domains are read as they are (`prepare` opens them); only the procedural
        // world is rendered, at the profile's size.
        let domains: Vec<DomainPlan> = config
            .domains
            .iter()
            .filter_map(|d| match d.data {
                DomainData::Procedural { style, size } => Some(DomainPlan { name: d.name.clone(), style, count: profile.size(size) }),
                DomainData::Files(_) => None,
            })
            .collect();
        let source_of = |generator: &str| {
            let name = config.generator(generator)?.conditioning.source()?;
            let d = domains.iter().find(|d| d.name == name)?;
            Some(RealSource { domain: d.name.clone(), style: d.style, count: d.count, seed })
        };
        let generated = config
            .generated
            .iter()
            .map(|g| GeneratedSetPlan {
                name: g.name.clone(),
                stream: g.stream.clone(),
                generator: g.generator.clone(),
                count: profile.size(g.size),
                size: config.image_size,
                seed,
                classes: config.classes.clone(),
                source: source_of(&g.generator),
            })
            .collect();
        let m = &config.metrics;
        let protocol = Protocol {
            id_domain: m.id_domain.clone(),
            shifts: m.shifts.clone(),
            generated_eval: m.generated_eval.clone(),
            transform: m.transform.to_string(),
            flip_tta: config.flip_tta,
            id_axes: m.id_axes.clone(),
            reference_fits: m.reference_fits.clone(),
            // Read from the table's artifact when records are made (`robustness::baseline`).
            baseline_table: None,
        };
        let mut eval_sets = vec![(protocol.id_domain.clone(), DomainRole::Id)];
        eval_sets.extend(protocol.id_axes.iter().map(|s| (s.clone(), DomainRole::Id)));
        eval_sets.extend(protocol.shifts.iter().map(|s| (s.clone(), DomainRole::Shift)));
        if let Some(g) = &protocol.generated_eval {
            eval_sets.push((g.clone(), DomainRole::Generated));
        }
        Plan {
            seed,
            image_size: config.image_size,
            classes: config.classes.clone(),
            num_classes: config.num_classes(),
            profile,
            domains,
            generated,
            jobs: plan_jobs(config, seed, &profile),
            protocol,
            eval_sets,
        }
    }

    /// Images in set `name` under this plan (0 for a name the plan does not make).
    pub fn set_size(&self, name: &str) -> usize {
        let domain = self.domains.iter().find(|d| d.name == name).map(|d| d.count);
        domain.or_else(|| self.generated.iter().find(|g| g.name == name).map(|g| g.count)).unwrap_or(0)
    }

    /// Training images a job actually uses.
    pub fn train_images(&self, job: &Job) -> usize {
        let n: usize = job.train_sets.iter().map(|s| self.set_size(s)).sum();
        ((n as f64 * job.train_fraction).round() as usize).max(1)
    }

    /// Rough cost of a job (image-steps × a width factor), for scheduling only.
    pub fn job_cost(&self, job: &Job) -> u64 {
        (self.train_images(job) as u64) * job.config.epochs as u64 * job.model.cost_factor()
    }
}

/// Whether a run of `config` reads the lock file: it names artifacts, or a Stable Diffusion
/// generator takes its weights from one (`artifact:NAME`, from the suite or `--weights`).
pub fn reads_lock(config: &SuiteConfig, weights_override: Option<&str>) -> bool {
    let sd_from_lock = config.generators.iter().any(|g| match &g.backend {
        GeneratorBackend::StableDiffusion(c) => matches!(crate::generate::sd::weights_source(c, weights_override), WeightsSource::Artifact(_)),
        GeneratorBackend::Procedural | GeneratorBackend::Diffusion(_) => false,
    });
    !config.artifacts.is_empty() || sd_from_lock
}

fn plan_jobs(config: &SuiteConfig, seed: u64, profile: &Profile) -> Vec<Job> {
    // An evaluation-only suite trains nothing.
    let Some(t) = &config.training else { return Vec::new() };
    let train_config = |epochs: u32, regime: &Regime, job_seed: u64| TrainConfig {
        epochs: profile.epochs(epochs),
        batch_size: t.batch_size,
        lr: t.lr,
        momentum: t.momentum,
        nesterov: t.nesterov,
        weight_decay: t.weight_decay,
        label_smoothing: t.label_smoothing,
        schedule: t.schedule,
        peak_epoch: t.warmup * profile.epoch_scale,
        milestones: t.milestones.iter().map(|m| m * profile.epoch_scale).collect(),
        gamma: t.gamma,
        clip_grad_norm: t.clip_grad_norm,
        augment: regime.augment,
        mix: regime.mix,
        seed: job_seed,
    };
    // The validator checked every reference below; a dangling one would plan no job.
    let mut jobs = Vec::new();
    if let Some(regime) = config.regime(&config.testbed.regime) {
        for m in &config.testbed.members {
            let Some(model) = config.model(&m.model) else { continue };
            jobs.push(Job {
                role: Role::Testbed,
                name: m.name.clone(),
                model: model.arch.clone(),
                regime: regime.name.clone(),
                train_sets: regime.train_on.clone(),
                train_fraction: m.train_fraction,
                config: train_config(m.epochs, regime, crate::rng::derive_seed(seed, &format!("job/testbed/{}", m.name), 0)),
                seed: config.seed,
                sweep: regime.sweep.clone(),
            });
        }
    }
    for model in config.leaderboard.models.iter().filter_map(|m| config.model(m)) {
        for regime in config.leaderboard.regimes.iter().filter_map(|r| config.regime(r)) {
            for &train_seed in &config.leaderboard.seeds {
                let purpose = format!("job/entry/{}/{}", model.name, regime.name);
                jobs.push(Job {
                    role: Role::Entry,
                    name: model.name.clone(),
                    model: model.arch.clone(),
                    regime: regime.name.clone(),
                    train_sets: regime.train_on.clone(),
                    train_fraction: 1.0,
                    config: train_config(t.epochs, regime, crate::rng::derive_seed(seed, &purpose, train_seed)),
                    seed: train_seed,
                    sweep: regime.sweep.clone(),
                });
            }
        }
    }
    jobs
}

/// What `job` trains on, set by set, for its records ([`crate::record::TrainSource`]).
pub fn train_sources(config: &SuiteConfig, plan: &Plan, job: &Job) -> Vec<TrainSource> {
    job.train_sets
        .iter()
        .map(|set| {
            let images = plan.set_size(set) as u64;
            let generator = config.generated.iter().find(|g| &g.name == set).and_then(|g| config.generator(&g.generator));
            match generator {
                None => TrainSource { set: set.clone(), kind: SourceKind::Real, images, generator: None, templates: None, conditioning: None, strength: None, source: None, variant: None },
                // A diffusion model the harness trains is conditioned on the class alone; its
                // variant (base or fine-tuned weights) is what RQ4 compares.
                Some(g @ GeneratorConfig { backend: GeneratorBackend::Diffusion(d), .. }) => TrainSource {
                    set: set.clone(),
                    kind: SourceKind::Generated,
                    images,
                    generator: Some(g.backend.kind_name().to_string()),
                    templates: None,
                    conditioning: Some("class".into()),
                    strength: None,
                    source: None,
                    variant: Some(d.variant.clone()),
                },
                Some(g) => TrainSource {
                    set: set.clone(),
                    kind: SourceKind::Generated,
                    images,
                    generator: Some(g.backend.kind_name().to_string()),
                    templates: (!matches!(g.conditioning, Conditioning::Image { .. })).then(|| g.templates.name().to_string()),
                    conditioning: Some(g.conditioning.name().to_string()),
                    strength: g.conditioning.strength(),
                    source: g.conditioning.source().map(str::to_string),
                    variant: None,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn shapes() -> SuiteConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml");
        Suite::load(&path).unwrap().config
    }

    #[test]
    fn quick_profile_scales_sizes_and_epochs_but_keeps_a_floor() {
        let config = shapes();
        let full = Plan::new(&config, config.seed, false);
        let quick = Plan::new(&config, config.seed, true);
        assert_eq!(full.jobs.len(), quick.jobs.len());
        for (f, q) in full.domains.iter().zip(&quick.domains) {
            assert!(q.count < f.count && q.count >= config.classes.len(), "{} {} -> {}", f.name, f.count, q.count);
        }
        assert!(quick.jobs.iter().zip(&full.jobs).all(|(q, f)| q.config.epochs <= f.config.epochs && q.config.epochs >= 1));
    }

    #[test]
    fn every_job_is_evaluated_on_id_shifts_and_generated_eval_in_order() {
        let config = shapes();
        let plan = Plan::new(&config, 0, true);
        let names: Vec<&str> = plan.eval_sets.iter().map(|(n, _)| n.as_str()).collect();
        let mut expected = vec![config.metrics.id_domain.as_str()];
        expected.extend(config.metrics.shifts.iter().map(String::as_str));
        expected.extend(config.metrics.generated_eval.as_deref());
        assert_eq!(names, expected);
        let entries = plan.jobs.iter().filter(|j| j.role == Role::Entry).count();
        assert_eq!(entries, config.leaderboard.models.len() * config.leaderboard.regimes.len() * config.leaderboard.seeds.len());
    }

    #[test]
    fn the_seed_changes_every_job_stream_but_not_the_job_list() {
        let config = shapes();
        let (a, b) = (Plan::new(&config, 0, false), Plan::new(&config, 1, false));
        assert_eq!(a.jobs.len(), b.jobs.len());
        for (x, y) in a.jobs.iter().zip(&b.jobs) {
            assert_eq!((&x.name, &x.regime, x.seed), (&y.name, &y.regime, y.seed));
            assert_ne!(x.config.seed, y.config.seed);
        }
    }

    /// shapes.toml with its `procedural` generator's keys replaced by `keys`.
    fn with_generator(keys: &str) -> SuiteConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml");
        let text = std::fs::read_to_string(&path).unwrap().replacen("kind = \"procedural\"\ntemplates = \"clip-imagenet-80\"", &format!("kind = \"procedural\"\n{keys}"), 1);
        Suite::parse(&text, &path).unwrap().config
    }

    #[test]
    fn conditioning_enters_generated_set_and_job_keys_and_the_records_sources() {
        let variants = [
            "templates = \"clip-imagenet-80\"",
            "templates = \"photo-of\"",
            "conditioning = \"image\"\nsource = \"train\"",
            "templates = \"clip-imagenet-80\"\nconditioning = \"text+image\"\nsource = \"train\"\nstrength = 0.5",
            "templates = \"clip-imagenet-80\"\nconditioning = \"text+image\"\nsource = \"train\"\nstrength = 0.75",
        ];
        let prepared = crate::generate::PreparedGenerators::default();
        let mut set_keys = Vec::new();
        let mut job_keys = Vec::new();
        for keys in variants {
            let config = with_generator(keys);
            let plan = Plan::new(&config, config.seed, true);
            let mut datasets: std::collections::BTreeMap<String, serde_json::Value> = plan
                .domains
                .iter()
                .map(|d| (d.name.clone(), crate::keys::procedural_domain(&d.name, d.style, d.count, plan.image_size, plan.seed, &plan.classes)))
                .collect();
            for g in &plan.generated {
                datasets.insert(g.name.clone(), crate::prepare::generated_set_source(&config, g, &prepared, Path::new("/work")).unwrap().key);
            }
            set_keys.push(datasets["gen-train"].clone());
            let job = plan.jobs.iter().find(|j| j.regime == "real+generated").unwrap();
            job_keys.push(crate::keys::hash(&crate::keys::train_job(job, |s| &datasets[s])));
            let sources = train_sources(&config, &plan, job);
            assert_eq!(sources.iter().map(|s| (s.set.as_str(), s.kind)).collect::<Vec<_>>(), [("train", SourceKind::Real), ("gen-train", SourceKind::Generated)]);
            let g = &sources[1];
            assert_eq!(g.generator.as_deref(), Some("procedural"));
            assert_eq!(g.images, plan.set_size("gen-train") as u64);
            match keys {
                k if k.contains("text+image") => assert_eq!((g.conditioning.as_deref(), g.source.as_deref(), g.strength.is_some()), (Some("text+image"), Some("train"), true)),
                k if k.contains("image\"") => assert_eq!((g.conditioning.as_deref(), g.templates.as_deref(), g.source.as_deref()), (Some("image"), None, Some("train"))),
                _ => assert_eq!((g.conditioning.as_deref(), g.source.as_deref(), g.strength), (Some("text"), None, None)),
            }
        }
        // The text set keeps the key it had before conditioning existed: a bare generator id.
        assert_eq!(set_keys[0]["generator"], serde_json::json!("procedural-v1/clip-imagenet-80"));
        for (i, a) in job_keys.iter().enumerate() {
            for b in &job_keys[i + 1..] {
                assert_ne!(a, b, "every conditioning option changes the job key");
            }
        }
    }
}
