//! Partial checkpoints of a training job: model, optimiser momentum and position, every N steps.
//!
//! A folder per job holds `model-<step>.safetensors` (the model's own format) and
//! `optim-<step>.safetensors` (`momentum.<param>` buffers plus the position). The optimiser
//! file is written last, each by temporary file and rename, so an `optim-` file marks a complete
//! pair; a kill at any moment leaves the previous pair usable. Random streams are pure functions
//! of (seed, epoch, step) (see `loader`), so no generator state is stored.

use super::optim::Sgd;
use crate::model::Trainable;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where and how often a training job checkpoints.
#[derive(Clone, Debug)]
pub struct CheckpointPlan {
    pub dir: PathBuf,
    pub every_steps: u64,
}

/// Where a job stands between two steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Optimiser steps done.
    pub step: u64,
    /// Sum of the losses of the current epoch's steps so far (the epoch's mean loss is reported).
    pub epoch_loss_sum: f64,
}

const STEP: &str = "progress.step";
const LOSS_SUM: &str = "progress.epoch_loss_sum";

fn model_file(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("model-{step:012}.safetensors"))
}

fn optim_file(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("optim-{step:012}.safetensors"))
}

/// Saves the pair for `progress.step`, then removes older pairs and leftovers of killed writes.
pub fn save(dir: &Path, model: &impl Trainable, opt: &Sgd, progress: Progress) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    model.save(&model_file(dir, progress.step))?;
    let mut tensors = opt.state();
    // Bit patterns, not values: the step count and loss sum come back exactly.
    tensors.insert(STEP.into(), Tensor::new(&[progress.step as i64], &Device::Cpu)?);
    tensors.insert(LOSS_SUM.into(), Tensor::new(&[progress.epoch_loss_sum], &Device::Cpu)?);
    let target = optim_file(dir, progress.step);
    crate::fsutil::write_safetensors(&target, &tensors)?;
    let keep = [model_file(dir, progress.step), target];
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if !keep.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove old checkpoint {}", path.display()))?;
        }
    }
    Ok(())
}

/// The step of the newest complete pair in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<u64>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let mut best = None;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let step = name.strip_prefix("optim-").and_then(|r| r.strip_suffix(".safetensors")).and_then(|s| s.parse::<u64>().ok());
        if let Some(step) = step.filter(|&s| model_file(dir, s).exists()) {
            best = best.max(Some(step));
        }
    }
    Ok(best)
}

/// Loads the pair for `step` into `model` and `opt`.
pub fn restore(dir: &Path, step: u64, model: &mut impl Trainable, opt: &mut Sgd) -> Result<Progress> {
    model.load(&model_file(dir, step))?;
    let path = optim_file(dir, step);
    let what = path.display().to_string();
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&path, &Device::Cpu).with_context(|| format!("cannot read {what}; delete {} to restart the job", dir.display()))?;
    let scalar = |name: &str, dtype: DType| -> Result<Tensor> {
        let t = tensors.get(name).with_context(|| format!("{what} has no `{name}`; delete {} to restart the job", dir.display()))?;
        anyhow::ensure!(t.dtype() == dtype && t.elem_count() == 1, "{what}: `{name}` is malformed; delete {} to restart the job", dir.display());
        Ok(t.flatten_all()?)
    };
    let saved_step = scalar(STEP, DType::I64)?.to_vec1::<i64>()?[0];
    anyhow::ensure!(saved_step == step as i64, "{what} says step {saved_step}; delete {} to restart the job", dir.display());
    let epoch_loss_sum = scalar(LOSS_SUM, DType::F64)?.to_vec1::<f64>()?[0];
    opt.load_state(&tensors, &what)?;
    Ok(Progress { step, epoch_loss_sum })
}

/// Why the pair for `step` in `dir` cannot be resumed from, if it cannot: a file that does not
/// read, holds a NaN or an infinity (weights, momentum or loss sum: training from it would stop
/// with "training diverged", blaming the learning rate), or does not fit `model` (another job's
/// pair). `model` is a scratch model: it may be left half-loaded.
pub fn defect(dir: &Path, step: u64, model: &mut impl Trainable, cfg: &super::TrainConfig) -> Option<String> {
    for file in [model_file(dir, step), optim_file(dir, step)] {
        let checked = std::fs::read(&file).map_err(anyhow::Error::from).and_then(|b| crate::checkpoints::non_finite_tensor(&b));
        match checked {
            Err(e) => return Some(format!("{} does not read ({e:#})", file.display())),
            Ok(Some(name)) => return Some(format!("{} holds non-finite values (tensor `{name}`)", file.display())),
            Ok(None) => {}
        }
    }
    let mut opt = Sgd::new(model.params(), cfg.momentum, cfg.nesterov, cfg.weight_decay);
    restore(dir, step, model, &mut opt).err().map(|e| format!("does not restore ({e:#})"))
}
