//! Renditions: cartoons, paintings, origami, toys, tattoos and the other media of the templates.

use crate::generate::prompt::Rendition;
use crate::data::procedural::objects::{self, Object, Palette, Part, Role};
use crate::data::procedural::paint::{add_grain, draw_polyline, fill_part, outline_px, px_unit, sym, uf};
use crate::data::procedural::raster::{ellipse_polygon, hsv, luma, mix, polygon_contours, pt, scale_rgb, to_hsv, Canvas, Noise, Pt, Rgb};
use crate::rng::Stream;
use std::f32::consts::{PI, TAU};
use super::line_art::ink_outlines;
use super::photo::{contact_shadow, glossy_object, object_bottom, vivid};
use super::Item;

pub(super) fn rendition(kind: Rendition, scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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

pub(super) fn flat_scene(canvas: &mut Canvas, scene: &[Item], min_stroke: f32, colour: impl Fn(&Object, &Part) -> Rgb) {
    for item in scene {
        let xf = item.pose.affine();
        for part in &item.object.parts {
            let c = colour(&item.object, part);
            fill_part(canvas, part, &xf, min_stroke, |_, _| (c, 1.0));
        }
    }
}

/// Impressionism: the picture is rebuilt from short oriented dabs of colour.
pub(super) fn impressionist(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn readable(colour: Rgb, ground: Rgb) -> Rgb {
    let (l, g) = (luma(colour), luma(ground));
    if (l - g).abs() >= 0.2 {
        return colour;
    }
    let target = if g > 0.5 { (g - 0.2).max(0.05) } else { g + 0.2 };
    colour.map(|v| (v * target / l.max(0.02)).clamp(0.0, 1.0))
}

/// Cel shading: two flat tones per part split by a hard terminator, outlines in a darker shade
/// of the part's own colour, on a radial backdrop.
pub(super) fn cel_shaded(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn cg_render(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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

pub(super) fn bulge_shaded(canvas: &mut Canvas, item: &Item, light: [f32; 3], alpha: f32, size: u32) {
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
pub(super) fn origami(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn facets(canvas: &mut Canvas, contour: &[Pt], colour: Rgb, rng: &mut Stream, unit: f32) {
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
pub(super) fn toy(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn thicken_strokes(object: &mut Object, k: f32) {
    for part in &mut object.parts {
        if let objects::Shape::Stroke { width, .. } = &mut part.shape {
            *width *= k;
        }
    }
}

/// Translucent pastel plastic on a white sweep.
pub(super) fn plastic(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn plushie(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn stitches(canvas: &mut Canvas, line: &[Pt], closed: bool, colour: Rgb, width: f32, run: usize) {
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
pub(super) fn pixel_art(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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

pub(super) fn quantise(c: Rgb, levels: f32) -> Rgb {
    c.map(|v| (v.clamp(0.0, 1.0) * levels).round() / levels)
}

/// Old-school tattoo on skin: blue-black contours and a few saturated inks, slightly bled.
pub(super) fn tattoo(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn embroidery(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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
pub(super) fn graffiti(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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

pub(super) fn brick_wall(n: usize, unit: f32, rng: &mut Stream) -> Canvas {
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
pub(super) fn sculpture(scene: &[Item], rng: &mut Stream, size: u32) -> Canvas {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_snaps_to_the_nearest_level() {
        assert_eq!(quantise([0.1, 0.5, 0.97], 3.0), [0.0, 2.0 / 3.0, 1.0]);
    }
}
