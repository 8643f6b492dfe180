//! Condition words ("a dark photo", "a blurry photo") and photographic degradations.

use crate::generate::prompt::{Condition, Degradation, PromptStyle};
use crate::data::procedural::paint::{add_grain, px_unit, sym, uf};
use crate::data::procedural::raster::{hsv, luma, mix, to_hsv, Canvas, Noise};
use crate::rng::Stream;
use std::f32::consts::PI;

pub(super) fn apply_condition(canvas: &mut Canvas, style: &PromptStyle, rng: &mut Stream, size: u32) {
    match style.condition {
        Condition::Normal => {}
        Condition::Clean => canvas.map(|c, _, _| {
            let (h, s, v) = to_hsv(c);
            hsv(h, (s * 1.1).min(1.0), (v * 1.04).min(1.0))
        }),
        Condition::Dirty => {
            let grime = Noise::new(rng.next_u64());
            let k = 5.0 / size as f32;
            let mud = [0.3, 0.25, 0.17];
            canvas.map(|c, x, y| {
                let blot = ((grime.fbm(x * k, y * k, 3) - 0.45) * 3.0).clamp(0.0, 1.0);
                let speck = if grime.white(x as i32, y as i32) > 0.93 { 0.4 } else { 0.0 };
                mix(c, mud, (blot * 0.55 + speck).min(0.8))
            });
        }
    }
    if style.weird {
        let shift = uf(rng, 0.2, 0.8);
        canvas.map(|c, _, _| {
            let (h, s, v) = to_hsv(c);
            hsv(h + shift, s, v)
        });
    }
}

pub(super) fn degrade(canvas: &mut Canvas, d: Degradation, rng: &mut Stream, size: u32) {
    let unit = px_unit(size);
    let n = size as usize;
    match d {
        Degradation::Bad => {
            canvas.box_blur((unit.round() as usize).max(1), 1);
            add_grain(canvas, rng.next_u64(), 0.02, false);
        }
        Degradation::Blurry => canvas.box_blur(((unit * uf(rng, 1.0, 2.0)).round() as usize).max(1), 2),
        Degradation::Pixelated => {
            let block = ((size as f32 / uf(rng, 11.0, 16.0)).round() as usize).max(2);
            *canvas = canvas.downsample(block).resize_nearest(n, n);
        }
        Degradation::JpegCorrupted => jpeg_like(canvas, uf(rng, 2.0, 4.0), 0.03, rng),
        Degradation::Dark => {
            let exposure = uf(rng, 0.25, 0.45);
            canvas.map(|c, _, _| c.map(|v| (v.max(0.0) * exposure).powf(1.15)));
        }
        Degradation::Bright => {
            let lift = uf(rng, 0.3, 0.5);
            canvas.map(|c, _, _| c.map(|v| 1.0 - (1.0 - v.min(1.0)) * lift));
        }
        Degradation::BlackAndWhite => canvas.map(|c, _, _| {
            let l = ((luma(c) - 0.5) * 1.15 + 0.5).clamp(0.0, 1.0);
            [l, l, l]
        }),
        Degradation::LowResolution => {
            let factor = ((size as f32 / uf(rng, 8.0, 12.0)).round() as usize).max(2);
            *canvas = canvas.downsample(factor).resize_bilinear(n, n);
        }
        Degradation::HardToSee => {
            let fog = canvas.mean();
            let amount = uf(rng, 0.4, 0.6);
            canvas.map(|c, _, _| mix(c, fog, amount));
        }
        // Framing-only words, handled by the layout.
        Degradation::Cropped | Degradation::CloseUp => {}
    }
}

