//! A generator learned inside the harness (the paper's RQ4): a small class-conditional denoising
//! diffusion model, trained on DDPM's noise schedule to predict the velocity v = √ᾱ·ε − √(1−ᾱ)·x₀
//! (Salimans & Ho 2022) and sampled with deterministic DDIM. Version 1 predicted the noise ε;
//! then a clean-image estimate divides the network's error by √ᾱ (about 0.01 at the noisiest
//! steps), and at 300 steps of training its samples were saturated noise where v-prediction's
//! already showed the objects' rough shapes (both measured on the `shapes-rq` suite's images).
//!
//! # Why this model
//!
//! RQ4 asks whether a generator fine-tuned on the real training images makes better training
//! data than the base generator. Answering it needs a generator that *learns* from images, so
//! that "fine-tuned on the real data" means what it means for Stable Diffusion: the base model's
//! weights, trained further on the real set. The procedural painter cannot be fine-tuned, and
//! Stable Diffusion cannot be trained on two CPU cores. A diffusion model at the suite's image
//! size is the smallest model of the same family: `kind = "diffusion"` trains one on `train_on`
//! (for the base: prompt-diverse generated images), and one with `base` starts from another's
//! weights and trains on the real set.
//!
//! # Why its numbers do not depend on the CPU
//!
//! Every convolution and linear map goes through [`fused::Conv`], whose products have a summation
//! order fixed by the shapes ([`crate::model::kernels`]); everything else is elementwise IEEE
//! arithmetic (ReLU, additions, the optimiser) or candle's sums, whose order depends only on
//! whether the CPU has AVX2 (the contract of `kernels`). No transcendental function is called
//! on the network's path: the timestep enters through piecewise-linear "hat" features instead
//! of sines, and the noise schedule needs only products and square roots (correctly rounded).
//! The Gaussian draws go through the platform libm (`ln`, `cos` in Box–Muller), as every
//! other seeded draw of the harness does. Each output row of a product is its own chain, so an
//! image comes out the same whatever else is in its batch: a killed generation resumes to the
//! same bytes.
//!
//! # The network
//!
//! A two-level U-Net without normalisation layers (batch statistics would make an image depend
//! on its batch; without them the residual branches start at zero, so training starts from the
//! identity), working on 2×2 patches (12 channels at half the resolution; the first version ran
//! at full resolution and was 3× slower per step on the suite's 32 px images): a 3×3 stem to
//! `width` channels, a residual block, a stride-2 convolution to `2·width`, a block, another
//! stride-2 convolution, two blocks at an eighth of the image size, then nearest-neighbour
//! upsampling with additive skips back up, and a 3×3 convolution (starting at zero, reading the
//! trunk without a ReLU) to the predicted velocity of each patch. The class (one-hot) and the
//! timestep (16 hat features) pass through a linear layer + ReLU to a 64-value embedding, which
//! conditions the network multiplicatively as well as additively: it scales the stem's channels
//! (`gate`), and in each block it scales (`gain`) and shifts (`cond`) the first convolution's
//! output before its ReLU (FiLM; both scales start at 1).
//!
//! Version 2 conditioned by addition only. Its samples were pixel noise: at the noisiest steps
//! the best estimate of the clean image ignores the input, but the residual trunk carries the
//! stem's reading of the input to the head, and an added bias cannot cancel it. Measured on the
//! `shapes-rq` generated images after 1,000 steps, the clean-image error (mean square, on 64
//! training images) at t = 950 was 0.254, worse than predicting the set's mean image (0.200);
//! with the scales (version 3) the same run gave 0.204, and the error fell at every step of the
//! schedule (0.091 → 0.048 at t = 250). The samples' mean squared difference of adjacent pixels
//! (first 400 images of each set, RGB8) was 4,077 for version 2's base model and is 190 for
//! version 3's at the suite's 3,000 steps, against 264 for the images it learns from: blurred
//! layouts of the class's colours, not pixel noise.

use super::manifest::{DiffusionColumns, ManifestRow};
use super::{Generator, TemplateSet};
use crate::data::{ImageSet, RgbImage};
use crate::model::fused;
use crate::rng::Stream;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Names the model, objective, sampler and file formats in cache keys and manifests; bump it
/// whenever a change here changes any weight or pixel.
pub const VERSION: &str = "diffusion-v3";

/// Diffusion steps of the noise schedule (DDPM's linear β from 1e-4 to 0.02).
pub const TIMESTEPS: usize = 1000;
const TIME_FEATURES: usize = 16;
const EMBED: usize = 64;
/// Global L2 norm the gradients are clipped to: without normalisation layers an early large
/// step can blow the residual branches up.
const CLIP_NORM: f64 = 1.0;
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;
/// Optimiser steps between partial checkpoints.
pub const CHECKPOINT_EVERY: u64 = 200;
/// Images sampled together.
const SAMPLE_BATCH: usize = 64;

/// A `kind = "diffusion"` generator, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffusionConfig {
    /// What the records call this generator's weights (`base`, `fine-tuned`): RQ4 compares regimes
    /// that differ only in it.
    pub variant: String,
    /// The diffusion generator whose trained weights this one starts from (fine-tuning).
    pub base: Option<String>,
    /// Sets (real domains or generated sets) it learns from, concatenated.
    pub train_on: Vec<String>,
    /// Optimiser steps (scaled by the `--quick` profile).
    pub steps: u64,
    /// Channels at full resolution (twice that at the lower levels).
    pub width: usize,
    pub batch_size: usize,
    /// Adam's learning rate (after a linear warm-up over the first tenth of the steps, at most 100).
    pub lr: f64,
    /// DDIM steps per generated image.
    pub sample_steps: usize,
}

/// DDPM's linear noise schedule: `alpha_bar[t]` = ∏_{s ≤ t} (1 − β_s).
pub fn alpha_bar() -> Vec<f64> {
    let mut prod = 1.0f64;
    (0..TIMESTEPS)
        .map(|i| {
            let beta = 1e-4 + (0.02 - 1e-4) * i as f64 / (TIMESTEPS - 1) as f64;
            prod *= 1.0 - beta;
            prod
        })
        .collect()
}

