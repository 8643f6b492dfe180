//! What `shiftbench er` compares: pairings (a shift column against its ID column), the named
//! presets that choose them, and the rule that picks a fit's baseline models.

use crate::metrics::Transform;
use crate::robustness::table::ModelTypes;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

/// One shift scored against its ID axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Pairing {
    /// Name in the output (`imagenet-sketch`, or the shift column's name).
    pub shift: String,
    pub id_column: String,
    pub shift_column: String,
    /// Column of the model-types table that classifies baseline models for this pairing.
    pub type_column: String,
    /// Baseline models need at least this ID accuracy (percent).
    pub min_id_acc: f64,
}

/// Named protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolPreset {
    /// imagenet-testbed (Taori et al. 2020): V2 and Sketch against `val`, ImageNet-R and ObjectNet
    /// against `val` restricted to their classes; baseline = STANDARD models, minus subsampled,
    /// AWS and batch-64 variants, ID accuracy ≥ 55 (≥ 75 for ImageNet-R).
    ImagenetTestbed,
}

impl FromStr for ProtocolPreset {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "imagenet-testbed" => Ok(ProtocolPreset::ImagenetTestbed),
            other => bail!("unknown preset `{other}`; the presets are: imagenet-testbed"),
        }
    }
}

impl ProtocolPreset {
    /// The name `--preset` and suites spell it with.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolPreset::ImagenetTestbed => "imagenet-testbed",
        }
    }

    pub fn pairings(self) -> Vec<Pairing> {
        let pairing = |shift: &str, id: &str, column: &str, types: &str, min: f64| Pairing {
            shift: shift.into(),
            id_column: id.into(),
            shift_column: column.into(),
            type_column: types.into(),
            min_id_acc: min,
        };
        match self {
            // The testbed classifies models for the natural re-collections (V2, ObjectNet) with
            // `natural_shift_model_type`, and for the stylised shifts with `model_type`.
            ProtocolPreset::ImagenetTestbed => vec![
                pairing("imagenet-v2", "val", "imagenetv2-matched-frequency-format-val", "natural_shift_model_type", 55.0),
                pairing("imagenet-sketch", "val", "imagenet-sketch", "model_type", 55.0),
                pairing("imagenet-r", "val-on-imagenet-r-classes", "imagenet-r", "model_type", 75.0),
                pairing("objectnet", "val-on-objectnet-classes", "objectnet-1.0-beta", "natural_shift_model_type", 55.0),
            ],
        }
    }

    /// Model types that form the baseline.
    pub fn baseline_types(self) -> Vec<String> {
        vec!["STANDARD".into()]
    }

    /// Models whose name contains one of these are never baseline models (the testbed drops its
    /// training-set-subsample, AWS-retrained and batch-size-64 variants).
    pub fn excluded_name_parts(self) -> Vec<String> {
        ["subsample", "aws", "batch64"].map(String::from).to_vec()
    }
}

/// Which models may form the baseline of a fit (before the per-pairing ID threshold).
#[derive(Clone, Debug, PartialEq)]
pub enum BaselineSet {
    /// Every model in the table.
    All,
    /// Models listed by name.
    Names(BTreeSet<String>),
    /// Models whose type (in the pairing's type column) is one of `allowed`.
    Types { types: ModelTypes, allowed: Vec<String> },
}

impl BaselineSet {
    /// Reads a file of model names, one per line (blank lines and `#` comments ignored).
    pub fn names_from_file(path: &Path) -> Result<Self> {
        let text = crate::fsutil::read_text_file(path)
            .with_context(|| format!("cannot read the baseline model list {}", path.display()))?;
        let names: BTreeSet<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        if names.is_empty() {
            bail!("{}: no model names; list one baseline model per line", path.display());
        }
        Ok(BaselineSet::Names(names))
    }

    /// Whether `model` belongs to the set. `type_index` is the pairing's type column in the
    /// types table (`ModelTypes::column`), needed by `Types` only.
    pub fn admits(&self, model: &str, type_index: Option<usize>) -> bool {
        match self {
            BaselineSet::All => true,
            BaselineSet::Names(names) => names.contains(model),
            BaselineSet::Types { types, allowed } => types
                .types
                .get(model)
                .and_then(|t| t.get(type_index.unwrap_or(0)))
                .is_some_and(|t| allowed.iter().any(|a| a == t)),
        }
    }
}

/// Everything `report::compute` needs besides the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ErOptions {
    pub pairings: Vec<Pairing>,
    pub baseline: BaselineSet,
    /// Models whose name contains any of these never join the baseline.
    pub exclude_name_parts: Vec<String>,
    pub transform: Transform,
    pub resamples: usize,
    pub seed: u64,
}
