//! Pillow's `Image.resize(size, filter)` (with its default `reducing_gap=None`) on 8-bit RGB,
//! reimplemented from the algorithm so that the output is bit-identical to Pillow's.
//!
//! The algorithm (Pillow's convolution resampler):
//! - Each axis is resampled separately into an 8-bit intermediate. A pass whose size does not
//!   change is skipped. Because the intermediate is rounded to 8 bits, the order of the passes is
//!   part of the result, and it changed in Pillow 13.0 ([`PassOrder`]): Pillow 12 and earlier
//!   always run the horizontal pass first (over only the rows the vertical pass reads); 13 runs
//!   the vertical one first when the height shrinks by more than twice as many pixels as the
//!   width (measured: 3×7 → 1×1 then differs by one level in a channel).
//! - For output index `i` of an axis resized from `n` to `m`: `scale = n / m`,
//!   `filterscale = max(scale, 1)` (the filter is widened when downscaling, which is the
//!   antialiasing), `support = filter.support * filterscale`, `center = (i + 0.5) * scale`, and
//!   the taps are the inputs `xmin .. xmin + count` with `xmin = max(trunc(center - support +
//!   0.5), 0)`, `end = min(trunc(center + support + 0.5), n)`. Tap `x` weighs
//!   `filter((x - center + 0.5) / filterscale)`, the weights divided by their sum.
//! - Weights become fixed point with 22 fraction bits (32 bits less 8 for the sample, less 2
//!   of headroom for negative lobes and sums over 1), rounded half away from zero. A sample is
//!   `clamp((2^21 + Σ sample·weight) >> 22, 0, 255)`.
//!
//! Every floating-point step is done in `f64` in the same order as Pillow, so that the weights,
//! and hence the outputs, are the same to the bit: `fixtures/preprocess/` holds Pillow's own
//! outputs for every filter and the tests compare bytes.

use crate::data::RgbImage;

/// A resampling filter, as Pillow's `Image.Resampling` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Each output is the mean of the inputs it covers (support 0.5).
    Box,
    /// Triangle filter, support 1: torchvision's default for `Resize`.
    Bilinear,
    /// Hamming-windowed sinc, support 1.
    Hamming,
    /// Keys cubic with a = −0.5, support 2: timm's usual eval interpolation.
    Bicubic,
    /// Lanczos-windowed sinc, support 3.
    Lanczos,
}

impl Filter {
    pub const ALL: [Filter; 5] = [Filter::Box, Filter::Bilinear, Filter::Hamming, Filter::Bicubic, Filter::Lanczos];

    /// The lower-case name torchvision, timm and Pillow use for it.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Box => "box",
            Filter::Bilinear => "bilinear",
            Filter::Hamming => "hamming",
            Filter::Bicubic => "bicubic",
            Filter::Lanczos => "lanczos",
        }
    }

    /// The filter named `name` (as in [`Filter::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The kernel. Boundary conventions (half-open intervals, the window constants' `f32`
    /// precision) follow Pillow's definitions: they decide which taps get a zero weight and so
    /// change the last bit of the normalised weights.
    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes the window's constants as single-precision literals.
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Which axis is resampled first when both change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PassOrder {
    /// Always horizontal first: Pillow up to 12.x (read in 12.3.0's source and measured against
    /// 12.2.0), the Pillow that made the published robustness numbers.
    HorizontalFirst,
    /// Pillow 13.0: vertical first when `in_h − out_h > 0` and `in_h − out_h > 2 (in_w − out_w)`
    /// (a downscale of an image more than twice as tall as wide, at equal scale factors).
    Pillow13,
}

