//! Fused CPU ops for training: convolution, batch normalisation (+ ReLU) and residual add + ReLU.
//!
//! candle's backward pass gives every graph node a zero-filled gradient buffer and adds each
//! incoming gradient to it, so a node costs two extra passes over its output on top of its own
//! backward arithmetic. Built from primitives, one convolution + batch norm was about a dozen
//! full-size nodes (the column matrix nine times the activation), and that bookkeeping, not the
//! matrix products, was half of a training step. Here each stage is one node whose forward and
//! backward are written out: a convolution is im2col + one matrix product forward and two
//! products + col2im backward (the column matrix is kept from the forward pass instead of
//! being a graph node); batch norm is two passes forward and two backward; the classifier head
//! (pooling + linear) is one op too.
//!
//! Every matrix product goes through [`kernels`], whose summation order depends only on the
//! shapes (not on the CPU model, its caches, instruction set or the thread count).
//!
//! Reductions run over fixed-size row blocks whose partial sums (in f64) are combined in block
//! order, so results do not depend on the number of threads either.

use super::im2col::{col2im, contiguous_f32, im2col, Geometry};
use super::kernels::{self, Isa, View};
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Rows per block of the batch-norm reductions: a fixed size keeps the summation order, and so
/// the result, independent of the thread count.
const ROW_BLOCK: usize = 512;

/// Runs `f` on the contiguous f32 data of a CPU tensor.
fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { bail!("{what} runs on the CPU only") };
    Ok(f(contiguous_f32(cpu, layout, what)?))
}

/// The kernel path for this thread's products (see [`kernels`]); the error names a bad
/// `SHIFTBENCH_KERNELS`.
fn isa() -> Result<Isa> {
    kernels::current().map_err(candle_core::Error::msg)
}

/// The `(cols, rows)` transpose of a row-major `(rows, cols)` matrix: the input gradients need
/// the weight with the reduction (output channels) as rows, and the kernels vectorise along a
/// contiguous right-hand row. A weight is small next to the activations.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; x.len()];
    for (r, row) in x.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// Convolution of a batch of NHWC images with a `(k·k·cin, cout)` weight, padding `k/2`, no
/// bias. The input is `(B·H·W, cin)` (or `(B, H, W, cin)`), the output `(B·Ho·Wo, cout)`: the
/// network stays in this flat form, because even a reshape is a graph node whose backward
/// costs a zero-fill and an addition.
pub struct Conv {
    pub kernel: usize,
    pub stride: usize,
    /// Batch size, height and width of the input images.
    pub images: (usize, usize, usize),
    /// The forward pass's column matrix, reused by the weight gradient.
    cols: Mutex<Option<Vec<f32>>>,
}

impl Conv {
    pub fn new(kernel: usize, stride: usize, images: (usize, usize, usize)) -> Self {
        Self { kernel, stride, images, cols: Mutex::new(None) }
    }

