//! Classifiers: a small ResNet for the procedural suites, built on candle.
//!
//! Tensors are channel-last (NHWC). A convolution is an explicit im2col followed by one matrix
//! product. candle's CPU backward for `conv2d` goes through a slow transposed convolution; this
//! form keeps forward and both gradients in GEMM, where candle is fast. On the CPU the column
//! matrix comes from our own op ([`im2col`]); elsewhere from candle primitives.

pub mod im2col;

use crate::rng::Stream;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use std::collections::BTreeMap;
use std::path::Path;

/// Shape of a residual network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Channels of the first stage; stage `s` has `width · 2^s`.
    pub width: usize,
    /// Residual blocks per stage.
    pub blocks: usize,
    /// Stages; each after the first halves the resolution.
    pub stages: usize,
    pub num_classes: usize,
    /// The stem is a stride-2 3×3 convolution: at 32 px the first stage runs at 16×16, which
    /// is what makes CPU training of the default suite take minutes instead of an hour.
    pub image_size: usize,
}

impl ResNetConfig {
    pub fn describe(&self) -> String {
        // No commas or spaces: it is a CSV field and a label.
        format!("resnet-w{}-b{}-s{}", self.width, self.blocks, self.stages)
    }
}

/// One trainable tensor and whether weight decay applies to it (not to BN scales or biases).
pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

/// Convolution (no bias) followed by batch normalisation.
struct ConvBn {
    weight: Var, // (k·k·cin, cout), rows ordered (dy, dx, cin)
    kernel: usize,
    stride: usize,
    gamma: Var,
    beta: Var,
    running_mean: Tensor,
    running_var: Tensor,
}

struct Block {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: Option<ConvBn>,
}

/// A ResNet with a 3×3/2 stem, `stages` stages of basic blocks, global average pooling and a
/// linear classifier.
pub struct ResNet {
    pub config: ResNetConfig,
    stem: ConvBn,
    blocks: Vec<Block>,
    fc_weight: Var, // (c_last, classes)
    fc_bias: Var,
    names: Vec<String>,
}

const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// ImageNet-style normalisation constants (per RGB channel), applied to `[0, 1]` pixels.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

impl ResNet {
    /// A freshly initialised network: Kaiming-normal convolutions (fan-in, ReLU gain) and a
    /// uniform `±1/√fan_in` classifier, all drawn from our own seeded stream because candle's
    /// CPU RNG cannot be seeded.
    pub fn new(config: ResNetConfig, seed: u64, device: &Device) -> Result<Self> {
        let mut init = Initializer { stream: Stream::new(seed, "init/resnet", 0), device: device.clone() };
        let mut names = Vec::new();
        let stem = init.conv_bn(3, config.width, 3, 2, "stem", &mut names)?;
        let mut blocks = Vec::new();
        let mut cin = config.width;
        for s in 0..config.stages {
            let cout = config.width << s;
            for b in 0..config.blocks {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let prefix = format!("stage{s}.block{b}");
                let conv1 = init.conv_bn(cin, cout, 3, stride, &format!("{prefix}.conv1"), &mut names)?;
                let conv2 = init.conv_bn(cout, cout, 3, 1, &format!("{prefix}.conv2"), &mut names)?;
                let shortcut = if stride != 1 || cin != cout {
                    Some(init.conv_bn(cin, cout, 1, stride, &format!("{prefix}.shortcut"), &mut names)?)
                } else {
                    None
                };
                blocks.push(Block { conv1, conv2, shortcut });
                cin = cout;
            }
        }
        let bound = 1.0 / (cin as f64).sqrt();
        let fc_weight = init.uniform(&[cin, config.num_classes], bound)?;
        let fc_bias = init.uniform(&[config.num_classes], bound)?;
        names.push("fc.weight".into());
        names.push("fc.bias".into());
        Ok(Self { config, stem, blocks, fc_weight, fc_bias, names })
    }

    /// Trainable parameters in a fixed order (the optimiser's and the checkpoint's order).
    pub fn params(&self) -> Vec<Param> {
        let mut out = Vec::new();
        let mut names = self.names.iter();
        let mut push_conv = |c: &ConvBn, out: &mut Vec<Param>| {
            let base = names.next().expect("one name per conv").clone();
            out.push(Param { name: format!("{base}.weight"), var: c.weight.clone(), decay: true });
            out.push(Param { name: format!("{base}.bn.weight"), var: c.gamma.clone(), decay: false });
            out.push(Param { name: format!("{base}.bn.bias"), var: c.beta.clone(), decay: false });
        };
        push_conv(&self.stem, &mut out);
        for b in &self.blocks {
            push_conv(&b.conv1, &mut out);
            push_conv(&b.conv2, &mut out);
            if let Some(s) = &b.shortcut {
                push_conv(s, &mut out);
            }
        }
        out.push(Param { name: "fc.weight".into(), var: self.fc_weight.clone(), decay: true });
        out.push(Param { name: "fc.bias".into(), var: self.fc_bias.clone(), decay: false });
        out
    }

