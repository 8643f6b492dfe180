//! Decoding, resizing and the eval transforms against Pillow's own outputs. The fixtures and the
//! script that makes them are in fixtures/preprocess/ (README.md there has the versions).

use proptest::prelude::*;
use serde::Deserialize;
use shiftbench::data::image::{decode_rgb, open_rgb, resize, resize_in_order, DecodeError, Filter, PassOrder, Preprocess};
use shiftbench::data::RgbImage;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/preprocess")
}

#[derive(Deserialize)]
struct Manifest {
    raw_anchor: RawAnchor,
    decode: Vec<Decoded>,
    jpeg: Vec<Jpeg>,
    resize: Vec<Resized>,
    resize_pillow12: Pillow12,
    transform: Vec<Transformed>,
    normalize: Normalized,
}

#[derive(Deserialize)]
struct RawAnchor {
    png: String,
    raw: String,
}

#[derive(Deserialize)]
struct Decoded {
    file: String,
    pillow_mode: String,
    expected: String,
}

#[derive(Deserialize)]
struct Jpeg {
    file: String,
    kind: String,
    expected: String,
}

#[derive(Deserialize)]
struct Resized {
    source: String,
    filter: String,
    width: u32,
    height: u32,
    expected: String,
}

#[derive(Deserialize)]
struct Pillow12 {
    pillow: String,
    cases: Vec<Resized>,
}

#[derive(Deserialize)]
struct Transformed {
    source: String,
    spec: String,
    expected: String,
}

#[derive(Deserialize)]
struct Normalized {
    mean: [f64; 3],
    std: [f64; 3],
    expected: String,
}

