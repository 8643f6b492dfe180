//! Suites: the declarative TOML files in `suites/` that say what to generate, train and measure.
//!
//! Parsing is strict. Unknown keys and wrong types are rejected by serde; references between
//! sections (a regime naming a domain, a testbed member naming a model, ...) are checked here.
//! Every error names the file, the line and column, and the key, so a user can fix it without
//! reading this code.

use crate::config_error::{error_at, parse_toml, ConfigError};
use crate::data::procedural::DomainStyle;
use crate::generate::sd::preset::{DTypeChoice, Preset, SchedulerKind};
use crate::generate::TemplateSet;
use crate::metrics::Transform;
use crate::model::{BlockKind, NamedArch, Stem};
use crate::train::{Augment, Schedule};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

pub mod budget;
mod resolve;
mod sweep;
mod validate;

pub use sweep::value_label as sweep_value_label;
pub use resolve::{BaselineTable, Domain, DomainData, FileDomain, FileSource, GeneratedSet, GeneratorBackend, GeneratorConfig, LeaderboardPlan, Metrics, Model, QuickProfile, Regime, SuiteConfig, Testbed, TestbedModel, Training};

/// A suite exactly as written in its file (positions kept for error messages); the runtime reads
/// its resolved form, [`SuiteConfig`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub suite: SuiteHeader,
    #[serde(rename = "domains")]
    pub domains: Vec<DomainSpec>,
    #[serde(default)]
    pub generators: Vec<GeneratorSpec>,
    #[serde(default)]
    pub generated: Vec<GeneratedSpec>,
    // What is trained. An evaluation-only suite (classifiers come from `shiftbench compare`)
    // leaves all five out.
    #[serde(default)]
    pub regimes: Vec<RegimeSpec>,
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    pub training: Option<TrainingSpec>,
    pub testbed: Option<TestbedSpec>,
    pub leaderboard: Option<LeaderboardSpec>,
    pub metrics: MetricsSpec,
    #[serde(default)]
    pub quick: QuickSpec,
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// RQ3-style sweeps: one numeric key of a generated set or regime, several values.
    #[serde(default)]
    pub sweeps: Vec<SweepSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteHeader {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Root of every random stream: data, generation, initialisation, shuffling.
    pub seed: u64,
    /// Side of every (square) image, in pixels.
    pub image_size: Spanned<u32>,
    /// Class names of the procedural world, in label order.
    #[serde(default)]
    pub classes: Vec<Spanned<String>>,
    /// A published label space instead of `classes`: `imagenet-1k` (the 1000 ILSVRC-2012
    /// classes in torchvision's order), for suites of real ImageNet sets.
    pub vocabulary: Option<Spanned<String>>,
    /// Names of `datasets.lock` artifacts the suite reads (`shiftbench fetch SUITE` fetches
    /// them; each is checked against the lock when fetching).
    #[serde(default)]
    pub artifacts: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images.
    Train,
    /// The in-distribution test set.
    Val,
    /// A shifted test set.
    Shift,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    pub name: Spanned<String>,
    /// `procedural` (the built-in world), `artifact:NAME` (an archive of `datasets.lock`, read
    /// from the fetch cache's extraction) or `folder:PATH` (relative to the suite file, or absolute).
    pub source: Spanned<String>,
    pub split: Split,
    // Procedural domains only.
    pub style: Option<Spanned<DomainStyle>>,
    pub size: Option<Spanned<usize>>,
    // File-backed domains only.
    /// How paths name classes: `wnid-folders`, `class-index-folders`, `imagenet-val`, `objectnet`.
    pub layout: Option<Spanned<String>>,
    /// Evaluation preprocessing (`imagenet`, `timm:...`, see `data::image::Preprocess::parse`);
    /// its crop must be the suite's `image_size`.
    pub preprocess: Option<Spanned<String>>,
    /// The folder inside the source that holds the layout (default: the artifact's `expect.root`,
    /// else the source itself).
    pub root: Option<Spanned<String>>,
    /// `imagenet-val`: the label file (`LOC_val_solution.csv` or the devkit's ground truth),
    /// relative to the suite file.
    pub labels: Option<Spanned<String>>,
    /// `imagenet-val` with the devkit's ground truth: the ILSVRC2012_ID → wnid file.
    pub id_map: Option<Spanned<String>>,
    /// Counts the labelled images must have (`classes`, `files`, `per_class`); for an artifact
    /// the lock's `expect` applies too.
    pub expect: Option<Spanned<crate::fetch::lock::Expect>>,
    /// How predictions are scored (`crate::eval::ScoringRule`): `full` (default), `imagenet-r`,
    /// `imagenet-a`, `imagenet-r-classes`, `imagenet-a-classes`, `objectnet-testbed`,
    /// `objectnet-classes`, `objectnet-genrob`, `objectnet-genrob-classes`.
    pub protocol: Option<Spanned<String>>,
    /// `objectnet-classes`: the suite's ObjectNet domain, whose mapping files say which ImageNet
    /// classes the val images are kept and grouped by.
    pub objectnet_from: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorKind {
    /// The built-in offline stand-in for Stable Diffusion.
    Procedural,
    /// Stable Diffusion through candle-transformers (needs weights; see the README).
    StableDiffusion,
    /// A small class-conditional diffusion model the harness trains itself (RQ4: base vs fine-tuned).
    Diffusion,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    pub name: Spanned<String>,
    pub kind: GeneratorKind,
    /// Prompt templates; required except with `conditioning = "image"`, which reads no prompt.
    pub templates: Option<Spanned<TemplateSet>>,
    // The keys below are for `kind = "stable-diffusion"` only; each defaults to the preset's.
    /// Model family: v1-5 (default, the paper's), v2-1, sd-turbo, sdxl-turbo.
    pub preset: Option<Spanned<Preset>>,
    /// Where the weights are: a diffusers-layout folder, `hf:ORG/NAME[@REV]` (a Hugging Face
    /// cache snapshot) or `artifact:NAME` (datasets.lock). --weights / SHIFTBENCH_SD_WEIGHTS win.
    pub weights: Option<Spanned<String>>,
    pub scheduler: Option<Spanned<SchedulerKind>>,
    pub steps: Option<Spanned<usize>>,
    pub guidance: Option<Spanned<f64>>,
    /// Generation resolution in pixels (images are stored at the suite's `image_size`).
    pub size: Option<Spanned<u32>>,
    pub dtype: Option<Spanned<DTypeChoice>>,
    /// Images sampled together.
    pub batch_size: Option<Spanned<usize>>,
    /// What the images are conditioned on (RQ2): `text` (the label prompt; the default),
    /// `image` (a real image alone: image variations), `text+image` (the prompt applied to a real
    /// image: img2img). Absent with `source` given: `text+image`.
    pub conditioning: Option<Spanned<ConditioningKind>>,
    /// image and text+image: the procedural domain whose image of the same index is the source
    /// (`img2img_source` is its older spelling).
    #[serde(alias = "img2img_source")]
    pub source: Option<Spanned<String>>,
    /// text+image: how much of the picture the prompt repaints, in (0, 1] (Stable Diffusion: the
    /// fraction of the schedule that is re-noised and denoised; `img2img_strength` is its older spelling).
    #[serde(alias = "img2img_strength")]
    pub strength: Option<Spanned<f64>>,
    // The keys below are for `kind = "diffusion"` only (which also reads `steps`: optimiser
    // steps, and `batch_size`: training images per step).
    /// What the records call these weights (`base`, `fine-tuned`): RQ4 compares regimes that
    /// differ only in it.
    pub variant: Option<Spanned<String>>,
    /// The diffusion generator whose trained weights this one starts from (fine-tuning).
    pub base: Option<Spanned<String>>,
    /// What it learns from: procedural training domains and generated training sets of
    /// generators that are not diffusion models, concatenated.
    pub train_on: Option<Vec<Spanned<String>>>,
    /// Channels at full resolution (twice that at the two lower levels).
    pub width: Option<Spanned<usize>>,
    /// Adam's learning rate.
    pub lr: Option<Spanned<f64>>,
    /// DDIM steps per generated image.
    pub sample_steps: Option<Spanned<usize>>,
}

/// A generator's `conditioning` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditioningKind {
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "image")]
    Image,
    #[serde(rename = "text+image")]
    TextImage,
}