    pub fn parameter_count(&self) -> u64 {
        self.params().iter().map(|p| p.var.elem_count() as u64).sum()
    }

    fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut v = vec![&mut self.stem];
        for b in &mut self.blocks {
            v.push(&mut b.conv1);
            v.push(&mut b.conv2);
            if let Some(s) = &mut b.shortcut {
                v.push(s);
            }
        }
        v
    }

    /// Logits `(batch, classes)` for normalised NHWC input `(batch, size, size, 3)`.
    /// In training mode batch statistics normalise and the running statistics are updated.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward(x, train)?.relu()?;
        for b in &mut self.blocks {
            let identity = match &mut b.shortcut {
                Some(s) => s.forward(&h, train)?,
                None => h.clone(),
            };
            let y = b.conv1.forward(&h, train)?.relu()?;
            let y = b.conv2.forward(&y, train)?;
            h = (y + identity)?.relu()?;
        }
        let pooled = h.mean(1)?.mean(1)?; // (B, C)
        Ok(pooled.matmul(self.fc_weight.as_tensor())?.broadcast_add(self.fc_bias.as_tensor())?)
    }

    /// All tensors (parameters and BN running statistics) by name, for checkpoints.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut m: BTreeMap<String, Tensor> = self.params().into_iter().map(|p| (p.name, p.var.as_tensor().clone())).collect();
        let convs: Vec<&ConvBn> = std::iter::once(&self.stem)
            .chain(self.blocks.iter().flat_map(|b| [Some(&b.conv1), Some(&b.conv2), b.shortcut.as_ref()].into_iter().flatten()))
            .collect();
        for (name, c) in self.names.iter().zip(convs) {
            m.insert(format!("{name}.bn.running_mean"), c.running_mean.clone());
            m.insert(format!("{name}.bn.running_var"), c.running_var.clone());
        }
        m
    }

    /// Writes a safetensors checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // safetensors orders tensors itself, so the file bytes do not depend on map iteration order.
        let state: std::collections::HashMap<String, Tensor> = self.state().into_iter().collect();
        candle_core::safetensors::save(&state, &tmp).with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot move checkpoint into place at {}", path.display()))?;
        Ok(())
    }

    /// Loads a checkpoint written by [`ResNet::save`] into a network of the same shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let device = self.fc_weight.device().clone();
        let tensors = candle_core::safetensors::load(path, &device)
            .with_context(|| format!("cannot read checkpoint {}; delete it to retrain", path.display()))?;
        let get = |name: &str, like: &Tensor| -> Result<Tensor> {
            let t = tensors.get(name).with_context(|| format!("checkpoint {} has no tensor `{name}`; delete it to retrain", path.display()))?;
            anyhow::ensure!(
                t.dims() == like.dims(),
                "checkpoint {}: tensor `{name}` has shape {:?}, the model expects {:?}; delete it to retrain",
                path.display(), t.dims(), like.dims()
            );
            Ok(t.clone())
        };
        for p in self.params() {
            p.var.set(&get(&p.name, p.var.as_tensor())?)?;
        }
        let names = self.names.clone();
        for (name, c) in names.iter().zip(self.conv_bns_mut()) {
            c.running_mean = get(&format!("{name}.bn.running_mean"), &c.running_mean)?;
            c.running_var = get(&format!("{name}.bn.running_var"), &c.running_var)?;
        }
        Ok(())
    }
}

