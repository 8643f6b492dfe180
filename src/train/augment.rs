//! Hand-made augmentation: the `real+standard-aug` baseline (random-resized-crop, horizontal
//! flip, colour jitter) and AugMix (Hendrycks et al. 2020). Each transform is a pure function of
//! (image, random stream); images are RGB8, `size × size`.

use crate::rng::Stream;
use serde::{Deserialize, Serialize};

/// The augmentation a regime trains with (`augment` in a suite's `[[regimes]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    None,
    /// Random-resized-crop + horizontal flip + colour jitter (the hand-made baseline).
    Standard,
    /// Random-resized-crop + horizontal flip, then AugMix (Hendrycks et al. 2020).
    Augmix,
    /// AugMix with its Jensen–Shannon consistency loss: every image is seen cropped and flipped
    /// (clean) and through two independent AugMix mixes of that crop, and the loss adds
    /// 12 × the JS divergence among the three predictions (the paper's λ) to the clean image's
    /// cross-entropy. Three forward passes' worth of compute per image.
    #[serde(rename = "augmix-jsd")]
    AugmixJsd,
}

impl Augment {
    /// Views of each image in a training batch: 3 for `augmix-jsd`, else 1.
    pub fn views(self) -> usize {
        match self {
            Augment::AugmixJsd => 3,
            _ => 1,
        }
    }
}


/// Random-resized-crop (area 35–100 %, aspect 3/4–4/3, bilinear), flip with probability ½,
/// then colour jitter (brightness, contrast, saturation each ×[0.6, 1.4], in random order).
/// `pixels` is one RGB8 `size × size` image.
pub fn standard(pixels: &[u8], size: usize, stream: &mut Stream) -> Vec<u8> {
    let flipped = crop_flip(pixels, size, stream);
    colour_jitter(&flipped, stream, 0.4)
}

/// Crops a random window of `area` fraction and aspect ratio in [3/4, 4/3] (log-uniform) and
/// resamples it bilinearly to `size × size`. Falls back to the whole image after ten misses,
/// like the torchvision transform.
pub fn random_resized_crop(pixels: &[u8], size: usize, stream: &mut Stream, area: (f64, f64)) -> Vec<u8> {
    let full = size as f64;
    let (mut w, mut h, mut x0, mut y0) = (full, full, 0.0, 0.0);
    for _ in 0..10 {
        let a = stream.uniform(area.0, area.1) * full * full;
        let ratio = stream.uniform((3f64 / 4.0).ln(), (4f64 / 3.0).ln()).exp();
        let (cw, ch) = ((a * ratio).sqrt(), (a / ratio).sqrt());
        if cw <= full && ch <= full {
            w = cw;
            h = ch;
            x0 = stream.uniform(0.0, full - cw);
            y0 = stream.uniform(0.0, full - ch);
            break;
        }
    }
    let mut out = vec![0u8; size * size * 3];
    for oy in 0..size {
        for ox in 0..size {
            // Sample at pixel centres of the output mapped into the crop window.
            let sx = x0 + (ox as f64 + 0.5) * w / full - 0.5;
            let sy = y0 + (oy as f64 + 0.5) * h / full - 0.5;
            let rgb = bilinear(pixels, size, sx, sy);
            out[(oy * size + ox) * 3..(oy * size + ox) * 3 + 3].copy_from_slice(&rgb);
        }
    }
    out
}

fn bilinear(pixels: &[u8], size: usize, x: f64, y: f64) -> [u8; 3] {
    let max = (size - 1) as f64;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |xx: usize, yy: usize, c: usize| pixels[(yy * size + xx) * 3 + c] as f64;
    let mut rgb = [0u8; 3];
    for (c, v) in rgb.iter_mut().enumerate() {
        let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
        let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
        *v = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    rgb
}

pub fn flip_horizontal(pixels: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; pixels.len()];
    for y in 0..size {
        for x in 0..size {
            let (src, dst) = ((y * size + x) * 3, (y * size + size - 1 - x) * 3);
            out[dst..dst + 3].copy_from_slice(&pixels[src..src + 3]);
        }
    }
    out
}

