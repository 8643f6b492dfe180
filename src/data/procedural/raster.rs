//! A small anti-aliased rasteriser working on a floating-point RGB canvas.
//!
//! Shapes are filled as sets of contours under the non-zero winding rule. Coverage is exact
//! along each scanline (fractional span ends) and sampled on four sub-scanlines per pixel row,
//! which is plenty for 16–128 px images and costs O(edges + pixels) per sub-scanline. Strokes are
//! turned into contours (one quad per segment plus a disc per vertex), so a thick polyline with
//! round joins is filled in one pass without double-counting its overlaps.
//!
//! Colours are `[f32; 3]` in 0..1; nothing is clamped until the canvas is quantised to bytes.

use crate::data::RgbImage;

pub type Rgb = [f32; 3];

/// Sub-scanlines per pixel row.
const SUBROWS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pt {
    pub x: f32,
    pub y: f32,
}

pub const fn pt(x: f32, y: f32) -> Pt {
    Pt { x, y }
}

impl Pt {
    pub fn lerp(self, other: Pt, t: f32) -> Pt {
        pt(self.x + (other.x - self.x) * t, self.y + (other.y - self.y) * t)
    }

    pub fn dist(self, other: Pt) -> f32 {
        let (dx, dy) = (other.x - self.x, other.y - self.y);
        (dx * dx + dy * dy).sqrt()
    }
}

/// A 2-D affine map `p ↦ M p + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Affine {
    pub const IDENTITY: Affine = Affine { a: 1.0, b: 0.0, c: 0.0, d: 1.0, tx: 0.0, ty: 0.0 };

    pub fn translate(tx: f32, ty: f32) -> Affine {
        Affine { tx, ty, ..Self::IDENTITY }
    }

    pub fn scale(sx: f32, sy: f32) -> Affine {
        Affine { a: sx, d: sy, ..Self::IDENTITY }
    }

    pub fn rotate(angle: f32) -> Affine {
        let (s, c) = angle.sin_cos();
        Affine { a: c, b: -s, c: s, d: c, ..Self::IDENTITY }
    }

    /// Horizontal shear: x gains `k * y`.
    pub fn shear(k: f32) -> Affine {
        Affine { b: k, ..Self::IDENTITY }
    }

    /// `self ∘ inner`: apply `inner` first, then `self`.
    pub fn then_after(&self, inner: &Affine) -> Affine {
        Affine {
            a: self.a * inner.a + self.b * inner.c,
            b: self.a * inner.b + self.b * inner.d,
            c: self.c * inner.a + self.d * inner.c,
            d: self.c * inner.b + self.d * inner.d,
            tx: self.a * inner.tx + self.b * inner.ty + self.tx,
            ty: self.c * inner.tx + self.d * inner.ty + self.ty,
        }
    }

    pub fn apply(&self, p: Pt) -> Pt {
        pt(self.a * p.x + self.b * p.y + self.tx, self.c * p.x + self.d * p.y + self.ty)
    }

    /// Geometric-mean scale factor: how much lengths grow on average (used for stroke widths).
    pub fn mean_scale(&self) -> f32 {
        (self.a * self.d - self.b * self.c).abs().sqrt()
    }
}

/// Points on an elliptical arc, `n + 1` of them from `a0` to `a1` (radians).
pub fn arc(centre: Pt, rx: f32, ry: f32, rotation: f32, a0: f32, a1: f32, n: usize) -> Vec<Pt> {
    let (rs, rc) = rotation.sin_cos();
    (0..=n)
        .map(|i| {
            let t = a0 + (a1 - a0) * i as f32 / n as f32;
            let (s, c) = t.sin_cos();
            let (x, y) = (rx * c, ry * s);
            pt(centre.x + x * rc - y * rs, centre.y + x * rs + y * rc)
        })
        .collect()
}

/// A closed polygon approximating an ellipse (last point not repeated).
pub fn ellipse_polygon(centre: Pt, rx: f32, ry: f32, rotation: f32, n: usize) -> Vec<Pt> {
    let mut pts = arc(centre, rx, ry, rotation, 0.0, std::f32::consts::TAU, n);
    pts.pop();
    pts
}