    fn geometry(&self, x: &Layout) -> Result<Geometry> {
        let (batch, height, width) = self.images;
        let pixels = batch * height * width;
        let elems = x.shape().elem_count();
        if pixels == 0 || !elems.is_multiple_of(pixels) {
            bail!("conv-nhwc: {elems} input values do not form {batch} images of {height}x{width}");
        }
        Ok(Geometry::same_padding(batch, height, width, elems / pixels, self.kernel, self.stride))
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "conv-nhwc"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(xl)?;
        let x = contiguous_f32(xs, xl, self.name())?;
        let w = contiguous_f32(ws, wl, self.name())?;
        let (rows, depth) = (g.batch * g.out_height() * g.out_width(), g.kernel * g.kernel * g.channels);
        let (wr, cout) = wl.shape().dims2()?;
        if wr != depth {
            bail!("conv-nhwc: weight has {wr} rows, a {}x{} kernel over {} channels needs {depth}", g.kernel, g.kernel, g.channels);
        }
        let isa = isa()?;
        let cols = if g.kernel == 1 && g.stride == 1 { x.to_vec() } else { im2col(&g, x) };
        let y = kernels::matmul(isa, rows, cout, depth, View::rows(&cols, depth), w, cout);
        *self.cols.lock().unwrap() = Some(cols);
        Ok((CpuStorage::F32(y), Shape::from((rows, cout))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.layout())?;
        let (rows, depth) = (g.batch * g.out_height() * g.out_width(), g.kernel * g.kernel * g.channels);
        let cout = w.dim(1)?;
        let isa = isa()?;
        let cols = match self.cols.lock().unwrap().take() {
            Some(cols) => cols,
            None => with_f32(x, self.name(), |x| im2col(&g, x))?, // a second backward pass
        };
        // dW = colsᵀ · dY, a reduction over batch × pixels (chunked, see `kernels`);
        // dX = col2im(dY · Wᵀ), skipped when nothing upstream needs it (the network's input).
        let dw = with_f32(grad, self.name(), |dy| kernels::matmul_chunked(isa, depth, cout, rows, View::transposed(&cols, depth), dy, cout))?;
        let dw = Tensor::from_vec(dw, (depth, cout), w.device())?;
        let dx = if x.track_op() {
            let wt = with_f32(w, self.name(), |w| transpose(w, depth, cout))?;
            let dcols = with_f32(grad, self.name(), |dy| kernels::matmul(isa, rows, depth, cout, View::rows(dy, cout), &wt, depth))?;
            let dx = if g.kernel == 1 && g.stride == 1 { dcols } else { col2im(&g, &dcols) };
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        Ok((dx, Some(dw)))
    }
}

/// Batch statistics of one training-mode batch-norm call, for the running averages.
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    /// Biased (population) variance, as used for normalising.
    pub var: Vec<f32>,
    pub rows: usize,
}

/// Training-mode batch normalisation of an `(n, c)` matrix over its rows, with per-channel
/// scale `gamma` and shift `beta`, optionally followed by ReLU.
pub struct BatchNorm {
    pub eps: f64,
    pub relu: bool,
    stats: Arc<Mutex<BatchStats>>,
}

impl BatchNorm {
    /// The op and a handle on the statistics its forward pass will record.
    pub fn new(eps: f64, relu: bool) -> (Self, Arc<Mutex<BatchStats>>) {
        let stats = Arc::new(Mutex::new(BatchStats::default()));
        (Self { eps, relu, stats: stats.clone() }, stats)
    }
}

/// Per-channel sums of `f(row)` over the rows of an `(n, c)` matrix, in f64, in block order.
fn column_sums(n: usize, c: usize, f: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    let blocks: Vec<Vec<f64>> = (0..n.div_ceil(ROW_BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut acc = vec![0f64; c];
            for r in b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(n) {
                f(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![0f64; c];
    for block in blocks {
        for (t, v) in total.iter_mut().zip(block) {
            *t += v;
        }
    }
    total
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c) = xl.shape().dims2()?;
        let x = contiguous_f32(xs, xl, self.name())?;
        let gamma = contiguous_f32(gs, gl, self.name())?;
        let beta = contiguous_f32(bs, bl, self.name())?;
        if gamma.len() != c || beta.len() != c {
            bail!("batch-norm-train: {c} channels but {} scales and {} shifts", gamma.len(), beta.len());
        }
        // Two passes (mean, then squared deviations) rather than E[x²] − E[x]²: no cancellation.
        let mean: Vec<f64> = column_sums(n, c, |r, acc| {
            for (a, &v) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]) {
                *a += v as f64;
            }
        })
        .into_iter()
        .map(|s| s / n as f64)
        .collect();
        let var: Vec<f64> = column_sums(n, c, |r, acc| {
            for ((a, &v), m) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]).zip(&mean) {
                let d = v as f64 - m;
                *a += d * d;
            }
        })
        .into_iter()
        .map(|s| s / n as f64)
        .collect();
        let scale: Vec<f32> = var.iter().zip(gamma).map(|(v, &g)| (g as f64 / (v + self.eps).sqrt()) as f32).collect();
        let shift: Vec<f32> = beta.iter().zip(&mean).zip(&scale).map(|((&b, &m), &s)| (b as f64 - m * s as f64) as f32).collect();
        let y = affine(x, c, &scale, &shift, self.relu);
        *self.stats.lock().unwrap() = BatchStats {
            mean: mean.iter().map(|&m| m as f32).collect(),
            var: var.iter().map(|&v| v as f32).collect(),
            rows: n,
        };
        Ok((CpuStorage::F32(y), Shape::from((n, c))))
    }

    fn bwd(&self, x: &Tensor, gamma: &Tensor, _beta: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c) = x.dims2()?;
        let stats = self.stats.lock().unwrap().clone();
        let inv_std: Vec<f64> = stats.var.iter().map(|&v| 1.0 / (v as f64 + self.eps).sqrt()).collect();
        let mean: Vec<f64> = stats.mean.iter().map(|&m| m as f64).collect();
        let gamma_v = gamma.to_vec1::<f32>()?;
        let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let inv32: Vec<f32> = inv_std.iter().map(|&v| v as f32).collect();
        let relu = self.relu;
        let (dx, dgamma, dbeta) = with_f32(x, self.name(), |x| {
            with_f32(res, self.name(), |y| {
                with_f32(grad, self.name(), |dy| {
                    // The gradient reaching the normalised value: ReLU passes it where y > 0.
                    let masked = |dy: f32, y: f32| if relu && y <= 0.0 { 0.0 } else { dy };
                    let sums = column_sums(n, 2 * c, |r, acc| {
                        let (db, dg) = acc.split_at_mut(c);
                        let row = r * c..(r + 1) * c;
                        for (((((db, dg), &x), &y), &dy), (&m, &s)) in
                            db.iter_mut().zip(dg.iter_mut()).zip(&x[row.clone()]).zip(&y[row.clone()]).zip(&dy[row]).zip(mean32.iter().zip(&inv32))
                        {
                            let g = masked(dy, y);
                            *db += g as f64;
                            *dg += (g * ((x - m) * s)) as f64;
                        }
                    });
                    let (dbeta, dgamma) = sums.split_at(c);
                    // dx = γ/σ · (g − Σg/n − x̂·Σ(g·x̂)/n), with the per-channel constants folded.
                    let coef: Vec<f32> = (0..c).map(|ch| (gamma_v[ch] as f64 * inv_std[ch]) as f32).collect();
                    let db_n: Vec<f32> = dbeta.iter().map(|&v| (v / n as f64) as f32).collect();
                    let dg_n: Vec<f32> = dgamma.iter().map(|&v| (v / n as f64) as f32).collect();
                    let mut dx = vec![0f32; n * c];
                    dx.par_chunks_mut(ROW_BLOCK * c).enumerate().for_each(|(b, block)| {
                        for (r, out) in block.chunks_mut(c).enumerate() {
                            let row = (b * ROW_BLOCK + r) * c..(b * ROW_BLOCK + r + 1) * c;
                            for (k, o) in out.iter_mut().enumerate() {
                                let i = row.start + k;
                                let xhat = (x[i] - mean32[k]) * inv32[k];
                                *o = coef[k] * (masked(dy[i], y[i]) - db_n[k] - xhat * dg_n[k]);
                            }
                        }
                    });
                    let to_f32 = |v: &[f64]| v.iter().map(|&s| s as f32).collect::<Vec<f32>>();
                    (dx, to_f32(dgamma), to_f32(dbeta))
                })
            })
        })???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (n, c), dev)?),
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}

