//! The `shapes` world: a procedural stand-in for ImageNet and its natural distribution shifts.
//!
//! Ten object classes are drawn as parametric vector drawings ([`objects`]) and painted by one
//! of five domain styles ([`styles`]) with our own anti-aliased rasteriser ([`raster`]):
//!
//! - `photo` — the training and in-distribution validation domain: shaded, textured objects on
//!   cluttered, defocused backgrounds with camera noise;
//! - `v2` — the same renderer with mildly shifted nuisance ranges (framing, lighting, noise,
//!   white balance), the analogue of a re-collected test set;
//! - `sketch` — pencil outlines on paper, no colour or fill;
//! - `rendition` — cartoons, paintings, pop art and ink wash with unnatural colours;
//! - `objectnet` — unusual rotations and viewpoints, occluders, household backgrounds, dim light.
//!
//! Every image is a pure function of (suite seed, domain name, style, class list, index, size):
//! it draws from its own counter-based stream, so any image can be regenerated alone and a set
//! rendered on any number of threads is byte-identical.

pub mod objects;
pub mod paint;
pub mod raster;
pub mod styles;

use crate::data::{ImageSet, RgbImage};
use crate::rng::Stream;
use rayon::prelude::*;

/// The procedural classes, in label order.
pub const CLASS_NAMES: [&str; 10] = ["airplane", "boat", "car", "cup", "fish", "flower", "house", "key", "tree", "umbrella"];

/// Smallest supported image side: below it the thinner parts vanish.
pub const MIN_SIZE: u32 = 16;

/// How a procedural domain paints its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainStyle {
    Photo,
    V2,
    Sketch,
    Rendition,
    Objectnet,
}

impl DomainStyle {
    pub const ALL: [DomainStyle; 5] =
        [DomainStyle::Photo, DomainStyle::V2, DomainStyle::Sketch, DomainStyle::Rendition, DomainStyle::Objectnet];

    /// The name used in suites (same as the serde spelling).
    pub fn name(&self) -> &'static str {
        match self {
            DomainStyle::Photo => "photo",
            DomainStyle::V2 => "v2",
            DomainStyle::Sketch => "sketch",
            DomainStyle::Rendition => "rendition",
            DomainStyle::Objectnet => "objectnet",
        }
    }
}

/// Checks a class list and image size before rendering (the render functions panic on them).
pub fn validate(classes: &[usize], size: u32) -> anyhow::Result<()> {
    anyhow::ensure!(!classes.is_empty(), "a procedural domain needs at least one class");
    if let Some(bad) = classes.iter().find(|&&c| c >= CLASS_NAMES.len()) {
        anyhow::bail!(
            "class index {bad} is out of range: the procedural world has {} classes ({})",
            CLASS_NAMES.len(),
            CLASS_NAMES.join(", ")
        );
    }
    anyhow::ensure!(size >= MIN_SIZE, "image size {size} is too small for procedural images; use at least {MIN_SIZE}");
    Ok(())
}

/// The index in `CLASS_NAMES` of a class name, if it is one.
pub fn class_index(name: &str) -> Option<usize> {
    CLASS_NAMES.iter().position(|&c| c == name)
}

/// Image `index` of a procedural domain. The label is `index % classes.len()` (balanced classes);
/// `classes` are indices into CLASS_NAMES. Pure function of (seed, domain, style, classes, index, size).
///
/// Panics if `classes` is empty or holds an index outside `CLASS_NAMES`; check with [`validate`].
pub fn render_domain_image(seed: u64, domain: &str, style: DomainStyle, classes: &[usize], index: u64, size: u32) -> (u32, RgbImage) {
    let scene = domain_scene(seed, domain, style, classes, index, size);
    (scene.label, scene.image)
}

/// Image `index` of a procedural domain with the world's own parameters behind it: what an
/// image-conditioned generator may take from a real image (class, object geometry, pose) and
/// the image itself.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainScene {
    pub label: u32,
    /// The sampled object: class, parts and natural palette, before the domain's colour jitter.
    pub object: objects::Object,
    /// Where the domain's painter put the object.
    pub pose: paint::Pose,
    pub image: RgbImage,
}

/// [`render_domain_image`] with its [`DomainScene`]; same bytes, same panics.
pub fn domain_scene(seed: u64, domain: &str, style: DomainStyle, classes: &[usize], index: u64, size: u32) -> DomainScene {
    assert!(!classes.is_empty(), "render_domain_image needs at least one class");
    let label = (index % classes.len() as u64) as u32;
    let mut rng = Stream::new(seed, &format!("domain/{domain}"), index);
    let object = objects::sample(classes[label as usize], &mut rng);
    let (canvas, pose) = styles::paint_posed(style, &object, &mut rng, size);
    DomainScene { label, object, pose, image: canvas.to_image() }
}