impl PassOrder {
    fn vertical_first(self, in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
        let (dh, dw) = (in_h as i64 - out_h as i64, in_w as i64 - out_w as i64);
        self == PassOrder::Pillow13 && dh > 0 && dh > dw * 2
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The fixed-point taps of one axis: output `i` reads inputs `start[i] .. start[i] + len[i]`
/// with weights `weights[i * stride ..][.. len[i]]`.
#[derive(Debug)]
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<i32>,
}

impl Taps {
    fn new(in_size: usize, out_size: usize, filter: Filter) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let stride = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let mut taps = Taps { start: Vec::with_capacity(out_size), len: Vec::with_capacity(out_size), stride, weights: vec![0; out_size * stride] };
        let mut w = vec![0f64; stride];
        for i in 0..out_size {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero like C's (int) cast; the clamp covers negatives.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let count = xmax.saturating_sub(xmin);
            let mut sum = 0.0;
            for (x, wx) in w[..count].iter_mut().enumerate() {
                *wx = filter.eval(((x + xmin) as f64 - center + 0.5) * inv_filterscale);
                sum += *wx;
            }
            let row = &mut taps.weights[i * stride..][..count];
            for (k, &wx) in row.iter_mut().zip(&w[..count]) {
                // Divided, not multiplied by a reciprocal: the last bit must be Pillow's.
                let wx = if sum != 0.0 { wx / sum } else { wx };
                let fixed = wx * (1u32 << PRECISION_BITS) as f64;
                *k = if wx < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 };
            }
            taps.start.push(xmin);
            taps.len.push(count);
        }
        taps
    }

    fn of(&self, i: usize) -> (usize, &[i32]) {
        (self.start[i], &self.weights[i * self.stride..][..self.len[i]])
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes `img` to `width × height` exactly as Pillow 13's `img.resize((width, height), filter)`
/// does for an RGB image (the whole image as the source box, no `reducing_gap`).
///
/// # Panics
/// If a size of `img` or of the target is zero (Pillow refuses those too).
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    resize_in_order(img, width, height, filter, PassOrder::Pillow13)
}

