//! Training: batches from a seeded shuffler (built ahead of the model by worker threads), SGD
//! with momentum and decoupled-from-BN weight decay, optional gradient clipping, label
//! smoothing, learning-rate schedules, augmentation, and checkpoints to resume a killed job.
//!
//! candle-nn offers plain SGD and AdamW only; the optimiser and schedules here are ours.

pub mod augment;
pub mod checkpoint;
pub mod loader;
pub mod loss;
pub mod optim;
pub mod schedule;

pub use augment::Augment;
pub use checkpoint::CheckpointPlan;
pub use loader::{batch_pixels, steps_per_epoch, BatchPlan, Mix, TrainData};
pub use loss::{jensen_shannon_consistency, smoothed_cross_entropy, JSD_WEIGHT};
pub use optim::{clip_factor, Sgd};
pub use schedule::{LrSchedule, Schedule};

use crate::data::ImageSet;
use crate::model::Trainable;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use std::ops::ControlFlow;

/// Everything that decides how a classifier is fitted (one training job).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub label_smoothing: f64,
    pub schedule: Schedule,
    /// End of the linear warm-up, in epochs (see [`LrSchedule::warmup`]).
    pub peak_epoch: f64,
    /// `step` schedule: epochs at which the rate is multiplied by `gamma`.
    pub milestones: Vec<f64>,
    pub gamma: f64,
    /// Rescale the gradients when their global L2 norm exceeds this.
    pub clip_grad_norm: Option<f64>,
    pub augment: Augment,
    pub mix: Mix,
    /// Seed of this job's shuffling and augmentation streams.
    pub seed: u64,
}

impl TrainConfig {
    pub fn lr_schedule(&self) -> LrSchedule {
        LrSchedule {
            kind: self.schedule,
            peak: self.lr,
            warmup: self.peak_epoch,
            epochs: self.epochs as f64,
            milestones: self.milestones.clone(),
            gamma: self.gamma,
        }
    }
}

/// How a training job runs, as opposed to what it computes: nothing here changes the weights.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Threads building batches ahead of the model; 0 builds each on the training thread.
    pub loader_threads: usize,
    /// Save partial checkpoints, and resume from the newest one found.
    pub checkpoint: Option<CheckpointPlan>,
    /// Return after this many steps as if killed (the job resumes from its last checkpoint).
    pub stop_after_step: Option<u64>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        // One builder overlaps batch assembly with the step; more pay off with heavy augmentation.
        Self { loader_threads: 1, checkpoint: None, stop_after_step: None }
    }
}

/// What a training job reports.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// Mean loss over the last epoch's steps.
    pub final_loss: f64,
    /// Steps done, including those before a resume.
    pub steps: u64,
    /// The checkpoint step the job continued from.
    pub resumed_from: Option<u64>,
    /// False when `stop_after_step` ended the job early.
    pub finished: bool,
}

/// Total optimiser steps of a job.
pub fn total_steps(data: TrainData, cfg: &TrainConfig) -> Result<u64> {
    let plan = BatchPlan::new(data, cfg.batch_size, cfg.augment, cfg.mix, cfg.seed)?;
    Ok(plan.steps_per_epoch() as u64 * cfg.epochs as u64)
}

/// Fits `model` on `data` for `cfg.epochs` epochs with default options.
pub fn train(model: &mut impl Trainable, data: &ImageSet, cfg: &TrainConfig, device: &Device, on_step: impl FnMut(u64, u64, f64)) -> Result<TrainOutcome> {
    train_with(model, TrainData::plain(data), cfg, &TrainOptions::default(), device, on_step)
}

