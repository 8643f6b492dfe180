//! The resolved suite: plain values with every default applied, the only form the runtime reads.
//!
//! The file schema ([`super::SuiteFile`]) keeps each value's position for error messages; once
//! validation has passed, positions are of no use and optional keys have one meaning each. This
//! module turns one into the other, so defaults (the preset's sampling values, the epochs of a
//! testbed member, the quick profile) are written down once, here.

use super::{ConditioningKind, DomainSpec, GeneratedSpec, GeneratedUse, GeneratorKind, GeneratorSpec, ModelSpec, RegimeSpec, Split, SuiteFile, TrainingSpec};
use crate::data::image::Preprocess;
use crate::data::imageset::Layout;
use crate::fetch::lock::Expect;
use std::path::{Path, PathBuf};
use crate::data::procedural::{DomainStyle, CLASS_NAMES};
use crate::generate::sd::preset::{DTypeChoice, Preset, SdConfig};
use crate::generate::{Conditioning, TemplateSet};
use crate::metrics::Transform;
use crate::data::imageset::Vocabulary;
use crate::eval::ScoringRule;
use crate::record::{ProtocolFit, SweepPoint};
use crate::robustness::pairing::{Pairing, ProtocolPreset};
use crate::model::{ArchConfig, BlockKind, Stem};
use crate::train::{Augment, Mix, Schedule};
use toml::Spanned;

/// A validated suite with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteConfig {
    pub name: String,
    pub description: String,
    /// Root of every random stream (before `--seed`).
    pub seed: u64,
    pub image_size: u32,
    /// Class indices into the procedural world's [`CLASS_NAMES`], in label order (empty for a
    /// suite with a published `vocabulary`).
    pub classes: Vec<usize>,
    /// The label space every record's classes are indexed by: the procedural classes by name,
    /// or a published vocabulary (ImageNet's 1000).
    pub vocabulary: Vocabulary,
    /// Names of `datasets.lock` artifacts the suite reads.
    pub artifacts: Vec<String>,
    pub domains: Vec<Domain>,
    pub generators: Vec<GeneratorConfig>,
    pub generated: Vec<GeneratedSet>,
    pub regimes: Vec<Regime>,
    pub models: Vec<Model>,
    /// `None` for an evaluation-only suite (then nothing is trained: no testbed, no rows).
    pub training: Option<Training>,
    pub testbed: Testbed,
    pub leaderboard: LeaderboardPlan,
    pub metrics: Metrics,
    pub quick: QuickProfile,
    pub flip_tta: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    pub name: String,
    pub split: Split,
    pub data: DomainData,
}

/// Where a domain's images come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainData {
    /// Rendered by the procedural world: `size` images in `style`.
    Procedural { style: DomainStyle, size: usize },
    /// Read from image files (evaluation only). Boxed: it is ten times the procedural variant.
    Files(Box<FileDomain>),
}

/// A file-backed domain, resolved: paths are absolute or relative to the working folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FileDomain {
    pub source: FileSource,
    pub layout: Layout,
    /// The suite's eval transform for this set, with the scoring rule's border crop applied.
    pub preprocess: Preprocess,
    pub scoring: ScoringRule,
    /// `objectnet-classes`: the ObjectNet domain whose mapping files group the val classes.
    pub objectnet_from: Option<String>,
    /// Inside the source; `None`: the artifact's `expect.root`, else the source itself.
    pub root: Option<String>,
    pub labels: Option<PathBuf>,
    pub id_map: Option<PathBuf>,
    pub expect: Option<Expect>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FileSource {
    /// An archive of `datasets.lock`, read from the fetch cache's extraction.
    Artifact(String),
    Folder(PathBuf),
}