/// [`resize`] with the pass order of a given Pillow version.
pub fn resize_in_order(img: &RgbImage, width: u32, height: u32, filter: Filter, order: PassOrder) -> RgbImage {
    assert!(img.width > 0 && img.height > 0, "cannot resize an empty {}×{} image", img.width, img.height);
    assert!(width > 0 && height > 0, "cannot resize to an empty {width}×{height} image");
    let (in_w, in_h) = (img.width as usize, img.height as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    if !need_h && !need_v {
        return img.clone();
    }
    let vertical = Taps::new(in_h, out_h, filter);
    let horizontal = Taps::new(in_w, out_w, filter);
    let pixels = if need_h && need_v && order.vertical_first(in_w, in_h, out_w, out_h) {
        let shorter = vertical_pass(&img.pixels, in_w, 0, out_h, &vertical);
        horizontal_pass(&shorter, in_w, out_w, &horizontal)
    } else {
        // Only the input rows some output row reads go through the horizontal pass.
        let first_row = vertical.start[0];
        let last_row = vertical.start[out_h - 1] + vertical.len[out_h - 1];
        let (src, src_first_row) = if need_h {
            let rows = &img.pixels[first_row * in_w * 3..last_row * in_w * 3];
            (horizontal_pass(rows, in_w, out_w, &horizontal), first_row)
        } else {
            (img.pixels.clone(), 0)
        };
        if need_v {
            vertical_pass(&src, out_w, src_first_row, out_h, &vertical)
        } else {
            src
        }
    };
    RgbImage { width, height, pixels }
}

fn horizontal_pass(rows: &[u8], in_w: usize, out_w: usize, taps: &Taps) -> Vec<u8> {
    let n_rows = rows.len() / (in_w * 3);
    let mut out = vec![0u8; n_rows * out_w * 3];
    for (line_in, line_out) in rows.chunks_exact(in_w * 3).zip(out.chunks_exact_mut(out_w * 3)) {
        for (i, px) in line_out.chunks_exact_mut(3).enumerate() {
            let (start, w) = taps.of(i);
            let (mut r, mut g, mut b) = (HALF, HALF, HALF);
            for (s, &k) in line_in[start * 3..(start + w.len()) * 3].chunks_exact(3).zip(w) {
                r += s[0] as i32 * k;
                g += s[1] as i32 * k;
                b += s[2] as i32 * k;
            }
            px[0] = clip8(r);
            px[1] = clip8(g);
            px[2] = clip8(b);
        }
    }
    out
}

/// `src` holds rows `src_first_row ..` of the (horizontally resampled) image, `width` pixels
/// each. Output rows are accumulated a whole input row at a time (a loop the compiler
/// vectorises); integer sums do not depend on the order, so this equals Pillow's per-pixel loop.
fn vertical_pass(src: &[u8], width: usize, src_first_row: usize, out_h: usize, taps: &Taps) -> Vec<u8> {
    let line = width * 3;
    let mut out = vec![0u8; out_h * line];
    let mut acc = vec![0i32; line];
    for (i, line_out) in out.chunks_exact_mut(line).enumerate() {
        let (start, w) = taps.of(i);
        acc.fill(HALF);
        for (y, &k) in w.iter().enumerate() {
            let row = &src[(start + y - src_first_row) * line..][..line];
            for (a, &s) in acc.iter_mut().zip(row) {
                *a += s as i32 * k;
            }
        }
        for (o, &a) in line_out.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32, usize) -> u8) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                img.put(x, y, [f(x, y, 0), f(x, y, 1), f(x, y, 2)]);
            }
        }
        img
    }

    #[test]
    fn weights_of_every_output_sum_to_one_in_fixed_point_within_rounding() {
        for filter in Filter::ALL {
            for (n, m) in [(7, 3), (3, 7), (300, 256), (256, 300), (1, 5), (5, 1)] {
                let taps = Taps::new(n, m, filter);
                for i in 0..m {
                    let (_, w) = taps.of(i);
                    let sum: i64 = w.iter().map(|&k| k as i64).sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64, "{filter:?} {n}->{m} output {i}: sum {sum}");
                }
            }
        }
    }

    #[test]
    fn a_constant_image_stays_constant_under_every_filter() {
        let img = image(37, 23, |_, _, c| [13, 128, 250][c]);
        for filter in Filter::ALL {
            for (w, h) in [(17, 11), (101, 61), (37, 5), (4, 23), (1, 1)] {
                let out = resize(&img, w, h, filter);
                assert!(out.pixels.chunks_exact(3).all(|p| p == [13, 128, 250]), "{filter:?} to {w}×{h}");
            }
        }
    }

    #[test]
    fn same_size_is_a_copy_and_one_axis_resizes_leave_the_other_alone() {
        let img = image(9, 5, |x, y, c| (x * 29 + y * 7 + c as u32 * 50) as u8);
        assert_eq!(resize(&img, 9, 5, Filter::Bicubic), img);
        // Changing only the width must not touch rows: each output row depends on its input row only.
        let wide = resize(&img, 4, 5, Filter::Bilinear);
        let row2 = image(9, 1, |x, _, c| img.get(x, 2)[c]);
        let row2_alone = resize(&row2, 4, 1, Filter::Bilinear);
        assert_eq!(&wide.pixels[2 * 4 * 3..3 * 4 * 3], &row2_alone.pixels[..]);
    }

    #[test]
    fn halving_with_box_is_the_rounded_mean_of_each_pair() {
        let img = image(4, 1, |x, _, _| [10, 21, 200, 0][x as usize]);
        let out = resize(&img, 2, 1, Filter::Box);
        // (10 + 21) / 2 = 15.5 rounds up; (200 + 0) / 2 = 100.
        assert_eq!(out.get(0, 0), [16, 16, 16]);
        assert_eq!(out.get(1, 0), [100, 100, 100]);
    }

    #[test]
    fn filter_names_round_trip() {
        for f in Filter::ALL {
            assert_eq!(Filter::from_name(f.name()), Some(f));
        }
        assert_eq!(Filter::from_name("nearest"), None);
    }
}
