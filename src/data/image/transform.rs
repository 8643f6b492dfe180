//! The evaluation transform of torchvision and timm on a PIL image, as pure functions from a
//! decoded RGB image to a normalised model input.
//!
//! torchvision's ImageNet eval transform is
//! `Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)])`; timm's is the same
//! with `Resize(floor(img_size / crop_pct), interpolation)` and `CenterCrop(img_size)`. The
//! details that change pixels, as torchvision 0.29's `transforms/functional.py` does them:
//! - `Resize(s)`: the short side becomes `s`, the long side `int(s * long / short)` (truncated:
//!   500×375 → 341×256); if that is the image's size already nothing is resampled; otherwise it
//!   is `PIL.Image.resize` (always antialiased on PIL images), see [`super::resample`]; by
//!   default with the pass order of Pillow before 13.0, which made the published numbers.
//! - `CenterCrop(c)`: an image smaller than the crop is zero-padded first, `(c − w) // 2` on the
//!   left and `(c − w + 1) // 2` on the right (top and bottom alike); the crop then starts at
//!   `int(round((H − c) / 2))` with Python's round-half-to-even (341 → 224 starts at 58, not 59).
//! - `ToTensor` + `Normalize`: `(x / 255 − mean) / std` in `f32`, each step rounded to `f32` in
//!   that order (torch's `div`, `sub_`, `div_`), with mean and std rounded from Python floats.
//!
//! The result is channels-last (`H × W × 3`), the layout the project's models take, where
//! PyTorch's tensors are `3 × H × W`; the values are the same.

use super::resample::{resize_in_order, Filter, PassOrder};
use crate::data::RgbImage;
use anyhow::{bail, Context, Result};

/// ImageNet's per-channel mean and standard deviation (RGB), as torchvision and timm use them.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// A model input: `height × width × 3` `f32` values, channels last.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTensor {
    pub height: u32,
    pub width: u32,
    pub data: Vec<f32>,
}