/// Brightness, contrast and saturation factors drawn from `[1 − s, 1 + s]`, applied in a random
/// order (contrast around the image's mean grey, saturation around each pixel's grey).
pub fn colour_jitter(pixels: &[u8], stream: &mut Stream, strength: f64) -> Vec<u8> {
    let mut img: Vec<f64> = pixels.iter().map(|&p| p as f64).collect();
    let mut order = [0usize, 1, 2];
    stream.shuffle(&mut order);
    let factors: Vec<f64> = (0..3).map(|_| stream.uniform(1.0 - strength, 1.0 + strength)).collect();
    for op in order {
        let f = factors[op];
        match op {
            0 => img.iter_mut().for_each(|v| *v *= f),
            1 => {
                let mean = img.chunks(3).map(grey).sum::<f64>() / (img.len() / 3) as f64;
                img.iter_mut().for_each(|v| *v = mean + (*v - mean) * f);
            }
            _ => img.chunks_mut(3).for_each(|px| {
                let g = grey(px);
                px.iter_mut().for_each(|v| *v = g + (*v - g) * f);
            }),
        }
        img.iter_mut().for_each(|v| *v = v.clamp(0.0, 255.0));
    }
    img.iter().map(|v| v.round() as u8).collect()
}

fn grey(px: &[f64]) -> f64 {
    0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]
}

/// Chains mixed per image (AugMix's `width`).
pub const AUGMIX_WIDTH: usize = 3;
/// Upper end of an operation's strength on AugMix's 1–10 scale (the reference default).
pub const AUGMIX_SEVERITY: f64 = 3.0;
/// Concentration of the Dirichlet chain weights and of the Beta skip-connection weight.
pub const AUGMIX_ALPHA: f64 = 1.0;

/// The operations of AugMix's chains. Like the paper, nothing that overlaps the test shifts'
/// style: no colour, contrast, brightness or sharpness change and no inversion beyond solarize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AugOp {
    AutoContrast,
    Equalize,
    Posterize,
    Rotate,
    Solarize,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
}

pub const AUG_OPS: [AugOp; 9] = [
    AugOp::AutoContrast, AugOp::Equalize, AugOp::Posterize, AugOp::Rotate, AugOp::Solarize,
    AugOp::ShearX, AugOp::ShearY, AugOp::TranslateX, AugOp::TranslateY,
];

/// The `augmix` regime's pipeline: random-resized-crop and flip as in `standard` (the
/// reference ImageNet script crops and flips before AugMix), then [`augmix`].
pub fn crop_flip_augmix(pixels: &[u8], size: usize, stream: &mut Stream) -> Vec<u8> {
    let flipped = crop_flip(pixels, size, stream);
    augmix(&flipped, size, stream)
}

/// The `augmix-jsd` regime's three views of one image: the cropped and flipped image (clean),
/// then two independent [`augmix`] mixes of that same crop, as the reference training script.
pub fn augmix_jsd_views(pixels: &[u8], size: usize, stream: &mut Stream) -> [Vec<u8>; 3] {
    let clean = crop_flip(pixels, size, stream);
    let first = augmix(&clean, size, stream);
    let second = augmix(&clean, size, stream);
    [clean, first, second]
}

/// Random-resized-crop (area 35–100 %) and a horizontal flip with probability ½.
fn crop_flip(pixels: &[u8], size: usize, stream: &mut Stream) -> Vec<u8> {
    let crop = random_resized_crop(pixels, size, stream, (0.35, 1.0));
    if stream.chance(0.5) {
        flip_horizontal(&crop, size)
    } else {
        crop
    }
}

/// AugMix: [`AUGMIX_WIDTH`] chains of 1–3 random operations, mixed with Dirichlet(α) weights,
/// then blended with the original by a Beta(α, α) weight `m`: `(1 − m)·x + m·Σ wᵢ·chainᵢ(x)`.
/// Mixing is done on raw pixel values: normalisation is affine per channel, so this equals
/// mixing normalised images as the reference does.
pub fn augmix(pixels: &[u8], size: usize, stream: &mut Stream) -> Vec<u8> {
    let weights = stream.dirichlet(&[AUGMIX_ALPHA; AUGMIX_WIDTH]);
    let skip = stream.beta(AUGMIX_ALPHA, AUGMIX_ALPHA);
    let chains: Vec<Vec<u8>> = (0..AUGMIX_WIDTH)
        .map(|_| {
            let depth = 1 + stream.below(3);
            (0..depth).fold(pixels.to_vec(), |img, _| {
                let op = *stream.pick(&AUG_OPS);
                let level = stream.uniform(0.1, AUGMIX_SEVERITY);
                apply_op(op, &img, size, level, stream)
            })
        })
        .collect();
    mix(pixels, &chains, &weights, skip)
}

