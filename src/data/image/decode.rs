//! Files to 8-bit RGB as `PIL.Image.open(path).convert("RGB")` makes them.
//!
//! The format is found from the first bytes, as Pillow does, never from the file name.
//!
//! **PNG** (bit-identical to Pillow for every colour type and depth; fixtures cover each):
//! - alpha, and `tRNS` transparency of any kind, is dropped, not composited (`convert("RGB")`
//!   keeps the colour of a fully transparent pixel);
//! - gray is replicated to the three channels; 1-, 2- and 4-bit gray is scaled to 0..=255
//!   (×255, ×85, ×17);
//! - palette indices are looked up (an index past the end of `PLTE` is black, as in Pillow);
//! - 16-bit RGB, RGBA and gray+alpha keep the high byte of each sample, but 16-bit gray opens in
//!   Pillow as mode `I;16`, whose conversion to RGB *clips* at 255 (a sample of 1000 becomes
//!   255, not 3);
//! - gamma, ICC profiles and `sBIT` are ignored, as Pillow ignores them.
//!
//! **JPEG** goes through `zune-jpeg`, which is not bit-identical to the libjpeg-turbo inside
//! Pillow: its IDCT is an integer IDCT with 12-bit constants (libjpeg's `JDCT_ISLOW` uses 13),
//! its YCbCr conversion rounds differently, and for 4:2:0 it upsamples chroma vertically then
//! horizontally with a rounding in between, where libjpeg's "fancy" upsampling rounds once.
//! Differences measured against Pillow 13.0.0 (libjpeg-turbo 3.2.0) on 133 files (three photos,
//! four synthetic images from 1×1 to 301×227, each saved by Pillow and by cjpeg in every layout
//! below, and Pillow's own test JPEGs) and on the 36 fixture JPEGs, in 8-bit levels over all
//! channels (the mean is over all samples of the worst file, rounded up):
//!
//! | layout | max | mean (worst file) |
//! | --- | --- | --- |
//! | 4:4:4, baseline or progressive | 3 | 0.019 |
//! | 4:2:2 | 3 | 0.198 |
//! | 4:2:0 (also progressive, restart intervals) | 4 | 0.42 |
//! | 4:4:0 | 4 | 0.191 |
//! | 4:1:1 | 3 | 0.059 |
//! | grayscale | 1 | 0.033 |
//! | RGB (no colour transform) | 1 | 0.0095 |
//! | CMYK (Adobe) | 2 | 0.013 |
//!
//! Between 14 and 30 % of the samples of a 4:2:0 image differ at all (1 to 4 % of a 4:4:4 or gray
//! one); a 1×1 image decodes identically.
//!
//! `jpeg-decoder` was measured too: closer on 4:2:0 (mean ≤ 0.11, max 3), farther on every
//! other layout (4:4:4 mean ≤ 0.077, gray ≤ 0.033, 4:2:2 ≤ 0.24), and 1.6× slower on a 4:2:0
//! photo; it is also no longer where the Rust image ecosystem's work goes. `tests/preprocess.rs`
//! asserts these bounds on the committed fixtures, so a decoder update that drifts fails.
//!
//! CMYK (Pillow always assumes Adobe's inverted polarity) becomes RGB as Pillow's `cmyk2rgb`:
//! `R = (255 − C)(255 − K) / 255` rounded, on the inverted samples; zune-jpeg's conversion is the
//! same formula. YCCK is converted to CMYK first, as libjpeg does.
//!
//! A truncated JPEG is an error, as in Pillow (which raises "image file is truncated" unless
//! `LOAD_TRUNCATED_IMAGES` is set), even when only the end-of-image marker is missing; a file with
//! junk between segments, which Pillow reads, is read.
//!
//! EXIF orientation is **not** applied: `Image.open` does not apply it, so neither do
//! torchvision's `ImageFolder` nor the published evaluations; a rotated phone photo stays as
//! stored.

use crate::data::RgbImage;
use std::path::{Path, PathBuf};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Pillow refuses images over twice `Image.MAX_IMAGE_PIXELS` (its decompression-bomb guard);
/// the same limit keeps a forged header from asking for gigabytes.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// Why a file could not be decoded. Each message names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is neither a PNG nor a JPEG file (it starts with {magic:02x?}); shiftbench reads PNG and JPEG images only: convert the file or remove it from the image folder", path.display())]
    UnknownFormat { path: PathBuf, magic: Vec<u8> },
    #[error("{} is a corrupt PNG file ({message}); download it again or remove it from the image folder", path.display())]
    Png { path: PathBuf, message: String },
    #[error("{} is a truncated JPEG file (its data ends before the end-of-image marker); download it again or remove it from the image folder", path.display())]
    TruncatedJpeg { path: PathBuf },
    #[error("{} is a corrupt or unsupported JPEG file ({message}); download it again, re-encode it, or remove it from the image folder", path.display())]
    Jpeg { path: PathBuf, message: String },
    #[error("{} is {width}×{height} pixels, over the {MAX_PIXELS}-pixel limit Pillow also enforces; it is most likely corrupt: remove it from the image folder", path.display())]
    TooLarge { path: PathBuf, width: u64, height: u64 },
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = b"\xff\xd8\xff";