fn signed_area(contour: &[Pt]) -> f32 {
    let n = contour.len();
    (0..n)
        .map(|i| {
            let (p, q) = (contour[i], contour[(i + 1) % n]);
            p.x * q.y - q.x * p.y
        })
        .sum::<f32>()
        * 0.5
}

/// Orients every contour the same way so overlapping contours unite under non-zero winding
/// instead of cancelling.
fn push_oriented(out: &mut Vec<Vec<Pt>>, mut contour: Vec<Pt>) {
    if contour.len() < 3 {
        return;
    }
    if signed_area(&contour) < 0.0 {
        contour.reverse();
    }
    out.push(contour);
}

/// Contours covering a polyline of width `width` with round joins and caps.
pub fn stroke_contours(points: &[Pt], width: f32) -> Vec<Vec<Pt>> {
    let r = width * 0.5;
    let mut out = Vec::with_capacity(points.len() * 2);
    // Thin discs need few sides to look round once anti-aliased.
    let disc_sides = if r < 0.75 {
        6
    } else if r < 1.5 {
        8
    } else {
        12
    };
    let mut segments: Vec<(Pt, Pt)> = Vec::with_capacity(points.len());
    for w in points.windows(2) {
        if w[0].dist(w[1]) > 1e-6 {
            segments.push((w[0], w[1]));
        }
    }
    for &(p, q) in &segments {
        let len = p.dist(q);
        let (nx, ny) = (-(q.y - p.y) / len * r, (q.x - p.x) / len * r);
        push_oriented(&mut out, vec![pt(p.x + nx, p.y + ny), pt(q.x + nx, q.y + ny), pt(q.x - nx, q.y - ny), pt(p.x - nx, p.y - ny)]);
    }
    let disc = |out: &mut Vec<Vec<Pt>>, c: Pt| push_oriented(out, ellipse_polygon(c, r, r, 0.0, disc_sides));
    match (segments.first(), segments.last()) {
        (Some(&(start, _)), Some(&(_, end))) => {
            disc(&mut out, start);
            disc(&mut out, end);
        }
        _ => {
            if let Some(&p) = points.first() {
                disc(&mut out, p);
            }
        }
    }
    // Joins: a gentle bend leaves a sliver far below a pixel, so only real corners get a disc.
    for pair in segments.windows(2) {
        let ((a, b), (_, c)) = (pair[0], pair[1]);
        let (u, v) = ((b.x - a.x, b.y - a.y), (c.x - b.x, c.y - b.y));
        let cos = (u.0 * v.0 + u.1 * v.1) / ((u.0 * u.0 + u.1 * u.1).sqrt() * (v.0 * v.0 + v.1 * v.1).sqrt());
        if cos < 0.95 || r > 2.0 {
            disc(&mut out, b);
        }
    }
    out
}

/// Normalises a set of polygon contours for filling (orientation; degenerate ones dropped).
pub fn polygon_contours(contours: Vec<Vec<Pt>>) -> Vec<Vec<Pt>> {
    let mut out = Vec::with_capacity(contours.len());
    for c in contours {
        push_oriented(&mut out, c);
    }
    out
}