/// `x · scale + shift` per channel of an `(n, c)` matrix, then ReLU if asked.
fn affine(x: &[f32], c: usize, scale: &[f32], shift: &[f32], relu: bool) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(ROW_BLOCK * c).zip(x.par_chunks(ROW_BLOCK * c)).for_each(|(yb, xb)| {
        for (yr, xr) in yb.chunks_mut(c).zip(xb.chunks(c)) {
            for (((o, &v), &s), &t) in yr.iter_mut().zip(xr).zip(scale).zip(shift) {
                let z = v * s + t;
                *o = if relu { z.max(0.0) } else { z };
            }
        }
    });
    y
}

/// Evaluation-mode batch norm: a fixed per-channel affine map (+ ReLU). Not differentiable.
pub struct ChannelAffine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub relu: bool,
}

impl CustomOp1 for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel-affine"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c) = l.shape().dims2()?;
        if self.scale.len() != c {
            bail!("channel-affine: {c} channels, {} scales", self.scale.len());
        }
        let x = contiguous_f32(s, l, self.name())?;
        Ok((CpuStorage::F32(affine(x, c, &self.scale, &self.shift, self.relu)), l.shape().clone()))
    }
}

/// `relu(a + b)` for the end of a residual block.
pub struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "add-relu"
    }

    fn cpu_fwd(&self, a: &CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        if al.shape() != bl.shape() {
            bail!("add-relu: shapes {:?} and {:?} differ", al.shape(), bl.shape());
        }
        let a = contiguous_f32(a, al, self.name())?;
        let b = contiguous_f32(b, bl, self.name())?;
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(1 << 16).zip(a.par_chunks(1 << 16).zip(b.par_chunks(1 << 16))).for_each(|(y, (a, b))| {
            for ((o, &p), &q) in y.iter_mut().zip(a).zip(b) {
                *o = (p + q).max(0.0);
            }
        });
        Ok((CpuStorage::F32(y), al.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let masked = with_f32(res, self.name(), |y| {
            with_f32(grad, self.name(), |g| y.iter().zip(g).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect::<Vec<f32>>())
        })??;
        let masked = Tensor::from_vec(masked, res.shape(), res.device())?;
        Ok((a.track_op().then(|| masked.clone()), b.track_op().then_some(masked)))
    }
}

/// The classifier head: global average pooling of a `(B·H·W, C)` activation holding `images`,
/// then `pooled · W + b` for a `(C, classes)` weight and `(classes)` bias. One op so that the
/// CPU path's last product goes through [`kernels`] too (candle's matmul is the `gemm` crate,
/// whose summation order depends on the CPU) and candle adds no nodes for the pooling.
///
/// Fixed order: `pooled[b, c]` is the sequential f32 sum over the image's pixels, divided by
/// their count; a logit is one FMA chain over channels plus the bias; the bias gradient is the
/// sequential sum over the batch.
pub struct Head {
    /// Batch size, height and width of the images the activation holds.
    pub images: (usize, usize, usize),
}

impl Head {
    /// `(B, C)` pooled features of a contiguous `(B·H·W, C)` activation.
    fn pool(&self, h: &[f32]) -> Result<(Vec<f32>, usize)> {
        let (batch, height, width) = self.images;
        let pixels = height * width;
        if batch * pixels == 0 || !h.len().is_multiple_of(batch * pixels) {
            bail!("head: {} values do not form {batch} images of {height}x{width}", h.len());
        }
        let c = h.len() / (batch * pixels);
        let mut pooled = vec![0f32; batch * c];
        for (out, image) in pooled.chunks_exact_mut(c).zip(h.chunks_exact(pixels * c)) {
            for pixel in image.chunks_exact(c) {
                for (o, &v) in out.iter_mut().zip(pixel) {
                    *o += v;
                }
            }
            for o in out.iter_mut() {
                *o /= pixels as f32;
            }
        }
        Ok((pooled, c))
    }
}

impl CustomOp3 for Head {
    fn name(&self) -> &'static str {
        "pool-linear"
    }

    fn cpu_fwd(&self, hs: &CpuStorage, hl: &Layout, ws: &CpuStorage, wl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let isa = isa()?;
        let (pooled, c) = self.pool(contiguous_f32(hs, hl, self.name())?)?;
        let (wc, classes) = wl.shape().dims2()?;
        let bias = contiguous_f32(bs, bl, self.name())?;
        if wc != c || bias.len() != classes {
            bail!("head: {c} features, a ({wc}, {classes}) weight and {} biases", bias.len());
        }
        let batch = self.images.0;
        let mut y = kernels::matmul(isa, batch, classes, c, View::rows(&pooled, c), contiguous_f32(ws, wl, self.name())?, classes);
        for row in y.chunks_exact_mut(classes) {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, classes))))
    }

    fn bwd(&self, h: &Tensor, w: &Tensor, bias: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let isa = isa()?;
        let (pooled, c) = with_f32(h, self.name(), |h| self.pool(h))??;
        let classes = w.dim(1)?;
        let batch = self.images.0;
        let (dh, dw, db) = with_f32(grad, self.name(), |g| -> Result<_> {
            let dw = kernels::matmul_chunked(isa, c, classes, batch, View::transposed(&pooled, c), g, classes);
            let mut db = vec![0f32; classes];
            for row in g.chunks_exact(classes) {
                for (d, &v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
            let dh = if h.track_op() {
                let wt = with_f32(w, self.name(), |w| transpose(w, c, classes))?;
                let dpooled = kernels::matmul(isa, batch, c, classes, View::rows(g, classes), &wt, c);
                let pixels = self.images.1 * self.images.2;
                let mut dh = Vec::with_capacity(batch * pixels * c);
                for row in dpooled.chunks_exact(c) {
                    let spread: Vec<f32> = row.iter().map(|&v| v / pixels as f32).collect();
                    for _ in 0..pixels {
                        dh.extend_from_slice(&spread);
                    }
                }
                Some(dh)
            } else {
                None
            };
            Ok((dh, dw, db))
        })??;
        let dev = h.device();
        Ok((
            dh.map(|dh| Tensor::from_vec(dh, h.shape(), dev)).transpose()?,
            Some(Tensor::from_vec(dw, (c, classes), dev)?),
            Some(Tensor::from_vec(db, classes, bias.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut s = crate::rng::Stream::new(seed, "test/fused", 0);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| s.uniform(-1.0, 1.0) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Batch norm from candle primitives, the reference the fused op must agree with.
    fn bn_reference(x: &Tensor, gamma: &Tensor, beta: &Tensor, relu: bool) -> Tensor {
        let mean = x.mean_keepdim(0).unwrap();
        let centred = x.broadcast_sub(&mean).unwrap();
        let var = centred.sqr().unwrap().mean_keepdim(0).unwrap();
        let y = centred
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&gamma.unsqueeze(0).unwrap())
            .unwrap()
            .broadcast_add(&beta.unsqueeze(0).unwrap())
            .unwrap();
        if relu { y.relu().unwrap() } else { y }
    }

    #[test]
    fn conv_matches_primitive_convolution_and_its_gradients() {
        for (kernel, stride) in [(3, 1), (3, 2), (1, 2), (1, 1)] {
            let x = Var::from_tensor(&random(&[2, 7, 6, 3], 1)).unwrap();
            let w = Var::from_tensor(&random(&[kernel * kernel * 3, 4], 2)).unwrap();
            let probe = random(&[2, 7usize.div_ceil(stride), 6usize.div_ceil(stride), 4], 3);
            let fused = x.as_tensor().apply_op2(w.as_tensor(), Conv::new(kernel, stride, (2, 7, 6))).unwrap();
            let cols = crate::model::im2col_reference(x.as_tensor(), kernel, stride).unwrap();
            let fused = fused.reshape(probe.shape()).unwrap();
            let reference = cols.matmul(w.as_tensor()).unwrap().reshape(probe.shape()).unwrap();
            assert!(max_rel_diff(&fused, &reference) < 1e-6, "forward k{kernel} s{stride}");
            let gf = (fused * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let gr = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w] {
                let d = max_rel_diff(gf.get(v.as_tensor()).unwrap(), gr.get(v.as_tensor()).unwrap());
                assert!(d < 1e-5, "gradient k{kernel} s{stride}: {d}");
            }
        }
    }

    #[test]
    fn conv_skips_the_input_gradient_of_a_constant_input() {
        let x = random(&[1, 4, 4, 2], 4);
        let w = Var::from_tensor(&random(&[18, 3], 5)).unwrap();
        let grads = x.apply_op2(w.as_tensor(), Conv::new(3, 1, (1, 4, 4))).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(w.as_tensor()).is_some());
    }

    #[test]
    fn batch_norm_matches_primitive_reference_forward_and_backward() {
        for relu in [false, true] {
            // More rows than one block, so the blocked reduction is exercised.
            let x = Var::from_tensor(&(random(&[1300, 5], 6) * 3.0).unwrap().affine(1.0, 0.5).unwrap()).unwrap();
            let gamma = Var::from_tensor(&random(&[5], 7)).unwrap();
            let beta = Var::from_tensor(&random(&[5], 8)).unwrap();
            let probe = random(&[1300, 5], 9);
            let (op, stats) = BatchNorm::new(1e-5, relu);
            let fused = x.as_tensor().apply_op3(gamma.as_tensor(), beta.as_tensor(), op).unwrap();
            let reference = bn_reference(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), relu);
            assert!(max_rel_diff(&fused, &reference) < 1e-5, "forward relu={relu}");
            let expected_mean = x.as_tensor().mean(0).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in stats.lock().unwrap().mean.iter().zip(&expected_mean) {
                assert!((a - b).abs() < 1e-5);
            }
            let gf = (fused * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let gr = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &gamma, &beta] {
                let d = max_rel_diff(gf.get(v.as_tensor()).unwrap(), gr.get(v.as_tensor()).unwrap());
                assert!(d < 1e-4, "gradient relu={relu}: {d}");
            }
        }
    }

    #[test]
    fn add_relu_matches_primitives() {
        let a = Var::from_tensor(&random(&[3, 40], 10)).unwrap();
        let b = Var::from_tensor(&random(&[3, 40], 11)).unwrap();
        let probe = random(&[3, 40], 12);
        let fused = a.as_tensor().apply_op2(b.as_tensor(), AddRelu).unwrap();
        let reference = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
        assert_eq!(max_rel_diff(&fused, &reference), 0.0);
        let gf = (fused * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&a, &b] {
            assert_eq!(max_rel_diff(gf.get(v.as_tensor()).unwrap(), gr.get(v.as_tensor()).unwrap()), 0.0);
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = random(&[2000, 8], 13);
        let gamma = random(&[8], 14);
        let beta = random(&[8], 15);
        let run = || {
            let (op, _) = BatchNorm::new(1e-5, true);
            x.apply_op3(&gamma, &beta, op).unwrap().to_vec2::<f32>().unwrap()
        };
        let many = run();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(run);
        assert_eq!(many, one);
    }
}