impl FileSource {
    /// `artifact:NAME` or `folder:PATH` (a relative PATH is taken from `base`, the suite's folder).
    pub fn parse(text: &str, base: &Path) -> Option<Self> {
        if let Some(name) = text.strip_prefix("artifact:") {
            return Some(FileSource::Artifact(name.to_string()));
        }
        text.strip_prefix("folder:").map(|p| FileSource::Folder(base.join(p)))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    pub name: String,
    pub templates: TemplateSet,
    pub backend: GeneratorBackend,
    /// Text, image or text + image (RQ2); a Stable Diffusion generator's text + image is its img2img.
    pub conditioning: Conditioning,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GeneratorBackend {
    Procedural,
    StableDiffusion(SdConfig),
    Diffusion(crate::generate::diffusion::DiffusionConfig),
}

impl GeneratorBackend {
    /// The suite's `kind` spelling.
    pub fn kind_name(&self) -> &'static str {
        match self {
            GeneratorBackend::Procedural => "procedural",
            GeneratorBackend::StableDiffusion(_) => "stable-diffusion",
            GeneratorBackend::Diffusion(_) => "diffusion",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedSet {
    pub name: String,
    /// Whose random streams the images come from: the set's own name, or for a set derived by a
    /// sweep its base set's (so a sweep's sizes are nested prefixes of one another).
    pub stream: String,
    pub generator: String,
    pub usage: GeneratedUse,
    pub size: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Regime {
    pub name: String,
    pub train_on: Vec<String>,
    pub augment: Augment,
    pub mix: Mix,
    /// Set for a regime derived by a `[[sweeps]]` entry: which sweep and value.
    pub sweep: Option<SweepPoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    pub arch: ArchConfig,
}

/// The training recipe shared by every job (epochs before the quick profile).
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub epochs: u32,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub label_smoothing: f64,
    pub schedule: Schedule,
    /// End of the linear warm-up in epochs (`peak_epoch` or `warmup_epochs`; 0: none).
    pub warmup: f64,
    pub milestones: Vec<f64>,
    pub gamma: f64,
    pub clip_grad_norm: Option<f64>,
    pub checkpoint_every_steps: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Testbed {
    pub regime: String,
    pub members: Vec<TestbedModel>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestbedModel {
    pub name: String,
    pub model: String,
    /// The member's own epochs, else `training.epochs`.
    pub epochs: u32,
    pub train_fraction: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardPlan {
    pub models: Vec<String>,
    pub regimes: Vec<String>,
    pub seeds: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub id_domain: String,
    pub id_axes: Vec<String>,
    pub shifts: Vec<String>,
    pub generated_eval: Option<String>,
    pub transform: Transform,
    /// Fixed fits from `reference_fits` (read and checked when the suite is loaded).
    pub reference_fits: Vec<ProtocolFit>,
    /// `[metrics.baseline_table]`, checked against the suite (its artifacts are read when
    /// records are made: `robustness::baseline`).
    pub baseline_table: Option<BaselineTable>,
}

/// A suite's baseline table: which artifacts, and the preset's pairings of the suite's shifts.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineTable {
    /// Artifact names (without `artifact:`).
    pub table: String,
    pub types: String,
    pub preset: ProtocolPreset,
    /// The preset's pairings whose shift column is a suite shift, in the suite's shift order;
    /// their columns are the suite's domain names.
    pub pairings: Vec<Pairing>,
}

/// The `[quick]` scale factors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuickProfile {
    pub size_scale: f64,
    pub epoch_scale: f64,
}

impl SuiteConfig {
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }

    pub fn generated_set(&self, name: &str) -> Option<&GeneratedSet> {
        self.generated.iter().find(|g| g.name == name)
    }

    pub fn generator(&self, name: &str) -> Option<&GeneratorConfig> {
        self.generators.iter().find(|g| g.name == name)
    }

    pub fn regime(&self, name: &str) -> Option<&Regime> {
        self.regimes.iter().find(|r| r.name == name)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Class names in label order.
    pub fn class_names(&self) -> Vec<&str> {
        self.vocabulary.ids.iter().map(String::as_str).collect()
    }

    /// Classes of the label space.
    pub fn num_classes(&self) -> usize {
        self.vocabulary.len()
    }

    /// Whether the suite trains anything (an evaluation-only suite is for `compare`).
    pub fn trains(&self) -> bool {
        self.training.is_some()
    }
}

fn text(s: &Spanned<String>) -> String {
    s.get_ref().clone()
}

fn texts(v: &[Spanned<String>]) -> Vec<String> {
    v.iter().map(text).collect()
}

fn opt<T: Clone>(v: &Option<Spanned<T>>) -> Option<T> {
    v.as_ref().map(|s| s.get_ref().clone())
}

/// Resolves a validated file. Every lookup below was checked by the validator; a value it did
/// not check falls back to a neutral default rather than panicking.
pub(super) fn resolve(file: &SuiteFile, path: &Path, reference_fits: Vec<ProtocolFit>, baseline_table: Option<BaselineTable>) -> SuiteConfig {
    let mut config = resolve_sections(file, path);
    config.metrics.reference_fits = reference_fits;
    config.metrics.baseline_table = baseline_table;
    super::sweep::expand(file, &mut config);
    config
}

fn resolve_sections(file: &SuiteFile, path: &Path) -> SuiteConfig {
    let base = path.parent().unwrap_or(Path::new(""));
    let s = &file.suite;
    let classes: Vec<usize> = s.classes.iter().filter_map(|c| CLASS_NAMES.iter().position(|n| n == c.get_ref())).collect();
    let image_size = *s.image_size.get_ref();
    let training = file.training.as_ref().map(resolve_training);
    let default_epochs = training.as_ref().map_or(0, |t| t.epochs);
    let vocabulary = match s.vocabulary.as_ref().map(|v| v.get_ref().as_str()) {
        Some(_) => Vocabulary::imagenet_1k(), // the only one the validator admits
        None => Vocabulary::named(&classes.iter().map(|&c| CLASS_NAMES[c]).collect::<Vec<_>>()),
    };
    let num_classes = vocabulary.len();
    SuiteConfig {
        vocabulary,
        name: text(&s.name),
        description: s.description.clone(),
        seed: s.seed,
        image_size,
        artifacts: texts(&s.artifacts),
        domains: file.domains.iter().map(|d| resolve_domain(d, base)).collect(),
        generators: file.generators.iter().map(resolve_generator).collect(),
        generated: file.generated.iter().map(resolve_generated).collect(),
        regimes: file.regimes.iter().map(resolve_regime).collect(),
        models: file.models.iter().map(|m| Model { name: text(&m.name), arch: resolve_arch(m, num_classes, image_size as usize) }).collect(),
        testbed: match &file.testbed {
            Some(t) => Testbed {
                regime: text(&t.regime),
                members: t
                    .members
                    .iter()
                    .map(|m| TestbedModel {
                        name: text(&m.name),
                        model: text(&m.model),
                        epochs: opt(&m.epochs).unwrap_or(default_epochs),
                        train_fraction: *m.train_fraction.get_ref(),
                    })
                    .collect(),
            },
            None => Testbed { regime: String::new(), members: Vec::new() },
        },
        training,
        leaderboard: match &file.leaderboard {
            Some(l) => LeaderboardPlan { models: texts(&l.models), regimes: texts(&l.regimes), seeds: l.seeds.iter().map(|s| *s.get_ref()).collect() },
            None => LeaderboardPlan { models: Vec::new(), regimes: Vec::new(), seeds: Vec::new() },
        },
        metrics: Metrics {
            id_domain: text(&file.metrics.id_domain),
            id_axes: texts(&file.metrics.id_axes),
            shifts: texts(&file.metrics.shifts),
            generated_eval: opt(&file.metrics.generated_eval),
            transform: file.metrics.transform,
            reference_fits: Vec::new(),
            baseline_table: None,
        },
        quick: QuickProfile { size_scale: *file.quick.size_scale.get_ref(), epoch_scale: *file.quick.epoch_scale.get_ref() },
        flip_tta: file.evaluation.flip_tta,
        classes,
    }
}

fn resolve_domain(d: &DomainSpec, base: &Path) -> Domain {
    let data = match (opt(&d.style), opt(&d.size)) {
        (Some(style), Some(size)) if d.source.get_ref() == "procedural" => DomainData::Procedural { style, size },
        _ => DomainData::Files(Box::new({
            let scoring = opt(&d.protocol).and_then(|p| ScoringRule::from_name(&p)).unwrap_or(ScoringRule::Full);
            let mut preprocess = Preprocess::parse(d.preprocess.as_ref().map_or("imagenet", |p| p.get_ref().as_str())).unwrap_or_else(|_| Preprocess::imagenet());
            if scoring.border() > 0 {
                preprocess.border = scoring.border();
            }
            FileDomain {
            source: FileSource::parse(d.source.get_ref(), base).unwrap_or(FileSource::Folder(PathBuf::new())),
            layout: opt(&d.layout).and_then(|l| Layout::from_name(&l)).unwrap_or(Layout::WnidFolders),
            preprocess,
            scoring,
            objectnet_from: opt(&d.objectnet_from),
            root: opt(&d.root),
            labels: opt(&d.labels).map(|p| base.join(p)),
            id_map: opt(&d.id_map).map(|p| base.join(p)),
            expect: opt(&d.expect),
        }})),
    };
    Domain { name: text(&d.name), split: d.split, data }
}

fn resolve_generated(g: &GeneratedSpec) -> GeneratedSet {
    GeneratedSet { name: text(&g.name), stream: text(&g.name), generator: text(&g.generator), usage: g.usage, size: *g.size.get_ref() }
}

fn resolve_regime(r: &RegimeSpec) -> Regime {
    Regime {
        name: text(&r.name),
        train_on: texts(&r.train_on),
        augment: r.augment,
        mix: r.mix.as_ref().map_or(Mix::Concat, |m| Mix::GeneratedFraction(*m.generated_fraction.get_ref())),
        sweep: None,
    }
}

/// `kind = "diffusion"` defaults: about 25 passes over 5,000 training images at 32 px, a U-Net
/// of 16/32 channels, and DDIM's 20-step setting (the documented cost is for these).
const DIFFUSION_STEPS: u64 = 2000;
const DIFFUSION_WIDTH: usize = 16;
const DIFFUSION_BATCH: usize = 64;
const DIFFUSION_LR: f64 = 1e-3;
const DIFFUSION_SAMPLE_STEPS: usize = 20;

/// A generator section; for Stable Diffusion, every key the suite leaves out takes the
/// preset's value (v1-5, the paper's model, when no preset is named).
fn resolve_generator(g: &GeneratorSpec) -> GeneratorConfig {
    let backend = match g.kind {
        GeneratorKind::Procedural => GeneratorBackend::Procedural,
        GeneratorKind::Diffusion => GeneratorBackend::Diffusion(crate::generate::diffusion::DiffusionConfig {
            variant: opt(&g.variant).unwrap_or_default(),
            base: opt(&g.base),
            train_on: g.train_on.as_deref().map(texts).unwrap_or_default(),
            steps: opt(&g.steps).map_or(DIFFUSION_STEPS, |s| s as u64),
            width: opt(&g.width).unwrap_or(DIFFUSION_WIDTH),
            batch_size: opt(&g.batch_size).unwrap_or(DIFFUSION_BATCH),
            lr: opt(&g.lr).unwrap_or(DIFFUSION_LR),
            sample_steps: opt(&g.sample_steps).unwrap_or(DIFFUSION_SAMPLE_STEPS),
        }),
        GeneratorKind::StableDiffusion => {
            let preset = opt(&g.preset).unwrap_or(Preset::V1_5);
            let (size, steps, guidance, scheduler) = preset.defaults();
            GeneratorBackend::StableDiffusion(SdConfig {
                preset,
                weights: opt(&g.weights),
                scheduler: opt(&g.scheduler).unwrap_or(scheduler),
                steps: opt(&g.steps).unwrap_or(steps),
                guidance: opt(&g.guidance).unwrap_or(guidance),
                size: opt(&g.size).unwrap_or(size),
                dtype: opt(&g.dtype).unwrap_or(DTypeChoice::Auto),
                batch_size: opt(&g.batch_size).unwrap_or(1),
                img2img: match (opt(&g.source), opt(&g.strength)) {
                    (Some(source), Some(strength)) => Some((source, strength)),
                    _ => None,
                },
            })
        }
    };
    // The validator saw that image conditioning has a source and text + image a strength too.
    let conditioning = match (g.conditioning_kind(), opt(&g.source), opt(&g.strength)) {
        (ConditioningKind::Image, Some(source), _) => Conditioning::Image { source },
        (ConditioningKind::TextImage, Some(source), Some(strength)) => Conditioning::TextImage { source, strength },
        _ => Conditioning::Text,
    };
    // Only image conditioning goes without templates, and it reads no prompt.
    GeneratorConfig { name: text(&g.name), templates: opt(&g.templates).unwrap_or(TemplateSet::PhotoOf), backend, conditioning }
}

fn resolve_training(t: &TrainingSpec) -> Training {
    Training {
        epochs: *t.epochs.get_ref(),
        batch_size: *t.batch_size.get_ref(),
        lr: *t.lr.get_ref(),
        momentum: *t.momentum.get_ref(),
        nesterov: t.nesterov,
        weight_decay: *t.weight_decay.get_ref(),
        label_smoothing: *t.label_smoothing.get_ref(),
        schedule: *t.schedule.get_ref(),
        warmup: opt(&t.peak_epoch).or(opt(&t.warmup_epochs)).unwrap_or(0.0),
        milestones: opt(&t.milestones).unwrap_or_default(),
        gamma: opt(&t.gamma).unwrap_or(0.1),
        clip_grad_norm: opt(&t.clip_grad_norm),
        checkpoint_every_steps: opt(&t.checkpoint_every_steps),
    }
}

/// The network a `[[models]]` entry describes, for `num_classes` classes at `image_size` pixels.
fn resolve_arch(m: &ModelSpec, num_classes: usize, image_size: usize) -> ArchConfig {
    let mut config = match &m.arch {
        Some(a) => a.get_ref().config(num_classes, image_size),
        None => {
            let layers = match (opt(&m.layers), opt(&m.blocks), opt(&m.stages)) {
                (Some(l), _, _) => l,
                (None, Some(blocks), Some(stages)) => vec![blocks; stages],
                _ => Vec::new(), // refused by the validator
            };
            ArchConfig {
                stem: Stem::Small,
                block: opt(&m.block).unwrap_or(BlockKind::Basic),
                layers,
                width: opt(&m.width).unwrap_or(1),
                num_classes,
                image_size,
            }
        }
    };
    if let Some(stem) = opt(&m.stem) {
        config.stem = stem;
    }
    if let Some(w) = opt(&m.width) {
        config.width = w;
    }
    config.scaled(opt(&m.width_multiplier).unwrap_or(1.0), opt(&m.depth_multiplier).unwrap_or(1.0))
}
