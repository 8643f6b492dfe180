//! Hand-made augmentation, the `real+standard-aug` baseline: random-resized-crop, horizontal
//! flip and colour jitter. Each transform is a pure function of (image, random stream).

use crate::rng::Stream;

/// Random-resized-crop (area 35–100 %, aspect 3/4–4/3, bilinear), flip with probability ½,
/// then colour jitter (brightness, contrast, saturation each ×[0.6, 1.4], in random order).
/// `pixels` is one RGB8 `size × size` image.
pub fn standard(pixels: &[u8], size: usize, stream: &mut Stream) -> Vec<u8> {
    let crop = random_resized_crop(pixels, size, stream, (0.35, 1.0));
    let flipped = if stream.chance(0.5) { flip_horizontal(&crop, size) } else { crop };
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
