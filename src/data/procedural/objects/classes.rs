//! The ten classes' builders: each draws its sub-type and proportions and adds its parts.

use super::{any_hue, dark, glass, greyish, int, near, u, Builder, Palette, Role};
use crate::data::procedural::raster::{arc, ellipse_polygon, pt, Pt, Rgb};
use crate::rng::Stream;
use std::f32::consts::{FRAC_PI_2, PI, TAU};

pub(super) fn airplane(b: &mut Builder, rng: &mut Stream) -> Palette {
    if rng.chance(0.6) {
        airplane_side(b, rng);
    } else {
        airplane_top(b, rng);
    }
    let livery = rng.chance(0.25);
    Palette {
        primary: if livery { any_hue(rng, (0.4, 0.8), (0.55, 0.9)) } else { greyish(rng, (0.78, 0.97)) },
        secondary: greyish(rng, (0.55, 0.8)),
        dark: dark(rng),
        light: glass(rng),
        accent: any_hue(rng, (0.6, 0.95), (0.45, 0.9)),
    }
}

/// Airliner seen from the side, nose to the right.
pub(super) fn airplane_side(b: &mut Builder, rng: &mut Stream) {
    let fr = u(rng, 0.1, 0.16);
    let fin_h = u(rng, 0.3, 0.5);
    let sweep = u(rng, 0.05, 0.2);
    let drop = u(rng, 0.22, 0.42);
    let wing_x = u(rng, -0.1, 0.15);
    // Fuselage: a long capsule that narrows and lifts towards the tail.
    let mut body = arc(pt(0.15, 0.0), 0.85, fr, 0.0, -FRAC_PI_2, FRAC_PI_2, 10);
    body.push(pt(-0.7, fr));
    body.push(pt(-1.0, -fr * 0.2));
    body.push(pt(-1.0, -fr));
    body.push(pt(0.15, -fr));
    b.poly(
        Role::Secondary,
        &[(wing_x + 0.25, fr * 0.2), (wing_x - 0.1, fr * 0.2), (wing_x - 0.4 - sweep, fr + drop), (wing_x - 0.22 - sweep, fr + drop)],
    );
    b.poly_pts(Role::Primary, body);
    b.poly(Role::Accent, &[(-0.7, -fr * 0.8), (-0.98, -fr * 0.8), (-1.05 - sweep, -fr - fin_h), (-0.88 - sweep, -fr - fin_h)]);
    b.poly(Role::Secondary, &[(-0.72, -fr * 0.1), (-0.95, -fr * 0.1), (-1.02, fr * 0.9), (-0.9, fr * 0.9)]);
    if rng.chance(0.7) {
        b.ellipse(Role::Secondary, wing_x - 0.02, fr + 0.12, 0.17, 0.065, 0.0);
    }
    b.poly(Role::Dark, &[(0.82, -fr * 0.6), (0.95, -fr * 0.3), (0.93, -fr * 0.05), (0.78, -fr * 0.2)]);
    b.stroke(Role::Dark, vec![pt(-0.6, -fr * 0.3), pt(0.68, -fr * 0.3)], 0.035);
}

/// Airliner seen from above, nose to the right: the cross silhouette.
pub(super) fn airplane_top(b: &mut Builder, rng: &mut Stream) {
    let fr = u(rng, 0.08, 0.12);
    let span = u(rng, 0.75, 1.0);
    let lead = u(rng, 0.05, 0.3);
    let root = u(rng, 0.3, 0.45);
    let sweep = u(rng, 0.2, 0.5);
    let tip = u(rng, 0.08, 0.18);
    let tail_span = span * u(rng, 0.3, 0.42);
    for side in [-1.0f32, 1.0] {
        b.poly(Role::Secondary, &[(lead, 0.0), (lead - sweep, side * span), (lead - sweep - tip, side * span), (lead - root, 0.0)]);
        b.poly(
            Role::Secondary,
            &[(-0.72, 0.0), (-0.72 - sweep * 0.4, side * tail_span), (-0.8 - sweep * 0.4, side * tail_span), (-0.92, 0.0)],
        );
        if rng.chance(0.8) {
            b.ellipse(Role::Dark, lead - sweep * 0.4 - 0.05, side * span * 0.4, 0.12, 0.05, 0.0);
        }
    }
    b.ellipse(Role::Primary, 0.0, 0.0, 1.0, fr, 0.0);
    b.ellipse(Role::Dark, 0.85, 0.0, 0.07, fr * 0.6, 0.0);
}

