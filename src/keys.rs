//! Every cache key of a run, in one place: what identifies a dataset, a generator, a training
//! job and an evaluation record. A key is a JSON value hashed with sha256; its text is what
//! decides whether a checkpoint, a generated image folder or a record on disk can be reused.
//!
//! Compatibility rule: a key only gains a field when that field differs from the behaviour the
//! key had before the field existed (options added after the first release enter only when set),
//! so results made by an older harness keep their keys. serde_json sorts object keys, so the
//! order in which fields are written here does not matter. `kernels` entered when the CPU
//! products became our own fixed-order kernels: every weight trained before is another weight.

use crate::data::procedural::DomainStyle;
use crate::plan::{GeneratedSetPlan, Job};
use crate::record::Protocol;
use crate::train::{Mix, Schedule};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Hex sha256 of a key's JSON text.
pub fn hash(key: &Value) -> String {
    crate::fsutil::sha256_hex(key.to_string().as_bytes())
}

/// The first 16 hex digits of [`hash`], for folder names.
pub fn short_hash(key: &Value) -> String {
    hash(key)[..16].to_string()
}

/// A domain of the procedural world: everything its rendered images depend on.
pub fn procedural_domain(name: &str, style: DomainStyle, count: usize, size: u32, seed: u64, classes: &[usize]) -> Value {
    json!({"kind": "procedural", "name": name, "style": style, "count": count, "size": size, "seed": seed, "classes": classes})
}

/// A file-backed domain: its images are the fingerprinted files (sorted paths, sizes, labels and
/// the artifact's sha256), transformed by `preprocess` to `size`.
pub fn file_domain(name: &str, layout: crate::data::imageset::Layout, preprocess: &str, size: u32, fingerprint: &str) -> Value {
    json!({"kind": "files", "name": name, "layout": layout, "preprocess": preprocess, "size": size, "files": fingerprint})
}

/// A generated set, given its generator's key (see [`crate::generate::SuiteGenerator::key`]).
pub fn generated_set(plan: &GeneratedSetPlan, generator: Value) -> Value {
    let mut key = json!({"kind": "generated", "name": plan.name, "generator": generator, "count": plan.count, "size": plan.size, "seed": plan.seed, "classes": plan.classes});
    // Only a swept set draws from another set's streams; other keys stay as they always were.
    if plan.stream != plan.name {
        key["stream"] = json!(plan.stream);
    }
    key
}

/// Everything that determines a diffusion generator's trained weights: its settings, the keys
/// of the sets it learns from, its base's key (fine-tuning), the suite seed and the image size.
/// Its variant and sampling steps do not change the weights, so they are not in it.
pub fn diffusion_training(name: &str, c: &crate::generate::diffusion::DiffusionConfig, train_sets: Vec<Value>, base: Option<&Value>, seed: u64, classes: usize, size: u32) -> Value {
    json!({
        "kind": "diffusion", "version": crate::generate::diffusion::VERSION, "kernels": crate::model::kernels::ARITHMETIC,
        "name": name, "steps": c.steps, "width": c.width, "batch_size": c.batch_size, "lr": c.lr,
        "train_sets": train_sets, "base": base, "seed": seed, "classes": classes, "size": size,
    })
}

/// Where a diffusion generator trains under `work`, keyed like a generated set.
pub fn diffusion_dir(work: &Path, name: &str, key: &Value) -> PathBuf {
    work.join("diffusion").join(format!("{name}-{}", short_hash(key)))
}

/// Where a generated set lives under `work`: the folder is keyed by the set's inputs, so changing
/// the generator or sizes never mixes old and new images.
pub fn generated_set_dir(work: &Path, name: &str, key: &Value) -> PathBuf {
    work.join("generated").join(format!("{name}-{}", short_hash(key)))
}

/// Everything that determines a job's trained weights; `dataset` gives each training set's key.
pub fn train_job<'a>(job: &Job, dataset: impl Fn(&str) -> &'a Value) -> Value {
    let c = &job.config;
    let mut key = json!({
        "harness": crate::HARNESS_VERSION,
        "kernels": crate::model::kernels::ARITHMETIC,
        "model": job.model.key(),
        "train_sets": job.train_sets.iter().map(|s| dataset(s)).collect::<Vec<_>>(),
        "train_fraction": job.train_fraction,
        "config": {
            "epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr, "momentum": c.momentum, "nesterov": c.nesterov,
            "weight_decay": c.weight_decay, "label_smoothing": c.label_smoothing, "schedule": c.schedule,
            "peak_epoch": c.peak_epoch, "augment": c.augment, "seed": c.seed,
        },
    });
    if let Some(config) = key["config"].as_object_mut() {
        if c.schedule == Schedule::Step {
            config.insert("milestones".into(), json!(c.milestones));
            config.insert("gamma".into(), json!(c.gamma));
        }
        if let Some(clip) = c.clip_grad_norm {
            config.insert("clip_grad_norm".into(), json!(clip));
        }
        if let Mix::GeneratedFraction(f) = c.mix {
            config.insert("generated_fraction".into(), json!(f));
        }
    }
    key
}

/// The key of one evaluation record: the trained weights, the evaluation set and the protocol.
pub fn record(train_hash: &str, eval_set: &Value, protocol: &Protocol) -> String {
    hash(&json!({"train": train_hash, "eval": eval_set, "protocol": protocol}))
}