impl ConvBn {
    fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_nhwc(x, self.weight.as_tensor(), self.kernel, self.stride)?;
        let (b, h, w, c) = y.dims4()?;
        let flat = y.reshape((b * h * w, c))?;
        let n = b * h * w;
        let (mean, var) = if train {
            let mean = column_mean(&flat)?;
            let var = column_mean(&flat.sub(&repeat_rows(&mean, n)?)?.sqr()?)?;
            // Running statistics follow PyTorch: unbiased variance, momentum 0.1.
            let unbiased = (var.detach().squeeze(0)? * (n as f64 / (n as f64 - 1.0).max(1.0)))?;
            self.running_mean = ((&self.running_mean * (1.0 - BN_MOMENTUM))? + (mean.detach().squeeze(0)? * BN_MOMENTUM)?)?;
            self.running_var = ((&self.running_var * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
            (mean, var)
        } else {
            (self.running_mean.unsqueeze(0)?, self.running_var.unsqueeze(0)?)
        };
        // y = (x − μ)·γ/√(σ²+ε) + β, with per-channel rows spread over the batch by outer
        // products (see `repeat_rows`).
        let scale = (var + BN_EPS)?.sqrt()?.recip()?.mul(&self.gamma.as_tensor().unsqueeze(0)?)?;
        let shift = self.beta.as_tensor().unsqueeze(0)?.sub(&mean.mul(&scale)?)?;
        let out = flat.mul(&repeat_rows(&scale, n)?)?.add(&repeat_rows(&shift, n)?)?;
        Ok(out.reshape((b, h, w, c))?)
    }
}

/// Mean over rows of an `(n, c)` matrix as `(1, c)`, computed as `1ᵀX / n`: candle's reductions
/// over a non-last axis are strided loops, a matrix product is several times faster.
fn column_mean(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    let ones = Tensor::ones((1, n), x.dtype(), x.device())?;
    Ok((ones.matmul(x)? * (1.0 / n as f64))?)
}

/// A `(1, c)` row repeated to `(n, c)` as the outer product `1·row`. Its gradient is a matrix
/// product too, where candle's `broadcast_*` backward would sum over a non-last axis slowly.
fn repeat_rows(row: &Tensor, n: usize) -> Result<Tensor> {
    let ones = Tensor::ones((n, 1), row.dtype(), row.device())?;
    Ok(ones.matmul(row)?)
}

/// Convolution of NHWC `x` with a `(k·k·cin, cout)` weight, padding `k/2`, via im2col + GEMM.
pub fn conv_nhwc(x: &Tensor, weight: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (b, h, w, cin) = x.dims4()?;
    let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
    let cols = if x.device().is_cpu() {
        let geometry = im2col::Geometry { batch: b, height: h, width: w, channels: cin, kernel, stride };
        x.contiguous()?.apply_op1(im2col::Im2Col(geometry))?
    } else {
        im2col_reference(x, kernel, stride)?
    };
    let cout = weight.dim(1)?;
    Ok(cols.matmul(weight)?.reshape((b, ho, wo, cout))?)
}

/// The column matrix built from candle primitives (pad, shifted views, concatenation): slower
/// on the CPU, but runs on every device candle supports. Public as the benchmarks' reference.
pub fn im2col_reference(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (b, h, w, cin) = x.dims4()?;
    let pad = kernel / 2;
    let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
    let padded = if pad > 0 { x.pad_with_zeros(1, pad, pad)?.pad_with_zeros(2, pad, pad)? } else { x.clone() };
    let mut columns = Vec::with_capacity(kernel * kernel);
    for dy in 0..kernel {
        for dx in 0..kernel {
            let view = padded.narrow(1, dy, (ho - 1) * stride + 1)?.narrow(2, dx, (wo - 1) * stride + 1)?;
            columns.push(subsample(&view, stride)?);
        }
    }
    let cols = if columns.len() == 1 { columns.pop().expect("one column") } else { Tensor::cat(&columns, 3)? };
    Ok(cols.reshape((b * ho * wo, kernel * kernel * cin))?)
}

/// Every `stride`-th row and column of an NHWC tensor whose spatial size is `(n-1)·stride + 1`.
fn subsample(x: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let (b, h, w, c) = x.dims4()?;
    let (ho, wo) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    // Pad to a multiple of the stride, then fold the stride into its own axis and keep index 0.
    let x = x.pad_with_zeros(1, 0, ho * stride - h)?.pad_with_zeros(2, 0, wo * stride - w)?;
    let x = x.reshape((b, ho, stride, wo, stride, c))?;
    Ok(x.narrow(2, 0, 1)?.narrow(4, 0, 1)?.reshape((b, ho, wo, c))?)
}

struct Initializer {
    stream: Stream,
    device: Device,
}

impl Initializer {
    fn normal(&mut self, shape: &[usize], std: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| (self.stream.normal() * std) as f32).collect();
        Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &self.device)?)?)
    }

    fn uniform(&mut self, shape: &[usize], bound: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.stream.uniform(-bound, bound) as f32).collect();
        Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &self.device)?)?)
    }

    fn conv_bn(&mut self, cin: usize, cout: usize, kernel: usize, stride: usize, name: &str, names: &mut Vec<String>) -> Result<ConvBn> {
        let fan_in = kernel * kernel * cin;
        let weight = self.normal(&[fan_in, cout], (2.0 / fan_in as f64).sqrt())?;
        names.push(name.to_string());
        Ok(ConvBn {
            weight,
            kernel,
            stride,
            gamma: Var::from_tensor(&Tensor::ones(cout, DType::F32, &self.device)?)?,
            beta: Var::from_tensor(&Tensor::zeros(cout, DType::F32, &self.device)?)?,
            running_mean: Tensor::zeros(cout, DType::F32, &self.device)?,
            running_var: Tensor::ones(cout, DType::F32, &self.device)?,
        })
    }
}