/// Conditioning features of one image: hat functions of the timestep (exact arithmetic, no
/// sines) followed by the one-hot class.
fn features(t: usize, label: usize, classes: usize, out: &mut Vec<f32>) {
    let position = t as f64 / (TIMESTEPS - 1) as f64 * (TIME_FEATURES - 1) as f64;
    out.extend((0..TIME_FEATURES).map(|k| (1.0 - (position - k as f64).abs()).max(0.0) as f32));
    out.extend((0..classes).map(|c| if c == label { 1.0 } else { 0.0 }));
}

/// Batch size, height and width of a `(B·H·W, C)` activation.
type Images = (usize, usize, usize);

struct Dense {
    w: Var,
    b: Var,
}

struct ConvLayer {
    w: Var,
    b: Var,
    kernel: usize,
    stride: usize,
}

struct Block {
    conv1: ConvLayer,
    cond: Dense,
    gain: Dense,
    conv2: ConvLayer,
}

/// The velocity-predicting network.
pub struct Denoiser {
    pub width: usize,
    pub classes: usize,
    embed: Dense,
    stem: ConvLayer,
    gate: Dense,
    block0: Block,
    down1: ConvLayer,
    block1: Block,
    down2: ConvLayer,
    mid: [Block; 2],
    up1: Block,
    reduce: ConvLayer,
    up0: Block,
    out: ConvLayer,
}

struct Init<'a> {
    stream: &'a mut Stream,
}

/// How a layer's weights start. Without normalisation layers nothing rescales the trunk, so its
/// scale is set here: the first version He-initialised every layer, including the trunk's
/// convolutions, whose inputs are not rectified; each then doubled the activations' variance,
/// the network's output started at rms 4 (a loss of 17 where predicting no noise scores 1), and
/// within about 40 Adam steps the trunk grew to rms 500, the last ReLU saw only negative values
/// and the network died, predicting exactly 0 ever after (samples were saturated noise).
#[derive(Clone, Copy)]
enum Start {
    /// Variance 2 / fan-in: the layer reads rectified values (half of them zero).
    He,
    /// Variance 1 / fan-in: the layer reads the trunk itself, whose scale it keeps.
    Linear,
    /// All zero: residual branches and the output head, so training starts from the identity
    /// trunk and a prediction of no noise.
    Zero,
}

impl Init<'_> {
    /// A `(rows, cols)` weight, `rows` = fan-in.
    fn weight(&mut self, rows: usize, cols: usize, start: Start) -> Result<Var> {
        let std = match start {
            Start::He => (2.0 / rows as f64).sqrt(),
            Start::Linear => (1.0 / rows as f64).sqrt(),
            Start::Zero => 0.0,
        };
        let values: Vec<f32> = (0..rows * cols).map(|_| if std == 0.0 { 0.0 } else { (self.stream.normal() * std) as f32 }).collect();
        Ok(Var::from_tensor(&Tensor::from_vec(values, (rows, cols), &Device::Cpu)?)?)
    }
    fn bias(&mut self, n: usize) -> Result<Var> {
        Ok(Var::from_tensor(&Tensor::zeros((1, n), DType::F32, &Device::Cpu)?)?)
    }
    fn conv(&mut self, kernel: usize, stride: usize, cin: usize, cout: usize, start: Start) -> Result<ConvLayer> {
        Ok(ConvLayer { w: self.weight(kernel * kernel * cin, cout, start)?, b: self.bias(cout)?, kernel, stride })
    }
    fn dense(&mut self, cin: usize, cout: usize, start: Start) -> Result<Dense> {
        Ok(Dense { w: self.weight(cin, cout, start)?, b: self.bias(cout)? })
    }
    /// A residual block whose second convolution starts at zero (the block starts as the identity).
    fn block(&mut self, c: usize) -> Result<Block> {
        Ok(Block {
            conv1: self.conv(3, 1, c, c, Start::He)?,
            cond: self.dense(EMBED, c, Start::He)?,
            gain: self.dense(EMBED, c, Start::Zero)?,
            conv2: self.conv(3, 1, c, c, Start::Zero)?,
        })
    }
}

fn conv(x: &Tensor, l: &ConvLayer, images: Images) -> Result<(Tensor, Images)> {
    let y = x.contiguous()?.apply_op2(l.w.as_tensor(), fused::Conv::new(l.kernel, l.stride, images))?;
    let out = (images.0, images.1.div_ceil(l.stride), images.2.div_ceil(l.stride));
    Ok((y.broadcast_add(l.b.as_tensor())?, out))
}

/// A linear layer: a 1×1 convolution over `B` one-pixel images (the same fixed-order product).
fn dense(x: &Tensor, d: &Dense) -> Result<Tensor> {
    let b = x.dim(0)?;
    Ok(x.contiguous()?.apply_op2(d.w.as_tensor(), fused::Conv::new(1, 1, (b, 1, 1)))?.broadcast_add(d.b.as_tensor())?)
}

/// `(B, C)` rows repeated over each image's pixels: `(B·H·W, C)`.
fn per_pixel(rows: &Tensor, images: Images) -> Result<Tensor> {
    let (b, c) = rows.dims2()?;
    let hw = images.1 * images.2;
    Ok(rows.reshape((b, 1, c))?.broadcast_as((b, hw, c))?.contiguous()?.reshape((b * hw, c))?)
}

fn block(h: &Tensor, blk: &Block, emb: &Tensor, images: Images) -> Result<Tensor> {
    let (a, _) = conv(&h.relu()?, &blk.conv1, images)?;
    let scale = (per_pixel(&dense(emb, &blk.gain)?, images)? + 1.0)?;
    let a = ((a * scale)? + per_pixel(&dense(emb, &blk.cond)?, images)?)?.relu()?;
    let (a, _) = conv(&a, &blk.conv2, images)?;
    Ok((h + a)?)
}