/// The first `count` images of a domain, rendered in parallel with rayon (deterministic: result
/// independent of thread count), advancing `progress` by one per image.
pub fn render_domain(
    seed: u64,
    domain: &str,
    style: DomainStyle,
    classes: &[usize],
    count: usize,
    size: u32,
    progress: &indicatif::ProgressBar,
) -> ImageSet {
    let images: Vec<(u32, RgbImage)> = (0..count as u64)
        .into_par_iter()
        .map(|index| {
            let out = render_domain_image(seed, domain, style, classes, index, size);
            progress.inc(1);
            out
        })
        .collect();
    let mut set = ImageSet::with_size(size);
    set.pixels.reserve(count * set.image_bytes());
    for (label, image) in &images {
        set.push(*label, image);
    }
    set
}

/// Tiles equally sized images into a grid (`columns` wide), scaled up `zoom`× nearest-neighbour,
/// for looking at a domain by eye.
pub fn contact_sheet(images: &[RgbImage], columns: usize, zoom: u32) -> RgbImage {
    let (w, h) = images.first().map(|i| (i.width, i.height)).unwrap_or((1, 1));
    let columns = columns.max(1);
    let rows = images.len().div_ceil(columns).max(1);
    let mut sheet = RgbImage::new(w * zoom * columns as u32, h * zoom * rows as u32);
    for (i, image) in images.iter().enumerate() {
        let (ox, oy) = ((i % columns) as u32 * w * zoom, (i / columns) as u32 * h * zoom);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                sheet.put(ox + x, oy + y, image.get(x / zoom, y / zoom));
            }
        }
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CLASSES: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn mean_brightness(image: &RgbImage) -> f64 {
        image.pixels.iter().map(|&v| v as f64).sum::<f64>() / image.pixels.len() as f64
    }

    fn std_dev(image: &RgbImage) -> f64 {
        let m = mean_brightness(image);
        (image.pixels.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / image.pixels.len() as f64).sqrt()
    }

    #[test]
    fn same_key_same_bytes_and_every_key_matters() {
        for style in DomainStyle::ALL {
            let a = render_domain_image(7, "val", style, &ALL_CLASSES, 13, 32);
            let b = render_domain_image(7, "val", style, &ALL_CLASSES, 13, 32);
            assert_eq!(a, b, "{style:?} is not deterministic");
            assert_ne!(a.1, render_domain_image(7, "val", style, &ALL_CLASSES, 23, 32).1, "index ignored by {style:?}");
            assert_ne!(a.1, render_domain_image(8, "val", style, &ALL_CLASSES, 13, 32).1, "seed ignored by {style:?}");
            assert_ne!(a.1, render_domain_image(7, "train", style, &ALL_CLASSES, 13, 32).1, "domain ignored by {style:?}");
        }
    }

    #[test]
    fn every_class_and_style_renders_varied_images_at_two_sizes() {
        for size in [32, 64] {
            for style in DomainStyle::ALL {
                for (class, name) in CLASS_NAMES.iter().enumerate() {
                    let (label, image) = render_domain_image(3, "t", style, &[class], class as u64, size);
                    assert_eq!(label, 0);
                    assert_eq!((image.width, image.height, image.pixels.len()), (size, size, (size * size * 3) as usize));
                    let sd = std_dev(&image);
                    assert!(sd > 8.0, "{style:?} {name} at {size}px is nearly flat (sd {sd:.1})");
                    let distinct: std::collections::HashSet<&[u8]> = image.pixels.chunks(3).collect();
                    assert!(distinct.len() > 20, "{style:?} {name} at {size}px has {} colours", distinct.len());
                }
            }
        }
    }

    #[test]
    fn sketches_are_light_paper_with_dark_strokes() {
        for index in 0..40 {
            let (_, image) = render_domain_image(5, "sketch", DomainStyle::Sketch, &ALL_CLASSES, index, 32);
            let mean = mean_brightness(&image);
            assert!(mean > 170.0, "sketch {index} mean brightness {mean:.0}");
            let darkest = image.pixels.chunks(3).map(|p| p.iter().map(|&v| v as u32).sum::<u32>() / 3).min().unwrap_or(255);
            assert!(darkest < 140, "sketch {index} has no dark stroke (darkest {darkest})");
        }
    }

    #[test]
    fn render_domain_is_balanced_ordered_and_matches_single_renders() {
        let classes = [2, 5, 9];
        let set = render_domain(11, "val", DomainStyle::Photo, &classes, 30, 32, &indicatif::ProgressBar::hidden());
        assert_eq!(set.len(), 30);
        for label in 0..3u32 {
            assert_eq!(set.labels.iter().filter(|&&l| l == label).count(), 10);
        }
        for i in [0usize, 7, 29] {
            let (label, image) = render_domain_image(11, "val", DomainStyle::Photo, &classes, i as u64, 32);
            assert_eq!(set.labels[i], label);
            assert_eq!(set.image(i), image);
        }
    }

    #[test]
    fn result_does_not_depend_on_thread_count() {
        let render = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
            pool.install(|| render_domain(4, "rendition", DomainStyle::Rendition, &ALL_CLASSES, 40, 32, &indicatif::ProgressBar::hidden()))
        };
        let (one, three) = (render(1), render(3));
        assert_eq!(one.labels, three.labels);
        assert_eq!(one.pixels, three.pixels);
    }

    fn greyscale(set: &ImageSet, i: usize) -> Vec<f64> {
        set.image(i).pixels.chunks(3).map(|p| p.iter().map(|&v| v as f64).sum::<f64>() / 3.0).collect()
    }

    /// Central-difference gradient magnitude: an edge map, insensitive to colour and background
    /// level, so it compares silhouettes.
    fn edges(grey: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * n];
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                let dx = grey[y * n + x + 1] - grey[y * n + x - 1];
                let dy = grey[(y + 1) * n + x] - grey[(y - 1) * n + x];
                out[y * n + x] = (dx * dx + dy * dy).sqrt();
            }
        }
        out
    }

    fn standardised(v: Vec<f64>) -> Vec<f64> {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt().max(1e-6);
        v.iter().map(|g| (g - mean) / sd).collect()
    }

    /// Nearest-class-mean accuracy with the given per-image features: a crude classifier that
    /// only works if the class shapes differ consistently across poses, colours and backgrounds.
    fn nearest_mean_accuracy(train: &ImageSet, test: &ImageSet, classes: usize, features: impl Fn(&ImageSet, usize) -> Vec<f64>) -> f64 {
        let dim = features(train, 0).len();
        let mut means = vec![vec![0.0; dim]; classes];
        let mut counts = vec![0usize; classes];
        for i in 0..train.len() {
            let l = train.labels[i] as usize;
            for (m, f) in means[l].iter_mut().zip(features(train, i)) {
                *m += f;
            }
            counts[l] += 1;
        }
        for (m, &n) in means.iter_mut().zip(&counts) {
            m.iter_mut().for_each(|v| *v /= n.max(1) as f64);
        }
        let correct = (0..test.len())
            .filter(|&i| {
                let f = features(test, i);
                let dist = |m: &Vec<f64>| m.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
                let best = (0..classes).min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])));
                best == Some(test.labels[i] as usize)
            })
            .count();
        correct as f64 / test.len() as f64
    }

    #[test]
    fn classes_are_distinguishable_by_a_nearest_mean_classifier() {
        let bar = indicatif::ProgressBar::hidden();
        let train = render_domain(1, "train", DomainStyle::Photo, &ALL_CLASSES, 600, 32, &bar);
        let test = render_domain(1, "val", DomainStyle::Photo, &ALL_CLASSES, 300, 32, &bar);
        let raw = nearest_mean_accuracy(&train, &test, 10, |s, i| standardised(greyscale(s, i)));
        assert!(raw > 0.3, "nearest-class-mean accuracy on pixels {raw:.3} is too close to chance (0.1)");
        let edge = nearest_mean_accuracy(&train, &test, 10, |s, i| standardised(edges(&greyscale(s, i), 32)));
        assert!(edge > 0.45, "nearest-class-mean accuracy on edge maps {edge:.3}: class silhouettes are too alike");
    }

    #[test]
    fn validate_rejects_bad_input() {
        assert!(validate(&[0, 9], 32).is_ok());
        assert!(validate(&[], 32).is_err());
        assert!(validate(&[10], 32).is_err());
        assert!(validate(&[1], 8).is_err());
        assert_eq!(class_index("key"), Some(7));
        assert_eq!(class_index("dog"), None);
    }

    /// Writes contact sheets to /tmp for a human to look at:
    /// `cargo test --lib data::procedural::tests::write_contact_sheets -- --ignored`.
    #[test]
    #[ignore]
    fn write_contact_sheets() {
        let mut grid = Vec::new();
        let mut variety = Vec::new();
        for class in 0..CLASS_NAMES.len() {
            for style in DomainStyle::ALL {
                grid.push(render_domain_image(1, style.name(), style, &[class], 0, 32).1);
                for k in 0..3 {
                    variety.push(render_domain_image(1, style.name(), style, &[class], 1 + k, 32).1);
                }
            }
        }
        std::fs::write("/tmp/shapes_styles.png", contact_sheet(&grid, 5, 4).to_png()).expect("write sheet");
        std::fs::write("/tmp/shapes_variety.png", contact_sheet(&variety, 15, 3).to_png()).expect("write sheet");
        let big: Vec<RgbImage> =
            (0..10).flat_map(|c| DomainStyle::ALL.map(|s| render_domain_image(2, s.name(), s, &[c], 0, 64).1)).collect();
        std::fs::write("/tmp/shapes_styles_64.png", contact_sheet(&big, 5, 2).to_png()).expect("write sheet");
    }
}