/// A floating-point RGB canvas, row-major.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub px: Vec<Rgb>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, fill: Rgb) -> Self {
        Self { width, height, px: vec![fill; width * height] }
    }

    pub fn get(&self, x: usize, y: usize) -> Rgb {
        self.px[y * self.width + x]
    }

    /// Nearest pixel for a continuous position, clamped to the canvas.
    pub fn sample_nearest(&self, x: f32, y: f32) -> Rgb {
        let xi = (x.max(0.0) as usize).min(self.width - 1);
        let yi = (y.max(0.0) as usize).min(self.height - 1);
        self.get(xi, yi)
    }

    /// Sets every pixel from a function of its centre coordinates.
    pub fn shade(&mut self, f: impl Fn(f32, f32) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                self.px[y * self.width + x] = f(x as f32 + 0.5, y as f32 + 0.5);
            }
        }
    }

    /// Replaces every pixel by a function of (its colour, its centre coordinates).
    pub fn map(&mut self, f: impl Fn(Rgb, f32, f32) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                let i = y * self.width + x;
                self.px[i] = f(self.px[i], x as f32 + 0.5, y as f32 + 0.5);
            }
        }
    }

    /// Fills the union of `contours` (non-zero winding; orient them with [`polygon_contours`] or
    /// [`stroke_contours`]). `paint(x, y)` gives the colour and opacity at a pixel centre.
    pub fn fill(&mut self, contours: &[Vec<Pt>], paint: impl Fn(f32, f32) -> (Rgb, f32)) {
        self.fill_coverage(contours, |canvas, i, x, y, cov| {
            let (colour, alpha) = paint(x, y);
            let a = (cov * alpha).clamp(0.0, 1.0);
            let dst = &mut canvas.px[i];
            for k in 0..3 {
                dst[k] += (colour[k] - dst[k]) * a;
            }
        });
    }

    /// Fills with one flat colour.
    pub fn fill_flat(&mut self, contours: &[Vec<Pt>], colour: Rgb, alpha: f32) {
        self.fill(contours, |_, _| (colour, alpha));
    }

    /// Calls `visit(canvas, index, x, y, coverage)` for each pixel the contours touch.
    fn fill_coverage(&mut self, contours: &[Vec<Pt>], mut visit: impl FnMut(&mut Canvas, usize, f32, f32, f32)) {
        let edges = build_edges(contours);
        let Some(y_min) = edges.first().map(|e| e.y0) else { return };
        let y_max = edges.iter().map(|e| e.y1).fold(f32::MIN, f32::max);
        let row_lo = y_min.floor().max(0.0) as usize;
        let row_hi = y_max.ceil().min(self.height as f32).max(0.0) as usize;
        let mut cov = vec![0.0f32; self.width + 1];
        let mut crossings: Vec<(f32, i32)> = Vec::with_capacity(32);
        // Active-edge list: only edges overlapping the current row are examined per sub-scanline.
        let mut active: Vec<Edge> = Vec::with_capacity(64);
        let mut next = 0;
        for row in row_lo..row_hi {
            let (top, bottom) = (row as f32, row as f32 + 1.0);
            while next < edges.len() && edges[next].y0 < bottom {
                active.push(edges[next]);
                next += 1;
            }
            active.retain(|e| e.y1 > top);
            let (mut lo, mut hi) = (self.width, 0usize);
            for sub in 0..SUBROWS {
                let sy = top + (sub as f32 + 0.5) / SUBROWS as f32;
                crossings.clear();
                for e in &active {
                    // Half-open rule on y so a vertex exactly on the line is counted once.
                    if sy >= e.y0 && sy < e.y1 {
                        crossings.push((e.x0 + (sy - e.y0) * e.dxdy, e.dir));
                    }
                }
                crossings.sort_by(|a, b| a.0.total_cmp(&b.0));
                accumulate_spans(&crossings, self.width, 1.0 / SUBROWS as f32, &mut cov, &mut lo, &mut hi);
            }
            let width = self.width;
            for (x, slot) in cov.iter_mut().enumerate().take(hi.min(width)).skip(lo) {
                let c = std::mem::take(slot);
                if c > 1e-4 {
                    visit(self, row * width + x, x as f32 + 0.5, row as f32 + 0.5, c.min(1.0));
                }
            }
            cov[self.width] = 0.0;
        }
    }

    /// Coverage mask (0..1 per pixel) of the contours, for effects that need a part's footprint.
    pub fn mask(width: usize, height: usize, contours: &[Vec<Pt>]) -> Vec<f32> {
        let mut scratch = Canvas::new(width, height, [0.0; 3]);
        let mut mask = vec![0.0f32; width * height];
        scratch.fill_coverage(contours, |_, i, _, _, c| mask[i] = c);
        mask
    }

    /// Separable box blur with integer radius, `passes` times (two passes look Gaussian enough).
    pub fn box_blur(&mut self, radius: usize, passes: usize) {
        if radius == 0 {
            return;
        }
        let (w, h) = (self.width, self.height);
        let mut tmp = vec![[0.0f32; 3]; w.max(h)];
        for _ in 0..passes {
            for y in 0..h {
                let line: Vec<Rgb> = (0..w).map(|x| self.px[y * w + x]).collect();
                blur_line(&line, radius, &mut tmp[..w]);
                self.px[y * w..(y + 1) * w].copy_from_slice(&tmp[..w]);
            }
            for x in 0..w {
                let line: Vec<Rgb> = (0..h).map(|y| self.px[y * w + x]).collect();
                blur_line(&line, radius, &mut tmp[..h]);
                for (y, &v) in tmp.iter().enumerate().take(h) {
                    self.px[y * w + x] = v;
                }
            }
        }
    }

    /// Blends a blurred copy in by `amount` (a soft-focus look without losing all detail).
    pub fn soften(&mut self, radius: usize, amount: f32) {
        let mut blurred = self.clone();
        blurred.box_blur(radius, 2);
        for (p, b) in self.px.iter_mut().zip(&blurred.px) {
            for k in 0..3 {
                p[k] += (b[k] - p[k]) * amount;
            }
        }
    }

    /// Area-averaged reduction by an integer factor (edges average what is there).
    pub fn downsample(&self, factor: usize) -> Canvas {
        let (w, h) = (self.width.div_ceil(factor), self.height.div_ceil(factor));
        let mut out = Canvas::new(w, h, [0.0; 3]);
        for oy in 0..h {
            for ox in 0..w {
                let mut sum = [0.0f32; 3];
                let mut n = 0.0f32;
                for y in oy * factor..((oy + 1) * factor).min(self.height) {
                    for x in ox * factor..((ox + 1) * factor).min(self.width) {
                        let p = self.get(x, y);
                        for k in 0..3 {
                            sum[k] += p[k];
                        }
                        n += 1.0;
                    }
                }
                out.px[oy * w + ox] = sum.map(|s| s / n);
            }
        }
        out
    }

    /// Nearest-neighbour resize to `width × height` (pixel-art blocks).
    pub fn resize_nearest(&self, width: usize, height: usize) -> Canvas {
        let mut out = Canvas::new(width, height, [0.0; 3]);
        for y in 0..height {
            let sy = (y * self.height / height).min(self.height - 1);
            for x in 0..width {
                let sx = (x * self.width / width).min(self.width - 1);
                out.px[y * width + x] = self.get(sx, sy);
            }
        }
        out
    }

    /// Bilinear resize to `width × height` (a smooth, detail-free upscale).
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Canvas {
        let mut out = Canvas::new(width, height, [0.0; 3]);
        let (fx, fy) = (self.width as f32 / width as f32, self.height as f32 / height as f32);
        for y in 0..height {
            let sy = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (self.height - 1) as f32);
            let (y0, ty) = (sy.floor() as usize, sy - sy.floor());
            let y1 = (y0 + 1).min(self.height - 1);
            for x in 0..width {
                let sx = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (self.width - 1) as f32);
                let (x0, tx) = (sx.floor() as usize, sx - sx.floor());
                let x1 = (x0 + 1).min(self.width - 1);
                let top = mix(self.get(x0, y0), self.get(x1, y0), tx);
                let bottom = mix(self.get(x0, y1), self.get(x1, y1), tx);
                out.px[y * width + x] = mix(top, bottom, ty);
            }
        }
        out
    }

    /// Mean colour of the canvas.
    pub fn mean(&self) -> Rgb {
        let mut sum = [0.0f32; 3];
        for p in &self.px {
            for k in 0..3 {
                sum[k] += p[k];
            }
        }
        sum.map(|s| s / self.px.len() as f32)
    }

    /// Quantises to 8-bit RGB (clamping to 0..1 first).
    pub fn to_image(&self) -> RgbImage {
        let mut pixels = Vec::with_capacity(self.px.len() * 3);
        for p in &self.px {
            for &v in p {
                pixels.push((v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
            }
        }
        RgbImage { width: self.width as u32, height: self.height as u32, pixels }
    }
}

/// A non-horizontal contour edge, stored top to bottom with its winding direction.
#[derive(Clone, Copy, Debug)]
struct Edge {
    y0: f32,
    y1: f32,
    x0: f32,
    dxdy: f32,
    dir: i32,
}

/// All non-horizontal edges of the contours, sorted by their top y. Non-finite points (from a
/// degenerate transform) are skipped rather than poisoning the fill.
fn build_edges(contours: &[Vec<Pt>]) -> Vec<Edge> {
    let mut edges = Vec::new();
    for contour in contours {
        let n = contour.len();
        for i in 0..n {
            let (p, q) = (contour[i], contour[(i + 1) % n]);
            if p.y == q.y || !(p.x.is_finite() && p.y.is_finite() && q.x.is_finite() && q.y.is_finite()) {
                continue;
            }
            let (dir, lo, hi) = if p.y < q.y { (1, p, q) } else { (-1, q, p) };
            edges.push(Edge { y0: lo.y, y1: hi.y, x0: lo.x, dxdy: (hi.x - lo.x) / (hi.y - lo.y), dir });
        }
    }
    edges.sort_by(|a, b| a.y0.total_cmp(&b.y0));
    edges
}

/// Adds `weight` × horizontal coverage of every inside span to `cov`, tracking touched columns.
fn accumulate_spans(crossings: &[(f32, i32)], width: usize, weight: f32, cov: &mut [f32], lo: &mut usize, hi: &mut usize) {
    let mut winding = 0;
    let mut start = 0.0f32;
    for &(x, dir) in crossings {
        let was_inside = winding != 0;
        winding += dir;
        let inside = winding != 0;
        if !was_inside && inside {
            start = x;
        } else if was_inside && !inside {
            add_span(start, x, width, weight, cov, lo, hi);
        }
    }
}

fn add_span(x0: f32, x1: f32, width: usize, weight: f32, cov: &mut [f32], lo: &mut usize, hi: &mut usize) {
    let x0 = x0.max(0.0);
    let x1 = x1.min(width as f32);
    if x1 <= x0 {
        return;
    }
    let (c0, c1) = (x0.floor() as usize, (x1.ceil() as usize).min(width));
    *lo = (*lo).min(c0);
    *hi = (*hi).max(c1);
    if c1 - c0 == 1 {
        cov[c0] += (x1 - x0) * weight;
        return;
    }
    cov[c0] += (c0 as f32 + 1.0 - x0) * weight;
    for c in cov.iter_mut().take(c1 - 1).skip(c0 + 1) {
        *c += weight;
    }
    cov[c1 - 1] += (x1 - (c1 - 1) as f32) * weight;
}

fn blur_line(line: &[Rgb], radius: usize, out: &mut [Rgb]) {
    let n = line.len();
    for (i, o) in out.iter_mut().enumerate().take(n) {
        let lo = i.saturating_sub(radius);
        let hi = (i + radius).min(n - 1);
        let mut sum = [0.0f32; 3];
        for p in &line[lo..=hi] {
            for k in 0..3 {
                sum[k] += p[k];
            }
        }
        let count = (hi - lo + 1) as f32;
        *o = sum.map(|s| s / count);
    }
}

pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

pub fn scale_rgb(c: Rgb, k: f32) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

pub fn luma(c: Rgb) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// HSV (hue in turns, 0..1) to RGB.
pub fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h = (h - h.floor()) * 6.0;
    let sector = h.floor();
    let f = h - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// RGB to HSV (hue in turns).
pub fn to_hsv(c: Rgb) -> (f32, f32, f32) {
    let max = c[0].max(c[1]).max(c[2]);
    let min = c[0].min(c[1]).min(c[2]);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    if delta <= 1e-6 {
        return (0.0, s, max);
    }
    let h = if max == c[0] {
        ((c[1] - c[2]) / delta).rem_euclid(6.0)
    } else if max == c[1] {
        (c[2] - c[0]) / delta + 2.0
    } else {
        (c[0] - c[1]) / delta + 4.0
    };
    (h / 6.0, s, max)
}

/// Seeded value noise on an integer lattice with smooth interpolation, plus fractal sums of it.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    seed: u32,
}

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self { seed: (seed ^ (seed >> 32)) as u32 }
    }

    /// Uncorrelated noise in 0..1 for one lattice point (per-pixel grain when called per pixel).
    pub fn white(&self, ix: i32, iy: i32) -> f32 {
        // An integer avalanche hash: cheap, deterministic, no visible lattice correlations.
        let mut h = (ix as u32).wrapping_mul(0x8da6_b343) ^ (iy as u32).wrapping_mul(0xd816_3841) ^ self.seed.wrapping_mul(0xcb1a_b31f);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2c1b_3c6d);
        h ^= h >> 12;
        h = h.wrapping_mul(0x297a_2d39);
        h ^= h >> 15;
        (h >> 8) as f32 / (1u32 << 24) as f32
    }

    /// Smooth noise in 0..1 with features about one unit apart.
    pub fn value(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (ix, iy) = (fx as i32, fy as i32);
        let (tx, ty) = (smooth(x - fx), smooth(y - fy));
        let top = lerp(self.white(ix, iy), self.white(ix + 1, iy), tx);
        let bottom = lerp(self.white(ix, iy + 1), self.white(ix + 1, iy + 1), tx);
        lerp(top, bottom, ty)
    }

    /// Fractal (octave) sum of value noise, normalised to 0..1.
    pub fn fbm(&self, x: f32, y: f32, octaves: u32) -> f32 {
        let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
        for o in 0..octaves {
            // Offsetting each octave avoids all octaves sharing a lattice corner at the origin.
            let shift = o as f32 * 17.31;
            sum += amp * self.value(x * freq + shift, y * freq - shift);
            norm += amp;
            amp *= 0.5;
            freq *= 2.0;
        }
        sum / norm
    }
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f32, y0: f32, x1: f32, y1: f32) -> Vec<Vec<Pt>> {
        polygon_contours(vec![vec![pt(x0, y0), pt(x1, y0), pt(x1, y1), pt(x0, y1)]])
    }

    #[test]
    fn fill_covers_exact_area_with_fractional_edges() {
        let mask = Canvas::mask(8, 8, &square(1.5, 2.0, 4.25, 5.0));
        let area: f32 = mask.iter().sum();
        assert!((area - 2.75 * 3.0).abs() < 1e-3, "area {area}");
        assert!((mask[2 * 8 + 1] - 0.5).abs() < 1e-4);
        assert!((mask[3 * 8 + 2] - 1.0).abs() < 1e-4);
        assert_eq!(mask[0], 0.0);
    }

    #[test]
    fn overlapping_contours_unite_instead_of_cancelling() {
        let mut contours = square(0.0, 0.0, 4.0, 4.0);
        // The same square wound the other way must still be a union after orientation.
        contours.extend(polygon_contours(vec![vec![pt(2.0, 0.0), pt(2.0, 4.0), pt(6.0, 4.0), pt(6.0, 0.0)]]));
        let area: f32 = Canvas::mask(8, 8, &contours).iter().sum();
        assert!((area - 24.0).abs() < 1e-3, "area {area}");
    }

    #[test]
    fn stroke_and_ellipse_have_plausible_areas() {
        let line = stroke_contours(&[pt(2.0, 8.0), pt(14.0, 8.0)], 2.0);
        let area: f32 = Canvas::mask(16, 16, &line).iter().sum();
        // 12 × 2 body plus two half-discs of radius 1.
        assert!((area - (24.0 + std::f32::consts::PI)).abs() < 0.6, "area {area}");
        let disc = polygon_contours(vec![ellipse_polygon(pt(8.0, 8.0), 5.0, 5.0, 0.0, 48)]);
        let area: f32 = Canvas::mask(16, 16, &disc).iter().sum();
        assert!((area - 25.0 * std::f32::consts::PI).abs() < 1.0, "area {area}");
    }

    #[test]
    fn noise_is_deterministic_bounded_and_varied() {
        let n = Noise::new(42);
        let vals: Vec<f32> = (0..200).map(|i| n.fbm(i as f32 * 0.37, i as f32 * 0.11, 4)).collect();
        assert!(vals.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(vals[17], Noise::new(42).fbm(17.0 * 0.37, 17.0 * 0.11, 4));
        let spread = vals.iter().cloned().fold(f32::MIN, f32::max) - vals.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.3, "spread {spread}");
    }

    #[test]
    fn hsv_round_trips() {
        for &c in &[[0.2, 0.5, 0.9], [0.9, 0.1, 0.3], [0.4, 0.4, 0.4]] {
            let (h, s, v) = to_hsv(c);
            let back = hsv(h, s, v);
            for k in 0..3 {
                assert!((back[k] - c[k]).abs() < 1e-4, "{c:?} -> {back:?}");
            }
        }
    }
}