/// Each 2×2 patch of a `(B·H·W, 3)` image as one pixel of 12 channels: `(B·H/2·W/2, 12)`.
/// The network works at half the resolution and predicts the patches back
/// ([`depth_to_space`]): at 32 px the full-resolution convolutions streamed a column matrix
/// nine times the activation per layer, and were most of the time for little of the model.
fn space_to_depth(x: &Tensor, images: Images) -> Result<(Tensor, Images)> {
    let (b, h, w) = images;
    let y = x.reshape((b, h / 2, 2, w / 2, 2, 3))?.permute((0, 1, 3, 2, 4, 5))?.contiguous()?.reshape((b * (h / 2) * (w / 2), 12))?;
    Ok((y, (b, h / 2, w / 2)))
}

/// The inverse of [`space_to_depth`]: `(B·h·w, 12)` at `half` = (B, h, w) to `(B·2h·2w, 3)`.
fn depth_to_space(x: &Tensor, half: Images) -> Result<Tensor> {
    let (b, h, w) = half;
    Ok(x.reshape((b, h, w, 2, 2, 3))?.permute((0, 1, 3, 2, 4, 5))?.contiguous()?.reshape((b * h * 2 * w * 2, 3))?)
}

/// Nearest-neighbour ×2 upsampling of a `(B·H·W, C)` activation.
fn upsample(h: &Tensor, images: Images) -> Result<(Tensor, Images)> {
    let (b, hh, ww) = images;
    let c = h.dim(1)?;
    let up = h.reshape((b, hh, 1, ww, 1, c))?.broadcast_as((b, hh, 2, ww, 2, c))?.contiguous()?.reshape((b * hh * 2 * ww * 2, c))?;
    Ok((up, (b, hh * 2, ww * 2)))
}

impl Denoiser {
    /// A freshly initialised network, seeded.
    pub fn new(width: usize, classes: usize, seed: u64) -> Result<Self> {
        let mut stream = Stream::new(seed, "diffusion/init", 0);
        let mut i = Init { stream: &mut stream };
        let w2 = 2 * width;
        Ok(Denoiser {
            width,
            classes,
            embed: i.dense(TIME_FEATURES + classes, EMBED, Start::Linear)?,
            stem: i.conv(3, 1, 12, width, Start::Linear)?,
            gate: i.dense(EMBED, width, Start::Zero)?,
            block0: i.block(width)?,
            down1: i.conv(3, 2, width, w2, Start::Linear)?,
            block1: i.block(w2)?,
            down2: i.conv(3, 2, w2, w2, Start::Linear)?,
            mid: [i.block(w2)?, i.block(w2)?],
            up1: i.block(w2)?,
            reduce: i.conv(1, 1, w2, width, Start::Linear)?,
            up0: i.block(width)?,
            out: i.conv(3, 1, width, 12, Start::Zero)?,
        })
    }

    /// Every trainable tensor with its checkpoint name, in a fixed order.
    pub fn params(&self) -> Vec<(String, &Var)> {
        fn conv<'m>(name: &str, l: &'m ConvLayer, out: &mut Vec<(String, &'m Var)>) {
            out.push((format!("{name}.w"), &l.w));
            out.push((format!("{name}.b"), &l.b));
        }
        let mut out = vec![
            ("embed.w".to_string(), &self.embed.w),
            ("embed.b".to_string(), &self.embed.b),
            ("gate.w".to_string(), &self.gate.w),
            ("gate.b".to_string(), &self.gate.b),
        ];
        let blocks: [(&str, &Block); 6] =
            [("block0", &self.block0), ("block1", &self.block1), ("mid0", &self.mid[0]), ("mid1", &self.mid[1]), ("up1", &self.up1), ("up0", &self.up0)];
        for (name, l) in [("stem", &self.stem), ("down1", &self.down1), ("down2", &self.down2), ("reduce", &self.reduce), ("out", &self.out)] {
            conv(name, l, &mut out);
        }
        for (name, b) in blocks {
            conv(&format!("{name}.conv1"), &b.conv1, &mut out);
            conv(&format!("{name}.conv2"), &b.conv2, &mut out);
            out.push((format!("{name}.cond.w"), &b.cond.w));
            out.push((format!("{name}.cond.b"), &b.cond.b));
            out.push((format!("{name}.gain.w"), &b.gain.w));
            out.push((format!("{name}.gain.b"), &b.gain.b));
        }
        out
    }

    /// Predicted velocity `(B·H·W, 3)` for noisy images `x` `(B·H·W, 3)` holding `images`, with
    /// conditioning `features` `(B, 16 + classes)`.
    pub fn forward(&self, x: &Tensor, images: Images, features: &Tensor) -> Result<Tensor> {
        let emb = dense(features, &self.embed)?.relu()?;
        let (x, half) = space_to_depth(x, images)?;
        let (h, at0) = conv(&x, &self.stem, half)?;
        let h = (h * (per_pixel(&dense(&emb, &self.gate)?, at0)? + 1.0)?)?;
        let skip0 = block(&h, &self.block0, &emb, at0)?;
        let (h, at1) = conv(&skip0, &self.down1, at0)?;
        let skip1 = block(&h, &self.block1, &emb, at1)?;
        let (mut h, at2) = conv(&skip1, &self.down2, at1)?;
        for b in &self.mid {
            h = block(&h, b, &emb, at2)?;
        }
        let (h, _) = upsample(&h, at2)?;
        let h = block(&(h + skip1)?, &self.up1, &emb, at1)?;
        let (h, _) = conv(&h, &self.reduce, at1)?;
        let (h, _) = upsample(&h, at1)?;
        let h = block(&(h + skip0)?, &self.up0, &emb, at0)?;
        // The head reads the trunk unrectified: behind a ReLU, a trunk that drifts negative
        // cuts every gradient and the network can never recover.
        depth_to_space(&conv(&h, &self.out, at0)?.0, at0)
    }

