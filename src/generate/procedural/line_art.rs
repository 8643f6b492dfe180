//! Line art: clean, uniform ink lines.

use crate::generate::prompt::LineArt;
use crate::data::procedural::objects::Role;
use crate::data::procedural::paint::{draw_polyline, fill_part, outline_px, px_unit, sym, uf};
use crate::data::procedural::raster::{mix, pt, Canvas, Pt, Rgb};
use crate::rng::Stream;
use std::f32::consts::{PI, TAU};
use super::Item;

pub(super) fn line_art(kind: LineArt, scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    match kind {
        LineArt::Sketch => {
            let paper = *rng.pick(&[[0.95, 0.92, 0.84], [0.88, 0.91, 0.95], [0.92, 0.92, 0.92], [0.96, 0.9, 0.88]]);
            let mut canvas = Canvas::new(n, n, paper);
            let g = uf(rng, 0.2, 0.32);
            let graphite = [g, g, g + 0.03];
            let hatch = Hatch { spacing: 2.4 * unit, angle: PI * 0.25 + sym(rng, 0.3), width: 0.45 * unit };
            for item in scene {
                hatch_shadow_side(&mut canvas, item, &hatch, graphite, size);
                ink_outlines(&mut canvas, item, graphite, 0.9 * unit, unit);
            }
            canvas
        }
        LineArt::Drawing => {
            let mut canvas = Canvas::new(n, n, [uf(rng, 0.97, 1.0); 3]);
            let ink = *rng.pick(&[[0.02, 0.02, 0.02], [0.05, 0.07, 0.2], [0.25, 0.14, 0.06]]);
            for item in scene {
                let xf = item.pose.affine();
                for part in &item.object.parts {
                    let wash = mix(item.object.palette.get(part.role), [1.0, 1.0, 1.0], 0.5);
                    fill_part(&mut canvas, part, &xf, unit, |_, _| (wash, 1.0));
                }
                ink_outlines(&mut canvas, item, ink, 1.15 * unit, unit);
            }
            canvas
        }
        LineArt::Doodle => {
            let mut canvas = notebook_paper(n, unit);
            let pen = *rng.pick(&[[0.1, 0.2, 0.75], [0.05, 0.05, 0.08], [0.8, 0.1, 0.15], [0.1, 0.55, 0.2]]);
            let width = uf(rng, 1.4, 1.8) * unit;
            let wobble = Wobble { amplitude: 0.6 * unit, freq: uf(rng, 0.15, 0.3) / unit, phase: uf(rng, 0.0, TAU) };
            for item in scene {
                let xf = item.pose.affine();
                for part in &item.object.parts {
                    let (line, closed) = outline_px(part, &xf, unit);
                    draw_polyline(&mut canvas, &wobble.apply(&line), closed, width, pen, 1.0);
                }
            }
            canvas
        }
    }
}

/// Every part's outline as a uniform-width line.
pub(super) fn ink_outlines(canvas: &mut Canvas, item: &Item, ink: Rgb, width: f32, unit: f32) {
    let xf = item.pose.affine();
    for part in &item.object.parts {
        let (line, closed) = outline_px(part, &xf, 3.0 * unit);
        draw_polyline(canvas, &line, closed, width, ink, 1.0);
    }
}

/// Parallel lines at a fixed angle.
pub(super) struct Hatch {
    spacing: f32,
    angle: f32,
    width: f32,
}

impl Hatch {
    fn coverage(&self, x: f32, y: f32) -> f32 {
        let u = (x * self.angle.cos() + y * self.angle.sin()) / self.spacing;
        let d = (u - u.round()).abs() * self.spacing;
        (self.width - d + 0.5).clamp(0.0, 1.0)
    }
}

/// Hatches the large parts on the side facing away from an upper-left light.
pub(super) fn hatch_shadow_side(canvas: &mut Canvas, item: &Item, hatch: &Hatch, ink: Rgb, size: u32) {
    let xf = item.pose.affine();
    let (c, s) = (item.pose.centre, item.pose.scale);
    for part in item.object.parts.iter().filter(|p| matches!(p.role, Role::Primary | Role::Secondary)) {
        fill_part(canvas, part, &xf, px_unit(size), |x, y| {
            let shadow = ((x - c.x) + (y - c.y)) / s;
            (ink, if shadow > -0.1 { hatch.coverage(x, y) * 0.8 } else { 0.0 })
        });
    }
}

/// White ruled paper with a red margin.
pub(super) fn notebook_paper(n: usize, unit: f32) -> Canvas {
    let mut canvas = Canvas::new(n, n, [0.98, 0.98, 0.96]);
    let rule = 4.0 * unit;
    canvas.shade(|x, y| {
        let d = ((y / rule) - (y / rule).round()).abs() * rule;
        let line = (0.6 - d).clamp(0.0, 0.6);
        let margin = (0.6 - (x - 4.0 * unit).abs()).clamp(0.0, 0.6);
        mix(mix([0.98, 0.98, 0.96], [0.6, 0.75, 0.95], line), [0.95, 0.45, 0.45], margin)
    });
    canvas
}

/// A smooth hand tremor: each point is displaced along slow sinusoids of its arc length.
pub(super) struct Wobble {
    amplitude: f32,
    freq: f32,
    phase: f32,
}

impl Wobble {
    fn apply(&self, line: &[Pt]) -> Vec<Pt> {
        let mut t = 0.0;
        let mut prev = line.first().copied().unwrap_or(pt(0.0, 0.0));
        line.iter()
            .map(|&p| {
                t += p.dist(prev);
                prev = p;
                let a = t * self.freq + self.phase;
                pt(p.x + self.amplitude * a.sin(), p.y + self.amplitude * (a * 1.3 + 1.0).cos())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hatching_covers_its_lines_and_leaves_the_gaps() {
        let hatch = Hatch { spacing: 3.0, angle: 0.0, width: 0.5 };
        assert!(hatch.coverage(3.0, 1.0) > 0.9);
        assert_eq!(hatch.coverage(1.5, 1.0), 0.0);
    }
}
