//! Parametric geometry of the ten object classes, independent of how they are painted.
//!
//! An [`Object`] is a list of [`Part`]s in object coordinates (y grows downwards, the object is
//! normalised to fit the square [-1, 1]², centred), each tagged with a [`Role`] so a style can
//! decide how to colour it, plus a [`Palette`] of plausible real-world colours per role that a
//! style may use, perturb or ignore. Every class has several sub-types and continuous
//! proportions so that no two samples share a silhouette.

mod classes;

use classes::{airplane, boat, car, cup, fish, flower, house, key, tree, umbrella};
use super::raster::{ellipse_polygon, hsv, polygon_contours, pt, stroke_contours, Affine, Pt, Rgb};
use crate::rng::Stream;

/// What a part is, as far as colouring goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The main body (car body, fish, tree crown, house walls).
    Primary,
    /// A second large surface (roof, sails, fins, trunk, saucer, stem and leaves).
    Secondary,
    /// Dark details (tyres, doors, pupils, handles, coffee).
    Dark,
    /// Light details (windows, rims, eyes, hubs).
    Light,
    /// Small contrasting details (lights, stripes, flower centres, tail logos).
    Accent,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Polygon(Vec<Pt>),
    Ellipse {
        centre: Pt,
        rx: f32,
        ry: f32,
        rotation: f32,
    },
    /// A polyline of the given width (object units); `closed` joins the last point to the first.
    Stroke {
        points: Vec<Pt>,
        width: f32,
        closed: bool,
    },
}

/// Flattening of ellipses: enough sides to look round at 128 px, few enough to stay cheap.
const ELLIPSE_SIDES: usize = 28;

impl Shape {
    /// Fill contours in pixel space under `xf`; strokes are at least `min_stroke_px` wide.
    pub fn contours(&self, xf: &Affine, min_stroke_px: f32) -> Vec<Vec<Pt>> {
        match self {
            Shape::Polygon(points) => polygon_contours(vec![points.iter().map(|&p| xf.apply(p)).collect()]),
            Shape::Ellipse { centre, rx, ry, rotation } => {
                let poly = ellipse_polygon(*centre, *rx, *ry, *rotation, ELLIPSE_SIDES);
                polygon_contours(vec![poly.into_iter().map(|p| xf.apply(p)).collect()])
            }
            Shape::Stroke { points, width, closed } => {
                let mut px: Vec<Pt> = points.iter().map(|&p| xf.apply(p)).collect();
                if *closed && !px.is_empty() {
                    px.push(px[0]);
                }
                stroke_contours(&px, (width * xf.mean_scale()).max(min_stroke_px))
            }
        }
    }

    /// The line a draughtsman would draw for this part, in object coordinates:
    /// `(points, closed)`. Strokes are drawn along their centre line.
    pub fn outline(&self) -> (Vec<Pt>, bool) {
        match self {
            Shape::Polygon(points) => (points.clone(), true),
            Shape::Ellipse { centre, rx, ry, rotation } => (ellipse_polygon(*centre, *rx, *ry, *rotation, ELLIPSE_SIDES), true),
            Shape::Stroke { points, closed, .. } => (points.clone(), *closed),
        }
    }

    /// The same shape with every coordinate passed through `f` (widths scaled by `k`).
    fn mapped(&self, f: &impl Fn(Pt) -> Pt, k: f32) -> Shape {
        match self {
            Shape::Polygon(points) => Shape::Polygon(points.iter().map(|&p| f(p)).collect()),
            Shape::Ellipse { centre, rx, ry, rotation } => {
                Shape::Ellipse { centre: f(*centre), rx: rx * k, ry: ry * k, rotation: *rotation }
            }
            Shape::Stroke { points, width, closed } => {
                Shape::Stroke { points: points.iter().map(|&p| f(p)).collect(), width: width * k, closed: *closed }
            }
        }
    }

    /// Axis-aligned bounds `(min, max)` including stroke half-widths.
    fn bounds(&self) -> (Pt, Pt) {
        let (points, pad) = match self {
            Shape::Polygon(points) => (points.clone(), 0.0),
            Shape::Ellipse { centre, rx, ry, rotation } => (ellipse_polygon(*centre, *rx, *ry, *rotation, 16), 0.0),
            Shape::Stroke { points, width, .. } => (points.clone(), width * 0.5),
        };
        let mut lo = pt(f32::MAX, f32::MAX);
        let mut hi = pt(f32::MIN, f32::MIN);
        for p in points {
            lo = pt(lo.x.min(p.x - pad), lo.y.min(p.y - pad));
            hi = pt(hi.x.max(p.x + pad), hi.y.max(p.y + pad));
        }
        (lo, hi)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub shape: Shape,
    pub role: Role,
}

/// Real-world colours for each role of one sampled object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Palette {
    pub primary: Rgb,
    pub secondary: Rgb,
    pub dark: Rgb,
    pub light: Rgb,
    pub accent: Rgb,
}

impl Palette {
    pub fn get(&self, role: Role) -> Rgb {
        match role {
            Role::Primary => self.primary,
            Role::Secondary => self.secondary,
            Role::Dark => self.dark,
            Role::Light => self.light,
            Role::Accent => self.accent,
        }
    }
}