    /// The weights as named tensors (a checkpoint's `w.` entries).
    fn tensors(&self, prefix: &str) -> HashMap<String, Tensor> {
        self.params().into_iter().map(|(n, v)| (format!("{prefix}{n}"), v.as_tensor().clone())).collect()
    }

    /// Loads `w.<name>` tensors; every parameter must be there with its shape.
    fn load(&self, tensors: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        for (name, var) in self.params() {
            let t = tensors.get(&format!("w.{name}")).with_context(|| format!("{what} has no weight `{name}`"))?;
            anyhow::ensure!(t.dims() == var.dims(), "{what}: `{name}` has shape {:?}, the model expects {:?}", t.dims(), var.dims());
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

/// Adam with global-norm clipping, in plain f32 arithmetic (elementwise, so the same everywhere).
struct Adam {
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    fn new(model: &Denoiser) -> Self {
        let zeros = || model.params().iter().map(|(_, v)| vec![0f32; v.elem_count()]).collect::<Vec<_>>();
        Adam { m: zeros(), v: zeros() }
    }

    /// Update number `t` (1-based).
    fn step(&mut self, model: &Denoiser, grads: &candle_core::backprop::GradStore, lr: f64, t: u64) -> Result<()> {
        let params = model.params();
        let mut flat = Vec::with_capacity(params.len());
        let mut sq = 0f64;
        for (_, var) in &params {
            let g = match grads.get(var.as_tensor()) {
                Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
                None => vec![0f32; var.elem_count()],
            };
            sq += g.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
            flat.push(g);
        }
        let norm = sq.sqrt();
        anyhow::ensure!(norm.is_finite(), "the diffusion model's training diverged (gradient norm {norm}); lower its `lr`");
        let scale = if norm > CLIP_NORM { (CLIP_NORM / norm) as f32 } else { 1.0 };
        let c1 = 1.0 - (BETA1 as f64).powi(t as i32);
        let c2 = 1.0 - (BETA2 as f64).powi(t as i32);
        let (lr, c1, c2) = (lr as f32, c1 as f32, c2 as f32);
        for (((_, var), g), (m, v)) in params.iter().zip(&flat).zip(self.m.iter_mut().zip(self.v.iter_mut())) {
            let mut w = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            for i in 0..w.len() {
                let g = g[i] * scale;
                m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                v[i] = BETA2 * v[i] + (1.0 - BETA2) * (g * g);
                let update = (m[i] / c1) / ((v[i] / c2).sqrt() + ADAM_EPS);
                w[i] -= lr * update;
            }
            var.set(&Tensor::from_vec(w, var.shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }

    fn tensors(&self, model: &Denoiser) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for ((name, var), (m, v)) in model.params().iter().zip(self.m.iter().zip(&self.v)) {
            out.insert(format!("m.{name}"), Tensor::from_vec(m.clone(), var.shape(), &Device::Cpu)?);
            out.insert(format!("v.{name}"), Tensor::from_vec(v.clone(), var.shape(), &Device::Cpu)?);
        }
        Ok(out)
    }

    fn load(&mut self, model: &Denoiser, tensors: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        for (i, (name, var)) in model.params().iter().enumerate() {
            for (prefix, slot) in [("m.", &mut self.m[i]), ("v.", &mut self.v[i])] {
                let t = tensors.get(&format!("{prefix}{name}")).with_context(|| format!("{what} has no optimiser state `{prefix}{name}`"))?;
                anyhow::ensure!(t.dims() == var.dims(), "{what}: `{prefix}{name}` has the wrong shape");
                *slot = t.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }
}

/// The learning rate at (0-based) step `step` of `total`: linear warm-up, then constant.
fn lr_at(lr: f64, step: u64, total: u64) -> f64 {
    let warmup = (total / 10).clamp(1, 100);
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        lr
    }
}

/// Images `x0` in [-1, 1] from RGB8 pixels (flipped left–right when asked).
fn to_signed(pixels: &[u8], size: usize, flip: bool, out: &mut Vec<f32>) {
    for y in 0..size {
        for x in 0..size {
            let sx = if flip { size - 1 - x } else { x };
            let at = (y * size + sx) * 3;
            out.extend(pixels[at..at + 3].iter().map(|&p| p as f32 / 127.5 - 1.0));
        }
    }
}

/// What one training run needs: the images (concatenated sets), the schedule and the seed of
/// its streams.
pub struct TrainingData<'a> {
    pub sets: Vec<&'a ImageSet>,
    pub seed: u64,
    /// The generator's name (its streams' purpose).
    pub name: String,
}

impl TrainingData<'_> {
    fn len(&self) -> usize {
        self.sets.iter().map(|s| s.len()).sum()
    }

    /// Image `i` of the concatenation: (pixels, label).
    fn image(&self, mut i: usize) -> (&[u8], u32) {
        for s in &self.sets {
            if i < s.len() {
                let n = (s.size * s.size * 3) as usize;
                return (&s.pixels[i * n..(i + 1) * n], s.labels[i]);
            }
            i -= s.len();
        }
        unreachable!("index within the concatenated sets")
    }
}

/// Where a diffusion training job keeps its partial checkpoints and final weights.
pub struct TrainingFolder {
    pub dir: PathBuf,
}

const FINAL: &str = "weights.safetensors";
const SIDECAR: &str = "weights.json";

impl TrainingFolder {
    fn partial(&self, step: u64) -> PathBuf {
        self.dir.join(format!("train-{step:08}.safetensors"))
    }

    fn latest_partial(&self) -> Option<u64> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("train-")?.strip_suffix(".safetensors")?.parse::<u64>().ok())
            .max()
    }
}

/// The sidecar of finished weights: they are used only when key and hash match.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sidecar {
    key: serde_json::Value,
    sha256: String,
}

/// Trains `model` (fresh, or holding its base's weights) for `config.steps` on `data`,
/// resuming from the newest partial checkpoint in `folder`, and writes the final weights with
/// their sidecar. Returns the sha256 of the final weights file. Finished weights whose sidecar
/// matches `key` are loaded instead of training. `stop_after` ends the run after that many
/// steps with a partial checkpoint and no weights (`None` returned): how tests kill a run.
pub fn train(
    model: &Denoiser,
    config: &DiffusionConfig,
    data: &TrainingData,
    folder: &TrainingFolder,
    key: &serde_json::Value,
    progress: &indicatif::ProgressBar,
    stop_after: Option<u64>,
) -> Result<Option<String>> {
    if let Some(hash) = load_finished(model, folder, key)? {
        return Ok(Some(hash));
    }
    crate::memory::tune_allocator();
    let n = data.len();
    anyhow::ensure!(n > 0, "diffusion generator `{}` has no training images", data.name);
    let size = data.sets[0].size as usize;
    anyhow::ensure!(data.sets.iter().all(|s| s.size as usize == size), "diffusion generator `{}`: its training sets differ in image size", data.name);
    let schedule = alpha_bar();
    let mut adam = Adam::new(model);
    let mut start = 0;
    if let Some(step) = folder.latest_partial().filter(|&s| s < config.steps) {
        let path = folder.partial(step);
        let what = path.display().to_string();
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).with_context(|| format!("cannot read {what}; delete it to restart"))?;
        model.load(&tensors, &what)?;
        adam.load(model, &tensors, &what)?;
        start = step;
    }
    progress.set_length(config.steps);
    progress.set_position(start);
    let batch = config.batch_size;
    let pixels = size * size;
    let mut order: Option<(u64, Vec<usize>)> = None;
    let window_start = config.steps - config.steps / 10;
    let (mut window_loss, mut window_target) = (0f64, 0f64);
    for step in start..config.steps {
        let mut noise = Stream::new(data.seed, &format!("diffusion/{}/noise", data.name), step);
        let (mut x0, mut target_v, mut feats, mut xt) = (Vec::with_capacity(batch * pixels * 3), Vec::new(), Vec::new(), Vec::new());
        for j in 0..batch {
            let position = step * batch as u64 + j as u64;
            let epoch = position / n as u64;
            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let mut o: Vec<usize> = (0..n).collect();
                Stream::new(data.seed, &format!("diffusion/{}/order", data.name), epoch).shuffle(&mut o);
                order = Some((epoch, o));
            }
            let index = order.as_ref().map(|(_, o)| o[(position % n as u64) as usize]).unwrap_or(0);
            let (image, label) = data.image(index);
            let flip = noise.chance(0.5);
            let t = noise.below(TIMESTEPS as u64) as usize;
            let start_pixel = x0.len();
            to_signed(image, size, flip, &mut x0);
            let (a, b) = (schedule[t].sqrt() as f32, (1.0 - schedule[t]).sqrt() as f32);
            for k in 0..pixels * 3 {
                let e = noise.normal() as f32;
                let clean = x0[start_pixel + k];
                target_v.push(a * e - b * clean);
                xt.push(a * clean + b * e);
            }
            features(t, label as usize, model.classes, &mut feats);
        }
        let images = (batch, size, size);
        let x = Tensor::from_vec(xt, (batch * pixels, 3), &Device::Cpu)?;
        if step >= window_start {
            window_target += target_v.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / target_v.len() as f64;
        }
        let target = Tensor::from_vec(target_v, (batch * pixels, 3), &Device::Cpu)?;
        let f = Tensor::from_vec(feats, (batch, TIME_FEATURES + model.classes), &Device::Cpu)?;
        let loss = (model.forward(&x, images, &f)? - target)?.sqr()?.mean_all()?;
        if step >= window_start {
            window_loss += loss.to_scalar::<f32>()? as f64;
        }
        let grads = loss.backward()?;
        adam.step(model, &grads, lr_at(config.lr, step, config.steps), step + 1)?;
        let done = step + 1;
        progress.set_position(done);
        let stop = stop_after == Some(done) && done < config.steps;
        if (done % CHECKPOINT_EVERY == 0 || stop) && done < config.steps {
            save_partial(model, &adam, folder, done)?;
        }
        if stop {
            return Ok(None);
        }
    }
    if let Some(defect) = failed_to_learn(config.steps, window_loss, window_target) {
        anyhow::bail!("diffusion generator `{}` {defect}; its samples would be noise, not images. Raise its `steps`, or lower its `lr`", data.name);
    }
    std::fs::create_dir_all(&folder.dir).with_context(|| format!("cannot create {}", folder.dir.display()))?;
    let mut tensors = model.tensors("w.");
    tensors.insert("version".into(), Tensor::new(&[1i64], &Device::Cpu)?);
    let names: Vec<(String, Tensor)> = tensors.into_iter().collect();
    let final_path = folder.dir.join(FINAL);
    crate::fsutil::write_safetensors(&final_path, names.iter().map(|(n, t)| (n, t)))?;
    let hash = crate::fsutil::sha256_hex(&std::fs::read(&final_path).with_context(|| format!("cannot read back {}", final_path.display()))?);
    let sidecar = serde_json::to_vec_pretty(&Sidecar { key: key.clone(), sha256: hash.clone() })?;
    crate::fsutil::write_atomic(&folder.dir.join(SIDECAR), &sidecar)?;
    if let Some(step) = folder.latest_partial() {
        std::fs::remove_file(folder.partial(step)).with_context(|| format!("cannot remove {}", folder.partial(step).display()))?;
    }
    Ok(Some(hash))
}