impl GeneratorSpec {
    /// The conditioning in force: the key, else `text+image` when a source or strength is given
    /// (the img2img keys' meaning before the key existed), else `text`.
    pub fn conditioning_kind(&self) -> ConditioningKind {
        match &self.conditioning {
            Some(c) => *c.get_ref(),
            None if self.source.is_some() || self.strength.is_some() => ConditioningKind::TextImage,
            None => ConditioningKind::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratedUse {
    /// Training data for the `generated` and `real+generated` regimes.
    Train,
    /// A labelled evaluation set for generated-data degradation.
    Eval,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedSpec {
    pub name: Spanned<String>,
    pub generator: Spanned<String>,
    #[serde(rename = "use")]
    pub usage: GeneratedUse,
    pub size: Spanned<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeSpec {
    pub name: Spanned<String>,
    /// Domains (split `train`) and generated sets (use `train`), concatenated as in the paper.
    pub train_on: Vec<Spanned<String>>,
    #[serde(default = "default_augment")]
    pub augment: Augment,
    /// How real and generated sets share the batches; absent: concatenated, as in the paper.
    pub mix: Option<MixSpec>,
}

/// Per-batch mixing of a regime's real domains and generated sets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    /// Share of every batch drawn from the generated sets, in (0, 1).
    pub generated_fraction: Spanned<f64>,
}

fn default_augment() -> Augment {
    Augment::None
}

/// A residual network. Either a torchvision architecture by `arch` (optionally with another
/// `stem` or `width`), or one built from `width` and a depth: `blocks` × `stages`, or `layers`
/// (blocks per stage). Without `arch` the stem is `small` and the block `basic`: the suite model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: Spanned<String>,
    /// `resnet18`, `resnet34` or `resnet50`: torchvision's depth, block kind, width 64, ImageNet stem.
    pub arch: Option<Spanned<NamedArch>>,
    /// `imagenet` (7×7/2 conv + 3×3/2 max pool), `cifar` (3×3/1 conv) or `small` (3×3/2 conv).
    pub stem: Option<Spanned<Stem>>,
    /// `basic` or `bottleneck`.
    pub block: Option<Spanned<BlockKind>>,
    /// Residual blocks per stage, e.g. `[2, 2, 2, 2]`.
    pub layers: Option<Spanned<Vec<usize>>>,
    /// Channels of the first stage (before bottleneck expansion); each later stage doubles them.
    pub width: Option<Spanned<usize>>,
    /// Residual blocks per stage, the same in every stage.
    pub blocks: Option<Spanned<usize>>,
    /// Number of stages (each after the first halves the resolution).
    pub stages: Option<Spanned<usize>>,
    /// Scales every stage's width (rounded, at least 1).
    pub width_multiplier: Option<Spanned<f64>>,
    /// Scales every stage's block count (rounded, at least 1).
    pub depth_multiplier: Option<Spanned<f64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    pub epochs: Spanned<u32>,
    pub batch_size: Spanned<usize>,
    pub lr: Spanned<f64>,
    pub momentum: Spanned<f64>,
    #[serde(default)]
    pub nesterov: bool,
    pub weight_decay: Spanned<f64>,
    pub label_smoothing: Spanned<f64>,
    pub schedule: Spanned<Schedule>,
    /// `triangular` (required) and `cosine`: the epoch of the peak, i.e. the end of the warm-up.
    pub peak_epoch: Option<Spanned<f64>>,
    /// `cosine`, `step`, `constant`: epochs of linear warm-up from zero (default none).
    pub warmup_epochs: Option<Spanned<f64>>,
    /// `step`: epochs at which the rate is multiplied by `gamma`.
    pub milestones: Option<Spanned<Vec<f64>>>,
    /// `step`: the factor at each milestone (default 0.1).
    pub gamma: Option<Spanned<f64>>,
    /// Rescale gradients whose global L2 norm exceeds this (default: no clipping).
    pub clip_grad_norm: Option<Spanned<f64>>,
    /// Save a resumable checkpoint every this many optimiser steps (default: only at the end).
    pub checkpoint_every_steps: Option<Spanned<u64>>,
}

/// How classifiers are evaluated.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// Predict from the summed logits of each image and its mirror image.
    #[serde(default)]
    pub flip_tta: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestbedSpec {
    /// The regime every baseline model trains on (real data only, for accuracy on the line).
    pub regime: Spanned<String>,
    pub members: Vec<TestbedMember>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestbedMember {
    pub name: Spanned<String>,
    pub model: Spanned<String>,
    /// Overrides `training.epochs`.
    pub epochs: Option<Spanned<u32>>,
    /// Fraction of the regime's training images used (the first ones), in (0, 1].
    #[serde(default = "one")]
    pub train_fraction: Spanned<f64>,
}

fn one() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardSpec {
    pub models: Vec<Spanned<String>>,
    pub regimes: Vec<Spanned<String>>,
    /// Training seeds; each (model, regime, seed) is one leaderboard row.
    pub seeds: Vec<Spanned<u64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    pub id_domain: Spanned<String>,
    /// Further in-distribution sets, each the x axis of some reference fit (the testbed's
    /// `val-on-imagenet-r-classes`, ...).
    #[serde(default)]
    pub id_axes: Vec<Spanned<String>>,
    pub shifts: Vec<Spanned<String>>,
    pub generated_eval: Option<Spanned<String>>,
    /// A reference-fits file (relative to the suite, the format of
    /// `suites/imagenet-testbed-fits.toml`): effective robustness against these fixed lines
    /// instead of a trained testbed. A fit's `id_column` and `shift_column` name the suite's
    /// domains.
    pub reference_fits: Option<Spanned<String>>,
    /// An accuracy table to fit baselines from, as `shiftbench er --preset` does: effective
    /// robustness against them, with bootstrap intervals, beside the suite's own fits.
    pub baseline_table: Option<BaselineTableSpec>,
    #[serde(default = "default_transform")]
    pub transform: Transform,
}

/// `[metrics.baseline_table]`: a wide accuracy table and its model types, both artifacts of
/// `datasets.lock` listed in `[suite] artifacts`, and the preset that pairs its columns and picks
/// its baseline models. A preset pairing applies to the suite's shift named as its shift column
/// (the imagenet-testbed's `imagenet-sketch`, ...), measured against its ID column, which must be
/// `id_domain` or one of `id_axes`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineTableSpec {
    /// `artifact:NAME`: the accuracy table (`robustness_top1s.csv`'s format).
    pub table: Spanned<String>,
    /// `artifact:NAME`: the model types (a `model,model_type,...` CSV, or the testbed's `.py`).
    pub types: Spanned<String>,
    /// `imagenet-testbed` (`shiftbench er --preset`).
    pub preset: Spanned<String>,
}

fn default_transform() -> Transform {
    Transform::Logit
}

/// A sweep over one numeric key: each value makes its own generated set or regime, trained and
/// evaluated like any other, its rows carrying the value (`src/suite/sweep.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: Spanned<String>,
    /// `generated.<set>.size` or `regimes.<regime>.mix.generated_fraction`.
    pub key: Spanned<String>,
    pub values: Spanned<Vec<f64>>,
}

/// The `--quick` profile: the same suite, scaled down for tests and smoke runs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSpec {
    /// Multiplies every domain and generated-set size (at least one image per class is kept).
    #[serde(default = "default_quick_size")]
    pub size_scale: Spanned<f64>,
    /// Multiplies every epoch count (at least one epoch is kept).
    #[serde(default = "default_quick_epochs")]
    pub epoch_scale: Spanned<f64>,
}

fn default_quick_size() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}
fn default_quick_epochs() -> Spanned<f64> {
    Spanned::new(0..0, 0.25)
}

