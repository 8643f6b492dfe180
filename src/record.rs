//! Run records: one immutable JSON file per (suite, model, regime, seed, evaluation domain).
//!
//! Records are the only input of the leaderboard, so each carries everything needed to rebuild
//! it: counts, the role of the domain in the protocol, and provenance.

use serde::{Deserialize, Serialize};

pub mod check;

/// Version of the record format; bump when a field changes meaning. Schema 2 added the suite
/// seed and the checkpoint's sha256 to the provenance; schema 3 the top-5 count and, for class
/// subset protocols, the scoring. Records of schemas 1 and 2 (without them) are still read, so
/// folders published before stay readable.
pub const RECORD_SCHEMA: u32 = 3;

/// The oldest record schema this harness still reads.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Whether a record belongs to a leaderboard entry or to the baseline testbed behind the fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Entry,
    Testbed,
    /// A classifier trained elsewhere, evaluated by `shiftbench compare`.
    Compared,
}

/// What an evaluation domain measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainRole {
    /// In-distribution test set (the x axis of every fit).
    Id,
    /// A naturally shifted test set.
    Shift,
    /// A generated evaluation set (for generated-data degradation).
    Generated,
}

/// The evaluation protocol of the suite, copied into every record so the leaderboard needs
/// nothing but records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub id_domain: String,
    /// Shift domains in the suite's order (the leaderboard's column order).
    pub shifts: Vec<String>,
    pub generated_eval: Option<String>,
    /// `logit`, `probit` or `linear`.
    pub transform: String,
    /// Predictions averaged over each image and its mirror. Left out of the file when off, so
    /// records (and the job keys hashed from them) of suites without it are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip_tta: bool,
    /// Further in-distribution sets that are the x axis of some shift's fit (the testbed's
    /// `val-on-imagenet-r-classes`, ...). Absent when none, so other suites' records are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_axes: Vec<String>,
    /// Fixed accuracy-on-the-line fits a suite carries (instead of training a testbed), per
    /// shift with its own x axis. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_fits: Vec<ProtocolFit>,
    /// Baselines fitted from an accuracy table (`[metrics.baseline_table]`): per shift the
    /// table's baseline models and their accuracies, so the leaderboard refits them, with their
    /// bootstrap, from records alone. Absent when the suite names no table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_table: Option<ProtocolTable>,
}

/// The baselines of a suite's accuracy table, as read when the record was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolTable {
    /// The `datasets.lock` artifacts the points come from, and their pinned sha256.
    pub table: String,
    pub table_sha256: String,
    pub types: String,
    pub types_sha256: String,
    /// The `shiftbench er` preset that chose the pairings and the baseline models.
    pub preset: String,
    /// `logit`, `probit` or `linear` (the protocol's).
    pub transform: String,
    /// Bootstrap refits over the baseline models, and the seed of their streams.
    pub resamples: u64,
    pub seed: u64,
    /// In the protocol's shift order; shifts the preset does not pair have none.
    pub fits: Vec<ProtocolTableFit>,
}

/// One shift's baseline from the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolTableFit {
    /// The shift domain (y axis), named as the table's column.
    pub shift: String,
    /// The in-distribution domain (x axis): `id_domain` or one of `id_axes`.
    pub id_domain: String,
    /// The preset's name of the pairing (`imagenet-sketch`): it names the bootstrap stream, as in
    /// `shiftbench er`.
    pub pairing: String,
    /// The baseline models in table order, with their accuracies.
    pub points: Vec<BaselinePoint>,
}

/// A baseline model's (ID, shifted) accuracies, percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePoint {
    pub model: String,
    pub id: f64,
    pub shift: f64,
}

/// One reference fit: `transform(acc_shift) = slope · transform(acc_id) + intercept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolFit {
    /// The shift domain (y axis).
    pub shift: String,
    /// The in-distribution domain (x axis): the suite's `id_domain` or one of its `id_axes`.
    pub id_domain: String,
    pub transform: String,
    pub slope: f64,
    pub intercept: f64,
    /// Baseline models the line was fitted to.
    pub n: u64,
    pub provenance: String,
}

/// How a record's predictions were scored when not as argmax over every logit: which classes
/// are its label space and which logits stand for each (`crate::eval::scoring`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringSummary {
    /// `imagenet-r`, `imagenet-r-classes`, `objectnet-testbed`, ... (`crate::eval::ScoringRule`).
    pub name: String,
    /// Size of the label space the per-class counts are indexed by.
    pub classes: u64,
    /// Logits the scoring reads (e.g. 200 for ImageNet-R, 125 for the testbed's ObjectNet).
    pub logits: u64,
}

