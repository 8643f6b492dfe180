//! Photographs: the generator's idea of a photo is a clean studio shot.

use crate::data::procedural::objects::Palette;
use crate::data::procedural::paint::{fill_part, px_unit, sym, uf};
use crate::data::procedural::raster::{ellipse_polygon, hsv, mix, polygon_contours, pt, scale_rgb, to_hsv, Canvas, Pt, Rgb};
use crate::rng::Stream;
use super::Item;

pub(super) fn studio_photo(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let mut canvas = studio_backdrop(rng, size);
    let highlight = pt(uf(rng, -0.5, -0.2), uf(rng, -0.55, -0.25));
    for item in scene {
        contact_shadow(&mut canvas, item, 0.35);
        let palette = vivid(&item.object.palette, 1.35);
        glossy_object(&mut canvas, item, &palette, highlight, 0.45, size);
    }
    // The airbrushed smoothness of generated images: no sensor noise, softened detail.
    canvas.soften((px_unit(size).round() as usize).max(1), 0.35);
    canvas
}

/// Smooth backdrops: a seamless studio sweep, bokeh, or a clean sky over a plain ground.
pub(super) fn studio_backdrop(rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let s = size as f32;
    let hue = uf(rng, 0.0, 1.0);
    let top = hsv(hue, uf(rng, 0.1, 0.3), uf(rng, 0.8, 0.97));
    let bottom = hsv(hue + sym(rng, 0.08), uf(rng, 0.15, 0.4), uf(rng, 0.6, 0.85));
    let mut canvas = Canvas::new(n, n, top);
    match rng.below(3) {
        0 => canvas.shade(|x, y| {
            let vignette = 1.0 - 0.25 * (((x / s - 0.5).powi(2) + (y / s - 0.5).powi(2)) * 2.0);
            scale_rgb(mix(top, bottom, y / s), vignette)
        }),
        1 => {
            canvas.shade(|_, y| mix(top, bottom, y / s));
            for _ in 0..5 + rng.below(6) {
                let c = pt(uf(rng, 0.0, s), uf(rng, 0.0, s));
                let r = uf(rng, 0.06, 0.16) * s;
                let light = hsv(hue + sym(rng, 0.15), uf(rng, 0.2, 0.5), uf(rng, 0.85, 1.0));
                let alpha = uf(rng, 0.25, 0.5);
                canvas.fill(&polygon_contours(vec![ellipse_polygon(c, r, r, 0.0, 16)]), |x, y| {
                    let d = pt(x, y).dist(c) / r;
                    (light, alpha * (1.0 - d * d).max(0.0))
                });
            }
        }
        _ => {
            let sky_top = hsv(uf(rng, 0.55, 0.62), uf(rng, 0.35, 0.6), uf(rng, 0.85, 1.0));
            let sky_low = hsv(uf(rng, 0.55, 0.62), uf(rng, 0.1, 0.25), 1.0);
            let ground = hsv(uf(rng, 0.2, 0.35), uf(rng, 0.3, 0.55), uf(rng, 0.5, 0.75));
            let horizon = uf(rng, 0.6, 0.75) * s;
            canvas.shade(
                |_, y| if y < horizon { mix(sky_top, sky_low, y / horizon) } else { scale_rgb(ground, 1.0 - 0.2 * (y - horizon) / s) },
            );
        }
    }
    canvas
}

/// A soft, feathered shadow just under an object's lowest point.
pub(super) fn contact_shadow(canvas: &mut Canvas, item: &Item, strength: f32) {
    let pose = &item.pose;
    let bottom = object_bottom(item);
    let c = pt(pose.centre.x, bottom + pose.scale * 0.05);
    let (rx, ry) = (pose.scale * 0.85, pose.scale * 0.14);
    canvas.fill(&polygon_contours(vec![ellipse_polygon(c, rx, ry, 0.0, 20)]), |x, y| {
        let d = ((x - c.x) / rx).powi(2) + ((y - c.y) / ry).powi(2);
        ([0.05, 0.05, 0.07], strength * (1.0 - d).max(0.0))
    });
}

/// The lowest pixel row an object reaches (generated objects are close to upright).
pub(super) fn object_bottom(item: &Item) -> f32 {
    let (lo, hi) = item.object.bounds();
    let xf = item.pose.affine();
    [pt(lo.x, lo.y), pt(hi.x, lo.y), pt(lo.x, hi.y), pt(hi.x, hi.y)].iter().map(|&p| xf.apply(p).y).fold(f32::MIN, f32::max)
}

/// Over-saturated, slightly brightened natural colours.
pub(super) fn vivid(p: &Palette, boost: f32) -> Palette {
    let f = |c: Rgb| {
        let (h, s, v) = to_hsv(c);
        hsv(h, (s * boost + 0.08).min(1.0), (v * 1.05 + 0.04).min(1.0))
    };
    Palette { primary: f(p.primary), secondary: f(p.secondary), dark: p.dark, light: f(p.light), accent: f(p.accent) }
}

/// Smooth shading with one soft specular highlight (`highlight` in object units from the centre).
pub(super) fn glossy_object(canvas: &mut Canvas, item: &Item, palette: &Palette, highlight: Pt, shine: f32, size: u32) {
    let xf = item.pose.affine();
    let hl = xf.apply(highlight);
    let scale = item.pose.scale;
    for part in &item.object.parts {
        let base = palette.get(part.role);
        fill_part(canvas, part, &xf, 0.7 * px_unit(size), |x, y| {
            let d2 = ((x - hl.x).powi(2) + (y - hl.y).powi(2)) / (scale * scale);
            let glow = 1.0 / (1.0 + 4.0 * d2);
            let shaded = scale_rgb(base, 0.8 + 0.3 * glow);
            (mix(shaded, [1.0, 1.0, 1.0], shine * glow * glow * 0.5), 1.0)
        });
    }
}