/// Reads and decodes the image file at `path`.
pub fn open_rgb(path: &Path) -> Result<RgbImage, DecodeError> {
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Read { path: path.to_owned(), source })?;
    decode_rgb(&bytes, path)
}

/// Decodes a PNG or JPEG file's bytes; `path` only names the file in errors.
/// Never panics, whatever the bytes.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, DecodeError> {
    if bytes.starts_with(PNG_MAGIC) {
        decode_png(bytes, path)
    } else if bytes.starts_with(JPEG_MAGIC) {
        decode_jpeg(bytes, path)
    } else {
        Err(DecodeError::UnknownFormat { path: path.to_owned(), magic: bytes[..bytes.len().min(8)].to_vec() })
    }
}

fn check_size(width: u64, height: u64, path: &Path) -> Result<(), DecodeError> {
    if width * height > MAX_PIXELS {
        return Err(DecodeError::TooLarge { path: path.to_owned(), width, height });
    }
    Ok(())
}

/// Runs a third-party decoder so that a bug in it that panics on hostile bytes becomes an error
/// for that file instead of ending the evaluation.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err("the decoder panicked".to_owned()))
}

fn decode_png(bytes: &[u8], path: &Path) -> Result<RgbImage, DecodeError> {
    let err = |message: String| DecodeError::Png { path: path.to_owned(), message };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // Raw samples: the conversions below are Pillow's, not the png crate's.
    decoder.set_transformations(png::Transformations::IDENTITY);
    // The crate's default allocation limit (64 MiB) refuses large photos: allow the largest image
    // `MAX_PIXELS` lets through (16-bit RGBA) plus room for metadata chunks.
    decoder.set_limits(png::Limits { bytes: (MAX_PIXELS * 8 + (64 << 20)) as usize });
    let mut reader = decoder.read_info().map_err(|e| err(e.to_string()))?;
    let (width, height) = (reader.info().width, reader.info().height);
    check_size(width as u64, height as u64, path)?;
    let palette = reader.info().palette.as_ref().map(|p| p.to_vec()).unwrap_or_default();
    let size = reader.output_buffer_size().ok_or_else(|| err("image too large for memory".into()))?;
    let mut buf = vec![0; size];
    let frame = guarded(|| reader.next_frame(&mut buf).map_err(|e| e.to_string())).map_err(err)?;
    let pixels = png_to_rgb(&buf, frame.line_size, width as usize, height as usize, frame.color_type, frame.bit_depth, &palette)
        .ok_or_else(|| err(format!("unsupported colour type {:?} at depth {:?}", frame.color_type, frame.bit_depth)))?;
    Ok(RgbImage { width, height, pixels })
}

/// Pillow's conversion of raw PNG rows (`line` bytes each) to RGB.
fn png_to_rgb(buf: &[u8], line: usize, width: usize, height: usize, color: png::ColorType, depth: png::BitDepth, palette: &[u8]) -> Option<Vec<u8>> {
    use png::{BitDepth as D, ColorType as C};
    let mut out = Vec::with_capacity(width * height * 3);
    let bits = depth as usize;
    for row in buf.chunks_exact(line).take(height) {
        match (color, depth) {
            (C::Rgb, D::Eight) => out.extend_from_slice(&row[..width * 3]),
            (C::Rgba, D::Eight) => row.chunks_exact(4).take(width).for_each(|p| out.extend_from_slice(&p[..3])),
            // High bytes of big-endian samples.
            (C::Rgb, D::Sixteen) => row.chunks_exact(6).take(width).for_each(|p| out.extend_from_slice(&[p[0], p[2], p[4]])),
            (C::Rgba, D::Sixteen) => row.chunks_exact(8).take(width).for_each(|p| out.extend_from_slice(&[p[0], p[2], p[4]])),
            (C::GrayscaleAlpha, D::Eight) => row.chunks_exact(2).take(width).for_each(|p| out.extend_from_slice(&[p[0]; 3])),
            (C::GrayscaleAlpha, D::Sixteen) => row.chunks_exact(4).take(width).for_each(|p| out.extend_from_slice(&[p[0]; 3])),
            (C::Grayscale, D::Sixteen) => row.chunks_exact(2).take(width).for_each(|p| {
                let v = u16::from_be_bytes([p[0], p[1]]).min(255) as u8;
                out.extend_from_slice(&[v; 3]);
            }),
            (C::Grayscale, _) => {
                let scale = 255 / ((1u16 << bits) - 1) as u8;
                unpack(row, bits, width).for_each(|v| out.extend_from_slice(&[v * scale; 3]));
            }
            (C::Indexed, D::Sixteen) => return None,
            (C::Indexed, _) => unpack(row, bits, width).for_each(|i| {
                let i = i as usize * 3;
                out.extend_from_slice(palette.get(i..i + 3).unwrap_or(&[0, 0, 0]));
            }),
            _ => return None,
        }
    }
    (out.len() == width * height * 3).then_some(out)
}