/// Block-transform compression artefacts: each 8×8 block of luma and chroma is transformed,
/// coarsely quantised (chroma harder) and reconstructed; a fraction `corrupt` of the chroma
/// blocks get a wrong DC term, the way a damaged file shows off-colour squares.
pub(super) fn jpeg_like(canvas: &mut Canvas, harshness: f32, corrupt: f64, rng: &mut Stream) {
    let (w, h) = (canvas.width, canvas.height);
    let mut planes = [vec![0.0f32; w * h], vec![0.0f32; w * h], vec![0.0f32; w * h]];
    for (i, c) in canvas.px.iter().enumerate() {
        let y = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        planes[0][i] = y;
        planes[1][i] = (c[2] - y) * 0.564;
        planes[2][i] = (c[0] - y) * 0.713;
    }
    let basis = dct_basis();
    let blocks = (w.div_ceil(8), h.div_ceil(8));
    for (p, plane) in planes.iter_mut().enumerate() {
        let step = if p == 0 { 0.012 * harshness } else { 0.03 * harshness };
        for by in 0..blocks.1 {
            for bx in 0..blocks.0 {
                let shift = if p > 0 && rng.chance(corrupt) { sym(rng, 0.15) } else { 0.0 };
                quantise_block(plane, w, h, bx * 8, by * 8, step, shift, &basis);
            }
        }
    }
    for (i, c) in canvas.px.iter_mut().enumerate() {
        let (y, cb, cr) = (planes[0][i], planes[1][i] / 0.564, planes[2][i] / 0.713);
        let r = cr + y;
        let b = cb + y;
        let g = (y - 0.299 * r - 0.114 * b) / 0.587;
        *c = [r, g, b];
    }
}

/// `basis[u][x]` = the orthonormal DCT-II basis for 8 samples.
pub(super) fn dct_basis() -> [[f32; 8]; 8] {
    let mut basis = [[0.0f32; 8]; 8];
    for (u, row) in basis.iter_mut().enumerate() {
        let norm = if u == 0 { (1.0f32 / 8.0).sqrt() } else { (2.0f32 / 8.0).sqrt() };
        for (x, v) in row.iter_mut().enumerate() {
            *v = norm * ((2 * x + 1) as f32 * u as f32 * PI / 16.0).cos();
        }
    }
    basis
}

/// Transforms one block (edges replicate), quantises with a step growing with frequency, adds
/// `dc_shift` to the mean, and writes back the pixels inside the image.
#[allow(clippy::too_many_arguments)]
pub(super) fn quantise_block(plane: &mut [f32], w: usize, h: usize, x0: usize, y0: usize, step: f32, dc_shift: f32, basis: &[[f32; 8]; 8]) {
    let mut block = [[0.0f32; 8]; 8];
    for (y, row) in block.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            *v = plane[(y0 + y).min(h - 1) * w + (x0 + x).min(w - 1)];
        }
    }
    let mut coef = [[0.0f32; 8]; 8];
    for v in 0..8 {
        for u in 0..8 {
            let mut sum = 0.0;
            for y in 0..8 {
                for x in 0..8 {
                    sum += basis[u][x] * basis[v][y] * block[y][x];
                }
            }
            let q = step * (1.0 + (u + v) as f32);
            coef[v][u] = (sum / q).round() * q;
        }
    }
    coef[0][0] += dc_shift * 8.0;
    for y in 0..8 {
        for x in 0..8 {
            if y0 + y >= h || x0 + x >= w {
                continue;
            }
            let mut sum = 0.0;
            for v in 0..8 {
                for u in 0..8 {
                    sum += basis[u][x] * basis[v][y] * coef[v][u];
                }
            }
            plane[(y0 + y) * w + x0 + x] = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_canvas() -> Canvas {
        let mut c = Canvas::new(20, 12, [0.0; 3]);
        c.shade(|x, y| [x / 20.0, y / 12.0, ((x * 0.7).sin() + 1.0) * 0.4]);
        c
    }

    #[test]
    fn block_transform_is_lossless_without_quantisation() {
        let original = test_canvas();
        let mut c = original.clone();
        jpeg_like(&mut c, 1e-6, 0.0, &mut Stream::new(1, "t", 0));
        for (a, b) in original.px.iter().zip(&c.px) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 1e-3, "{a:?} became {b:?}");
            }
        }
    }

    #[test]
    fn compression_changes_the_image_blockwise() {
        let original = test_canvas();
        let mut c = original.clone();
        jpeg_like(&mut c, 4.0, 0.0, &mut Stream::new(1, "t", 0));
        let changed = original.px.iter().zip(&c.px).filter(|(a, b)| (0..3).any(|k| (a[k] - b[k]).abs() > 0.01)).count();
        assert!(changed > original.px.len() / 4, "only {changed} pixels changed");
    }
}
