//! Painting helpers shared by every style: placing an object on the canvas, filling its parts,
//! tracing its outlines, and a few whole-image effects. They carry no style decisions (no
//! parameter ranges); the shift domains and the generator each bring their own.

use super::objects::Part;
use super::raster::{mix, stroke_contours, Affine, Canvas, Noise, Pt, Rgb};
use crate::rng::Stream;

/// Where and how an object sits in the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// Object origin in pixels.
    pub centre: Pt,
    /// Pixels per object unit (the object spans [-1, 1], so this is its half-extent).
    pub scale: f32,
    /// Radians, clockwise on screen (y points down).
    pub rotation: f32,
    /// Width-to-height stretch (1 = undistorted); a cheap stand-in for a change of viewpoint.
    pub aspect: f32,
    /// Horizontal shear applied before rotation.
    pub shear: f32,
    /// Mirror left-right (objects face right by default).
    pub mirror: bool,
}

impl Pose {
    /// An upright, undistorted pose.
    pub fn upright(centre: Pt, scale: f32) -> Self {
        Self { centre, scale, rotation: 0.0, aspect: 1.0, shear: 0.0, mirror: false }
    }

    /// Object-to-pixel transform: stretch, shear, rotate, then place.
    pub fn affine(&self) -> Affine {
        let stretch = self.aspect.max(1e-3).sqrt();
        let flip = if self.mirror { -1.0 } else { 1.0 };
        let local = Affine::shear(self.shear).then_after(&Affine::scale(self.scale * stretch * flip, self.scale / stretch));
        Affine::translate(self.centre.x, self.centre.y).then_after(&Affine::rotate(self.rotation).then_after(&local))
    }
}

/// Multiplier that keeps pixel-specified widths (given for a 32 px image) proportional at other
/// sizes.
pub fn px_unit(size: u32) -> f32 {
    size as f32 / 32.0
}

/// Fills one part with a per-pixel paint function.
pub fn fill_part(canvas: &mut Canvas, part: &Part, xf: &Affine, min_stroke_px: f32, paint: impl Fn(f32, f32) -> (Rgb, f32)) {
    let contours = part.shape.contours(xf, min_stroke_px);
    canvas.fill(&contours, paint);
}

/// A part's outline in pixel space, resampled so consecutive points are about `spacing` apart.
pub fn outline_px(part: &Part, xf: &Affine, spacing: f32) -> (Vec<Pt>, bool) {
    let (points, closed) = part.shape.outline();
    let px: Vec<Pt> = points.into_iter().map(|p| xf.apply(p)).collect();
    (resample(&px, closed, spacing), closed)
}

/// Inserts points along a polyline so no segment is longer than `spacing` (keeps originals).
pub fn resample(points: &[Pt], closed: bool, spacing: f32) -> Vec<Pt> {
    let mut out = Vec::with_capacity(points.len() * 2);
    let n = points.len();
    let segments = if closed { n } else { n.saturating_sub(1) };
    for i in 0..segments {
        let (p, q) = (points[i], points[(i + 1) % n]);
        let steps = (p.dist(q) / spacing.max(0.1)).ceil().max(1.0) as usize;
        for k in 0..steps {
            out.push(p.lerp(q, k as f32 / steps as f32));
        }
    }
    if !closed {
        if let Some(&last) = points.last() {
            out.push(last);
        }
    }
    out
}

/// Draws a polyline of `width` pixels.
pub fn draw_polyline(canvas: &mut Canvas, points: &[Pt], closed: bool, width: f32, colour: Rgb, alpha: f32) {
    let mut pts = points.to_vec();
    if closed && !pts.is_empty() {
        pts.push(pts[0]);
    }
    canvas.fill_flat(&stroke_contours(&pts, width), colour, alpha);
}

/// Adds zero-mean per-pixel, per-channel noise of roughly standard deviation `sigma`.
pub fn add_grain(canvas: &mut Canvas, seed: u64, sigma: f32, monochrome: bool) {
    let noise = Noise::new(seed);
    // The sum of two uniforms is triangular with variance 1/6 per unit; scale to `sigma`.
    let k = sigma * 6.0f32.sqrt();
    canvas.map(|c, x, y| {
        let (ix, iy) = (x as i32, y as i32);
        let mut out = c;
        for (ch, v) in out.iter_mut().enumerate() {
            let lane = if monochrome { 0 } else { ch as i32 * 7919 };
            let n = noise.white(ix + lane, iy) + noise.white(ix - lane, iy + 104_729) - 1.0;
            *v += n * k;
        }
        out
    });
}

/// Multiplies the image by a linear light ramp across direction `angle` (strength = ± at edges).
pub fn light_ramp(canvas: &mut Canvas, angle: f32, strength: f32) {
    let (s, c) = angle.sin_cos();
    let (w, h) = (canvas.width as f32, canvas.height as f32);
    canvas.map(|p, x, y| {
        let t = ((x / w - 0.5) * c + (y / h - 0.5) * s) * 2.0;
        let k = 1.0 + strength * t;
        [p[0] * k, p[1] * k, p[2] * k]
    });
}

/// Per-channel gains (white balance / colour cast) and an overall exposure.
pub fn expose(canvas: &mut Canvas, gains: Rgb, exposure: f32) {
    canvas.map(|p, _, _| [p[0] * gains[0] * exposure, p[1] * gains[1] * exposure, p[2] * gains[2] * exposure]);
}

/// A smooth two-colour field: `fbm` noise at `freq` cycles per image blends `a` into `b`.
pub fn noise_field(canvas: &mut Canvas, seed: u64, a: Rgb, b: Rgb, freq: f32, octaves: u32) {
    let noise = Noise::new(seed);
    let k = freq / canvas.width as f32;
    canvas.shade(|x, y| mix(a, b, noise.fbm(x * k, y * k, octaves)));
}

/// Uniform draw in `[lo, hi)` as f32.
pub fn uf(rng: &mut Stream, lo: f32, hi: f32) -> f32 {
    rng.uniform(lo as f64, hi as f64) as f32
}

/// Symmetric uniform draw in `[-r, r)`.
pub fn sym(rng: &mut Stream, r: f32) -> f32 {
    uf(rng, -r, r)
}