pub(super) fn boat(b: &mut Builder, rng: &mut Stream) -> Palette {
    let deck = 0.1;
    let depth = u(rng, 0.2, 0.36);
    let rise = u(rng, 0.0, 0.15);
    let kind = rng.below(10);
    // Sails first so the hull covers the boom; the hull always sits on the water line.
    match kind {
        0..=4 => sails(b, rng, deck),
        5..=7 => motor_cabin(b, rng, deck),
        _ => ship_superstructure(b, rng, deck),
    }
    b.poly(Role::Primary, &[(-0.95, deck - 0.02), (1.05, deck - rise), (0.72, deck + depth), (-0.82, deck + depth)]);
    if rng.chance(0.6) {
        b.stroke(Role::Accent, vec![pt(-0.93, deck + depth * 0.3), pt(0.95, deck + depth * 0.3 - rise * 0.8)], 0.06);
    }
    let wooden = rng.chance(0.25);
    Palette {
        primary: if wooden { near(rng, 0.07, 0.03, (0.45, 0.7), (0.35, 0.6)) } else { hull_colour(rng) },
        secondary: greyish(rng, (0.6, 0.85)),
        dark: dark(rng),
        light: near(rng, 0.12, 0.05, (0.0, 0.15), (0.85, 0.98)),
        accent: any_hue(rng, (0.6, 0.95), (0.5, 0.9)),
    }
}

pub(super) fn hull_colour(rng: &mut Stream) -> Rgb {
    match rng.below(4) {
        0 => greyish(rng, (0.85, 0.97)),
        1 => near(rng, 0.0, 0.03, (0.6, 0.9), (0.5, 0.85)),
        2 => near(rng, 0.62, 0.05, (0.5, 0.9), (0.3, 0.7)),
        _ => any_hue(rng, (0.3, 0.8), (0.4, 0.9)),
    }
}

pub(super) fn sails(b: &mut Builder, rng: &mut Stream, deck: f32) {
    let mast_x = u(rng, -0.15, 0.15);
    let mast_h = u(rng, 0.95, 1.3);
    let top = deck - mast_h;
    let boom = deck - 0.1;
    b.poly(Role::Light, &[(mast_x + 0.03, top + 0.05), (mast_x + 0.03, boom), (mast_x + u(rng, 0.5, 0.85), boom)]);
    if rng.chance(0.65) {
        b.poly(Role::Light, &[(mast_x - 0.03, top + mast_h * 0.15), (mast_x - 0.03, boom), (mast_x - u(rng, 0.35, 0.7), boom)]);
    }
    b.stroke(Role::Dark, vec![pt(mast_x, deck), pt(mast_x, top)], 0.045);
}

pub(super) fn motor_cabin(b: &mut Builder, rng: &mut Stream, deck: f32) {
    let x0 = u(rng, -0.6, -0.3);
    let x1 = u(rng, 0.15, 0.4);
    let h = u(rng, 0.22, 0.35);
    b.poly(Role::Secondary, &[(x0, deck), (x1, deck), (x1 - 0.18, deck - h), (x0 + 0.05, deck - h)]);
    b.poly(
        Role::Dark,
        &[(x1 - 0.08, deck - h * 0.3), (x1 - 0.18, deck - h * 0.85), (x1 - 0.35, deck - h * 0.85), (x1 - 0.35, deck - h * 0.3)],
    );
    if rng.chance(0.5) {
        b.stroke(Role::Dark, vec![pt(x0 + 0.05, deck - h), pt(x0 + 0.05, deck - h - 0.25)], 0.04);
    }
}