/// Fits `model` on `data`. `on_step` is called after every step with (step, total steps, loss)
/// — progress bars hang off it. With a checkpoint plan, a job whose folder holds a checkpoint
/// continues from it and ends with the same weights as an uninterrupted run.
pub fn train_with(
    model: &mut impl Trainable,
    data: TrainData,
    cfg: &TrainConfig,
    opts: &TrainOptions,
    device: &Device,
    mut on_step: impl FnMut(u64, u64, f64),
) -> Result<TrainOutcome> {
    crate::memory::tune_allocator();
    let plan = BatchPlan::new(data, cfg.batch_size, cfg.augment, cfg.mix, cfg.seed)?;
    let mut opt = Sgd::new(model.params(), cfg.momentum, cfg.nesterov, cfg.weight_decay);
    let clip_params = model.params();
    let schedule = cfg.lr_schedule();
    let steps_per_epoch = plan.steps_per_epoch() as u64;
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    let (size, batch) = (data.images.size as usize, plan.batch_len());

    let mut progress = checkpoint::Progress { step: 0, epoch_loss_sum: 0.0 };
    let mut resumed_from = None;
    if let Some(ck) = &opts.checkpoint {
        if let Some(step) = checkpoint::latest(&ck.dir)?.filter(|&s| s < total_steps) {
            progress = checkpoint::restore(&ck.dir, step, model, &mut opt)?;
            resumed_from = Some(step);
        }
    }
    let mut last_epoch_loss = 0.0;
    let mut finished = true;
    loader::for_each_batch(&plan, progress.step, total_steps, opts.loader_threads, |step, b| {
        let (epoch, k) = (step / steps_per_epoch, step % steps_per_epoch);
        let views = cfg.augment.views();
        let x = Tensor::from_vec(b.pixels, (views * batch, size, size, 3), device)?;
        let y = Tensor::from_vec(b.labels, batch, device)?;
        // All views go through one forward pass (batch-norm statistics over all of them, as
        // AugMix's reference); the cross-entropy is the first (clean) view's.
        let logits = model.forward_train(&x)?;
        let clean = logits.narrow(0, 0, batch)?;
        let loss = smoothed_cross_entropy(&clean, &y, cfg.label_smoothing)?;
        let loss = if views > 1 {
            let per_view = (0..views).map(|v| logits.narrow(0, v * batch, batch)).collect::<candle_core::Result<Vec<_>>>()?;
            (loss + (jensen_shannon_consistency(&per_view)? * JSD_WEIGHT)?)?
        } else {
            loss
        };
        let lr = schedule.at(epoch as f64 + k as f64 / steps_per_epoch as f64);
        let grads = loss.backward()?;
        let scale = match cfg.clip_grad_norm {
            Some(max) => Some(clip_factor(&clip_params, &grads, max)?.1),
            None => None,
        };
        opt.step(&grads, lr, scale)?;
        let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        anyhow::ensure!(l.is_finite(), "training diverged (loss {l}) at epoch {epoch}; lower training.lr in the suite");
        progress.epoch_loss_sum += l;
        progress.step = step + 1;
        on_step(progress.step, total_steps, l);
        if k + 1 == steps_per_epoch {
            last_epoch_loss = progress.epoch_loss_sum / steps_per_epoch as f64;
            progress.epoch_loss_sum = 0.0;
        }
        if let Some(ck) = &opts.checkpoint {
            if progress.step % ck.every_steps.max(1) == 0 && progress.step < total_steps {
                checkpoint::save(&ck.dir, model, &opt, progress)?;
            }
        }
        if opts.stop_after_step == Some(progress.step) && progress.step < total_steps {
            finished = false;
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(TrainOutcome { final_loss: last_epoch_loss, steps: progress.step, resumed_from, finished })
}

/// Normalised NHWC batch tensor from raw images of `set` at `indices`, augmenting when asked.
pub fn batch_tensor(set: &ImageSet, indices: &[usize], augment: Augment, aug_seed: u64, aug_index: u64, device: &Device) -> Result<Tensor> {
    let s = set.size as usize;
    Ok(Tensor::from_vec(batch_pixels(set, indices, augment, aug_seed, aug_index), (indices.len(), s, s, 3), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RgbImage;
    /// Top-1 predictions over every logit.
    fn predict(m: &mut ResNet, set: &ImageSet, flip_tta: bool) -> anyhow::Result<Vec<u32>> {
        use crate::model::Classifier;
        let scoring = crate::eval::Scoring::full(m.num_classes());
        Ok(crate::eval::predict(m, set, flip_tta, &scoring)?.into_iter().map(|r| r[0]).collect())
    }
    use crate::model::{ResNet, ResNetConfig};

    /// Two classes: dark images vs bright images, with a left–right asymmetric stripe.
    fn dark_and_bright(n: u32) -> ImageSet {
        let mut set = ImageSet::with_size(16);
        for i in 0..n {
            let v = if i % 2 == 0 { 40 + (i % 7) as u8 } else { 200 - (i % 5) as u8 };
            let mut pixels = vec![v; 16 * 16 * 3];
            for y in 0..16 {
                pixels[(y * 16 + (i as usize % 5)) * 3] = 255 - v;
            }
            set.push(i % 2, &RgbImage { width: 16, height: 16, pixels });
        }
        set
    }

    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 3, batch_size: 16, lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 5e-4,
            label_smoothing: 0.1, schedule: Schedule::Triangular, peak_epoch: 1.0, milestones: vec![], gamma: 0.1,
            clip_grad_norm: None, augment: Augment::Standard, mix: Mix::Concat, seed: 1,
        }
    }

    fn model() -> ResNet {
        ResNet::new(ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 2, image_size: 16 }, 1, &Device::Cpu).unwrap()
    }

    /// Every tensor of the model's state, as bytes.
    fn state_bytes(m: &ResNet) -> Vec<(String, Vec<u8>)> {
        m.state()
            .unwrap()
            .into_iter()
            .map(|(k, t)| {
                let t = t.flatten_all().unwrap();
                let bytes = match t.dtype() {
                    DType::I64 => t.to_vec1::<i64>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
                    _ => t.to_vec1::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
                };
                (k, bytes)
            })
            .collect()
    }

    #[test]
    fn training_is_deterministic_and_learns_a_separable_problem() {
        let set = dark_and_bright(64);
        let run = || {
            let mut m = model();
            let out = train(&mut m, &set, &config(), &Device::Cpu, |_, _, _| {}).unwrap();
            (out.final_loss, predict(&mut m, &set, false).unwrap())
        };
        let (loss_a, pred_a) = run();
        let (loss_b, pred_b) = run();
        assert_eq!(loss_a.to_bits(), loss_b.to_bits());
        assert_eq!(pred_a, pred_b);
        let correct = pred_a.iter().zip(&set.labels).filter(|(p, l)| p == l).count();
        assert!(correct >= 60, "only {correct}/64 correct");
    }

    #[test]
    fn augmix_jsd_trains_deterministically_and_differs_from_plain_augmix() {
        let set = dark_and_bright(32);
        let run = |augment| {
            let mut m = model();
            let cfg = TrainConfig { augment, epochs: 2, ..config() };
            let out = train(&mut m, &set, &cfg, &Device::Cpu, |_, _, _| {}).unwrap();
            assert!(out.final_loss.is_finite());
            (out.final_loss.to_bits(), state_bytes(&m))
        };
        let jsd = run(Augment::AugmixJsd);
        assert_eq!(run(Augment::AugmixJsd), jsd);
        assert_ne!(run(Augment::Augmix).1, jsd.1);
    }

    #[test]
    fn weights_do_not_depend_on_the_number_of_batch_builders() {
        let set = dark_and_bright(48);
        let cfg = TrainConfig { augment: Augment::Augmix, epochs: 2, ..config() };
        let run = |threads| {
            let mut m = model();
            let opts = TrainOptions { loader_threads: threads, ..TrainOptions::default() };
            let out = train_with(&mut m, TrainData::plain(&set), &cfg, &opts, &Device::Cpu, |_, _, _| {}).unwrap();
            (out.final_loss.to_bits(), state_bytes(&m))
        };
        let sequential = run(0);
        assert_eq!(run(1), sequential);
        assert_eq!(run(3), sequential);
    }

    #[test]
    fn a_job_stopped_mid_epoch_resumes_to_the_same_weights_and_loss() {
        let set = dark_and_bright(48);
        // 40 real images, 12 per batch: 3 steps per epoch, 9 in all. Clipping, Nesterov momentum
        // and per-batch mixing on, so their state is covered too.
        let cfg = TrainConfig { clip_grad_norm: Some(0.5), mix: Mix::GeneratedFraction(0.25), nesterov: true, ..config() };
        let data = TrainData { images: &set, generated_start: 40 };
        assert_eq!(total_steps(data, &cfg).unwrap(), 9);
        let mut clean = model();
        let whole = train_with(&mut clean, data, &cfg, &TrainOptions::default(), &Device::Cpu, |_, _, _| {}).unwrap();
        assert!(whole.finished && whole.resumed_from.is_none());

        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions { checkpoint: Some(CheckpointPlan { dir: dir.path().join("job"), every_steps: 4 }), ..TrainOptions::default() };
        let mut first = model();
        let cut = train_with(&mut first, data, &cfg, &TrainOptions { stop_after_step: Some(7), ..opts.clone() }, &Device::Cpu, |_, _, _| {}).unwrap();
        assert!(!cut.finished);
        assert_eq!(checkpoint::latest(&dir.path().join("job")).unwrap(), Some(4), "mid-epoch 1");
        // A fresh process: a newly initialised model, no optimiser state in memory.
        let mut resumed = model();
        let mut seen = Vec::new();
        let rest = train_with(&mut resumed, data, &cfg, &opts, &Device::Cpu, |s, _, _| seen.push(s)).unwrap();
        assert_eq!(rest.resumed_from, Some(4));
        assert_eq!(seen, (5..=9).collect::<Vec<_>>(), "steps 1–4 are not redone");
        assert_eq!(rest.final_loss.to_bits(), whole.final_loss.to_bits());
        assert_eq!(state_bytes(&resumed), state_bytes(&clean));
        // Without the momentum buffers the weights would differ: the check above can fail.
        let mut forgetful = model();
        let mut lost = Sgd::new(forgetful.params(), cfg.momentum, cfg.nesterov, cfg.weight_decay);
        checkpoint::restore(&dir.path().join("job"), 8, &mut forgetful, &mut lost).unwrap();
        lost.load_state(&Default::default(), "none").unwrap();
        checkpoint::save(&dir.path().join("forgetful"), &forgetful, &lost, checkpoint::Progress { step: 8, epoch_loss_sum: 0.0 }).unwrap();
        let opts = TrainOptions { checkpoint: Some(CheckpointPlan { dir: dir.path().join("forgetful"), every_steps: 100 }), ..TrainOptions::default() };
        train_with(&mut forgetful, data, &cfg, &opts, &Device::Cpu, |_, _, _| {}).unwrap();
        assert_ne!(state_bytes(&forgetful), state_bytes(&clean));
    }

    #[test]
    fn flip_averaging_sums_the_logits_of_the_image_and_its_mirror() {
        let set = dark_and_bright(12);
        let mut m = model();
        train(&mut m, &set, &TrainConfig { epochs: 1, batch_size: 4, ..config() }, &Device::Cpu, |_, _, _| {}).unwrap();
        let mut mirrored = ImageSet::with_size(16);
        for i in 0..set.len() {
            let img = set.image(i);
            let pixels = augment::flip_horizontal(&img.pixels, 16);
            mirrored.push(set.labels[i], &RgbImage { pixels, ..img });
        }
        let all: Vec<usize> = (0..set.len()).collect();
        let logits = |s: &ImageSet, m: &mut ResNet| m.forward(&batch_tensor(s, &all, Augment::None, 0, 0, &Device::Cpu).unwrap(), false).unwrap();
        let summed = (logits(&set, &mut m) + logits(&mirrored, &mut m)).unwrap();
        assert_eq!(predict(&mut m, &set, true).unwrap(), crate::model::argmax(&summed).unwrap());
        // The mirror of the mirror is the image: both sets get the same averaged predictions.
        assert_eq!(predict(&mut m, &mirrored, true).unwrap(), predict(&mut m, &set, true).unwrap());
    }
}