/// One evaluation preprocessing: optional border crop, short-side resize, center crop, normalise.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// The spec it was made from, for records (`imagenet`, `timm:size=224,...`).
    pub name: String,
    /// Pixels cut from each side first (ObjectNet's testbed protocol cuts 2, its red border).
    pub border: u32,
    /// The short side after resizing.
    pub resize: u32,
    /// The side of the square center crop.
    pub crop: u32,
    pub interpolation: Filter,
    /// The Pillow version's resampling pass order (`pillow=13` in a spec selects 13's).
    pub pass_order: PassOrder,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Preprocess {
    /// torchvision's ImageNet eval transform: `Resize(256)` bilinear, `CenterCrop(224)`.
    pub fn imagenet() -> Self {
        Self {
            name: "imagenet".into(),
            border: 0,
            resize: 256,
            crop: 224,
            interpolation: Filter::Bilinear,
            pass_order: PassOrder::HorizontalFirst,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// timm's eval transform for a model with input `size` and `crop_pct`:
    /// `Resize(floor(size / crop_pct))`, `CenterCrop(size)`.
    pub fn timm(size: u32, crop_pct: f64, interpolation: Filter) -> Self {
        Self {
            name: format!("timm:size={size},crop_pct={crop_pct},interpolation={}", interpolation.name()),
            border: 0,
            resize: (size as f64 / crop_pct).floor() as u32,
            crop: size,
            interpolation,
            pass_order: PassOrder::HorizontalFirst,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Parses `imagenet` or `timm` (`timm` defaults to size 224 and crop_pct 0.875, timm's
    /// defaults, and needs `interpolation`), optionally followed by `:key=value,...` with keys
    /// `interpolation`, `resize`, `crop`, `border`, `pillow` (both), `size`, `crop_pct` (timm);
    /// `pillow=13` resamples in Pillow 13's pass order, `pillow=12` (the default) in the older one.
    /// Example: `timm:size=224,crop_pct=0.9,interpolation=bicubic,border=2`.
    pub fn parse(spec: &str) -> Result<Self> {
        let (base, opts) = spec.split_once(':').unwrap_or((spec, ""));
        let mut kv: Vec<(&str, &str)> = Vec::new();
        for item in opts.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').with_context(|| format!("preprocessing `{spec}`: `{item}` is not key=value"))?;
            kv.push((k.trim(), v.trim()));
        }
        let get = |key: &str| kv.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let int = |key: &str| -> Result<Option<u32>> {
            get(key)
                .map(|v| v.parse::<u32>().with_context(|| format!("preprocessing `{spec}`: {key}={v} is not a whole number")))
                .transpose()
        };
        let filter = || -> Result<Option<Filter>> {
            get("interpolation")
                .map(|v| {
                    Filter::from_name(v).with_context(|| {
                        let names: Vec<_> = Filter::ALL.iter().map(|f| f.name()).collect();
                        format!("preprocessing `{spec}`: unknown interpolation `{v}` (one of {})", names.join(", "))
                    })
                })
                .transpose()
        };
        let (mut p, allowed): (Self, &[&str]) = match base {
            "imagenet" => (Self::imagenet(), &["interpolation", "resize", "crop", "border", "pillow"]),
            "timm" => {
                let size = int("size")?.unwrap_or(224);
                let crop_pct = match get("crop_pct") {
                    Some(v) => v.parse::<f64>().ok().filter(|c| *c > 0.0 && *c <= 1.0).with_context(|| format!("preprocessing `{spec}`: crop_pct={v} is not a number in (0, 1]"))?,
                    None => 0.875,
                };
                let f = filter()?.with_context(|| format!("preprocessing `{spec}`: timm models differ in interpolation: add interpolation=bilinear or interpolation=bicubic (the model's pretrained_cfg says which)"))?;
                (Self::timm(size, crop_pct, f), &["interpolation", "size", "crop_pct", "border", "pillow"])
            }
            other => bail!("unknown preprocessing `{other}`: use `imagenet` (torchvision) or `timm:interpolation=...`"),
        };
        if let Some((k, _)) = kv.iter().find(|(k, _)| !allowed.contains(k)) {
            bail!("preprocessing `{spec}`: `{k}` is not an option of `{base}` (options: {})", allowed.join(", "));
        }
        if let Some(f) = filter()? {
            p.interpolation = f;
        }
        p.resize = int("resize")?.unwrap_or(p.resize);
        p.crop = int("crop")?.unwrap_or(p.crop);
        p.border = int("border")?.unwrap_or(0);
        p.pass_order = match int("pillow")? {
            None => PassOrder::HorizontalFirst,
            Some(v) if v < 13 => PassOrder::HorizontalFirst,
            Some(_) => PassOrder::Pillow13,
        };
        if p.resize == 0 || p.crop == 0 {
            bail!("preprocessing `{spec}`: resize and crop must be at least 1 pixel");
        }
        p.name = spec.to_owned();
        Ok(p)
    }

    /// The resized and cropped 8-bit image, before `ToTensor` (what the fixtures compare).
    /// Fails only when `border` leaves nothing of the image.
    pub fn crop_u8(&self, img: &RgbImage) -> Result<RgbImage> {
        let img = if self.border > 0 {
            crop_border(img, self.border).with_context(|| format!("a {}×{} image has nothing left after cutting a {}-pixel border", img.width, img.height, self.border))?
        } else {
            img.clone()
        };
        let resized = resize_short_side(&img, self.resize, self.interpolation, self.pass_order);
        Ok(center_crop(&resized, self.crop, self.crop))
    }

    /// The model input for `img`: `crop × crop × 3`, normalised.
    pub fn apply(&self, img: &RgbImage) -> Result<ImageTensor> {
        Ok(normalize(&self.crop_u8(img)?, self.mean, self.std))
    }
}

/// torchvision's `Resize(size)` with an int size on a PIL image (see the module docs).
pub fn resize_short_side(img: &RgbImage, size: u32, filter: Filter, order: PassOrder) -> RgbImage {
    let (w, h) = (img.width as u64, img.height as u64);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python: int(size * long / short), an exact integer product then a rounded true division.
    let new_long = ((size as u64 * long) as f64 / short as f64) as u32;
    let (new_w, new_h) = if w <= h { (size, new_long) } else { (new_long, size) };
    if (new_w, new_h) == (img.width, img.height) {
        return img.clone();
    }
    resize_in_order(img, new_w, new_h, filter, order)
}

/// Python's `int(round(d / 2.0))` for a whole `d ≥ 0`: halves go to the even neighbour.
fn half_round_even(d: u32) -> u32 {
    let k = d / 2;
    if d % 2 == 1 && k % 2 == 1 {
        k + 1
    } else {
        k
    }
}

/// torchvision's `CenterCrop((height, width))` on a PIL image: zero padding when the crop is
/// larger, then a crop at the rounded center.
pub fn center_crop(img: &RgbImage, height: u32, width: u32) -> RgbImage {
    let pad = |crop: u32, size: u32| if crop > size { ((crop - size) / 2, (crop - size).div_ceil(2)) } else { (0, 0) };
    let (left, right) = pad(width, img.width);
    let (top, bottom) = pad(height, img.height);
    let (pw, ph) = (img.width + left + right, img.height + top + bottom);
    let y0 = half_round_even(ph - height);
    let x0 = half_round_even(pw - width);
    let mut out = RgbImage::new(width, height);
    // Output pixel (x, y) is padded pixel (x0 + x, y0 + y) = source (x0 + x − left, y0 + y − top).
    for y in 0..height {
        let sy = (y0 + y) as i64 - top as i64;
        if sy < 0 || sy >= img.height as i64 {
            continue;
        }
        let sx0 = x0 as i64 - left as i64;
        let (first, last) = ((-sx0).max(0), (img.width as i64 - sx0).min(width as i64));
        if first >= last {
            continue;
        }
        let src = &img.pixels[((sy as usize * img.width as usize) + (sx0 + first) as usize) * 3..][..(last - first) as usize * 3];
        out.pixels[(y as usize * width as usize + first as usize) * 3..][..src.len()].copy_from_slice(src);
    }
    out
}

/// Pillow's `ImageOps.crop(img, border)`: `border` pixels cut from every side; `None` when nothing
/// would be left.
pub fn crop_border(img: &RgbImage, border: u32) -> Option<RgbImage> {
    let (w, h) = (img.width.checked_sub(2 * border)?, img.height.checked_sub(2 * border)?);
    if w == 0 || h == 0 {
        return None;
    }
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let src = &img.pixels[(((y + border) * img.width + border) * 3) as usize..][..(w * 3) as usize];
        out.pixels[(y * w * 3) as usize..][..(w * 3) as usize].copy_from_slice(src);
    }
    Some(out)
}

/// `ToTensor()` then `Normalize(mean, std)`, rounding like torch's float32 operations.
pub fn normalize(img: &RgbImage, mean: [f64; 3], std: [f64; 3]) -> ImageTensor {
    // One table per channel: 3 × 256 values instead of 2 divisions per sample.
    let table: Vec<[f32; 256]> = (0..3)
        .map(|c| {
            let (m, s) = (mean[c] as f32, std[c] as f32);
            std::array::from_fn(|v| (v as f32 / 255.0 - m) / s)
        })
        .collect();
    let data = img.pixels.chunks_exact(3).flat_map(|p| [table[0][p[0] as usize], table[1][p[1] as usize], table[2][p[2] as usize]]).collect();
    ImageTensor { height: img.height, width: img.width, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                img.put(x, y, [x as u8, y as u8, 7]);
            }
        }
        img
    }

    #[test]
    fn python_rounds_half_crop_offsets_to_even() {
        // (341 - 224) / 2 = 58.5 -> 58; (343 - 224) / 2 = 59.5 -> 60; whole offsets stay.
        assert_eq!(half_round_even(117), 58);
        assert_eq!(half_round_even(119), 60);
        assert_eq!(half_round_even(1), 0);
        assert_eq!(half_round_even(3), 2);
        assert_eq!(half_round_even(32), 16);
    }

    #[test]
    fn resize_short_side_truncates_the_long_side_and_skips_same_size() {
        let h = PassOrder::HorizontalFirst;
        let r = resize_short_side(&numbered(500, 375), 256, Filter::Bilinear, h);
        assert_eq!((r.width, r.height), (341, 256));
        let r = resize_short_side(&numbered(375, 500), 256, Filter::Bilinear, h);
        assert_eq!((r.width, r.height), (256, 341));
        let same = numbered(256, 300);
        assert_eq!(resize_short_side(&same, 256, Filter::Bicubic, h), same);
    }

    #[test]
    fn center_crop_takes_the_rounded_middle() {
        let img = numbered(7, 4);
        let c = center_crop(&img, 2, 4);
        // x offset round(3 / 2) = 2 (1.5 rounds to even), y offset 1.
        assert_eq!(c.get(0, 0), [2, 1, 7]);
        assert_eq!(c.get(3, 1), [5, 2, 7]);
    }

    #[test]
    fn center_crop_pads_a_small_image_with_zeros_like_torchvision() {
        let img = numbered(3, 2);
        // Width 3 -> 6: pad 1 left, 2 right. Height 2 -> 5: pad 1 top, 2 bottom.
        let c = center_crop(&img, 5, 6);
        assert_eq!(c.get(0, 1), [0, 0, 0]);
        assert_eq!(c.get(1, 1), [0, 0, 7]);
        assert_eq!(c.get(3, 2), [2, 1, 7]);
        assert_eq!(c.get(4, 2), [0, 0, 0]);
        assert_eq!(c.get(1, 0), [0, 0, 0]);
        assert_eq!(c.get(1, 3), [0, 0, 0]);
        // Padded in one axis, cropped in the other: 3x2 -> 2 wide, 4 tall.
        let c = center_crop(&img, 4, 2);
        assert_eq!(c.get(0, 1), [0, 0, 7]);
        assert_eq!(c.get(1, 2), [1, 1, 7]);
        assert_eq!(c.get(0, 0), [0, 0, 0]);
    }

    #[test]
    fn crop_border_cuts_every_side() {
        let c = crop_border(&numbered(7, 5), 2).unwrap();
        assert_eq!((c.width, c.height), (3, 1));
        assert_eq!(c.get(0, 0), [2, 2, 7]);
        assert!(crop_border(&numbered(4, 9), 2).is_none());
    }

    #[test]
    fn normalize_divides_then_subtracts_then_divides_in_f32() {
        let mut img = RgbImage::new(1, 1);
        img.put(0, 0, [0, 255, 128]);
        let t = normalize(&img, IMAGENET_MEAN, IMAGENET_STD);
        assert_eq!(t.data[0], (0.0f32 - 0.485) / 0.229);
        assert_eq!(t.data[1], (1.0f32 - 0.456) / 0.224);
        assert_eq!(t.data[2], (128.0f32 / 255.0 - 0.406) / 0.225);
    }

    #[test]
    fn parse_knows_imagenet_and_timm_and_names_its_errors() {
        assert_eq!(Preprocess::parse("imagenet").unwrap(), Preprocess::imagenet());
        let t = Preprocess::parse("timm:interpolation=bicubic").unwrap();
        assert_eq!((t.resize, t.crop, t.interpolation), (256, 224, Filter::Bicubic));
        let t = Preprocess::parse("timm:size=224,crop_pct=0.9,interpolation=bilinear,border=2").unwrap();
        assert_eq!((t.resize, t.crop, t.border), (248, 224, 2));
        let t = Preprocess::parse("imagenet:interpolation=bicubic,resize=232").unwrap();
        assert_eq!((t.resize, t.crop, t.interpolation, t.pass_order), (232, 224, Filter::Bicubic, PassOrder::HorizontalFirst));
        assert_eq!(Preprocess::parse("imagenet:pillow=13").unwrap().pass_order, PassOrder::Pillow13);
        for (bad, says) in [
            ("timm", "interpolation"),
            ("inception", "unknown preprocessing"),
            ("imagenet:crop_pct=0.9", "not an option"),
            ("imagenet:resize=big", "whole number"),
            ("timm:crop_pct=2,interpolation=bicubic", "crop_pct"),
            ("imagenet:interpolation=nearest", "unknown interpolation"),
            ("imagenet:crop=0", "at least 1"),
        ] {
            let e = format!("{:#}", Preprocess::parse(bad).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn apply_gives_a_crop_sized_channels_last_tensor() {
        let t = Preprocess::imagenet().apply(&numbered(300, 225)).unwrap();
        assert_eq!((t.height, t.width, t.data.len()), (224, 224, 224 * 224 * 3));
        let e = Preprocess::parse("imagenet:border=3").unwrap().apply(&numbered(6, 100)).unwrap_err();
        assert!(e.to_string().contains("nothing left"), "{e}");
    }
}