pub(super) fn ship_superstructure(b: &mut Builder, rng: &mut Stream, deck: f32) {
    let h = u(rng, 0.2, 0.3);
    b.rect(Role::Light, -0.65, deck - h, 0.25, deck);
    b.rect(Role::Light, -0.45, deck - h * 1.8, 0.05, deck - h + 0.01);
    let fx = u(rng, -0.35, -0.15);
    b.poly(
        Role::Accent,
        &[(fx - 0.1, deck - h * 1.8), (fx + 0.06, deck - h * 1.8), (fx + 0.1, deck - h * 2.7), (fx - 0.06, deck - h * 2.7)],
    );
    for i in 0..3 {
        let x = -0.55 + i as f32 * 0.22;
        b.rect(Role::Dark, x, deck - h * 0.7, x + 0.1, deck - h * 0.4);
    }
}

pub(super) fn car(b: &mut Builder, rng: &mut Stream) -> Palette {
    let r = u(rng, 0.16, 0.22);
    let sill = 0.25;
    let belt = u(rng, -0.08, 0.04);
    let h = u(rng, 0.26, 0.36);
    let cabin: Vec<(f32, f32)> = match rng.below(5) {
        0 => vec![(-0.6, belt), (0.45, belt), (0.18, belt - h), (-0.38, belt - h)],
        1 => vec![(-0.92, belt), (0.45, belt), (0.2, belt - h), (-0.85, belt - h)],
        2 => vec![(-0.98, belt), (0.7, belt), (0.5, belt - h * 1.6), (-0.98, belt - h * 1.6)],
        3 => vec![(-0.15, belt), (0.5, belt), (0.32, belt - h), (-0.15, belt - h)],
        _ => vec![(-0.5, belt), (0.42, belt), (0.08, belt - h * 0.7), (-0.28, belt - h * 0.7)],
    };
    let window = shrink(&cabin, 0.72);
    b.poly(Role::Primary, &cabin);
    b.poly(Role::Light, &window);
    b.poly(Role::Primary, &[(-1.0, belt + 0.06), (-0.95, belt), (0.62, belt), (0.98, belt + 0.1), (1.0, sill), (-1.0, sill)]);
    let pillar = lerp_x(&window, 0.5);
    let window_top = window.iter().map(|p| p.1).fold(f32::MAX, f32::min);
    b.stroke(Role::Primary, vec![pt(pillar, belt), pt(pillar, window_top)], 0.05);
    for wx in [-0.6f32, 0.6] {
        b.circle(Role::Dark, wx, sill, r);
        b.circle(Role::Light, wx, sill, r * u(rng, 0.35, 0.5));
    }
    b.ellipse(Role::Accent, 0.95, belt + 0.13, 0.05, 0.04, 0.0);
    Palette {
        primary: any_hue(rng, (0.45, 0.9), (0.35, 0.9)),
        secondary: greyish(rng, (0.4, 0.7)),
        dark: dark(rng),
        light: glass(rng),
        accent: near(rng, 0.12, 0.05, (0.5, 0.9), (0.85, 1.0)),
    }
}

/// The polygon shrunk towards its centroid by factor `k` (window inside a cabin).
pub(super) fn shrink(points: &[(f32, f32)], k: f32) -> Vec<(f32, f32)> {
    let n = points.len() as f32;
    let cx = points.iter().map(|p| p.0).sum::<f32>() / n;
    let cy = points.iter().map(|p| p.1).sum::<f32>() / n;
    points.iter().map(|&(x, y)| (cx + (x - cx) * k, cy + (y - cy) * k)).collect()
}

pub(super) fn lerp_x(points: &[(f32, f32)], t: f32) -> f32 {
    let lo = points.iter().map(|p| p.0).fold(f32::MAX, f32::min);
    let hi = points.iter().map(|p| p.0).fold(f32::MIN, f32::max);
    lo + (hi - lo) * t
}

