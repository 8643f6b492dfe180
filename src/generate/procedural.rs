//! The procedural generator's own painters. They share the object geometry and the rasteriser
//! with the `shapes` world but none of its style code or parameter ranges; see the module
//! documentation of `crate::generate` for how each look differs from the shift domains.

use super::prompt::{Condition, Degradation, LineArt, Medium, PromptStyle, Rendition, SizeHint};
use crate::data::procedural::objects::{self, Object, Palette, Part, Role};
use crate::data::procedural::paint::{add_grain, draw_polyline, fill_part, outline_px, px_unit, sym, uf, Pose};
use crate::data::procedural::raster::{ellipse_polygon, hsv, luma, mix, polygon_contours, pt, scale_rgb, to_hsv, Canvas, Noise, Pt, Rgb};
use crate::rng::Stream;
use std::f32::consts::{PI, TAU};

/// One object placed in the picture.
struct Item {
    object: Object,
    pose: Pose,
}

/// Paints `first` (and, for "many", more of its class) the way `style` asks.
pub fn paint(first: Object, style: &PromptStyle, rng: &mut Stream, size: u32) -> Canvas {
    let medium = match style.medium {
        Medium::Rendition(Rendition::Assorted) => Medium::Rendition(*rng.pick(&Rendition::CONCRETE)),
        m => m,
    };
    let scene = layout(first, style, rng, size);
    let mut canvas = match medium {
        Medium::Photo => studio_photo(&scene, rng, size),
        Medium::LineArt(kind) => line_art(kind, &scene, rng, size),
        Medium::Rendition(kind) => rendition(kind, &scene, rng, size),
    };
    apply_condition(&mut canvas, style, rng, size);
    for &d in &style.degradations {
        degrade(&mut canvas, d, rng, size);
    }
    canvas
}

/// Framing. Generated pictures are centred and large by default (the model's favourite
/// composition); prompt words move the camera.
fn layout(first: Object, style: &PromptStyle, rng: &mut Stream, size: u32) -> Vec<Item> {
    let half = size as f32 * 0.5;
    if style.many {
        return crowd(first, rng, size);
    }
    let (mut scale, mut offset) = match style.size {
        SizeHint::Normal => (uf(rng, 0.74, 0.9), 0.04),
        SizeHint::Small => (uf(rng, 0.38, 0.52), 0.25),
        SizeHint::Large => (uf(rng, 0.95, 1.1), 0.05),
    };
    let mut rotation = sym(rng, 0.06);
    let mut aspect = 1.0;
    for d in &style.degradations {
        match d {
            Degradation::Cropped => {
                scale *= uf(rng, 1.3, 1.6);
                offset = 0.35;
            }
            Degradation::CloseUp => {
                scale *= uf(rng, 1.4, 1.8);
                offset = 0.12;
            }
            Degradation::HardToSee => {
                scale *= 0.65;
                offset = 0.3;
            }
            Degradation::Bad => {
                rotation = sym(rng, 0.35);
                offset = 0.2;
            }
            _ => {}
        }
    }
    if style.weird {
        aspect = sym(rng, 0.6).exp();
        rotation += sym(rng, 0.5);
    }
    let pose = Pose {
        centre: pt(half + sym(rng, offset) * half, half + sym(rng, offset) * half),
        scale: scale * half,
        rotation,
        aspect,
        shear: 0.0,
        mirror: rng.chance(0.5),
    };
    vec![Item { object: first, pose }]
}

