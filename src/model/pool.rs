//! Max pooling over NHWC input with any kernel, stride and padding, and a correct gradient.
//!
//! candle's own `max_pool2d` is NCHW and its backward assumes non-overlapping windows
//! (kernel == stride); the ImageNet stem pools 3×3 windows at stride 2, which overlap. The
//! forward here is one pass; the backward is a second op that finds each window's argmax again
//! and adds the output gradient there, so no index tensor has to be kept alive between passes.
//! Semantics follow PyTorch: padding never wins (it acts as −∞), ties go to the first maximum in
//! row-major window order, and a NaN in a window propagates.

use super::im2col::{contiguous_f32, Geometry};
use super::conv::subsample;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The pooling-only parts of the window geometry (shared with the convolutions).
impl Geometry {
    /// Rejects geometries PyTorch rejects too: a window made only of padding would have no
    /// maximum (and no argmax to route a gradient to).
    fn check(&self) -> Result<()> {
        if self.kernel == 0 || self.stride == 0 {
            candle_core::bail!("max pooling needs a positive kernel and stride, got {self:?}")
        }
        if 2 * self.padding > self.kernel {
            candle_core::bail!("max pooling padding {} exceeds half the kernel {}", self.padding, self.kernel)
        }
        if self.height + 2 * self.padding < self.kernel || self.width + 2 * self.padding < self.kernel {
            candle_core::bail!("max pooling kernel {} is larger than the padded {}×{} input", self.kernel, self.height, self.width)
        }
        Ok(())
    }