pub(super) fn cup(b: &mut Builder, rng: &mut Stream) -> Palette {
    let kind = rng.below(3);
    let (top_w, bottom_w, top, bottom) = match kind {
        0 => {
            let w = u(rng, 0.4, 0.55);
            (w, w * u(rng, 0.9, 1.0), -u(rng, 0.5, 0.7), u(rng, 0.45, 0.6))
        }
        1 => {
            let w = u(rng, 0.55, 0.7);
            (w, w * u(rng, 0.5, 0.65), -0.3, 0.25)
        }
        _ => {
            let w = u(rng, 0.4, 0.5);
            (w, w * u(rng, 0.65, 0.8), -0.7, 0.6)
        }
    };
    if kind == 1 {
        b.ellipse(Role::Secondary, 0.0, bottom + 0.04, top_w * 1.45, 0.1, 0.0);
    }
    let has_handle = kind != 2 || rng.chance(0.3);
    if has_handle {
        let hy = top * 0.35 + bottom * 0.65 - (bottom - top) * 0.15;
        let hr = (bottom - top) * u(rng, 0.22, 0.3);
        let hx = (top_w + bottom_w) * 0.5 + hr * 0.45;
        b.ring(Role::Primary, ellipse_polygon(pt(hx, hy), hr * 0.8, hr, 0.0, 16), u(rng, 0.08, 0.12));
    }
    // Body with a rounded base.
    let mut body = vec![pt(-top_w, top), pt(top_w, top)];
    body.extend(arc(pt(0.0, bottom - 0.06), bottom_w, 0.08, 0.0, 0.0, PI, 8));
    b.poly_pts(Role::Primary, body);
    if kind == 2 {
        b.rect(Role::Secondary, -top_w * 1.05, top - 0.12, top_w * 1.05, top);
        let band = top + (bottom - top) * 0.45;
        b.poly(
            Role::Accent,
            &[(-top_w * 0.95, band - 0.15), (top_w * 0.95, band - 0.15), (top_w * 0.88, band + 0.15), (-top_w * 0.88, band + 0.15)],
        );
    } else {
        b.ellipse(Role::Light, 0.0, top, top_w, 0.08, 0.0);
        b.ellipse(Role::Dark, 0.0, top + 0.01, top_w * 0.82, 0.055, 0.0);
    }
    if rng.chance(0.3) {
        for i in 0..2 {
            let x = (i as f32 - 0.5) * top_w * 0.6;
            let wave = (0..6).map(|k| pt(x + 0.06 * (k as f32 * 1.6).sin(), top - 0.15 - k as f32 * 0.08)).collect();
            b.stroke(Role::Light, wave, 0.05);
        }
    }
    Palette {
        primary: if rng.chance(0.5) { greyish(rng, (0.85, 0.98)) } else { any_hue(rng, (0.3, 0.8), (0.45, 0.9)) },
        secondary: greyish(rng, (0.75, 0.95)),
        dark: near(rng, 0.07, 0.02, (0.5, 0.8), (0.15, 0.3)),
        light: greyish(rng, (0.88, 1.0)),
        accent: any_hue(rng, (0.5, 0.9), (0.4, 0.8)),
    }
}

