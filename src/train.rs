//! Training: batches from a seeded shuffler, SGD with momentum and decoupled-from-BN weight
//! decay, label smoothing, learning-rate schedules, and the standard augmentation baseline.
//!
//! candle-nn offers plain SGD and AdamW only; the optimiser and schedules here are ours.

use crate::augment;
use crate::data::ImageSet;
use crate::model::{Param, ResNet, MEAN, STD};
use crate::rng::Stream;
use crate::suite::{Augment, Schedule};
use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};

/// Asks the C allocator to keep freed memory instead of returning it to the OS.
///
/// candle allocates a fresh buffer for every op result. glibc serves buffers over 128 KiB with
/// `mmap` and unmaps them on free, so each op page-faults its output back in: on the default
/// suite's model that was over a quarter of a training step (an elementwise product of a
/// 16384×16 matrix: 1.0 ms with the defaults, 0.04 ms with these settings). Idempotent.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only adjusts allocator thresholds; it is safe to call at any time.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        });
    }
}

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
    pub peak_epoch: f64,
    pub augment: Augment,
    /// Seed of this job's shuffling and augmentation streams.
    pub seed: u64,
}

/// Learning rate at fractional epoch `t` (in `[0, epochs]`).
///
/// Triangular: `peak · t/peak_epoch` up to the peak, then `peak · (E − t)/(E − peak_epoch)`.
/// Cosine: the same warm-up, then `peak · ½(1 + cos(π·(t − peak_epoch)/(E − peak_epoch)))`.
pub fn learning_rate(schedule: Schedule, peak: f64, peak_epoch: f64, epochs: f64, t: f64) -> f64 {
    let peak_epoch = peak_epoch.min(epochs);
    if schedule == Schedule::Constant {
        return peak;
    }
    if t < peak_epoch {
        return peak * t / peak_epoch;
    }
    let span = (epochs - peak_epoch).max(f64::MIN_POSITIVE);
    let progress = ((t - peak_epoch) / span).clamp(0.0, 1.0);
    match schedule {
        Schedule::Triangular => peak * (1.0 - progress),
        Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        Schedule::Constant => peak,
    }
}