fn manifest() -> Manifest {
    let path = dir().join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(rel: &str) -> RgbImage {
    open_rgb(&dir().join(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// The first differing pixel, for messages.
fn first_difference(a: &RgbImage, b: &RgbImage) -> String {
    if (a.width, a.height) != (b.width, b.height) {
        return format!("size {}×{} vs {}×{}", a.width, a.height, b.width, b.height);
    }
    let i = a.pixels.iter().zip(&b.pixels).position(|(x, y)| x != y).unwrap_or(0) / 3;
    let (x, y) = (i as u32 % a.width, i as u32 / a.width);
    format!("first at ({x}, {y}): ours {:?}, Pillow {:?}", a.get(x, y), b.get(x, y))
}

#[test]
fn the_expected_pngs_read_as_pillows_raw_bytes() {
    let m = manifest();
    let raw = std::fs::read(dir().join(&m.raw_anchor.raw)).unwrap();
    assert_eq!(load(&m.raw_anchor.png).pixels, raw);
}

#[test]
fn png_decoding_is_bit_identical_to_pillow_for_every_colour_type_and_depth() {
    let m = manifest();
    let mut failures = Vec::new();
    for case in &m.decode {
        let (ours, theirs) = (load(&case.file), load(&case.expected));
        if ours != theirs {
            failures.push(format!("{} (Pillow mode {}): {}", case.file, case.pillow_mode, first_difference(&ours, &theirs)));
        }
    }
    // Every layout Pillow distinguishes is among the fixtures.
    let modes: std::collections::BTreeSet<_> = m.decode.iter().map(|c| c.pillow_mode.as_str()).collect();
    assert!(["1", "L", "LA", "P", "RGB", "RGBA", "I;16"].iter().all(|x| modes.contains(x)), "{modes:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The largest difference from Pillow (libjpeg-turbo) in 8-bit levels per layout, and the mean
/// over all samples of the worst file, as measured (src/data/image/decode.rs has the survey).
fn jpeg_bound(kind: &str) -> (u8, f64) {
    match kind {
        "444" => (3, 0.019),
        "422" => (3, 0.198),
        "420" => (4, 0.42),
        "440" => (4, 0.191),
        "411" => (3, 0.059),
        "gray" => (1, 0.033),
        "rgb" => (1, 0.0095),
        "cmyk" => (2, 0.013),
        other => panic!("no measured bound for JPEG layout {other}"),
    }
}

#[test]
fn jpeg_decoding_stays_within_the_measured_difference_from_pillow() {
    let m = manifest();
    let mut failures = Vec::new();
    for case in &m.jpeg {
        let (ours, theirs) = (load(&case.file), load(&case.expected));
        assert_eq!((ours.width, ours.height), (theirs.width, theirs.height), "{}", case.file);
        let diffs: Vec<u8> = ours.pixels.iter().zip(&theirs.pixels).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let (max_bound, mean_bound) = jpeg_bound(&case.kind);
        eprintln!("{:24} max {max} mean {mean:.4}", case.file);
        if max > max_bound || mean > mean_bound {
            failures.push(format!("{}: max {max} (bound {max_bound}), mean {mean:.4} (bound {mean_bound})", case.file));
        }
    }
    assert!(m.jpeg.len() >= 24, "the JPEG fixtures are missing layouts");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resizing_is_bit_identical_to_pillow_for_every_filter() {
    let m = manifest();
    let mut failures = Vec::new();
    for case in &m.resize {
        let filter = Filter::from_name(&case.filter).unwrap();
        let ours = resize(&load(&case.source), case.width, case.height, filter);
        let theirs = load(&case.expected);
        if ours != theirs {
            failures.push(format!("{} {} to {}×{}: {}", case.source, case.filter, case.width, case.height, first_difference(&ours, &theirs)));
        }
    }
    let filters: std::collections::BTreeSet<_> = m.resize.iter().map(|c| c.filter.as_str()).collect();
    assert_eq!(filters.len(), Filter::ALL.len());
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), m.resize.len(), failures.join("\n"));
}

#[test]
fn resizing_in_the_older_pass_order_is_bit_identical_to_pillow_12() {
    let m = manifest();
    assert!(m.resize_pillow12.pillow.starts_with("12."), "{}", m.resize_pillow12.pillow);
    let mut failures = Vec::new();
    let mut differs_from_13 = 0;
    for case in &m.resize_pillow12.cases {
        let filter = Filter::from_name(&case.filter).unwrap();
        let ours = resize_in_order(&load(&case.source), case.width, case.height, filter, PassOrder::HorizontalFirst);
        let theirs = load(&case.expected);
        differs_from_13 += case.expected.contains("pillow12_") as usize;
        if ours != theirs {
            failures.push(format!("{} {} to {}×{}: {}", case.source, case.filter, case.width, case.height, first_difference(&ours, &theirs)));
        }
    }
    // The fixtures include cases where the two versions disagree, or this would test nothing new.
    assert!(differs_from_13 >= 10, "only {differs_from_13} cases tell Pillow 12 from 13");
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), m.resize_pillow12.cases.len(), failures.join("\n"));
}

#[test]
fn eval_transforms_crop_the_same_pixels_as_torchvision_on_pil() {
    let m = manifest();
    for case in &m.transform {
        let p = Preprocess::parse(&case.spec).unwrap();
        let ours = p.crop_u8(&load(&case.source)).unwrap();
        let theirs = load(&case.expected);
        assert!(ours == theirs, "{} with {}: {}", case.source, case.spec, first_difference(&ours, &theirs));
    }
}

#[test]
fn normalisation_is_bit_identical_to_torch_float32_for_every_level() {
    let m = manifest();
    let bytes = std::fs::read(dir().join(&m.normalize.expected)).unwrap();
    let expected: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let mut img = RgbImage::new(256, 1);
    for v in 0..=255u8 {
        img.put(v as u32, 0, [v, v, v]);
    }
    let ours = shiftbench::data::image::normalize(&img, m.normalize.mean, m.normalize.std);
    for c in 0..3 {
        for v in 0..256 {
            let (a, b) = (ours.data[v * 3 + c], expected[c * 256 + v]);
            assert_eq!(a.to_bits(), b.to_bits(), "channel {c} level {v}: ours {a}, numpy float32 {b}");
        }
    }
}

fn fixture_files(sub: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir().join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn truncated_files_are_errors_that_name_the_file() {
    for (path, bytes) in fixture_files("jpeg").into_iter().chain(fixture_files("png")) {
        // Cut inside the image data, and (JPEG) just the end-of-image marker.
        let cuts = [bytes.len() / 2, bytes.len() - 2];
        for cut in cuts {
            let is_png = path.extension().unwrap() == "png";
            if is_png && cut == bytes.len() - 2 {
                continue; // a PNG cut inside IEND still holds all its pixels (Pillow reads it too)
            }
            match decode_rgb(&bytes[..cut], &path) {
                Ok(_) => panic!("{} cut to {cut} of {} bytes decoded", path.display(), bytes.len()),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
                    if !is_png && cut == bytes.len() - 2 {
                        assert!(matches!(e, DecodeError::TruncatedJpeg { .. }), "{}: {msg}", path.display());
                    }
                }
            }
        }
    }
}

fn valid_files() -> &'static [Vec<u8>] {
    static FILES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| fixture_files("jpeg").into_iter().chain(fixture_files("png")).map(|(_, b)| b).filter(|b| b.len() < 20_000).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No bytes make the decoders panic: random data behind each magic number, and valid files
    /// with bytes changed or cut.
    #[test]
    fn no_input_bytes_panic(
        magic in prop::sample::select(vec![&b"\x89PNG\r\n\x1a\n"[..], &b"\xff\xd8\xff"[..], &b""[..]]),
        tail in prop::collection::vec(any::<u8>(), 0..600),
        file in 0usize..1000,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut random = magic.to_vec();
        random.extend(&tail);
        let _ = decode_rgb(&random, Path::new("random"));
        let files = valid_files();
        let mut bytes = files[file % files.len()].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode_rgb(&bytes, Path::new("edited"));
        let n = cut.index(bytes.len());
        let _ = decode_rgb(&bytes[..n], Path::new("cut"));
    }
}