pub(super) fn fish(b: &mut Builder, rng: &mut Stream) -> Palette {
    let rx = u(rng, 0.58, 0.75);
    let ry = u(rng, 0.22, 0.42);
    let tail = u(rng, 0.22, 0.42);
    let tx = -rx + 0.08;
    let fork = rng.chance(0.5);
    if fork {
        b.poly(Role::Secondary, &[(tx + 0.12, 0.0), (tx - 0.38, -tail), (tx - 0.22, 0.0), (tx - 0.38, tail)]);
    } else {
        b.poly(Role::Secondary, &[(tx + 0.12, 0.0), (tx - 0.38, -tail), (tx - 0.3, 0.0), (tx - 0.38, tail)]);
    }
    let fin_h = u(rng, 0.12, 0.3);
    b.poly(Role::Secondary, &[(-0.3, -ry * 0.8), (0.2, -ry * 0.85), (-0.2, -ry - fin_h)]);
    b.poly(Role::Secondary, &[(-0.15, ry * 0.8), (0.1, ry * 0.8), (-0.15, ry + fin_h * 0.6)]);
    // A lens-shaped body: blunt head on the right, tapering to the tail.
    let mut body = arc(pt(0.0, 0.0), rx, ry, 0.0, -FRAC_PI_2, FRAC_PI_2, 10);
    body.extend(
        arc(pt(0.0, 0.0), rx, ry, 0.0, FRAC_PI_2, PI * 1.5, 10).into_iter().map(|p| pt(p.x * (0.85 + 0.15 * (p.y / ry).abs()), p.y)),
    );
    b.poly_pts(Role::Primary, body);
    if rng.chance(0.5) {
        let n = int(rng, 2, 3);
        for i in 0..n {
            let x = -rx * 0.45 + i as f32 * rx * 0.35;
            let h = ry * (1.0 - (x / rx) * (x / rx)).max(0.1).sqrt() * 0.85;
            b.ellipse(Role::Accent, x, 0.0, 0.06, h, 0.0);
        }
    }
    b.stroke(Role::Dark, arc(pt(rx * 0.2, 0.0), 0.12, ry * 0.6, 0.0, -1.0, 1.0, 6), 0.03);
    let eye = u(rng, 0.06, 0.09);
    b.circle(Role::Light, rx * 0.6, -ry * 0.25, eye);
    b.circle(Role::Dark, rx * 0.62, -ry * 0.25, eye * 0.55);
    let hue = *rng.pick(&[0.07f32, 0.12, 0.58, 0.0, 0.33, 0.85]);
    let silver = rng.chance(0.2);
    Palette {
        primary: if silver { greyish(rng, (0.6, 0.85)) } else { near(rng, hue, 0.03, (0.6, 0.95), (0.6, 0.95)) },
        secondary: near(rng, hue, 0.05, (0.5, 0.9), (0.4, 0.75)),
        dark: dark(rng),
        light: greyish(rng, (0.88, 1.0)),
        accent: if rng.chance(0.5) { greyish(rng, (0.9, 1.0)) } else { dark(rng) },
    }
}