/// SGD with (optionally Nesterov) momentum and L2 weight decay on the parameters marked for it,
/// in PyTorch's formulation: `g ← ∇ + λ·w`, `v ← μ·v + g`, `w ← w − η·(g + μ·v if nesterov else v)`.
pub struct Sgd {
    params: Vec<Param>,
    velocity: Vec<Option<Tensor>>,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Sgd {
    pub fn new(params: Vec<Param>, momentum: f64, nesterov: bool, weight_decay: f64) -> Self {
        let velocity = params.iter().map(|_| None).collect();
        Self { params, velocity, momentum, nesterov, weight_decay }
    }

    pub fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64) -> Result<()> {
        for (p, v) in self.params.iter().zip(self.velocity.iter_mut()) {
            let Some(grad) = grads.get(p.var.as_tensor()) else { continue };
            // Detached copies: otherwise every update would record an op referencing the
            // previous velocity and gradient, and the whole training history stays alive.
            let (grad, w) = (&grad.detach(), &p.var.as_tensor().detach());
            let g = if p.decay && self.weight_decay > 0.0 { (grad + (w * self.weight_decay)?)? } else { grad.clone() };
            let update = if self.momentum > 0.0 {
                let new_v = match v.take() {
                    Some(old) => ((old * self.momentum)? + &g)?,
                    None => g.clone(),
                };
                let u = if self.nesterov { (&g + (&new_v * self.momentum)?)? } else { new_v.clone() };
                *v = Some(new_v);
                u
            } else {
                g
            };
            p.var.set(&(w - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Cross-entropy with label smoothing `ε`: `(1−ε)·NLL(y) + ε·mean_k(−log p_k)`, batch-averaged.
pub fn smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, smoothing: f64) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = log_probs.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?.mean_all()?;
    if smoothing == 0.0 {
        return Ok(nll);
    }
    let uniform = log_probs.mean(D::Minus1)?.neg()?.mean_all()?;
    Ok(((nll * (1.0 - smoothing))? + (uniform * smoothing)?)?)
}

/// Normalised NHWC batch tensor from raw images of `set` at `indices`, augmenting when asked.
pub fn batch_tensor(set: &ImageSet, indices: &[usize], augment: Augment, aug_seed: u64, aug_index: u64, device: &Device) -> Result<Tensor> {
    let s = set.size as usize;
    let per = set.image_bytes();
    let mut data = Vec::with_capacity(indices.len() * per);
    for (k, &i) in indices.iter().enumerate() {
        let raw = &set.pixels[i * per..(i + 1) * per];
        let pixels: std::borrow::Cow<[u8]> = match augment {
            Augment::None => raw.into(),
            Augment::Standard => {
                let mut stream = Stream::new(aug_seed, "augment/standard", aug_index + k as u64);
                augment::standard(raw, s, &mut stream).into()
            }
        };
        data.extend(pixels.iter().enumerate().map(|(j, &p)| (p as f32 / 255.0 - MEAN[j % 3]) / STD[j % 3]));
    }
    Ok(Tensor::from_vec(data, (indices.len(), s, s, 3), device)?)
}

/// What a finished training job reports.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub final_loss: f64,
    pub steps: u64,
}

/// Optimiser steps per epoch over `n` images. The last incomplete batch is dropped: tiny
/// batches make batch-norm statistics erratic.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    (n / batch_size.min(n).max(1)).max(1)
}

/// Fits `model` on `data` for `cfg.epochs` epochs. `on_step` is called after every step with
/// (step, total steps, loss) — progress bars hang off it.
pub fn train(model: &mut ResNet, data: &ImageSet, cfg: &TrainConfig, device: &Device, mut on_step: impl FnMut(u64, u64, f64)) -> Result<TrainOutcome> {
    anyhow::ensure!(!data.is_empty(), "the training set is empty; check the domain sizes in the suite");
    tune_allocator();
    let mut opt = Sgd::new(model.params(), cfg.momentum, cfg.nesterov, cfg.weight_decay);
    let n = data.len();
    let batch = cfg.batch_size.min(n);
    let steps_per_epoch = steps_per_epoch(n, cfg.batch_size);
    let total_steps = steps_per_epoch as u64 * cfg.epochs as u64;
    let mut step = 0u64;
    let mut last_epoch_loss = 0.0;
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        Stream::new(cfg.seed, "train/shuffle", epoch as u64).shuffle(&mut order);
        let mut loss_sum = 0.0;
        for b in 0..steps_per_epoch {
            let idx = &order[b * batch..(b + 1) * batch];
            let aug_index = (epoch as u64) << 32 | (b * batch) as u64;
            let x = batch_tensor(data, idx, cfg.augment, cfg.seed, aug_index, device)?;
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i]).collect();
            let y = Tensor::from_vec(labels, idx.len(), device)?;
            let logits = model.forward(&x, true)?;
            let loss = smoothed_cross_entropy(&logits, &y, cfg.label_smoothing)?;
            let t = epoch as f64 + b as f64 / steps_per_epoch as f64;
            let lr = learning_rate(cfg.schedule, cfg.lr, cfg.peak_epoch, cfg.epochs as f64, t);
            let grads = loss.backward()?;
            opt.step(&grads, lr)?;
            let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            anyhow::ensure!(l.is_finite(), "training diverged (loss {l}) at epoch {epoch}; lower training.lr in the suite");
            loss_sum += l;
            step += 1;
            on_step(step, total_steps, l);
        }
        last_epoch_loss = loss_sum / steps_per_epoch as f64;
    }
    Ok(TrainOutcome { final_loss: last_epoch_loss, steps: step })
}

