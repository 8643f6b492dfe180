//! Convolution + batch normalisation over NHWC tensors, and the seeded initialiser.
//!
//! A convolution is an explicit im2col followed by one matrix product. candle's CPU backward for
//! `conv2d` goes through a slow transposed convolution; this form keeps forward and both
//! gradients in GEMM, where candle is fast. On the CPU the column matrix comes from our own op
//! ([`im2col`]); elsewhere from candle primitives. Padding is `kernel / 2` as in torchvision's
//! ResNets, so for odd kernels the output side is `ceil(n / stride)`, PyTorch's
//! `floor((n + 2p − k) / s) + 1`.

use super::{fused, im2col};
use crate::rng::Stream;
use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};

const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// Convolution (no bias) followed by batch normalisation.
pub(crate) struct ConvBn {
    pub(crate) weight: Var, // (k·k·cin, cout), rows ordered (dy, dx, cin)
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) gamma: Var,
    pub(crate) beta: Var,
    pub(crate) running_mean: Tensor,
    pub(crate) running_var: Tensor,
    /// Training batches seen (PyTorch's `num_batches_tracked`; kept for checkpoints only).
    pub(crate) batches_tracked: i64,
}

/// Batch size, height and width of the images a `(B·H·W, C)` activation matrix holds.
pub(crate) type Images = (usize, usize, usize);

impl ConvBn {
    /// The CPU path: convolution, batch norm, then ReLU when `relu`, on `(B·H·W, C)` input
    /// holding `images`; returns the output and its (B, Ho, Wo). One fused op per stage (see
    /// [`fused`]).
    pub(crate) fn forward_fused(&mut self, x: &Tensor, images: Images, train: bool, relu: bool) -> Result<(Tensor, Images)> {
        let flat = x.contiguous()?.apply_op2(self.weight.as_tensor(), fused::Conv::new(self.kernel, self.stride, images))?;
        let out_images = (images.0, images.1.div_ceil(self.stride), images.2.div_ceil(self.stride));
        let out = if train {
            let (op, stats) = fused::BatchNorm::new(BN_EPS, relu);
            let out = flat.apply_op3(self.gamma.as_tensor(), self.beta.as_tensor(), op)?;
            let stats = stats.lock().expect("batch-norm statistics").clone();
            // Running statistics follow PyTorch: unbiased variance, momentum 0.1.
            self.batches_tracked += 1;
            let n = stats.rows as f64;
            let unbiased = n / (n - 1.0).max(1.0);
            let update = |running: &Tensor, batch: &[f32], factor: f64| -> Result<Tensor> {
                let old = running.to_vec1::<f32>()?;
                let new: Vec<f32> = old
                    .iter()
                    .zip(batch)
                    .map(|(&r, &v)| ((1.0 - BN_MOMENTUM) * r as f64 + BN_MOMENTUM * factor * v as f64) as f32)
                    .collect();
                Ok(Tensor::from_vec(new, old.len(), running.device())?)
            };
            self.running_mean = update(&self.running_mean, &stats.mean, 1.0)?;
            self.running_var = update(&self.running_var, &stats.var, unbiased)?;
            out
        } else {
            let (mean, var) = (self.running_mean.to_vec1::<f32>()?, self.running_var.to_vec1::<f32>()?);
            let (gamma, beta) = (self.gamma.as_tensor().to_vec1::<f32>()?, self.beta.as_tensor().to_vec1::<f32>()?);
            let scale: Vec<f32> = var.iter().zip(&gamma).map(|(&v, &g)| (g as f64 / (v as f64 + BN_EPS).sqrt()) as f32).collect();
            let shift: Vec<f32> = beta.iter().zip(&mean).zip(&scale).map(|((&b, &m), &s)| (b as f64 - m as f64 * s as f64) as f32).collect();
            flat.apply_op1_no_bwd(&fused::ChannelAffine { scale, shift, relu })?
        };
        Ok((out, out_images))
    }

    /// The device-independent path from candle primitives, on NHWC tensors (no ReLU).
    pub(crate) fn forward_primitives(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_nhwc(x, self.weight.as_tensor(), self.kernel, self.stride)?;
        let (b, h, w, c) = y.dims4()?;
        let flat = y.reshape((b * h * w, c))?;
        let n = b * h * w;
        let (mean, var) = if train {
            let mean = column_mean(&flat)?;
            let var = column_mean(&flat.sub(&repeat_rows(&mean, n)?)?.sqr()?)?;
            // Running statistics follow PyTorch: unbiased variance, momentum 0.1.
            self.batches_tracked += 1;
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
    let geometry = im2col::Geometry::same_padding(b, h, w, cin, kernel, stride);
    let cols = if x.device().is_cpu() { x.contiguous()?.apply_op1(im2col::Im2Col(geometry))? } else { im2col_reference(x, kernel, stride)? };
    let cout = weight.dim(1)?;
    Ok(cols.matmul(weight)?.reshape((b, geometry.out_height(), geometry.out_width(), cout))?)
}

/// The column matrix built from candle primitives (pad, shifted views, concatenation): slower
/// on the CPU, but runs on every device candle supports. Public as the benchmarks' reference.
pub fn im2col_reference(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (b, h, w, cin) = x.dims4()?;
    let geometry = im2col::Geometry::same_padding(b, h, w, cin, kernel, stride);
    let (pad, ho, wo) = (geometry.padding, geometry.out_height(), geometry.out_width());
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
pub(crate) fn subsample(x: &Tensor, stride: usize) -> Result<Tensor> {
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

pub(crate) struct Initializer {
    pub(crate) stream: Stream,
    pub(crate) device: Device,
}

impl Initializer {
    pub(crate) fn normal(&mut self, shape: &[usize], std: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| (self.stream.normal() * std) as f32).collect();
        Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &self.device)?)?)
    }

    pub(crate) fn uniform(&mut self, shape: &[usize], bound: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.stream.uniform(-bound, bound) as f32).collect();
        Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &self.device)?)?)
    }

    /// Kaiming-normal (fan-in, ReLU gain) convolution weight, BN at identity.
    pub(crate) fn conv_bn(&mut self, cin: usize, cout: usize, kernel: usize, stride: usize) -> Result<ConvBn> {
        let fan_in = kernel * kernel * cin;
        let weight = self.normal(&[fan_in, cout], (2.0 / fan_in as f64).sqrt())?;
        Ok(ConvBn {
            weight,
            kernel,
            stride,
            gamma: Var::from_tensor(&Tensor::ones(cout, DType::F32, &self.device)?)?,
            beta: Var::from_tensor(&Tensor::zeros(cout, DType::F32, &self.device)?)?,
            running_mean: Tensor::zeros(cout, DType::F32, &self.device)?,
            running_var: Tensor::ones(cout, DType::F32, &self.device)?,
            batches_tracked: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
        // 7×7/2 is the ImageNet stem, 1×1/2 the downsampling shortcut: odd and even sides both.
        for &(h, k, stride) in &[(8usize, 3usize, 1usize), (8, 3, 2), (7, 3, 2), (6, 1, 2), (5, 1, 1), (9, 7, 2), (8, 7, 2), (7, 1, 2)] {
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
        for &(h, k, stride) in &[(8usize, 3usize, 1usize), (7, 3, 2), (6, 1, 2), (9, 7, 2)] {
            let data: Vec<f32> = (0..2 * h * h * 3).map(|_| s.normal() as f32).collect();
            let x = Var::from_tensor(&Tensor::from_vec(data, (2, h, h, 3), &dev).unwrap()).unwrap();
            let g = im2col::Geometry::same_padding(2, h, h, 3, k, stride);
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
}