pub(super) fn flower(b: &mut Builder, rng: &mut Stream) -> Palette {
    let head = pt(u(rng, -0.08, 0.08), -0.45);
    let bend = u(rng, -0.15, 0.15);
    let stem: Vec<Pt> = (0..=6)
        .map(|i| {
            let t = i as f32 / 6.0;
            pt(head.x + bend * (t * PI).sin(), head.y + (1.0 - head.y) * t)
        })
        .collect();
    b.stroke(Role::Secondary, stem, u(rng, 0.05, 0.08));
    for _ in 0..int(rng, 1, 2) {
        let side = if rng.chance(0.5) { -1.0 } else { 1.0 };
        let y = u(rng, 0.2, 0.6);
        let len = u(rng, 0.18, 0.28);
        b.ellipse(Role::Secondary, side * len * 0.9, y, len, len * 0.35, side * -0.6);
    }
    match rng.below(3) {
        0 => {
            // Daisy: many narrow petals.
            let n = int(rng, 9, 14);
            let (len, width) = (u(rng, 0.24, 0.32), u(rng, 0.22, 0.32));
            radial_petals(b, head, n, len, width, u(rng, 0.0, TAU));
            b.circle(Role::Accent, head.x, head.y, u(rng, 0.1, 0.14));
        }
        1 => {
            // Round petals, like a primrose or a cosmos.
            let n = int(rng, 5, 7);
            let (len, width) = (u(rng, 0.22, 0.3), u(rng, 0.5, 0.7));
            radial_petals(b, head, n, len, width, u(rng, 0.0, TAU));
            b.circle(Role::Accent, head.x, head.y, u(rng, 0.1, 0.15));
        }
        _ => {
            // Tulip: a cup with pointed tips.
            let (w, h) = (u(rng, 0.25, 0.35), u(rng, 0.35, 0.5));
            let (x, y) = (head.x, head.y + 0.1);
            b.poly(
                Role::Primary,
                &[
                    (x - w, y - h),
                    (x - w * 0.45, y - h * 0.7),
                    (x, y - h * 1.05),
                    (x + w * 0.45, y - h * 0.7),
                    (x + w, y - h),
                    (x + w * 0.9, y - h * 0.3),
                    (x + w * 0.5, y),
                    (x - w * 0.5, y),
                    (x - w * 0.9, y - h * 0.3),
                ],
            );
        }
    }
    let hue = *rng.pick(&[0.0f32, 0.95, 0.9, 0.8, 0.13, 0.08, 0.7]);
    let white = rng.chance(0.15);
    Palette {
        primary: if white { greyish(rng, (0.9, 1.0)) } else { near(rng, hue, 0.03, (0.55, 0.95), (0.7, 1.0)) },
        secondary: near(rng, 0.3, 0.05, (0.5, 0.85), (0.3, 0.6)),
        dark: dark(rng),
        light: greyish(rng, (0.9, 1.0)),
        accent: near(rng, 0.12, 0.04, (0.7, 1.0), (0.55, 0.95)),
    }
}

pub(super) fn radial_petals(b: &mut Builder, head: Pt, n: u64, len: f32, width: f32, phase: f32) {
    for i in 0..n {
        let a = phase + TAU * i as f32 / n as f32;
        let (s, c) = a.sin_cos();
        b.ellipse(Role::Primary, head.x + c * len, head.y + s * len, len, len * width, a);
    }
}

pub(super) fn house(b: &mut Builder, rng: &mut Stream) -> Palette {
    let w = u(rng, 0.5, 0.8);
    let (top, bottom) = (-0.1, u(rng, 0.6, 0.85));
    let roof_h = u(rng, 0.35, 0.7);
    let overhang = u(rng, 0.05, 0.15);
    let roof_kind = rng.below(10);
    let chimney = rng.chance(0.5);
    if chimney && roof_kind < 8 {
        let cx = w * u(rng, 0.3, 0.55);
        b.rect(Role::Secondary, cx, top - roof_h * 0.85, cx + 0.12, top - roof_h * 0.2);
    }
    b.rect(Role::Primary, -w, top, w, bottom);
    match roof_kind {
        0..=5 => b.poly(Role::Secondary, &[(-w - overhang, top + 0.02), (w + overhang, top + 0.02), (0.0, top - roof_h)]),
        6..=7 => b.poly(
            Role::Secondary,
            &[(-w - overhang, top + 0.02), (w + overhang, top + 0.02), (w * 0.45, top - roof_h * 0.8), (-w * 0.45, top - roof_h * 0.8)],
        ),
        _ => b.rect(Role::Secondary, -w - overhang, top - 0.12, w + overhang, top + 0.02),
    }
    let door_w = u(rng, 0.14, 0.22);
    let door_x = u(rng, -w + door_w + 0.05, w - door_w - 0.05);
    let door_h = (bottom - top) * u(rng, 0.45, 0.6);
    b.rect(Role::Dark, door_x - door_w * 0.5, bottom - door_h, door_x + door_w * 0.5, bottom);
    let windows = int(rng, 0, 2);
    let win = u(rng, 0.15, 0.22);
    let wy = top + (bottom - top) * 0.3;
    for i in 0..windows {
        // Windows go on whichever side of the door has room.
        let side = if (door_x < 0.0) == (i == 0) { 1.0 } else { -1.0 };
        let wx = side * w * 0.55;
        if (wx - door_x).abs() < win + door_w * 0.5 {
            continue;
        }
        b.rect(Role::Light, wx - win * 0.5, wy - win * 0.5, wx + win * 0.5, wy + win * 0.5);
        b.stroke(Role::Dark, vec![pt(wx, wy - win * 0.5), pt(wx, wy + win * 0.5)], 0.025);
        b.stroke(Role::Dark, vec![pt(wx - win * 0.5, wy), pt(wx + win * 0.5, wy)], 0.025);
    }
    Palette {
        primary: match rng.below(3) {
            0 => near(rng, 0.1, 0.04, (0.1, 0.35), (0.75, 0.95)),
            1 => near(rng, 0.03, 0.03, (0.5, 0.75), (0.45, 0.7)),
            _ => any_hue(rng, (0.15, 0.45), (0.65, 0.92)),
        },
        secondary: match rng.below(3) {
            0 => near(rng, 0.01, 0.03, (0.6, 0.85), (0.35, 0.6)),
            1 => near(rng, 0.07, 0.03, (0.4, 0.7), (0.25, 0.45)),
            _ => greyish(rng, (0.25, 0.45)),
        },
        dark: near(rng, 0.06, 0.04, (0.4, 0.8), (0.15, 0.35)),
        light: glass(rng),
        accent: any_hue(rng, (0.5, 0.9), (0.5, 0.9)),
    }
}