/// "many": two to four instances in distinct cells of a 3×3 grid.
fn crowd(first: Object, rng: &mut Stream, size: u32) -> Vec<Item> {
    let cell = size as f32 / 3.0;
    let mut cells: Vec<usize> = (0..9).collect();
    rng.shuffle(&mut cells);
    let count = 2 + rng.below(3) as usize;
    let class = first.class;
    let mut objects = vec![first];
    while objects.len() < count {
        objects.push(objects::sample(class, rng));
    }
    objects
        .into_iter()
        .zip(cells)
        .map(|(object, c)| {
            let centre = pt(((c % 3) as f32 + 0.5 + sym(rng, 0.15)) * cell, ((c / 3) as f32 + 0.5 + sym(rng, 0.15)) * cell);
            let pose = Pose {
                centre,
                scale: cell * uf(rng, 0.45, 0.62),
                rotation: sym(rng, 0.1),
                aspect: 1.0,
                shear: 0.0,
                mirror: rng.chance(0.5),
            };
            Item { object, pose }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Photographs: the generator's idea of a photo is a clean studio shot.

fn studio_photo(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
fn studio_backdrop(rng: &mut Stream, size: u32) -> Canvas {
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
fn contact_shadow(canvas: &mut Canvas, item: &Item, strength: f32) {
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
fn object_bottom(item: &Item) -> f32 {
    let (lo, hi) = item.object.bounds();
    let xf = item.pose.affine();
    [pt(lo.x, lo.y), pt(hi.x, lo.y), pt(lo.x, hi.y), pt(hi.x, hi.y)].iter().map(|&p| xf.apply(p).y).fold(f32::MIN, f32::max)
}

/// Over-saturated, slightly brightened natural colours.
fn vivid(p: &Palette, boost: f32) -> Palette {
    let f = |c: Rgb| {
        let (h, s, v) = to_hsv(c);
        hsv(h, (s * boost + 0.08).min(1.0), (v * 1.05 + 0.04).min(1.0))
    };
    Palette { primary: f(p.primary), secondary: f(p.secondary), dark: p.dark, light: f(p.light), accent: f(p.accent) }
}

/// Smooth shading with one soft specular highlight (`highlight` in object units from the centre).
fn glossy_object(canvas: &mut Canvas, item: &Item, palette: &Palette, highlight: Pt, shine: f32, size: u32) {
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

// ---------------------------------------------------------------------------------------------
// Line art: clean, uniform ink lines.

fn line_art(kind: LineArt, scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
fn ink_outlines(canvas: &mut Canvas, item: &Item, ink: Rgb, width: f32, unit: f32) {
    let xf = item.pose.affine();
    for part in &item.object.parts {
        let (line, closed) = outline_px(part, &xf, 3.0 * unit);
        draw_polyline(canvas, &line, closed, width, ink, 1.0);
    }
}

/// Parallel lines at a fixed angle.
struct Hatch {
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
fn hatch_shadow_side(canvas: &mut Canvas, item: &Item, hatch: &Hatch, ink: Rgb, size: u32) {
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
fn notebook_paper(n: usize, unit: f32) -> Canvas {
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
struct Wobble {
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

// ---------------------------------------------------------------------------------------------
// Renditions.

fn rendition(kind: Rendition, scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    match kind {
        Rendition::Painting => impressionist(scene, rng, size),
        Rendition::Cartoon => cel_shaded(scene, rng, size),
        Rendition::Rendering => cg_render(scene, rng, size),
        Rendition::Origami => origami(scene, rng, size),
        Rendition::Toy => toy(scene, rng, size),
        Rendition::Plastic => plastic(scene, rng, size),
        Rendition::Plushie => plushie(scene, rng, size),
        Rendition::VideoGame => pixel_art(scene, rng, size),
        Rendition::Tattoo => tattoo(scene, rng, size),
        Rendition::Embroidery => embroidery(scene, rng, size),
        Rendition::Graffiti => graffiti(scene, rng, size),
        Rendition::Sculpture => sculpture(scene, rng, size),
        // Resolved to a concrete kind in `paint`; kept total for safety.
        Rendition::Assorted => cel_shaded(scene, rng, size),
    }
}

fn flat_scene(canvas: &mut Canvas, scene: &[Item], min_stroke: f32, colour: impl Fn(&Object, &Part) -> Rgb) {
    for item in scene {
        let xf = item.pose.affine();
        for part in &item.object.parts {
            let c = colour(&item.object, part);
            fill_part(canvas, part, &xf, min_stroke, |_, _| (c, 1.0));
        }
    }
}

/// Impressionism: the picture is rebuilt from short oriented dabs of colour.
fn impressionist(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let (a, b) =
        (hsv(uf(rng, 0.0, 1.0), uf(rng, 0.3, 0.6), uf(rng, 0.6, 0.95)), hsv(uf(rng, 0.0, 1.0), uf(rng, 0.3, 0.6), uf(rng, 0.4, 0.8)));
    let mut base = Canvas::new(n, n, a);
    base.shade(|x, y| mix(a, b, (x + y) / (2.0 * n as f32)));
    let ground = base.mean();
    flat_scene(&mut base, scene, unit, |o, p| readable(vivid(&o.palette, 1.3).get(p.role), ground));
    let mut out = base.clone();
    let flow = Noise::new(rng.next_u64());
    let k = 2.0 / n as f32;
    let dabs = n * n / 4;
    for _ in 0..dabs {
        let p = pt(uf(rng, 0.0, n as f32), uf(rng, 0.0, n as f32));
        let c = scale_rgb(base.sample_nearest(p.x, p.y), 1.0 + sym(rng, 0.12));
        let angle = flow.value(p.x * k, p.y * k) * TAU;
        let len = uf(rng, 0.7, 1.3) * unit;
        out.fill_flat(&polygon_contours(vec![ellipse_polygon(p, len, len * 0.45, angle, 8)]), c, 0.85);
    }
    out
}

/// A colour whose brightness stands apart from `ground` (luma at least 0.2 away).
fn readable(colour: Rgb, ground: Rgb) -> Rgb {
    let (l, g) = (luma(colour), luma(ground));
    if (l - g).abs() >= 0.2 {
        return colour;
    }
    let target = if g > 0.5 { (g - 0.2).max(0.05) } else { g + 0.2 };
    colour.map(|v| (v * target / l.max(0.02)).clamp(0.0, 1.0))
}

/// Cel shading: two flat tones per part split by a hard terminator, outlines in a darker shade
/// of the part's own colour, on a radial backdrop.
fn cel_shaded(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let (inner, outer) = (hsv(uf(rng, 0.0, 1.0), uf(rng, 0.1, 0.3), 1.0), hsv(uf(rng, 0.0, 1.0), uf(rng, 0.5, 0.8), uf(rng, 0.7, 0.95)));
    let mut canvas = Canvas::new(n, n, inner);
    let c = n as f32 * 0.5;
    canvas.shade(|x, y| mix(inner, outer, (((x - c).powi(2) + (y - c).powi(2)).sqrt() / c).min(1.0)));
    let light = uf(rng, 0.0, TAU);
    let (lx, ly) = (light.cos(), light.sin());
    for item in scene {
        let xf = item.pose.affine();
        let palette = vivid(&item.object.palette, 1.2);
        let (centre, scale) = (item.pose.centre, item.pose.scale);
        for part in &item.object.parts {
            let lit = palette.get(part.role);
            let shade = scale_rgb(lit, 0.7);
            fill_part(&mut canvas, part, &xf, unit, |x, y| {
                let side = ((x - centre.x) * lx + (y - centre.y) * ly) / scale;
                (if side > 0.2 { shade } else { lit }, 1.0)
            });
            let (line, closed) = outline_px(part, &xf, 3.0 * unit);
            draw_polyline(&mut canvas, &line, closed, 1.0 * unit, scale_rgb(lit, 0.4), 1.0);
        }
    }
    canvas
}

/// A 3-D look: each object shaded as if it bulged towards the viewer, with a specular spot and
/// a reflection on a glossy floor.
fn cg_render(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let s = n as f32;
    let top = hsv(uf(rng, 0.55, 0.7), uf(rng, 0.1, 0.3), uf(rng, 0.2, 0.4));
    let floor = hsv(uf(rng, 0.0, 1.0), uf(rng, 0.0, 0.15), uf(rng, 0.6, 0.85));
    let mut canvas = Canvas::new(n, n, top);
    canvas.shade(|_, y| mix(top, floor, (y / s * 1.4).min(1.0)));
    let light = [-0.45f32, -0.55, 0.7];
    for item in scene {
        let mut reflection = item.pose;
        reflection.rotation += PI;
        reflection.mirror = !reflection.mirror;
        // Mirror about the object's lowest point, where it stands on the floor.
        reflection.centre.y = 2.0 * object_bottom(item) - item.pose.centre.y;
        let ghost = Item { object: item.object.clone(), pose: reflection };
        bulge_shaded(&mut canvas, &ghost, light, 0.25, size);
        bulge_shaded(&mut canvas, item, light, 1.0, size);
    }
    canvas
}

fn bulge_shaded(canvas: &mut Canvas, item: &Item, light: [f32; 3], alpha: f32, size: u32) {
    let xf = item.pose.affine();
    let (c, s) = (item.pose.centre, item.pose.scale);
    // Half-vector between the light and the viewer (0, 0, 1), normalised.
    let h = [light[0], light[1], light[2] + 1.0];
    let hn = (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt();
    let h = [h[0] / hn, h[1] / hn, h[2] / hn];
    for part in &item.object.parts {
        let base = item.object.palette.get(part.role);
        fill_part(canvas, part, &xf, 0.7 * px_unit(size), |x, y| {
            let (dx, dy) = (((x - c.x) / s).clamp(-0.95, 0.95), ((y - c.y) / s).clamp(-0.95, 0.95));
            let dz = (1.0 - (dx * dx + dy * dy).min(0.95)).sqrt();
            let norm = (dx * dx + dy * dy + dz * dz).sqrt();
            let nrm = [dx / norm, dy / norm, dz / norm];
            let diffuse = (nrm[0] * light[0] + nrm[1] * light[1] + nrm[2] * light[2]).max(0.0);
            let mut spec = (nrm[0] * h[0] + nrm[1] * h[1] + nrm[2] * h[2]).max(0.0);
            for _ in 0..4 {
                spec *= spec;
            }
            (mix(scale_rgb(base, 0.3 + 0.85 * diffuse), [1.0, 1.0, 1.0], 0.6 * spec), alpha)
        });
    }
}

/// Folded paper: every surface becomes a few flat facets with light creases.
fn origami(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let table = *rng.pick(&[[0.93, 0.9, 0.85], [0.75, 0.6, 0.45], [0.9, 0.93, 0.95]]);
    let mut canvas = Canvas::new(n, n, table);
    const PAPER: [Rgb; 6] =
        [[0.85, 0.15, 0.2], [0.1, 0.45, 0.8], [0.95, 0.75, 0.1], [0.2, 0.65, 0.35], [0.95, 0.5, 0.15], [0.55, 0.25, 0.65]];
    for item in scene {
        contact_shadow(&mut canvas, item, 0.25);
        let sheet = *rng.pick(&PAPER);
        let second = *rng.pick(&PAPER);
        let xf = item.pose.affine();
        for part in &item.object.parts {
            let colour = match part.role {
                Role::Primary => sheet,
                Role::Secondary | Role::Accent => second,
                Role::Dark => scale_rgb(sheet, 0.5),
                Role::Light => [0.95, 0.94, 0.9],
            };
            for contour in part.shape.contours(&xf, unit) {
                facets(&mut canvas, &contour, colour, rng, unit);
            }
        }
    }
    canvas
}

/// A contour reduced to at most eight corners and fanned into shaded triangles.
fn facets(canvas: &mut Canvas, contour: &[Pt], colour: Rgb, rng: &mut Stream, unit: f32) {
    let step = contour.len().div_ceil(8).max(1);
    let corners: Vec<Pt> = contour.iter().step_by(step).copied().collect();
    if corners.len() < 3 {
        return;
    }
    let k = corners.len() as f32;
    let centre = pt(corners.iter().map(|p| p.x).sum::<f32>() / k, corners.iter().map(|p| p.y).sum::<f32>() / k);
    for i in 0..corners.len() {
        let (a, b) = (corners[i], corners[(i + 1) % corners.len()]);
        let tone = if i % 2 == 0 { 1.05 } else { 0.82 } + sym(rng, 0.06);
        canvas.fill_flat(&polygon_contours(vec![vec![centre, a, b]]), scale_rgb(colour, tone), 1.0);
    }
    for &corner in &corners {
        draw_polyline(canvas, &[centre, corner], false, 0.35 * unit, scale_rgb(colour, 1.25), 0.5);
    }
}

/// Chunky primary-coloured toy plastic with a strong highlight.
fn toy(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let (wall, table) = ([0.93, 0.93, 0.9], [0.82, 0.78, 0.72]);
    let horizon = uf(rng, 0.6, 0.72) * n as f32;
    let mut canvas = Canvas::new(n, n, wall);
    canvas.shade(|_, y| if y < horizon { wall } else { table });
    const PRIMARIES: [Rgb; 5] = [[0.9, 0.1, 0.1], [1.0, 0.82, 0.05], [0.1, 0.3, 0.85], [0.1, 0.65, 0.2], [1.0, 0.5, 0.05]];
    let mut order: Vec<usize> = (0..PRIMARIES.len()).collect();
    rng.shuffle(&mut order);
    let palette = Palette {
        primary: PRIMARIES[order[0]],
        secondary: PRIMARIES[order[1]],
        dark: [0.15, 0.15, 0.17],
        light: [0.97, 0.97, 0.97],
        accent: PRIMARIES[order[2]],
    };
    for item in scene {
        contact_shadow(&mut canvas, item, 0.4);
        let mut chunky = Item { object: item.object.clone(), pose: item.pose };
        thicken_strokes(&mut chunky.object, 1.8);
        glossy_object(&mut canvas, &chunky, &palette, pt(-0.3, -0.4), 0.9, size);
    }
    canvas
}

/// Scales every stroke's width (toys have fat handles, masts and stems).
fn thicken_strokes(object: &mut Object, k: f32) {
    for part in &mut object.parts {
        if let objects::Shape::Stroke { width, .. } = &mut part.shape {
            *width *= k;
        }
    }
}

/// Translucent pastel plastic on a white sweep.
fn plastic(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let mut canvas = Canvas::new(n, n, [0.96, 0.96, 0.97]);
    canvas.shade(|_, y| scale_rgb([0.97, 0.97, 0.98], 1.0 - 0.12 * y / n as f32));
    let hue_shift = sym(rng, 0.1);
    for item in scene {
        contact_shadow(&mut canvas, item, 0.2);
        let pastel = |c: Rgb| {
            let (h, _, _) = to_hsv(c);
            hsv(h + hue_shift, 0.45, 0.92)
        };
        let p = item.object.palette;
        let palette = Palette {
            primary: pastel(p.primary),
            secondary: pastel(p.secondary),
            dark: pastel(p.dark),
            light: [1.0, 1.0, 1.0],
            accent: pastel(p.accent),
        };
        let xf = item.pose.affine();
        let hl = xf.apply(pt(-0.35, -0.45));
        let scale = item.pose.scale;
        for part in &item.object.parts {
            let base = palette.get(part.role);
            fill_part(&mut canvas, part, &xf, 0.8 * px_unit(size), |x, y| {
                let d2 = ((x - hl.x).powi(2) + (y - hl.y).powi(2)) / (scale * scale);
                let spot = (1.0 - d2 * 12.0).max(0.0);
                (mix(base, [1.0, 1.0, 1.0], spot), 0.78)
            });
        }
    }
    canvas
}

/// Plush: pastel fabric, soft edges, fuzz and stitched seams.
fn plushie(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let bed = hsv(uf(rng, 0.0, 1.0), uf(rng, 0.1, 0.25), uf(rng, 0.85, 0.95));
    let mut canvas = Canvas::new(n, n, bed);
    let folds = Noise::new(rng.next_u64());
    let k = 2.5 / n as f32;
    canvas.shade(|x, y| scale_rgb(bed, 0.88 + 0.16 * folds.fbm(x * k, y * k, 2)));
    let hue_shift = sym(rng, 0.08);
    let fabric = |c: Rgb| {
        let (h, s, v) = to_hsv(c);
        hsv(h + hue_shift, (s * 0.6).clamp(0.2, 0.5), (v * 0.5 + 0.45).min(0.97))
    };
    flat_scene(&mut canvas, scene, 1.6 * unit, |o, p| if p.role == Role::Dark { [0.12, 0.1, 0.1] } else { fabric(o.palette.get(p.role)) });
    canvas.soften((unit.round() as usize).max(1), 0.6);
    add_grain(&mut canvas, rng.next_u64(), 0.035, true);
    for item in scene {
        let xf = item.pose.affine();
        for part in item.object.parts.iter().filter(|p| p.role == Role::Primary) {
            let (line, closed) = outline_px(part, &xf, unit);
            let colour = scale_rgb(fabric(item.object.palette.primary), 0.6);
            stitches(&mut canvas, &line, closed, colour, 0.55 * unit, 2);
        }
    }
    canvas
}

/// A dashed line: `run` points on, `run` points off, along a finely resampled polyline.
fn stitches(canvas: &mut Canvas, line: &[Pt], closed: bool, colour: Rgb, width: f32, run: usize) {
    let mut pts = line.to_vec();
    if closed && !pts.is_empty() {
        pts.push(pts[0]);
    }
    for (i, dash) in pts.chunks(run + 1).enumerate() {
        if i % 2 == 0 && dash.len() > 1 {
            draw_polyline(canvas, dash, false, width, colour, 1.0);
        }
    }
}

/// Pixel art: drawn at half resolution with a coarse palette and hard outlines, on a platformer
/// sky with a grass ledge, then enlarged without smoothing.
fn pixel_art(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let low = (size as usize / 2).max(8);
    let k = low as f32 / size as f32;
    let sky = *rng.pick(&[[0.36, 0.58, 0.98], [0.45, 0.8, 0.95], [0.1, 0.1, 0.25]]);
    let mut canvas = Canvas::new(low, low, sky);
    let ledge = (low as f32 * uf(rng, 0.8, 0.9)).floor();
    canvas.shade(|_, y| {
        if y < ledge {
            sky
        } else if y < ledge + 1.0 {
            [0.2, 0.8, 0.2]
        } else {
            [0.55, 0.35, 0.15]
        }
    });
    for item in scene {
        let mut pose = item.pose;
        pose.centre = pt(pose.centre.x * k, pose.centre.y * k);
        pose.scale *= k;
        let xf = pose.affine();
        for part in &item.object.parts {
            let c = quantise(vivid(&item.object.palette, 1.3).get(part.role), 3.0);
            fill_part(&mut canvas, part, &xf, 1.0, |_, _| (c, 1.0));
        }
    }
    // Hard-edged sprites: snap anti-aliased edges to the nearest palette entry.
    canvas.map(|c, _, _| quantise(c, 3.0));
    canvas.resize_nearest(size as usize, size as usize)
}

fn quantise(c: Rgb, levels: f32) -> Rgb {
    c.map(|v| (v.clamp(0.0, 1.0) * levels).round() / levels)
}

/// Old-school tattoo on skin: blue-black contours and a few saturated inks, slightly bled.
fn tattoo(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let skin = hsv(uf(rng, 0.04, 0.09), uf(rng, 0.25, 0.5), uf(rng, 0.55, 0.9));
    let mut canvas = Canvas::new(n, n, skin);
    let pores = Noise::new(rng.next_u64());
    let k = 9.0 / n as f32;
    canvas.shade(|x, y| scale_rgb(skin, 0.94 + 0.1 * pores.fbm(x * k, y * k, 2)));
    const INKS: [Rgb; 4] = [[0.75, 0.1, 0.1], [0.1, 0.45, 0.25], [0.9, 0.7, 0.1], [0.1, 0.45, 0.55]];
    let ink = [0.08, 0.1, 0.18];
    let (first, second) = (*rng.pick(&INKS), *rng.pick(&INKS));
    for item in scene {
        let xf = item.pose.affine();
        for part in &item.object.parts {
            let colour = match part.role {
                Role::Primary => first,
                Role::Secondary | Role::Accent => second,
                Role::Dark => ink,
                Role::Light => continue,
            };
            fill_part(&mut canvas, part, &xf, unit, |_, _| (colour, 0.85));
        }
        ink_outlines(&mut canvas, item, ink, 1.3 * unit, unit);
    }
    canvas.soften((unit.round() as usize).max(1), 0.25);
    canvas
}

/// Satin-stitched thread on woven linen with running-stitch contours.
fn embroidery(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let linen = hsv(uf(rng, 0.08, 0.14), uf(rng, 0.08, 0.25), uf(rng, 0.8, 0.92));
    let mut canvas = Canvas::new(n, n, linen);
    canvas.shade(|x, y| scale_rgb(linen, if (x as i32 + y as i32) % 2 == 0 { 1.0 } else { 0.92 }));
    let thread = [0.15, 0.1, 0.1];
    for item in scene {
        let xf = item.pose.affine();
        let palette = vivid(&item.object.palette, 1.4);
        for part in &item.object.parts {
            let c = palette.get(part.role);
            let angle = uf(rng, 0.0, PI);
            let (s, co) = angle.sin_cos();
            let pitch = 1.4 * unit;
            fill_part(&mut canvas, part, &xf, unit, |x, y| {
                let u = (x * co + y * s) / pitch;
                (scale_rgb(c, 0.72 + 0.38 * (u * PI).sin().abs()), 1.0)
            });
            let (line, closed) = outline_px(part, &xf, unit);
            stitches(&mut canvas, &line, closed, thread, 0.6 * unit, 1);
        }
    }
    canvas
}

/// Spray paint on a brick wall: neon gradients, a soft over-spray halo, fat outlines, drips.
fn graffiti(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let unit = px_unit(size);
    let mut canvas = brick_wall(n, unit, rng);
    const SPRAY: [Rgb; 6] = [[1.0, 0.2, 0.6], [0.1, 0.9, 0.9], [1.0, 0.85, 0.1], [0.4, 1.0, 0.2], [1.0, 0.45, 0.1], [0.6, 0.3, 1.0]];
    let (top, bottom, halo) = (*rng.pick(&SPRAY), *rng.pick(&SPRAY), *rng.pick(&SPRAY));
    for item in scene {
        let xf = item.pose.affine();
        let (c, s) = (item.pose.centre, item.pose.scale);
        for part in &item.object.parts {
            let (line, closed) = outline_px(part, &xf, 3.0 * unit);
            draw_polyline(&mut canvas, &line, closed, 3.5 * unit, halo, 0.3);
        }
        for part in &item.object.parts {
            let tone = if part.role == Role::Dark { 0.3 } else { 1.0 };
            fill_part(&mut canvas, part, &xf, 1.2 * unit, |_, y| {
                (scale_rgb(mix(top, bottom, ((y - c.y) / s * 0.5 + 0.5).clamp(0.0, 1.0)), tone), 1.0)
            });
        }
        for part in &item.object.parts {
            let (line, closed) = outline_px(part, &xf, 3.0 * unit);
            draw_polyline(&mut canvas, &line, closed, 1.5 * unit, [0.05, 0.05, 0.05], 1.0);
        }
        for _ in 0..2 + rng.below(3) {
            let x = c.x + sym(rng, 0.6) * s;
            let y0 = c.y + uf(rng, 0.2, 0.6) * s;
            let len = uf(rng, 2.0, 6.0) * unit;
            draw_polyline(&mut canvas, &[pt(x, y0), pt(x, y0 + len)], false, 0.8 * unit, bottom, 0.9);
        }
    }
    canvas
}

fn brick_wall(n: usize, unit: f32, rng: &mut Stream) -> Canvas {
    let base = if rng.chance(0.6) {
        hsv(uf(rng, 0.0, 0.05), uf(rng, 0.45, 0.7), uf(rng, 0.45, 0.65))
    } else {
        hsv(0.6, 0.05, uf(rng, 0.45, 0.65))
    };
    let mortar = [0.78, 0.76, 0.72];
    let variation = Noise::new(rng.next_u64());
    let (bw, bh) = (8.0 * unit, 4.0 * unit);
    let mut canvas = Canvas::new(n, n, base);
    canvas.shade(|x, y| {
        let row = (y / bh).floor();
        let shifted = x + if row as i32 % 2 == 0 { 0.0 } else { bw * 0.5 };
        let col = (shifted / bw).floor();
        let (fx, fy) = (shifted - col * bw, y - row * bh);
        let joint = fx < 0.8 * unit || fy < 0.8 * unit;
        if joint {
            mortar
        } else {
            scale_rgb(base, 0.85 + 0.3 * variation.white(col as i32, row as i32))
        }
    });
    canvas
}

/// Marble, bronze or stone: one material, strong modelling light, a pedestal, a dark gallery.
fn sculpture(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
    let n = size as usize;
    let s = n as f32;
    let wall = hsv(uf(rng, 0.0, 1.0), uf(rng, 0.1, 0.35), uf(rng, 0.15, 0.3));
    let mut canvas = Canvas::new(n, n, wall);
    canvas.shade(|x, y| {
        let d = ((x / s - 0.5).powi(2) + (y / s - 0.4).powi(2)).sqrt();
        scale_rgb(wall, 1.6 - d * 1.5)
    });
    let material = rng.below(3);
    let (stone, veins) = match material {
        0 => ([0.9, 0.89, 0.86], [0.6, 0.62, 0.65]),
        1 => ([0.55, 0.38, 0.18], [0.35, 0.25, 0.12]),
        _ => ([0.6, 0.6, 0.58], [0.45, 0.45, 0.44]),
    };
    let grain = Noise::new(rng.next_u64());
    let k = 6.0 / s;
    let surface = |x: f32, y: f32| {
        let t = ((x + y) * k * 2.0 + grain.fbm(x * k, y * k, 3) * 6.0).sin();
        mix(stone, veins, (t * t * t * t) * if material == 0 { 0.8 } else { 0.3 })
    };
    for item in scene {
        let (c, sc) = (item.pose.centre, item.pose.scale);
        let top = object_bottom(item) - sc * 0.03;
        let pedestal = vec![
            pt(c.x - sc * 0.6, top),
            pt(c.x + sc * 0.6, top),
            pt(c.x + sc * 0.6, top + sc * 0.55),
            pt(c.x - sc * 0.6, top + sc * 0.55),
        ];
        canvas.fill(&polygon_contours(vec![pedestal]), |x, y| (scale_rgb(surface(x, y), 0.7), 1.0));
        let xf = item.pose.affine();
        for part in &item.object.parts {
            let tone = match part.role {
                Role::Dark => 0.55,
                Role::Light => 1.15,
                _ => 1.0,
            };
            fill_part(&mut canvas, part, &xf, 0.8 * px_unit(size), |x, y| {
                let side = ((x - c.x) * 0.6 + (y - c.y) * 0.8) / sc;
                (scale_rgb(surface(x, y), tone * (0.85 - 0.45 * side).clamp(0.3, 1.3)), 1.0)
            });
        }
    }
    canvas
}

// ---------------------------------------------------------------------------------------------
// Condition words and photographic degradations.

fn apply_condition(canvas: &mut Canvas, style: &PromptStyle, rng: &mut Stream, size: u32) {
    match style.condition {
        Condition::Normal => {}
        Condition::Clean => canvas.map(|c, _, _| {
            let (h, s, v) = to_hsv(c);
            hsv(h, (s * 1.1).min(1.0), (v * 1.04).min(1.0))
        }),
        Condition::Dirty => {
            let grime = Noise::new(rng.next_u64());
            let k = 5.0 / size as f32;
            let mud = [0.3, 0.25, 0.17];
            canvas.map(|c, x, y| {
                let blot = ((grime.fbm(x * k, y * k, 3) - 0.45) * 3.0).clamp(0.0, 1.0);
                let speck = if grime.white(x as i32, y as i32) > 0.93 { 0.4 } else { 0.0 };
                mix(c, mud, (blot * 0.55 + speck).min(0.8))
            });
        }
    }
    if style.weird {
        let shift = uf(rng, 0.2, 0.8);
        canvas.map(|c, _, _| {
            let (h, s, v) = to_hsv(c);
            hsv(h + shift, s, v)
        });
    }
}

fn degrade(canvas: &mut Canvas, d: Degradation, rng: &mut Stream, size: u32) {
    let unit = px_unit(size);
    let n = size as usize;
    match d {
        Degradation::Bad => {
            canvas.box_blur((unit.round() as usize).max(1), 1);
            add_grain(canvas, rng.next_u64(), 0.02, false);
        }
        Degradation::Blurry => canvas.box_blur(((unit * uf(rng, 1.0, 2.0)).round() as usize).max(1), 2),
        Degradation::Pixelated => {
            let block = ((size as f32 / uf(rng, 11.0, 16.0)).round() as usize).max(2);
            *canvas = canvas.downsample(block).resize_nearest(n, n);
        }
        Degradation::JpegCorrupted => jpeg_like(canvas, uf(rng, 2.0, 4.0), 0.03, rng),
        Degradation::Dark => {
            let exposure = uf(rng, 0.25, 0.45);
            canvas.map(|c, _, _| c.map(|v| (v.max(0.0) * exposure).powf(1.15)));
        }
        Degradation::Bright => {
            let lift = uf(rng, 0.3, 0.5);
            canvas.map(|c, _, _| c.map(|v| 1.0 - (1.0 - v.min(1.0)) * lift));
        }
        Degradation::BlackAndWhite => canvas.map(|c, _, _| {
            let l = ((luma(c) - 0.5) * 1.15 + 0.5).clamp(0.0, 1.0);
            [l, l, l]
        }),
        Degradation::LowResolution => {
            let factor = ((size as f32 / uf(rng, 8.0, 12.0)).round() as usize).max(2);
            *canvas = canvas.downsample(factor).resize_bilinear(n, n);
        }
        Degradation::HardToSee => {
            let fog = canvas.mean();
            let amount = uf(rng, 0.4, 0.6);
            canvas.map(|c, _, _| mix(c, fog, amount));
        }
        // Framing-only words, handled by the layout.
        Degradation::Cropped | Degradation::CloseUp => {}
    }
}

/// Block-transform compression artefacts: each 8×8 block of luma and chroma is transformed,
/// coarsely quantised (chroma harder) and reconstructed; a fraction `corrupt` of the chroma
/// blocks get a wrong DC term, the way a damaged file shows off-colour squares.
fn jpeg_like(canvas: &mut Canvas, harshness: f32, corrupt: f64, rng: &mut Stream) {
    let (w, h) = (canvas.width, canvas.height);
    let mut planes = [vec![0.0f32; w * h], vec![0.0f32; w * h], vec![0.0f32; w * h]];
    for (i, c) in canvas.px.iter().enumerate() {
        let y = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        planes[0][i] = y;
        planes[1][i] = (c[2] - y) * 0.564;
        planes[2][i] = (c[0] - y) * 0.713;
    }
    let basis = dct_basis();
    let blocks = (w.div_ceil(8), h.div_ceil(8));
    for (p, plane) in planes.iter_mut().enumerate() {
        let step = if p == 0 { 0.012 * harshness } else { 0.03 * harshness };
        for by in 0..blocks.1 {
            for bx in 0..blocks.0 {
                let shift = if p > 0 && rng.chance(corrupt) { sym(rng, 0.15) } else { 0.0 };
                quantise_block(plane, w, h, bx * 8, by * 8, step, shift, &basis);
            }
        }
    }
    for (i, c) in canvas.px.iter_mut().enumerate() {
        let (y, cb, cr) = (planes[0][i], planes[1][i] / 0.564, planes[2][i] / 0.713);
        let r = cr + y;
        let b = cb + y;
        let g = (y - 0.299 * r - 0.114 * b) / 0.587;
        *c = [r, g, b];
    }
}

/// `basis[u][x]` = the orthonormal DCT-II basis for 8 samples.
fn dct_basis() -> [[f32; 8]; 8] {
    let mut basis = [[0.0f32; 8]; 8];
    for (u, row) in basis.iter_mut().enumerate() {
        let norm = if u == 0 { (1.0f32 / 8.0).sqrt() } else { (2.0f32 / 8.0).sqrt() };
        for (x, v) in row.iter_mut().enumerate() {
            *v = norm * ((2 * x + 1) as f32 * u as f32 * PI / 16.0).cos();
        }
    }
    basis
}

/// Transforms one block (edges replicate), quantises with a step growing with frequency, adds
/// `dc_shift` to the mean, and writes back the pixels inside the image.
#[allow(clippy::too_many_arguments)]
fn quantise_block(plane: &mut [f32], w: usize, h: usize, x0: usize, y0: usize, step: f32, dc_shift: f32, basis: &[[f32; 8]; 8]) {
    let mut block = [[0.0f32; 8]; 8];
    for (y, row) in block.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            *v = plane[(y0 + y).min(h - 1) * w + (x0 + x).min(w - 1)];
        }
    }
    let mut coef = [[0.0f32; 8]; 8];
    for v in 0..8 {
        for u in 0..8 {
            let mut sum = 0.0;
            for y in 0..8 {
                for x in 0..8 {
                    sum += basis[u][x] * basis[v][y] * block[y][x];
                }
            }
            let q = step * (1.0 + (u + v) as f32);
            coef[v][u] = (sum / q).round() * q;
        }
    }
    coef[0][0] += dc_shift * 8.0;
    for y in 0..8 {
        for x in 0..8 {
            if y0 + y >= h || x0 + x >= w {
                continue;
            }
            let mut sum = 0.0;
            for v in 0..8 {
                for u in 0..8 {
                    sum += basis[u][x] * basis[v][y] * coef[v][u];
                }
            }
            plane[(y0 + y) * w + x0 + x] = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_canvas() -> Canvas {
        let mut c = Canvas::new(20, 12, [0.0; 3]);
        c.shade(|x, y| [x / 20.0, y / 12.0, ((x * 0.7).sin() + 1.0) * 0.4]);
        c
    }

    #[test]
    fn block_transform_is_lossless_without_quantisation() {
        let original = test_canvas();
        let mut c = original.clone();
        jpeg_like(&mut c, 1e-6, 0.0, &mut Stream::new(1, "t", 0));
        for (a, b) in original.px.iter().zip(&c.px) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 1e-3, "{a:?} became {b:?}");
            }
        }
    }

    #[test]
    fn compression_changes_the_image_blockwise() {
        let original = test_canvas();
        let mut c = original.clone();
        jpeg_like(&mut c, 4.0, 0.0, &mut Stream::new(1, "t", 0));
        let changed = original.px.iter().zip(&c.px).filter(|(a, b)| (0..3).any(|k| (a[k] - b[k]).abs() > 0.01)).count();
        assert!(changed > original.px.len() / 4, "only {changed} pixels changed");
    }

    #[test]
    fn hatching_and_quantisation_behave() {
        let hatch = Hatch { spacing: 3.0, angle: 0.0, width: 0.5 };
        assert!(hatch.coverage(3.0, 1.0) > 0.9);
        assert_eq!(hatch.coverage(1.5, 1.0), 0.0);
        assert_eq!(quantise([0.1, 0.5, 0.97], 3.0), [0.0, 2.0 / 3.0, 1.0]);
    }
}