impl Default for QuickSpec {
    fn default() -> Self {
        Self { size_scale: default_quick_size(), epoch_scale: default_quick_epochs() }
    }
}

/// A parsed and validated suite, with its source text kept for hashing and provenance.
#[derive(Clone, Debug)]
pub struct Suite {
    pub path: PathBuf,
    /// sha256 of the file's bytes.
    pub hash: String,
    /// The suite with every default applied: what the runtime reads.
    pub config: SuiteConfig,
    /// The file's text and the positions of `[suite] artifacts`, for errors found later against
    /// the lock file.
    text: String,
    artifact_spans: Vec<std::ops::Range<usize>>,
}

impl Suite {
    /// Reads, parses and validates a suite file.
    pub fn load(path: &Path) -> anyhow::Result<Suite> {
        let text = crate::fsutil::read_text_file(path).map_err(|e| {
            anyhow::anyhow!("cannot read suite file {}: {e}; pass a path to a suite TOML such as suites/shapes.toml", path.display())
        })?;
        Ok(Self::parse(&text, path)?)
    }

    /// Parses, validates and resolves suite text; `path` is only used in messages and provenance.
    pub fn parse(text: &str, path: &Path) -> Result<Suite, ConfigError> {
        let file: SuiteFile = parse_toml(text, path)?;
        let validator = validate::SuiteValidator { text, path };
        validator.validate(&file)?;
        let reference_fits = validator.reference_fits(&file)?;
        let baseline_table = validator.baseline_table(&file)?;
        Ok(Suite {
            path: path.to_path_buf(),
            hash: crate::fsutil::sha256_hex(text.as_bytes()),
            config: resolve::resolve(&file, path, reference_fits, baseline_table),
            text: text.to_string(),
            artifact_spans: file.suite.artifacts.iter().map(|a| a.span()).collect(),
        })
    }

    /// An error about entry `index` of `[suite] artifacts`, at its position in the file.
    pub fn artifact_error(&self, index: usize, message: String) -> ConfigError {
        let span = self.artifact_spans.get(index).cloned().unwrap_or(0..0);
        error_at(&self.path, &self.text, span, "suite.artifacts", message)
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }
}