pub(super) fn key(b: &mut Builder, rng: &mut Stream) -> Palette {
    let r = u(rng, 0.22, 0.32);
    let ring_w = u(rng, 0.1, 0.16);
    let bow_x = -0.95 + r;
    let shaft = u(rng, 0.045, 0.075);
    let tip = u(rng, 0.85, 1.0);
    if rng.chance(0.7) {
        b.ring(Role::Primary, ellipse_polygon(pt(bow_x, 0.0), r, r * u(rng, 0.8, 1.0), 0.0, 18), ring_w);
    } else {
        let s = r * 0.85;
        b.ring(Role::Primary, vec![pt(bow_x - s, -s), pt(bow_x + s, -s), pt(bow_x + s, s), pt(bow_x - s, s)], ring_w);
    }
    b.rect(Role::Primary, bow_x + r * 0.8, -shaft, tip, shaft);
    b.rect(Role::Primary, bow_x + r + 0.02, -shaft * 1.8, bow_x + r + 0.1, shaft * 1.8);
    let teeth = int(rng, 2, 4);
    let start = tip - u(rng, 0.35, 0.5);
    let tooth_w = (tip - start) / (teeth as f32 + 0.5);
    for i in 0..teeth {
        let x = start + i as f32 * tooth_w;
        b.rect(Role::Primary, x, shaft * 0.5, x + tooth_w * 0.75, shaft + u(rng, 0.08, 0.22));
    }
    let metal = *rng.pick(&[0.13f32, 0.09, 0.6]);
    let sat = if metal > 0.5 { (0.0, 0.08) } else { (0.45, 0.75) };
    Palette {
        primary: near(rng, metal, 0.02, sat, (0.55, 0.85)),
        secondary: near(rng, metal, 0.02, sat, (0.4, 0.7)),
        dark: dark(rng),
        light: greyish(rng, (0.85, 1.0)),
        accent: any_hue(rng, (0.5, 0.9), (0.5, 0.9)),
    }
}