/// Why a finished training run did not learn, judged on its last tenth of steps: its loss must be
/// below 0.9 of the loss of predicting zero on the same batches (the mean square of the targets).
/// The first version's network died after about 40 of 1,000 steps and kept exactly that loss, and
/// its samples were noise; this is what would have stopped it. Runs under 100 steps (the quick
/// profile, tests) are too short to judge; a resumed run judges the window steps it ran.
fn failed_to_learn(steps: u64, window_loss: f64, window_target: f64) -> Option<String> {
    if steps < 100 || window_target <= 0.0 {
        return None;
    }
    let ratio = window_loss / window_target;
    (!(ratio < 0.9)).then(|| format!("did not learn: over its last {} steps its loss was {ratio:.3} of predicting no signal (at most 0.9 passes)", steps / 10))
}

fn save_partial(model: &Denoiser, adam: &Adam, folder: &TrainingFolder, step: u64) -> Result<()> {
    std::fs::create_dir_all(&folder.dir).with_context(|| format!("cannot create {}", folder.dir.display()))?;
    let mut tensors = model.tensors("w.");
    tensors.extend(adam.tensors(model)?);
    let names: Vec<(String, Tensor)> = tensors.into_iter().collect();
    crate::fsutil::write_safetensors(&folder.partial(step), names.iter().map(|(n, t)| (n, t)))?;
    for entry in std::fs::read_dir(&folder.dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("train-") && entry.path() != folder.partial(step) {
            std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove old checkpoint {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Loads finished weights whose sidecar names `key` and whose bytes match its hash; weights that
/// fail either check are moved to `stale/` beside them (and retrained), with a warning.
fn load_finished(model: &Denoiser, folder: &TrainingFolder, key: &serde_json::Value) -> Result<Option<String>> {
    let (weights, sidecar) = (folder.dir.join(FINAL), folder.dir.join(SIDECAR));
    if !weights.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let recorded: Option<Sidecar> = std::fs::read(&sidecar).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let checked = match &recorded {
        None => Err("it has no readable weights.json".to_string()),
        Some(s) if &s.key != key => Err("its weights.json names another training job".to_string()),
        Some(s) => crate::checkpoints::check_weights(&bytes, &s.sha256).map_err(|defect| format!("it {defect}")),
    };
    let loaded = checked.map_err(|p| anyhow::anyhow!(p)).and_then(|hash| {
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        model.load(&tensors, &weights.display().to_string())?;
        Ok(hash)
    });
    match loaded {
        Ok(hash) => Ok(Some(hash)),
        Err(e) => {
            let stale = folder.dir.join("stale");
            let moved = crate::fsutil::move_aside(&weights, &stale)?;
            crate::progress::warn(format!("diffusion weights {} cannot be used ({e:#}); moved to {} and retraining", weights.display(), moved.display()));
            Ok(None)
        }
    }
}

/// DDIM (η = 0) from pure noise: `images` of `labels`, each starting from the noise of its own
/// seed, in `steps` evenly spaced timesteps. Returns RGB8 pixels per image.
pub fn sample(model: &Denoiser, labels: &[u32], seeds: &[u64], size: usize, steps: usize) -> Result<Vec<Vec<u8>>> {
    crate::memory::tune_allocator();
    let schedule = alpha_bar();
    let batch = labels.len();
    let per_image = size * size * 3;
    let mut x: Vec<f32> = Vec::with_capacity(batch * per_image);
    for &seed in seeds {
        let mut s = Stream::new(seed, "diffusion/sample", 0);
        x.extend((0..per_image).map(|_| s.normal() as f32));
    }
    let times: Vec<usize> = (0..steps).map(|i| i * TIMESTEPS / steps).collect();
    let mut x0 = vec![0f32; x.len()];
    for (i, &t) in times.iter().enumerate().rev() {
        let mut feats = Vec::with_capacity(batch * (TIME_FEATURES + model.classes));
        for &label in labels {
            features(t, label as usize, model.classes, &mut feats);
        }
        let input = Tensor::from_vec(x.clone(), (batch * size * size, 3), &Device::Cpu)?;
        let f = Tensor::from_vec(feats, (batch, TIME_FEATURES + model.classes), &Device::Cpu)?;
        let v = model.forward(&input, (batch, size, size), &f)?.flatten_all()?.to_vec1::<f32>()?;
        let (a, b) = (schedule[t].sqrt() as f32, (1.0 - schedule[t]).sqrt() as f32);
        let prev = if i == 0 { 1.0 } else { schedule[times[i - 1]] };
        let (pa, pb) = (prev.sqrt() as f32, (1.0 - prev).sqrt() as f32);
        for k in 0..x.len() {
            x0[k] = (a * x[k] - b * v[k]).clamp(-1.0, 1.0);
            let eps = b * x[k] + a * v[k];
            x[k] = pa * x0[k] + pb * eps;
        }
    }
    Ok(x0.chunks_exact(per_image).map(|img| img.iter().map(|&v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8).collect()).collect())
}

/// A trained diffusion generator, ready to render generated sets.
pub struct DiffusionGenerator {
    pub config: DiffusionConfig,
    pub model: Denoiser,
    /// sha256 of its weights file.
    pub weights_sha256: String,
    /// Its training job's key (what generated sets made with it are keyed by).
    pub key: serde_json::Value,
    /// The size it was trained at (the suite's image size).
    pub image_size: u32,
}

impl DiffusionGenerator {
    /// e.g. `diffusion-v3/fine-tuned`
    pub fn id(&self) -> String {
        format!("{VERSION}/{}", self.config.variant)
    }
}

impl Generator for DiffusionGenerator {
    fn id(&self) -> String {
        DiffusionGenerator::id(self)
    }
    fn templates(&self) -> TemplateSet {
        TemplateSet::PhotoOf
    }
    /// Class-conditional: no prompt is read.
    fn prompt_for(&self, _seed: u64, _set: &str, _index: u64, _class_name: &str) -> (usize, String) {
        (0, String::new())
    }
    fn diffusion_columns(&self, _index: u64) -> Result<Option<DiffusionColumns>> {
        Ok(Some(DiffusionColumns {
            weights_sha256: self.weights_sha256.clone(),
            scheduler: "ddim".into(),
            steps: self.config.sample_steps,
            guidance: 1.0,
            gen_size: self.image_size,
            strength: None,
            source_image: None,
        }))
    }
    fn batch_size(&self) -> usize {
        SAMPLE_BATCH
    }
    fn render(&self, plans: &[&ManifestRow], _classes: &[usize], size: u32) -> Result<Vec<RgbImage>> {
        let labels: Vec<u32> = plans.iter().map(|p| p.label).collect();
        let seeds: Vec<u64> = plans.iter().map(|p| p.seed).collect();
        let images = sample(&self.model, &labels, &seeds, size as usize, self.config.sample_steps)?;
        Ok(images.into_iter().map(|pixels| RgbImage { width: size, height: size, pixels }).collect())
    }
}

/// The images and key of a set the run holds in memory, by name (what `train_on` names).
pub type SetLookup<'a> = dyn Fn(&str) -> Option<(&'a ImageSet, &'a serde_json::Value)> + 'a;

/// The diffusion generators the plan's generated sets use, trained (or loaded from `work/`) in
/// order, bases before the models fine-tuned from them. Steps follow the plan's profile.
pub fn prepare(config: &crate::suite::SuiteConfig, plan: &crate::plan::Plan, sets: &SetLookup<'_>, work: &Path, multi: &indicatif::MultiProgress) -> Result<std::collections::BTreeMap<String, DiffusionGenerator>> {
    use crate::suite::GeneratorBackend;
    let diffusion_config = |name: &str| match config.generator(name).map(|g| &g.backend) {
        Some(GeneratorBackend::Diffusion(c)) => Some(DiffusionConfig { steps: plan.profile.steps(c.steps), ..c.clone() }),
        _ => None,
    };
    let mut wanted: Vec<String> = Vec::new();
    for g in &plan.generated {
        if let Some(c) = diffusion_config(&g.generator) {
            // A base first (the validator allows one level of fine-tuning).
            for name in c.base.iter().chain(std::iter::once(&g.generator)) {
                if !wanted.contains(name) {
                    wanted.push(name.clone());
                }
            }
        }
    }
    wanted.sort_by_key(|name| diffusion_config(name).is_some_and(|c| c.base.is_some()));
    let classes = config.num_classes();
    let mut out: std::collections::BTreeMap<String, DiffusionGenerator> = std::collections::BTreeMap::new();
    for name in wanted {
        let c = diffusion_config(&name).with_context(|| format!("`{name}` is not a diffusion generator of the suite"))?;
        let mut images = Vec::new();
        let mut keys = Vec::new();
        for set in &c.train_on {
            let (s, key) = sets(set).with_context(|| format!("diffusion generator `{name}` learns from `{set}`, which this run does not hold in memory"))?;
            images.push(s);
            keys.push(key.clone());
        }
        let base = match &c.base {
            Some(b) => Some(out.get(b).with_context(|| format!("diffusion generator `{name}`: its base `{b}` was not trained first"))?),
            None => None,
        };
        let key = crate::keys::diffusion_training(&name, &c, keys, base.map(|b| &b.key), plan.seed, classes, plan.image_size);
        let model = Denoiser::new(c.width, classes, crate::rng::derive_seed(plan.seed, &format!("diffusion/{name}/init"), 0))?;
        if let Some(b) = base {
            model.load(&b.model.tensors("w."), &format!("the weights of `{}`", c.base.as_deref().unwrap_or("")))?;
        }
        let folder = TrainingFolder { dir: crate::keys::diffusion_dir(work, &name, &key) };
        let pb = multi.add(crate::progress::bar(c.steps, &format!("{name} (diffusion training)")));
        let data = TrainingData { sets: images, seed: plan.seed, name: name.clone() };
        let weights_sha256 = train(&model, &c, &data, &folder, &key, &pb, None)?.context("an uninterrupted training run ends with weights")?;
        pb.finish_and_clear();
        crate::progress::say(format!("{name}: diffusion model ready in {} ({} steps)", folder.dir.display(), c.steps));
        out.insert(name, DiffusionGenerator { config: c, model, weights_sha256, key, image_size: plan.image_size });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::{self, Isa};

    /// Twenty 8×8 images of two classes: dark with a bright left half, bright with a dark top.
    fn toy_set() -> ImageSet {
        let mut set = ImageSet::with_size(8);
        let mut s = Stream::new(7, "toy", 0);
        for i in 0..20u32 {
            set.labels.push(i % 2);
            for y in 0..8 {
                for x in 0..8 {
                    let on = if i % 2 == 0 { x < 4 } else { y >= 4 };
                    let v = if on { 200 } else { 40 } as f64 + s.uniform(-20.0, 20.0);
                    set.pixels.extend([v as u8, (v * 0.8) as u8, (255.0 - v) as u8]);
                }
            }
        }
        set
    }

    fn config(steps: u64) -> DiffusionConfig {
        DiffusionConfig { variant: "base".into(), base: None, train_on: vec!["toy".into()], steps, width: 4, batch_size: 6, lr: 3e-3, sample_steps: 4 }
    }

    fn trained(steps: u64, dir: &Path, stop_after: Option<u64>) -> (Denoiser, Option<String>) {
        let set = toy_set();
        let model = Denoiser::new(4, 2, 1).unwrap();
        let data = TrainingData { sets: vec![&set], seed: 3, name: "toy".into() };
        let hash = train(&model, &config(steps), &data, &TrainingFolder { dir: dir.to_path_buf() }, &serde_json::json!("toy"), &indicatif::ProgressBar::hidden(), stop_after).unwrap();
        (model, hash)
    }

    fn weights(model: &Denoiser) -> Vec<Vec<u32>> {
        model.params().iter().map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()).collect()
    }

    #[test]
    fn a_killed_training_run_resumes_to_the_same_weights() {
        let (whole, interrupted) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, hash_a) = trained(6, whole.path(), None);
        let (_, stopped) = trained(6, interrupted.path(), Some(3));
        assert_eq!(stopped, None);
        assert!(interrupted.path().join("train-00000003.safetensors").exists());
        let (b, hash_b) = trained(6, interrupted.path(), None);
        assert_eq!(weights(&a), weights(&b));
        assert_eq!(hash_a, hash_b);
        assert!(!interrupted.path().join("train-00000003.safetensors").exists(), "the partial checkpoint is removed once the weights are final");
    }

    #[test]
    fn finished_weights_are_reused_only_when_key_and_hash_match() {
        let dir = tempfile::tempdir().unwrap();
        let (a, hash) = trained(3, dir.path(), None);
        // Loaded, not retrained: a fresh model ends with the same weights.
        let (b, again) = trained(3, dir.path(), None);
        assert_eq!((weights(&a), &hash), (weights(&b), &again));
        // Bytes edited in place: moved aside and retrained to the same weights.
        let file = dir.path().join(FINAL);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();
        let (c, retrained) = trained(3, dir.path(), None);
        assert_eq!((weights(&a), &hash), (weights(&c), &retrained));
        assert!(dir.path().join("stale").join(FINAL).exists());
        // A NaN weight under a sidecar recomputed to match it: refused, as classifier
        // checkpoints are, and retrained.
        let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
        let name = tensors.keys().find(|k| k.starts_with("w.")).unwrap().clone();
        let poisoned = (tensors[&name].ones_like().unwrap() * f64::NAN).unwrap();
        tensors.insert(name, poisoned);
        crate::fsutil::write_safetensors(&file, tensors.iter()).unwrap();
        let sha256 = crate::fsutil::sha256_hex(&std::fs::read(&file).unwrap());
        let key = serde_json::from_slice::<Sidecar>(&std::fs::read(dir.path().join(SIDECAR)).unwrap()).unwrap().key;
        std::fs::write(dir.path().join(SIDECAR), serde_json::to_vec(&Sidecar { key, sha256 }).unwrap()).unwrap();
        let (d, after_nan) = trained(3, dir.path(), None);
        assert_eq!((weights(&a), &hash), (weights(&d), &after_nan));
        assert_eq!(std::fs::read_dir(dir.path().join("stale")).unwrap().count(), 2, "the NaN weights were moved aside too");
    }

    #[test]
    fn a_run_that_did_not_learn_is_refused() {
        assert_eq!(failed_to_learn(1000, 50.0, 100.0), None);
        let defect = failed_to_learn(1000, 95.0, 100.0).expect("a loss at 0.95 of predicting zero is refused");
        assert!(defect.contains("0.950") && defect.contains("last 100 steps"), "{defect}");
        assert!(failed_to_learn(1000, f64::NAN, 100.0).is_some(), "a NaN loss is refused");
        assert_eq!(failed_to_learn(99, 95.0, 100.0), None, "too short to judge");
    }

    #[test]
    fn training_lowers_the_denoising_loss() {
        // The loss on fixed noisy versions of the set, before and after 200 steps (enough to pass
        // `failed_to_learn`, which judges runs of 100 steps or more). The untrained network
        // predicts zero, so `before` is the loss of predicting no signal; measured: 0.647 -> 0.473
        // (the kernels are bit-identical on every ISA, so this holds on every CPU).
        let set = toy_set();
        let loss = |model: &Denoiser| {
            let schedule = alpha_bar();
            let mut s = Stream::new(99, "held-out", 0);
            let (mut xt, mut velocity, mut feats) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..set.len() {
                let t = s.below(TIMESTEPS as u64) as usize;
                let mut x0 = Vec::new();
                to_signed(&set.pixels[i * 192..(i + 1) * 192], 8, false, &mut x0);
                let (a, b) = (schedule[t].sqrt() as f32, (1.0 - schedule[t]).sqrt() as f32);
                for v in x0 {
                    let e = s.normal() as f32;
                    velocity.push(a * e - b * v);
                    xt.push(a * v + b * e);
                }
                features(t, set.labels[i] as usize, 2, &mut feats);
            }
            let n = set.len();
            let x = Tensor::from_vec(xt, (n * 64, 3), &Device::Cpu).unwrap();
            let f = Tensor::from_vec(feats, (n, TIME_FEATURES + 2), &Device::Cpu).unwrap();
            let e = Tensor::from_vec(velocity, (n * 64, 3), &Device::Cpu).unwrap();
            (model.forward(&x, (n, 8, 8), &f).unwrap() - e).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap()
        };
        let before = loss(&Denoiser::new(4, 2, 1).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = trained(200, dir.path(), None);
        let after = loss(&model);
        assert!(after < 0.8 * before, "denoising loss {before} -> {after}");
    }

    #[test]
    fn samples_are_the_same_on_every_kernel_path_and_in_any_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = trained(4, dir.path(), None);
        let reference = kernels::with_isa(Isa::Scalar, || sample(&model, &[0, 1, 1], &[11, 12, 13], 8, 4).unwrap()).unwrap();
        assert_ne!(reference[1], reference[2], "two seeds give two images");
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let batch = kernels::with_isa(isa, || sample(&model, &[0, 1, 1], &[11, 12, 13], 8, 4).unwrap()).unwrap();
            assert_eq!(batch, reference, "{isa:?}");
            let alone = kernels::with_isa(isa, || sample(&model, &[1], &[13], 8, 4).unwrap()).unwrap();
            assert_eq!(alone[0], reference[2], "{isa:?}: an image alone equals it in a batch");
        }
    }

    #[test]
    fn fine_tuning_starts_from_the_base_weights() {
        let dir = tempfile::tempdir().unwrap();
        let (base, _) = trained(3, dir.path(), None);
        let tuned = Denoiser::new(4, 2, 5).unwrap();
        tuned.load(&base.tensors("w."), "base").unwrap();
        assert_eq!(weights(&tuned), weights(&base));
    }
}