/// The `width` samples of `bits` bits each (1, 2, 4 or 8) packed most significant first.
fn unpack(row: &[u8], bits: usize, width: usize) -> impl Iterator<Item = u8> + '_ {
    let per_byte = 8 / bits;
    let mask = ((1u16 << bits) - 1) as u8;
    (0..width).map(move |i| {
        let byte = row[i / per_byte];
        let shift = 8 - bits * (i % per_byte + 1);
        (byte >> shift) & mask
    })
}

fn jpeg_options(strict: bool) -> DecoderOptions {
    DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        // JPEG's own limit; `MAX_PIXELS` bounds the area.
        .set_max_width(65535)
        .set_max_height(65535)
        .set_strict_mode(strict)
}

fn jpeg_decode(bytes: &[u8], strict: bool) -> Result<Vec<u8>, zune_jpeg::errors::DecodeErrors> {
    zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), jpeg_options(strict)).decode()
}

/// Whether an end-of-image marker follows the first start-of-scan. Entropy-coded data cannot hold
/// `FF D9` (a data byte `FF` is stuffed as `FF 00`), so this tells a complete file from one cut
/// short; Pillow refuses the latter even when only the marker is missing.
fn has_end_after_scan(bytes: &[u8]) -> bool {
    let sos = bytes.windows(2).position(|w| w == [0xff, 0xda]);
    sos.is_some_and(|s| bytes[s..].windows(2).any(|w| w == [0xff, 0xd9]))
}

fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<RgbImage, DecodeError> {
    let err = |message: String| DecodeError::Jpeg { path: path.to_owned(), message };
    let (width, height) = guarded(|| {
        let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), jpeg_options(false));
        d.decode_headers().map_err(|e| e.to_string())?;
        d.dimensions().ok_or_else(|| "no frame header".to_owned())
    })
    .map_err(err)?;
    check_size(width as u64, height as u64, path)?;
    if !has_end_after_scan(bytes) {
        return Err(DecodeError::TruncatedJpeg { path: path.to_owned() });
    }
    // Strict mode tells truncated scan data (an error in Pillow) from recoverable oddities such as
    // junk bytes between segments or a bad code after the last needed block (which Pillow reads,
    // and which the lenient mode reads too).
    let pixels = guarded(|| match jpeg_decode(bytes, true) {
        Ok(p) => Ok(Ok(p)),
        Err(zune_jpeg::errors::DecodeErrors::ExhaustedData) => Ok(Err(())),
        Err(_) => jpeg_decode(bytes, false).map(Ok).map_err(|e| e.to_string()),
    })
    .map_err(err)?
    .map_err(|()| DecodeError::TruncatedJpeg { path: path.to_owned() })?;
    if pixels.len() != width * height * 3 {
        return Err(err(format!("decoded {} bytes for a {width}×{height} image", pixels.len())));
    }
    Ok(RgbImage { width: width as u32, height: height as u32, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_reads_most_significant_bits_first() {
        assert_eq!(unpack(&[0b1011_0001], 1, 8).collect::<Vec<_>>(), [1, 0, 1, 1, 0, 0, 0, 1]);
        assert_eq!(unpack(&[0b1101_0010, 0b1100_0000], 2, 5).collect::<Vec<_>>(), [3, 1, 0, 2, 3]);
        assert_eq!(unpack(&[0xa5], 4, 2).collect::<Vec<_>>(), [0xa, 0x5]);
    }

    #[test]
    fn unknown_bytes_name_the_file_and_the_formats_read() {
        let e = decode_rgb(b"GIF89a....", Path::new("x/cat.gif")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("x/cat.gif") && msg.contains("PNG and JPEG"), "{msg}");
        assert!(matches!(decode_rgb(b"", Path::new("empty")), Err(DecodeError::UnknownFormat { .. })));
    }

    #[test]
    fn a_jpeg_without_end_marker_is_truncated() {
        assert!(has_end_after_scan(&[0xff, 0xd8, 0xff, 0xda, 1, 2, 0xff, 0x00, 0xff, 0xd9]));
        assert!(!has_end_after_scan(&[0xff, 0xd8, 0xff, 0xd9, 0xff, 0xda, 1, 2, 0xff]));
    }
}

#[cfg(test)]
mod cpu_independence {
    use super::*;

    /// zune-jpeg picks its AVX2 IDCT, upsampling and colour conversion at run time; the bytes of
    /// a decoded image must not depend on whether the CPU has them. On a CPU with AVX2 this
    /// compares the two paths on every committed JPEG (all chroma layouts, progressive, restart
    /// markers); without AVX2 both sides take the portable path. Measured: identical on all 38.
    #[test]
    fn the_simd_and_portable_jpeg_paths_decode_every_fixture_to_the_same_bytes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["fixtures/preprocess/jpeg", "fixtures/predict/jpeg"] {
            files.extend(std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()));
        }
        assert!(files.len() >= 30, "the JPEG fixtures are missing");
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let decode = |options: DecoderOptions| zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&bytes[..]), options).decode().unwrap();
            let simd = decode(jpeg_options(false));
            let portable = decode(jpeg_options(false).set_use_unsafe(false));
            assert!(simd == portable, "{}: the AVX2 and portable decodes differ", path.display());
        }
    }
}