pub(super) fn tree(b: &mut Builder, rng: &mut Stream) -> Palette {
    let tw = u(rng, 0.06, 0.12);
    let crown_base = u(rng, 0.0, 0.35);
    b.poly(Role::Secondary, &[(-tw, 1.0), (tw, 1.0), (tw * 0.7, crown_base - 0.2), (-tw * 0.7, crown_base - 0.2)]);
    match rng.below(3) {
        0 => {
            // Broadleaf: a cloud of overlapping discs.
            let r = u(rng, 0.38, 0.5);
            let cy = crown_base - r * 0.9;
            b.circle(Role::Primary, 0.0, cy, r);
            let n = int(rng, 3, 6);
            let phase = u(rng, 0.0, TAU);
            for i in 0..n {
                let a = phase + TAU * i as f32 / n as f32;
                let d = r * u(rng, 0.55, 0.8);
                b.circle(Role::Primary, a.cos() * d, cy + a.sin() * d * 0.8, r * u(rng, 0.5, 0.7));
            }
        }
        1 => {
            // Poplar or cypress: one tall cone.
            let w = u(rng, 0.3, 0.5);
            b.poly(Role::Primary, &[(-w, crown_base), (w, crown_base), (0.0, crown_base - u(rng, 1.1, 1.5))]);
        }
        _ => {
            // Fir: stacked tiers, narrowing upwards.
            let tiers = int(rng, 3, 4);
            let w0 = u(rng, 0.45, 0.6);
            let step = u(rng, 0.3, 0.38);
            for i in 0..tiers {
                let k = 1.0 - i as f32 / (tiers as f32 + 0.5);
                let y = crown_base - i as f32 * step;
                b.poly(Role::Primary, &[(-w0 * k, y), (w0 * k, y), (0.0, y - step * 1.6)]);
            }
        }
    }
    let autumn = rng.chance(0.12);
    Palette {
        primary: if autumn { near(rng, 0.08, 0.04, (0.7, 0.95), (0.55, 0.9)) } else { near(rng, 0.3, 0.06, (0.5, 0.85), (0.3, 0.65)) },
        secondary: near(rng, 0.07, 0.03, (0.45, 0.75), (0.2, 0.45)),
        dark: dark(rng),
        light: greyish(rng, (0.85, 1.0)),
        accent: near(rng, 0.0, 0.03, (0.7, 1.0), (0.6, 0.9)),
    }
}

pub(super) fn umbrella(b: &mut Builder, rng: &mut Stream) -> Palette {
    let r = u(rng, 0.85, 1.0);
    let h = u(rng, 0.4, 0.65);
    let panels = int(rng, 4, 7) as usize;
    let depth = u(rng, 0.05, 0.14);
    let striped = rng.chance(0.5);
    let shaft_bottom = u(rng, 0.65, 0.85);
    b.stroke(Role::Dark, vec![pt(0.0, -h - 0.12), pt(0.0, shaft_bottom)], 0.05);
    let hook = u(rng, 0.1, 0.15);
    b.stroke(Role::Dark, arc(pt(hook, shaft_bottom), hook, hook, 0.0, PI, 0.2, 8), 0.06);
    let edge = |i: usize| -r + 2.0 * r * i as f32 / panels as f32;
    for i in 0..panels {
        let (x0, x1) = (edge(i), edge(i + 1));
        let mut outline = rib(x0, h);
        outline.extend(arc(pt((x0 + x1) * 0.5, 0.0), (x1 - x0) * 0.5, depth, 0.0, PI, TAU, 6));
        outline.extend(rib(x1, h).into_iter().rev());
        let role = if striped && i % 2 == 1 { Role::Accent } else { Role::Primary };
        b.poly_pts(role, outline);
    }
    Palette {
        primary: any_hue(rng, (0.5, 0.95), (0.3, 0.9)),
        secondary: greyish(rng, (0.3, 0.6)),
        dark: dark(rng),
        light: greyish(rng, (0.88, 1.0)),
        accent: if rng.chance(0.5) { greyish(rng, (0.88, 1.0)) } else { any_hue(rng, (0.5, 0.95), (0.5, 0.95)) },
    }
}

/// One umbrella rib: a quarter ellipse from the apex (0, -h) down to the rim point (x, 0).
pub(super) fn rib(x: f32, h: f32) -> Vec<Pt> {
    (0..=6)
        .map(|k| {
            let a = FRAC_PI_2 * k as f32 / 6.0;
            pt(x * a.sin(), -h * a.cos())
        })
        .collect()
}