/// Provenance of a record: which code, suite and data produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub harness_version: String,
    pub git_revision: String,
    /// sha256 of the suite file's bytes.
    pub suite_hash: String,
    /// sha256 of `datasets.lock`, or `none` when the suite reads no external artifact.
    pub lock_hash: String,
    /// sha256 of every input of the training job (suite sections, seed, harness version).
    pub job_hash: String,
    pub device: String,
    /// The suite seed in force when the record was made (`--seed` or the suite's own); the
    /// record's top-level `seed` is the classifier's training seed. Absent in schema 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_seed: Option<u64>,
    /// sha256 of the checkpoint file the record was evaluated from. Absent in schema 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_sha256: Option<String>,
}

/// How the evaluated classifier was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSummary {
    /// Architecture in words, e.g. `resnet(width=16, blocks=1, stages=3)`.
    pub arch: String,
    pub parameters: u64,
    /// Absent for a classifier trained elsewhere (`shiftbench compare`): the harness does not
    /// know its training and never writes a number it did not measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Mean training loss over the last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
    /// What the classifier trained on, set by set in `train_on` order, so a report can tell
    /// regimes apart from records alone (which differ only in a generator's conditioning, say).
    /// Absent in records made before it existed; both forms are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<TrainSource>>,
    /// The regime's augmentation (`none`, `standard`, `augmix`, `augmix-jsd`); written with `sources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<String>,
    /// The regime's per-batch share of generated images, when it mixes per batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_fraction: Option<f64>,
}

/// Whether a training set is real images or a generator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Real,
    Generated,
}

/// One training set of a classifier. The generator fields are present for generated sets only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSource {
    /// The set's name in the suite (a domain or a generated set).
    pub set: String,
    pub kind: SourceKind,
    /// Images in the set under the run's profile (the job may use a fraction of them: `train_images`).
    pub images: u64,
    /// The generator's `kind` (`procedural`, `stable-diffusion`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// Prompt templates (`clip-imagenet-80`, `photo-of`); absent when no prompt is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    /// `text`, `image` or `text+image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning: Option<String>,
    /// text+image: how much of the picture the prompt repaints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    /// image and text+image: the real domain the images start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Which version of the generator (e.g. base or fine-tuned weights); opaque to reports,
    /// which group by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub schema: u32,
    pub suite: String,
    pub role: Role,
    pub model: String,
    pub regime: String,
    pub seed: u64,
    pub domain: String,
    pub domain_role: DomainRole,
    /// Images evaluated.
    pub n: u64,
    /// Top-1 correct predictions.
    pub correct: u64,
    /// Images whose true class is among the five best-scored classes. Absent before schema 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_top5: Option<u64>,
    /// Per-class (top-1) counts, indexed by the suite's class order, or by the scoring's label
    /// space when `scoring` is present.
    pub per_class_total: Vec<u64>,
    pub per_class_correct: Vec<u64>,
    pub protocol: Protocol,
    /// A class-subset protocol (ImageNet-R/-A, ObjectNet); absent: argmax over every logit,
    /// labels in the suite's class order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ScoringSummary>,
    pub train: TrainSummary,
    pub provenance: Provenance,
    /// The sweep value this classifier was trained with, when its regime comes from a
    /// `[[sweeps]]` entry (absent otherwise, so records of suites without sweeps are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepPoint>,
}

/// One value of a `[[sweeps]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPoint {
    /// The sweep's name.
    pub sweep: String,
    /// The swept key, e.g. `generated.gen-train.size`.
    pub key: String,
    pub value: f64,
}

impl RunRecord {
    /// File name of this record inside a results folder's `records/` directory.
    pub fn file_name(&self) -> String {
        record_file_name(self.role, &self.model, &self.regime, self.seed, &self.domain)
    }
}

/// `records/<role>/<model>/<regime>/seed-<seed>/<domain>.json`, relative to the results folder.
pub fn record_file_name(role: Role, model: &str, regime: &str, seed: u64, domain: &str) -> String {
    let role = match role {
        Role::Entry => "entry",
        Role::Testbed => "testbed",
        Role::Compared => "compared",
    };
    format!("records/{role}/{model}/{regime}/seed-{seed}/{domain}.json")
}