    /// Input rows (or columns) covered by output position `o` along a side of length `n`.
    fn window(&self, o: usize, n: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride).saturating_sub(self.padding);
        let end = (o * self.stride + self.kernel).saturating_sub(self.padding).min(n);
        start..end
    }

    /// Index (within one image, in pixels) of the winning input for every channel of output
    /// pixel (oy, ox), written to `arg`, with the maxima in `best`.
    fn argmax(&self, img: &[f32], oy: usize, ox: usize, best: &mut [f32], arg: &mut [usize]) {
        let (rows, cols) = (self.window(oy, self.height), self.window(ox, self.width));
        // PyTorch starts from the first in-image element of the window, so a window of −∞
        // still names a real input.
        best.fill(f32::NEG_INFINITY);
        arg.fill(rows.start * self.width + cols.start);
        for iy in rows {
            for ix in cols.clone() {
                let pixel = iy * self.width + ix;
                let values = &img[pixel * self.channels..(pixel + 1) * self.channels];
                for ((b, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(values) {
                    if v > *b || v.is_nan() {
                        *b = v;
                        *a = pixel;
                    }
                }
            }
        }
    }
}

/// `(B, H, W, C)` → `(B, Ho, Wo, C)`: the maximum of every window.
pub struct MaxPool(pub Geometry);

/// The adjoint: given the pooled input and the output gradient, adds each output gradient to
/// the input that won its window. Ties and overlaps are resolved exactly as in [`MaxPool`].
struct MaxPoolGrad(Geometry);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        g.check()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let (ho, wo, c) = (g.out_height(), g.out_width(), g.channels);
        let mut out = vec![0f32; g.batch * ho * wo * c];
        out.par_chunks_mut(ho * wo * c).zip(input.par_chunks(g.height * g.width * c)).for_each(|(dst, img)| {
            let mut arg = vec![0usize; c];
            for oy in 0..ho {
                for ox in 0..wo {
                    let at = (oy * wo + ox) * c;
                    g.argmax(img, oy, ox, &mut dst[at..at + c], &mut arg);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((g.batch, ho, wo, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad_res.contiguous()?, &MaxPoolGrad(self.0))?))
    }
}

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max-pool-nhwc-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let input = contiguous_f32(s1, l1, self.name())?;
        let grad = contiguous_f32(s2, l2, self.name())?;
        let (ho, wo, c) = (g.out_height(), g.out_width(), g.channels);
        let image = g.height * g.width * c;
        let mut out = vec![0f32; g.batch * image];
        // One image per task, outputs visited in a fixed order: sums of overlapping windows do
        // not depend on the number of threads.
        out.par_chunks_mut(image).zip(input.par_chunks(image)).zip(grad.par_chunks(ho * wo * c)).for_each(|((dst, img), grad)| {
            let (mut best, mut arg) = (vec![0f32; c], vec![0usize; c]);
            for oy in 0..ho {
                for ox in 0..wo {
                    g.argmax(img, oy, ox, &mut best, &mut arg);
                    let from = &grad[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
                    for (ch, (&pixel, &d)) in arg.iter().zip(from).enumerate() {
                        dst[pixel * c + ch] += d;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.height, g.width, c))))
    }
}

/// Max pooling of NHWC `x` (kernel `k`, stride `s`, padding `p`): the custom op on the CPU,
/// candle primitives elsewhere.
pub fn max_pool_nhwc(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> anyhow::Result<Tensor> {
    let (batch, height, width, channels) = x.dims4()?;
    let g = Geometry { batch, height, width, channels, kernel, stride, padding };
    if x.device().is_cpu() {
        Ok(x.contiguous()?.apply_op1(MaxPool(g))?)
    } else {
        max_pool_reference(x, kernel, stride, padding)
    }
}

/// The same pooling from candle primitives (−∞ padding, shifted strided views, elementwise
/// maximum), for devices without the custom op. Values are identical; where a window has tied
/// maxima candle's `maximum` splits the gradient between them instead of picking the first.
pub fn max_pool_reference(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> anyhow::Result<Tensor> {
    let (batch, height, width, channels) = x.dims4()?;
    let g = Geometry { batch, height, width, channels, kernel, stride, padding };
    g.check()?;
    let (ho, wo) = (g.out_height(), g.out_width());
    let padded = pad_neg_inf(&pad_neg_inf(x, 1, padding)?, 2, padding)?;
    let mut out: Option<Tensor> = None;
    for dy in 0..kernel {
        for dx in 0..kernel {
            let view = padded.narrow(1, dy, (ho - 1) * stride + 1)?.narrow(2, dx, (wo - 1) * stride + 1)?;
            let view = subsample(&view, stride)?;
            out = Some(match out {
                None => view,
                Some(m) => m.maximum(&view)?,
            });
        }
    }
    Ok(out.expect("a kernel has at least one offset"))
}

fn pad_neg_inf(x: &Tensor, dim: usize, n: usize) -> candle_core::Result<Tensor> {
    if n == 0 {
        return Ok(x.clone());
    }
    let mut dims = x.dims().to_vec();
    dims[dim] = n;
    let fill = Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())?;
    Tensor::cat(&[&fill, x, &fill], dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;
    use candle_core::{Device, Var};

    fn pool_and_grad(x: &[f32], dims: (usize, usize, usize, usize), k: usize, s: usize, p: usize, upstream: &[f32], reference: bool) -> (Vec<f32>, Vec<f32>) {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::from_vec(x.to_vec(), dims, &dev).unwrap()).unwrap();
        let y = if reference { max_pool_reference(x.as_tensor(), k, s, p) } else { max_pool_nhwc(x.as_tensor(), k, s, p) }.unwrap();
        let up = Tensor::from_vec(upstream.to_vec(), y.dims(), &dev).unwrap();
        let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        (y.flatten_all().unwrap().to_vec1().unwrap(), gx)
    }

    #[test]
    fn hand_computed_overlapping_windows_with_negative_inputs_and_ties() {
        // One 4×4 single-channel image, 3×3 windows, stride 2, padding 1 → 2×2 output.
        // All values are negative: zero padding would win every border window, −∞ never does.
        #[rustfmt::skip]
        let x = [
            -5.0, -1.0, -7.0, -2.0,
            -3.0, -4.0, -1.0, -6.0,
            -9.0, -8.0, -2.0, -3.0,
            -4.0, -2.0, -5.0, -2.0f32,
        ];
        // Windows (rows × cols of the input they cover):
        //   (0,0): rows 0..2, cols 0..2 → max −1 at (0,1)
        //   (0,1): rows 0..2, cols 1..4 → −1 at (0,1) and (1,2): the first in scan order, (0,1)
        //   (1,0): rows 1..4, cols 0..2 → −2 at (3,1)
        //   (1,1): rows 1..4, cols 1..4 → −1 at (1,2)
        let upstream = [1.0, 10.0, 100.0, 1000.0];
        let (y, gx) = pool_and_grad(&x, (1, 4, 4, 1), 3, 2, 1, &upstream, false);
        assert_eq!(y, vec![-1.0, -1.0, -2.0, -1.0]);
        let mut want = [0f32; 16];
        want[1] = 1.0 + 10.0; // (0,1) wins two overlapping windows: gradients add
        want[6] = 1000.0; // (1,2)
        want[13] = 100.0; // (3,1)
        assert_eq!(gx, want.to_vec());
    }

    /// PyTorch's `max_pool2d(x, 3, 2, 1)` of the NCHW tensor `(arange(50).sin() · 3)` shaped
    /// (1, 2, 5, 5), and its gradient for upstream `arange(1, 19)` shaped (1, 2, 3, 3): inputs
    /// that win several overlapping windows collect several gradients (52 = 11 + 12 + 14 + 15).
    #[test]
    fn matches_pytorch_max_pool2d_values_and_gradient() {
        let (c, h, w) = (2usize, 5usize, 5usize);
        let nchw: Vec<f32> = (0..c * h * w).map(|i| (i as f32).sin() * 3.0).collect();
        let nhwc: Vec<f32> = (0..h * w * c).map(|j| nchw[(j % c) * h * w + j / c]).collect();
        let up_nchw: Vec<f32> = (1..=18).map(|v| v as f32).collect();
        let up_nhwc: Vec<f32> = (0..9 * c).map(|j| up_nchw[(j % c) * 9 + j / c]).collect();
        let (y, gx) = pool_and_grad(&nhwc, (1, h, w, c), 3, 2, 1, &up_nhwc, false);
        let to_nchw = |v: &[f32], hw: usize| -> Vec<f32> { (0..c * hw).map(|i| v[(i % hw) * c + i / hw]).collect() };
        let (y, gx) = (to_nchw(&y, 9), to_nchw(&gx, 25));
        for (a, b) in y.iter().zip(PYTORCH_Y) {
            assert!((a - b).abs() < 1e-5, "pooled {y:?} vs {PYTORCH_Y:?}");
        }
        assert_eq!(gx, PYTORCH_GRAD.to_vec(), "gradient");
    }

    #[test]
    fn custom_op_and_primitives_agree_on_random_input() {
        let mut s = Stream::new(11, "test/pool", 0);
        for &(h, w, k, st, p) in &[(9usize, 8usize, 3usize, 2usize, 1usize), (8, 8, 2, 2, 0), (7, 7, 3, 1, 1), (6, 5, 5, 3, 2)] {
            let dims = (2, h, w, 3);
            let x: Vec<f32> = (0..2 * h * w * 3).map(|_| s.normal() as f32).collect();
            let g = Geometry { batch: 2, height: h, width: w, channels: 3, kernel: k, stride: st, padding: p };
            let up: Vec<f32> = (0..2 * g.out_height() * g.out_width() * 3).map(|_| s.normal() as f32).collect();
            let (y_op, g_op) = pool_and_grad(&x, dims, k, st, p, &up, false);
            let (y_ref, g_ref) = pool_and_grad(&x, dims, k, st, p, &up, true);
            assert_eq!(y_op, y_ref, "values h={h} w={w} k={k} s={st} p={p}");
            // Random normals have no ties, so both routes send each gradient to one input.
            for (a, b) in g_op.iter().zip(&g_ref) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "gradient h={h} k={k} s={st} p={p}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn padding_wider_than_half_the_kernel_is_an_error() {
        let x = Tensor::zeros((1, 4, 4, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let e = max_pool_nhwc(&x, 3, 2, 2).unwrap_err().to_string();
        assert!(e.contains("padding 2 exceeds half the kernel 3"), "{e}");
    }

    // torch 2.15.0, printed by `make_fixture.py --pool-check` (NCHW order).
    #[rustfmt::skip]
    const PYTORCH_Y: [f32; 18] = [2.524413, 2.968075, 2.968075, 1.950864, 2.968075, 2.971822, 2.738836, 2.509967, 0.4496316, 2.287675, 2.999736, 2.999736, 2.235339, 2.999736, 2.999736, 2.705365, 2.705365, 0.05310578];
    #[rustfmt::skip]
    const PYTORCH_GRAD: [f32; 50] = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 4.0, 0.0, 0.0, 0.0, 9.0, 7.0, 8.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 52.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 13.0, 0.0, 0.0, 0.0, 18.0, 0.0, 33.0, 0.0, 0.0, 0.0];
}