/// One sampled object: its parts in painting order and its natural colours.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub class: usize,
    pub parts: Vec<Part>,
    pub palette: Palette,
}

impl Object {
    /// Axis-aligned bounds `(min, max)` of all parts in object units (within [-1, 1]²).
    pub fn bounds(&self) -> (Pt, Pt) {
        parts_bounds(&self.parts)
    }
}

fn parts_bounds(parts: &[Part]) -> (Pt, Pt) {
    let mut lo = pt(f32::MAX, f32::MAX);
    let mut hi = pt(f32::MIN, f32::MIN);
    for part in parts {
        let (a, b) = part.shape.bounds();
        lo = pt(lo.x.min(a.x), lo.y.min(a.y));
        hi = pt(hi.x.max(b.x), hi.y.max(b.y));
    }
    (lo, hi)
}

/// Samples an object of `class` (index into `CLASS_NAMES`).
pub fn sample(class: usize, rng: &mut Stream) -> Object {
    let mut b = Builder::default();
    let palette = match class {
        0 => airplane(&mut b, rng),
        1 => boat(&mut b, rng),
        2 => car(&mut b, rng),
        3 => cup(&mut b, rng),
        4 => fish(&mut b, rng),
        5 => flower(&mut b, rng),
        6 => house(&mut b, rng),
        7 => key(&mut b, rng),
        8 => tree(&mut b, rng),
        9 => umbrella(&mut b, rng),
        _ => panic!("class index {class} is outside the 10 procedural classes"),
    };
    Object { class, parts: normalised(b.parts), palette }
}

/// Recentres the parts and scales them so the larger side of their bounds spans [-1, 1].
fn normalised(parts: Vec<Part>) -> Vec<Part> {
    let (lo, hi) = parts_bounds(&parts);
    let centre = lo.lerp(hi, 0.5);
    let k = 2.0 / (hi.x - lo.x).max(hi.y - lo.y).max(1e-3);
    let f = |p: Pt| pt((p.x - centre.x) * k, (p.y - centre.y) * k);
    parts.into_iter().map(|part| Part { shape: part.shape.mapped(&f, k), role: part.role }).collect()
}

/// Collects parts with terse helpers so the class recipes read like drawings.
#[derive(Default)]
struct Builder {
    parts: Vec<Part>,
}

impl Builder {
    fn poly(&mut self, role: Role, points: &[(f32, f32)]) {
        self.parts.push(Part { shape: Shape::Polygon(points.iter().map(|&(x, y)| pt(x, y)).collect()), role });
    }

    fn poly_pts(&mut self, role: Role, points: Vec<Pt>) {
        self.parts.push(Part { shape: Shape::Polygon(points), role });
    }

    fn rect(&mut self, role: Role, x0: f32, y0: f32, x1: f32, y1: f32) {
        self.poly(role, &[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]);
    }

    fn ellipse(&mut self, role: Role, cx: f32, cy: f32, rx: f32, ry: f32, rotation: f32) {
        self.parts.push(Part { shape: Shape::Ellipse { centre: pt(cx, cy), rx, ry, rotation }, role });
    }

    fn circle(&mut self, role: Role, cx: f32, cy: f32, r: f32) {
        self.ellipse(role, cx, cy, r, r, 0.0);
    }

    fn stroke(&mut self, role: Role, points: Vec<Pt>, width: f32) {
        self.parts.push(Part { shape: Shape::Stroke { points, width, closed: false }, role });
    }

    fn ring(&mut self, role: Role, points: Vec<Pt>, width: f32) {
        self.parts.push(Part { shape: Shape::Stroke { points, width, closed: true }, role });
    }
}

fn u(rng: &mut Stream, lo: f32, hi: f32) -> f32 {
    rng.uniform(lo as f64, hi as f64) as f32
}

fn int(rng: &mut Stream, lo: u64, hi_inclusive: u64) -> u64 {
    lo + rng.below(hi_inclusive - lo + 1)
}

/// A colour near the given hue (turns) with saturation and value drawn from ranges.
fn near(rng: &mut Stream, hue: f32, hue_spread: f32, s: (f32, f32), v: (f32, f32)) -> Rgb {
    let h = hue + u(rng, -hue_spread, hue_spread);
    hsv(h, u(rng, s.0, s.1), u(rng, v.0, v.1))
}

fn any_hue(rng: &mut Stream, s: (f32, f32), v: (f32, f32)) -> Rgb {
    near(rng, 0.5, 0.5, s, v)
}

fn greyish(rng: &mut Stream, v: (f32, f32)) -> Rgb {
    near(rng, 0.6, 0.1, (0.0, 0.08), v)
}

fn dark(rng: &mut Stream) -> Rgb {
    near(rng, 0.6, 0.4, (0.0, 0.3), (0.06, 0.2))
}

fn glass(rng: &mut Stream) -> Rgb {
    near(rng, 0.57, 0.04, (0.1, 0.35), (0.7, 0.92))
}
