//! im2col and its adjoint col2im as candle custom ops, for CPU training.
//!
//! Building the column matrix from candle primitives (pad, nine `narrow`s, `cat`) costs ten
//! times the matrix product that follows it, because each primitive is a strided copy. These
//! two ops do the gather and its scatter-add in one pass each; a convolution's forward and
//! both gradients then reduce to matrix products.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// A square window sliding over NHWC input: the geometry of a convolution (im2col) and of a
/// max pooling (`super::pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    /// A convolution's geometry: padding `kernel / 2`, so odd kernels give `ceil(n / stride)`.
    pub fn same_padding(batch: usize, height: usize, width: usize, channels: usize, kernel: usize, stride: usize) -> Self {
        Self { batch, height, width, channels, kernel, stride, padding: kernel / 2 }
    }
    /// Output side, PyTorch's `floor((n + 2p − k) / s) + 1` (ceil_mode off).
    fn out_len(&self, n: usize) -> usize {
        (n + 2 * self.padding - self.kernel) / self.stride + 1
    }
    pub fn out_height(&self) -> usize {
        self.out_len(self.height)
    }
    pub fn out_width(&self) -> usize {
        self.out_len(self.width)
    }
    fn row_len(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }
    /// Input pixel read by output pixel (oy, ox) at kernel offset (dy, dx), if inside the image.
    fn source(&self, oy: usize, ox: usize, dy: usize, dx: usize) -> Option<(usize, usize)> {
        let iy = (oy * self.stride + dy).checked_sub(self.padding)?;
        let ix = (ox * self.stride + dx).checked_sub(self.padding)?;
        (iy < self.height && ix < self.width).then_some((iy, ix))
    }
}

/// `(B, H, W, C)` → `(B·Ho·Wo, k·k·C)`, rows in (b, oy, ox) order, columns in (dy, dx, c) order.
pub struct Im2Col(pub Geometry);

/// The adjoint of [`Im2Col`]: scatters-and-adds columns back into a `(B, H, W, C)` image.
pub struct Col2Im(pub Geometry);

pub(crate) fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} supports f32 tensors only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op} needs a contiguous input")
    };
    Ok(&data[start..end])
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let input = contiguous_f32(storage, layout, self.name())?;
        let out = im2col(&g, input);
        Ok((CpuStorage::F32(out), Shape::from((g.batch * g.out_height() * g.out_width(), g.row_len()))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = contiguous_f32(storage, layout, self.name())?;
        let out = col2im(&g, cols);
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.height, g.width, g.channels))))
    }
}

/// The column matrix of `input` (NHWC, contiguous), see [`Im2Col`].
pub(crate) fn im2col(g: &Geometry, input: &[f32]) -> Vec<f32> {
    let (ho, wo, c, row) = (g.out_height(), g.out_width(), g.channels, g.row_len());
    let image_in = g.height * g.width * c;
    let len = g.batch * ho * wo * row;
    let mut out = Vec::<f32>::with_capacity(len);
    // Every element is written below (a copy, or zero where the window leaves the image), so
    // the buffer is not zero-filled first: that fill was a full extra pass over the largest
    // tensor of the step.
    out.spare_capacity_mut().par_chunks_mut(ho * wo * row).zip(input.par_chunks(image_in)).for_each(|(cols, img)| {
        for oy in 0..ho {
            for ox in 0..wo {
                let dst_row = &mut cols[(oy * wo + ox) * row..(oy * wo + ox + 1) * row];
                for dy in 0..g.kernel {
                    for dx in 0..g.kernel {
                        let dst = &mut dst_row[(dy * g.kernel + dx) * c..(dy * g.kernel + dx + 1) * c];
                        match g.source(oy, ox, dy, dx) {
                            Some((iy, ix)) => {
                                let src = (iy * g.width + ix) * c;
                                for (d, &s) in dst.iter_mut().zip(&img[src..src + c]) {
                                    d.write(s);
                                }
                            }
                            None => {
                                for d in dst {
                                    d.write(0.0);
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    // SAFETY: the loop above initialised all `len` elements (each row is ho·wo windows of
    // k·k slots of c channels, every slot written in one of the two arms).
    unsafe { out.set_len(len) };
    out
}

/// The image whose column matrix is `cols`, overlapping entries summed, see [`Col2Im`].
pub(crate) fn col2im(g: &Geometry, cols: &[f32]) -> Vec<f32> {
    let (ho, wo, c, row) = (g.out_height(), g.out_width(), g.channels, g.row_len());
    let image = g.height * g.width * c;
    let mut out = vec![0f32; g.batch * image];
    // One image per task, so the additions happen in a fixed order: results do not depend
    // on the number of threads.
    out.par_chunks_mut(image).zip(cols.par_chunks(ho * wo * row)).for_each(|(img, cols)| {
        for oy in 0..ho {
            for ox in 0..wo {
                let src_row = &cols[(oy * wo + ox) * row..(oy * wo + ox + 1) * row];
                for dy in 0..g.kernel {
                    for dx in 0..g.kernel {
                        if let Some((iy, ix)) = g.source(oy, ox, dy, dx) {
                            let dst = (iy * g.width + ix) * c;
                            let src = (dy * g.kernel + dx) * c;
                            for (d, s) in img[dst..dst + c].iter_mut().zip(&src_row[src..src + c]) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        }
    });
    out
}