/// Index of the largest logit per row.
pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (loop) convolution as the reference for the im2col path.
    fn conv_reference(x: &[f32], (b, h, w, cin): (usize, usize, usize, usize), wt: &[f32], cout: usize, k: usize, stride: usize) -> Vec<f32> {
        let pad = k / 2;
        let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
        let mut out = vec![0f32; b * ho * wo * cout];
        for n in 0..b {
            for oy in 0..ho {
                for ox in 0..wo {
                    for co in 0..cout {
                        let mut acc = 0f32;
                        for dy in 0..k {
                            for dx in 0..k {
                                let iy = (oy * stride + dy) as isize - pad as isize;
                                let ix = (ox * stride + dx) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ci in 0..cin {
                                    let xv = x[((n * h + iy as usize) * w + ix as usize) * cin + ci];
                                    let wv = wt[((dy * k + dx) * cin + ci) * cout + co];
                                    acc += xv * wv;
                                }
                            }
                        }
                        out[((n * ho + oy) * wo + ox) * cout + co] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn im2col_convolution_matches_direct_loops() {
        let dev = Device::Cpu;
        let mut s = Stream::new(3, "test", 0);
        for &(h, k, stride) in &[(8usize, 3usize, 1usize), (8, 3, 2), (7, 3, 2), (6, 1, 2), (5, 1, 1)] {
            let (b, cin, cout) = (2, 3, 4);
            let x: Vec<f32> = (0..b * h * h * cin).map(|_| s.normal() as f32).collect();
            let wt: Vec<f32> = (0..k * k * cin * cout).map(|_| s.normal() as f32).collect();
            let got = conv_nhwc(
                &Tensor::from_vec(x.clone(), (b, h, h, cin), &dev).unwrap(),
                &Tensor::from_vec(wt.clone(), (k * k * cin, cout), &dev).unwrap(),
                k,
                stride,
            )
            .unwrap();
            let want = conv_reference(&x, (b, h, h, cin), &wt, cout, k, stride);
            let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got.len(), want.len(), "h={h} k={k} s={stride}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "h={h} k={k} s={stride}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn im2col_op_and_primitives_agree_in_value_and_gradient() {
        let dev = Device::Cpu;
        let mut s = Stream::new(4, "test", 0);
        for &(h, k, stride) in &[(8usize, 3usize, 1usize), (7, 3, 2), (6, 1, 2)] {
            let data: Vec<f32> = (0..2 * h * h * 3).map(|_| s.normal() as f32).collect();
            let x = Var::from_tensor(&Tensor::from_vec(data, (2, h, h, 3), &dev).unwrap()).unwrap();
            let g = im2col::Geometry { batch: 2, height: h, width: h, channels: 3, kernel: k, stride };
            let fast = x.as_tensor().apply_op1(im2col::Im2Col(g)).unwrap();
            let slow = im2col_reference(x.as_tensor(), k, stride).unwrap();
            let fv: Vec<f32> = fast.flatten_all().unwrap().to_vec1().unwrap();
            let sv: Vec<f32> = slow.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(fv, sv, "values h={h} k={k} s={stride}");
            // A weighting that differs per column, so the gradient sees every position.
            let weights = Tensor::arange(0f32, fast.elem_count() as f32, &dev).unwrap().reshape(fast.dims()).unwrap();
            let grad_of = |cols: &Tensor| -> Vec<f32> {
                let loss = (cols * &weights).unwrap().sum_all().unwrap();
                loss.backward().unwrap().get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
            };
            let (gf, gs) = (grad_of(&fast), grad_of(&slow));
            for (a, b) in gf.iter().zip(&gs) {
                assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "gradient h={h} k={k} s={stride}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn same_seed_same_weights_and_checkpoint_round_trip() {
        let cfg = ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 3, image_size: 16 };
        let dev = Device::Cpu;
        let mut a = ResNet::new(cfg.clone(), 5, &dev).unwrap();
        let b = ResNet::new(cfg.clone(), 5, &dev).unwrap();
        let c = ResNet::new(cfg.clone(), 6, &dev).unwrap();
        let w = |m: &ResNet| m.params()[0].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
        let x = Tensor::ones((2, 16, 16, 3), DType::F32, &dev).unwrap();
        a.forward(&x, true).unwrap(); // moves running statistics away from their init
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        a.save(&path).unwrap();
        let mut d = ResNet::new(cfg, 99, &dev).unwrap();
        d.load(&path).unwrap();
        let la: Vec<f32> = a.forward(&x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let ld: Vec<f32> = d.forward(&x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(la, ld);
    }
}