/// Top-1 predictions for every image of `set`, in order, with the model in evaluation mode.
pub fn predict(model: &mut ResNet, set: &ImageSet, device: &Device) -> Result<Vec<u32>> {
    const EVAL_BATCH: usize = 250;
    let mut out = Vec::with_capacity(set.len());
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let x = batch_tensor(set, chunk, Augment::None, 0, 0, device)?;
        out.extend(crate::model::argmax(&model.forward(&x, false)?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResNetConfig;

    #[test]
    fn triangular_schedule_peaks_then_reaches_zero() {
        let lr = |t| learning_rate(Schedule::Triangular, 0.4, 2.0, 10.0, t);
        assert_eq!(lr(0.0), 0.0);
        assert!((lr(1.0) - 0.2).abs() < 1e-12);
        assert!((lr(2.0) - 0.4).abs() < 1e-12);
        assert!((lr(6.0) - 0.2).abs() < 1e-12);
        assert!(lr(10.0).abs() < 1e-12);
        let c = |t| learning_rate(Schedule::Cosine, 0.4, 0.0, 10.0, t);
        assert!((c(0.0) - 0.4).abs() < 1e-12 && (c(5.0) - 0.2).abs() < 1e-12 && c(10.0).abs() < 1e-12);
    }

    #[test]
    fn sgd_matches_hand_computed_momentum_and_decay() {
        // w=1, grad of 0.5·w² is w; λ=0.1, μ=0.9, η=0.1.
        // step 1: g = 1 + 0.1 = 1.1, v = 1.1, w = 1 − 0.11 = 0.89
        // step 2: g = 0.89 + 0.089 = 0.979, v = 0.99 + 0.979 = 1.969, w = 0.89 − 0.1969 = 0.6931
        let dev = Device::Cpu;
        let var = candle_core::Var::from_tensor(&Tensor::new(&[1f32], &dev).unwrap()).unwrap();
        let mut opt = Sgd::new(vec![Param { name: "w".into(), var: var.clone(), decay: true }], 0.9, false, 0.1);
        for _ in 0..2 {
            let loss = (var.as_tensor().sqr().unwrap() * 0.5).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap(), 0.1).unwrap();
        }
        let w = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        let expected = 0.89 - 0.1969;
        assert!((w - expected).abs() < 1e-6, "{w}");
    }

    #[test]
    fn label_smoothing_matches_closed_form() {
        // Two classes, logits (0, 0): p = ½ each, NLL = ln 2, uniform term = ln 2.
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0]], &dev).unwrap();
        let labels = Tensor::new(&[0u32, 1], &dev).unwrap();
        let got = smoothed_cross_entropy(&logits, &labels, 0.1).unwrap().to_scalar::<f32>().unwrap() as f64;
        let lse = (2f64.exp() + 1.0).ln();
        let row1 = 0.9 * 2f64.ln() + 0.1 * 2f64.ln();
        let row2 = 0.9 * lse + 0.1 * ((lse - 2.0) + lse) / 2.0;
        assert!((got - (row1 + row2) / 2.0).abs() < 1e-5, "{got}");
    }

    #[test]
    fn training_is_deterministic_and_learns_a_separable_problem() {
        // Two classes: dark images vs bright images.
        let mut set = ImageSet::with_size(16);
        for i in 0..64u32 {
            let v = if i % 2 == 0 { 40 + (i % 7) as u8 } else { 200 - (i % 5) as u8 };
            set.push(i % 2, &crate::data::RgbImage { width: 16, height: 16, pixels: vec![v; 16 * 16 * 3] });
        }
        let cfg = TrainConfig {
            epochs: 3, batch_size: 16, lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 5e-4,
            label_smoothing: 0.1, schedule: Schedule::Triangular, peak_epoch: 1.0, augment: Augment::Standard, seed: 1,
        };
        let run = || {
            let dev = Device::Cpu;
            let mut m = ResNet::new(ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 2, image_size: 16 }, 1, &dev).unwrap();
            let out = train(&mut m, &set, &cfg, &dev, |_, _, _| {}).unwrap();
            (out.final_loss, predict(&mut m, &set, &dev).unwrap())
        };
        let (loss_a, pred_a) = run();
        let (loss_b, pred_b) = run();
        assert_eq!(loss_a.to_bits(), loss_b.to_bits());
        assert_eq!(pred_a, pred_b);
        let correct = pred_a.iter().zip(&set.labels).filter(|(p, l)| p == l).count();
        assert!(correct >= 60, "only {correct}/64 correct");
    }
}