/// `(1 − m)·original + m·Σ wᵢ·chainᵢ`, rounded to bytes.
pub fn mix(original: &[u8], chains: &[Vec<u8>], weights: &[f64], m: f64) -> Vec<u8> {
    (0..original.len())
        .map(|j| {
            let mixed: f64 = chains.iter().zip(weights).map(|(c, w)| w * c[j] as f64).sum();
            ((1.0 - m) * original[j] as f64 + m * mixed).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// One AugMix operation at strength `level` on the 0–10 scale. Geometric operations draw
/// their direction from `stream`.
pub fn apply_op(op: AugOp, pixels: &[u8], size: usize, level: f64, stream: &mut Stream) -> Vec<u8> {
    // The reference's int_parameter / float_parameter: level/10 of the operation's maximum.
    let int_param = |max: f64| (level * max / 10.0).trunc();
    let float_param = |max: f64| level * max / 10.0;
    let signed = |stream: &mut Stream, v: f64| if stream.chance(0.5) { -v } else { v };
    match op {
        AugOp::AutoContrast => autocontrast(pixels),
        AugOp::Equalize => equalize(pixels),
        AugOp::Posterize => posterize(pixels, 4u32.saturating_sub(int_param(4.0) as u32)),
        AugOp::Solarize => solarize(pixels, 256u32.saturating_sub(int_param(256.0) as u32)),
        AugOp::Rotate => {
            let degrees = signed(stream, int_param(30.0));
            rotate(pixels, size, degrees)
        }
        AugOp::ShearX => shear(pixels, size, signed(stream, float_param(0.3)), 0.0),
        AugOp::ShearY => shear(pixels, size, 0.0, signed(stream, float_param(0.3))),
        AugOp::TranslateX => translate(pixels, size, signed(stream, int_param(size as f64 / 3.0)), 0.0),
        AugOp::TranslateY => translate(pixels, size, 0.0, signed(stream, int_param(size as f64 / 3.0))),
    }
}

/// Applies a per-channel lookup table.
fn map_channels(pixels: &[u8], luts: &[[u8; 256]; 3]) -> Vec<u8> {
    pixels.iter().enumerate().map(|(j, &p)| luts[j % 3][p as usize]).collect()
}

fn histograms(pixels: &[u8]) -> [[u64; 256]; 3] {
    let mut h = [[0u64; 256]; 3];
    for (j, &p) in pixels.iter().enumerate() {
        h[j % 3][p as usize] += 1;
    }
    h
}

/// Stretches each channel linearly so its darkest value becomes 0 and its brightest 255
/// (PIL's `ImageOps.autocontrast` without cut-off).
pub fn autocontrast(pixels: &[u8]) -> Vec<u8> {
    let mut luts = [[0u8; 256]; 3];
    for (c, h) in histograms(pixels).iter().enumerate() {
        let lo = h.iter().position(|&n| n > 0).unwrap_or(0);
        let hi = h.iter().rposition(|&n| n > 0).unwrap_or(255);
        for (i, v) in luts[c].iter_mut().enumerate() {
            *v = if hi <= lo {
                i as u8
            } else {
                let scale = 255.0 / (hi - lo) as f64;
                ((i as f64 - lo as f64) * scale).clamp(0.0, 255.0) as u8
            };
        }
    }
    map_channels(pixels, &luts)
}

/// Per-channel histogram equalisation with PIL's integer arithmetic (`ImageOps.equalize`).
pub fn equalize(pixels: &[u8]) -> Vec<u8> {
    let mut luts = [[0u8; 256]; 3];
    for (c, h) in histograms(pixels).iter().enumerate() {
        let last = h.iter().rposition(|&n| n > 0).map(|i| h[i]).unwrap_or(0);
        let step = (h.iter().sum::<u64>() - last) / 255;
        for (i, v) in luts[c].iter_mut().enumerate() {
            *v = i as u8;
        }
        if step == 0 {
            continue;
        }
        let mut n = step / 2;
        for (i, v) in luts[c].iter_mut().enumerate() {
            *v = (n / step).min(255) as u8;
            n += h[i];
        }
    }
    map_channels(pixels, &luts)
}

/// Keeps the top `bits` bits of every value.
pub fn posterize(pixels: &[u8], bits: u32) -> Vec<u8> {
    let mask = if bits == 0 { 0 } else { 0xffu8 << (8 - bits.min(8)) };
    pixels.iter().map(|&p| p & mask).collect()
}

/// Inverts every value at or above `threshold` (256: none).
pub fn solarize(pixels: &[u8], threshold: u32) -> Vec<u8> {
    pixels.iter().map(|&p| if p as u32 >= threshold { 255 - p } else { p }).collect()
}

/// Rotation about the centre by `degrees` (counter-clockwise), bilinear, black outside.
pub fn rotate(pixels: &[u8], size: usize, degrees: f64) -> Vec<u8> {
    let (sin, cos) = degrees.to_radians().sin_cos();
    // Output → input: the inverse rotation.
    warp(pixels, size, |dx, dy| (cos * dx - sin * dy, sin * dx + cos * dy))
}

/// Shear about the centre: input x = x + sx·y, input y = y + sy·x (centred coordinates).
pub fn shear(pixels: &[u8], size: usize, sx: f64, sy: f64) -> Vec<u8> {
    warp(pixels, size, |dx, dy| (dx + sx * dy, dy + sy * dx))
}

/// Shift by whole pixels; uncovered pixels are black.
pub fn translate(pixels: &[u8], size: usize, tx: f64, ty: f64) -> Vec<u8> {
    warp(pixels, size, |dx, dy| (dx - tx, dy - ty))
}

/// Resamples with `inverse` mapping output to input coordinates, both relative to the image
/// centre (pixel centres). Neighbours outside the image count as black, as PIL fills them.
fn warp(pixels: &[u8], size: usize, inverse: impl Fn(f64, f64) -> (f64, f64)) -> Vec<u8> {
    let c = (size as f64 - 1.0) / 2.0;
    let mut out = vec![0u8; pixels.len()];
    let at = |x: i64, y: i64, ch: usize| -> f64 {
        if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
            0.0
        } else {
            pixels[(y as usize * size + x as usize) * 3 + ch] as f64
        }
    };
    for oy in 0..size {
        for ox in 0..size {
            let (sx, sy) = inverse(ox as f64 - c, oy as f64 - c);
            let (sx, sy) = (sx + c, sy + c);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for ch in 0..3 {
                let top = at(x0, y0, ch) * (1.0 - fx) + at(x0 + 1, y0, ch) * fx;
                let bottom = at(x0, y0 + 1, ch) * (1.0 - fx) + at(x0 + 1, y0 + 1, ch) * fx;
                out[(oy * size + ox) * 3 + ch] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gradient(size: usize) -> Vec<u8> {
        (0..size * size).flat_map(|i| [(i % size * 255 / size) as u8, (i / size * 255 / size) as u8, 128]).collect()
    }

    #[test]
    fn flip_twice_is_identity_and_moves_pixels() {
        let img = gradient(8);
        let once = flip_horizontal(&img, 8);
        assert_ne!(once, img);
        assert_eq!(flip_horizontal(&once, 8), img);
        assert_eq!(&once[0..3], &img[7 * 3..7 * 3 + 3]);
    }

    #[test]
    fn full_area_crop_of_full_window_is_identity() {
        let img = gradient(8);
        let mut s = Stream::new(0, "t", 0);
        // area exactly 1 with aspect ≠ 1 never fits; the fallback is the whole image.
        let out = random_resized_crop(&img, 8, &mut s, (1.0, 1.0));
        let diff: i32 = out.iter().zip(&img).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(diff <= 1, "max difference {diff}");
    }

    #[test]
    fn jitter_of_a_grey_image_changes_only_brightness_and_contrast() {
        let img = vec![100u8; 4 * 4 * 3];
        let mut s = Stream::new(0, "t", 1);
        let out = colour_jitter(&img, &mut s, 0.4);
        assert!(out.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]), "saturation must not tint a grey image");
    }

    #[test]
    fn augmix_ops_have_their_identity_cases() {
        let img = gradient(12);
        assert_eq!(rotate(&img, 12, 0.0), img);
        assert_eq!(shear(&img, 12, 0.0, 0.0), img);
        assert_eq!(translate(&img, 12, 0.0, 0.0), img);
        assert_eq!(posterize(&img, 8), img);
        assert_eq!(solarize(&img, 256), img);
        let full: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
        assert_eq!(autocontrast(&full), full, "a full-range image is already stretched");
        assert_eq!(equalize(&full), full, "a flat histogram is already equalised");
        assert_eq!(rotate(&rotate(&img, 12, 90.0), 12, -90.0), img, "quarter turns land on pixel centres");
    }

    #[test]
    fn augmix_ops_do_what_they_say() {
        let img = gradient(12);
        // Translation moves the content and fills with black.
        let moved = translate(&img, 12, 2.0, 0.0);
        assert_eq!(&moved[(5 * 12 + 7) * 3..(5 * 12 + 8) * 3], &img[(5 * 12 + 5) * 3..(5 * 12 + 6) * 3]);
        assert_eq!(&moved[(5 * 12) * 3..(5 * 12 + 2) * 3], &[0u8; 6]);
        assert_eq!(solarize(&[10, 200, 128], 128), vec![10, 55, 127]);
        assert_eq!(posterize(&[255, 0b1011_0111], 3), vec![0b1110_0000, 0b1010_0000]);
        let dull: Vec<u8> = (0..48u8).map(|i| 100 + i % 16).collect();
        let stretched = autocontrast(&dull);
        assert_eq!((stretched.iter().min(), stretched.iter().max()), (Some(&0), Some(&255)));
    }

    #[test]
    fn mixing_with_zero_skip_weight_is_the_original_and_full_weight_the_chain() {
        let img = gradient(8);
        let chain = flip_horizontal(&img, 8);
        assert_eq!(mix(&img, &[chain.clone()], &[1.0], 0.0), img);
        assert_eq!(mix(&img, &[chain.clone()], &[1.0], 1.0), chain);
        let half = mix(&[0, 100], &[vec![200, 100], vec![0, 0]], &[0.5, 0.5], 0.5);
        assert_eq!(half, vec![50, 75]);
    }

    proptest! {
        #[test]
        fn every_augmix_op_changes_an_image_at_a_real_strength(op in 0usize..9, level in 2.5f64..10.0, seed in 0u64..100) {
            let op = AUG_OPS[op];
            // Narrow channels and some bright values, so autocontrast and solarize (threshold
            // ≤ 192 from level 2.5) have work to do; 24² pixels, as equalisation needs more than
            // 255 of them to move any value.
            let img: Vec<u8> = (0..24 * 24).flat_map(|i| [(60 + (i % 24) * 3) as u8, (70 + (i / 24) * 2) as u8, (250 - i % 5) as u8]).collect();
            let a = apply_op(op, &img, 24, level, &mut Stream::new(seed, "op", 0));
            let b = apply_op(op, &img, 24, level, &mut Stream::new(seed, "op", 0));
            prop_assert_eq!(a.len(), img.len());
            prop_assert_eq!(&a, &b);
            // From level 2.5 a 24-pixel translation is at least two pixels (size/3 · level/10).
            prop_assert_ne!(a, img, "{:?} at level {}", op, level);
        }

        #[test]
        fn augmix_is_a_pure_function_of_image_and_seed(seed in 0u64..1000, idx in 0u64..1000) {
            let img = gradient(12);
            let a = crop_flip_augmix(&img, 12, &mut Stream::new(seed, "aug", idx));
            let b = crop_flip_augmix(&img, 12, &mut Stream::new(seed, "aug", idx));
            prop_assert_eq!(a.len(), img.len());
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn augmix_changes_nearly_every_image() {
        // Only a skip weight m of a few percent (P ≈ m for Beta(1, 1)) or chains of zero-size
        // translations can round back to the input.
        let img = gradient(12);
        let unchanged = (0..500).filter(|&k| augmix(&img, 12, &mut Stream::new(0, "mix", k)) == img).count();
        assert!(unchanged <= 25, "{unchanged} of 500 AugMix draws left the image unchanged");
        let changed_by_crop: usize = (0..20).filter(|&k| crop_flip_augmix(&img, 12, &mut Stream::new(0, "mix", k)) != img).count();
        assert_eq!(changed_by_crop, 20);
    }

    proptest! {
        #[test]
        fn standard_is_a_pure_function_of_image_and_seed(seed in 0u64..1000, idx in 0u64..1000) {
            let img = gradient(12);
            let a = standard(&img, 12, &mut Stream::new(seed, "aug", idx));
            let b = standard(&img, 12, &mut Stream::new(seed, "aug", idx));
            prop_assert_eq!(a.len(), img.len());
            prop_assert_eq!(a, b);
        }
    }
}
