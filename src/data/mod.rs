//! Labelled image sets and the pixel type every stage shares.

pub mod image;
pub mod imageset;
pub mod procedural;

use anyhow::{Context, Result};
use std::path::Path;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height, pixels: vec![0; (width * height * 3) as usize] }
    }

    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    pub fn put(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = ((y * self.width + x) * 3) as usize;
        self.pixels[i..i + 3].copy_from_slice(&rgb);
    }

    /// Losslessly encoded PNG bytes. Encoding settings are fixed so the bytes are reproducible.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Balanced);
            let mut writer = enc.write_header().expect("PNG header for an in-memory buffer");
            writer.write_image_data(&self.pixels).expect("PNG data for an in-memory buffer");
        }
        out
    }

    /// Decodes an 8-bit RGB or RGBA PNG (alpha is dropped).
    pub fn from_png(bytes: &[u8], what: &Path) -> Result<Self> {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder
            .read_info()
            .with_context(|| format!("{} is not a readable PNG file; delete it and re-run to regenerate it", what.display()))?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .with_context(|| format!("{} is a truncated or corrupt PNG; delete it and re-run", what.display()))?;
        let channels = match (info.color_type, info.bit_depth) {
            (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
            (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
            other => anyhow::bail!("{} is a PNG of type {:?}; shiftbench reads 8-bit RGB or RGBA", what.display(), other),
        };
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(Self { width: info.width, height: info.height, pixels })
    }
}

/// A labelled image set read one image at a time, so that a stage never needs the whole set in
/// memory: evaluation asks for the images of one batch, in index order.
pub trait ImageSource: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class index of image `i`.
    fn label(&self, i: usize) -> u32;
    /// Image `i`, decoded, as a `size × size` RGB image.
    fn image(&self, i: usize, size: u32) -> Result<RgbImage>;
}

/// A labelled set of equally sized images held in memory (`N × H × W × 3` bytes).
#[derive(Clone, Debug, Default)]
pub struct ImageSet {
    pub size: u32,
    pub labels: Vec<u32>,
    pub pixels: Vec<u8>,
}

impl ImageSet {
    pub fn with_size(size: u32) -> Self {
        Self { size, labels: Vec::new(), pixels: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_bytes(&self) -> usize {
        (self.size * self.size * 3) as usize
    }

    pub fn push(&mut self, label: u32, image: &RgbImage) {
        assert_eq!((image.width, image.height), (self.size, self.size), "image size must match the set");
        self.labels.push(label);
        self.pixels.extend_from_slice(&image.pixels);
    }

    pub fn image(&self, i: usize) -> RgbImage {
        let n = self.image_bytes();
        RgbImage { width: self.size, height: self.size, pixels: self.pixels[i * n..(i + 1) * n].to_vec() }
    }

    /// The concatenation of several sets (the paper's real+generated mixing).
    pub fn concat(sets: &[&ImageSet]) -> Self {
        let size = sets.first().map(|s| s.size).unwrap_or(0);
        let mut out = Self::with_size(size);
        for s in sets {
            assert_eq!(s.size, size, "concatenated sets must share an image size");
            out.labels.extend_from_slice(&s.labels);
            out.pixels.extend_from_slice(&s.pixels);
        }
        out
    }

    /// The first `n` images (a smaller training set for a testbed member).
    pub fn truncated(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self { size: self.size, labels: self.labels[..n].to_vec(), pixels: self.pixels[..n * self.image_bytes()].to_vec() }
    }
}

/// The procedural domains and generated sets: rendered at the suite's image size, kept in memory.
impl ImageSource for ImageSet {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }

    fn image(&self, i: usize, size: u32) -> Result<RgbImage> {
        anyhow::ensure!(i < self.len(), "image {i} of a set of {}", self.len());
        // Sets are rendered at the suite's image size, the size its classifiers take; another
        // size means a classifier from another suite, which the caller must not pair with it.
        anyhow::ensure!(size == self.size, "this set holds {}x{} images; a classifier for {size}x{size} images cannot read it", self.size, self.size);
        Ok(ImageSet::image(self, i))
    }
}
