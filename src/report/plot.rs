//! The canonical effective-robustness figure, one per shift: ID accuracy (x) against shifted
//! accuracy (y) on logit-scaled axes labelled in percent, the testbed models as grey points,
//! their fitted line with its 95% bootstrap band, `y = x`, and each leaderboard entry coloured by
//! regime and labelled (with several training seeds: one small dot per seed, the mean as the
//! labelled marker, the seeds' range as error bars).
//!
//! `figure` builds a resolution-independent scene (pure); `to_svg` and `to_png` render the same
//! scene, so the two files always agree. Text is measured and (for PNG) rasterised with the
//! embedded DejaVu Sans, so no system font or library is consulted.

use super::leaderboard::Leaderboard;
use crate::fsutil::write_atomic;
use crate::metrics::{self, Transform};
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::Path;

/// DejaVu Sans 2.37 (Bitstream Vera license; see `fonts/LICENSE-DejaVu.txt`).
const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
/// Font family the SVG asks for; the layout was measured with the embedded copy of it.
const SVG_FONT_FAMILY: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

/// Folder of the plots inside a results folder.
pub const PLOTS_DIR: &str = "plots";
/// PNG pixels per scene unit: 2 keeps lines and labels crisp on high-density screens.
const PNG_SCALE: f32 = 2.0;

const WIDTH: f32 = 860.0;
const HEIGHT: f32 = 600.0;
/// The plot area; the legend sits to its right.
const LEFT: f32 = 70.0;
const RIGHT: f32 = 640.0;
const TOP: f32 = 48.0;
const BOTTOM: f32 = 540.0;

const TESTBED_GREY: Rgb = Rgb(128, 128, 128);
pub(super) const FIT_BLUE: Rgb = Rgb(31, 78, 121);
const BAND_BLUE: Rgb = Rgb(31, 119, 180);
const DIAGONAL_GREY: Rgb = Rgb(150, 150, 150);
pub(super) const INK: Rgb = Rgb(30, 30, 30);
pub(super) const GRID: Rgb = Rgb(232, 232, 232);
/// Regime colours (Tableau 10 minus blue and grey, which the fit and testbed use).
pub(super) const REGIME_COLOURS: [Rgb; 8] = [
    Rgb(214, 39, 40),
    Rgb(44, 160, 44),
    Rgb(255, 127, 14),
    Rgb(148, 103, 189),
    Rgb(140, 86, 75),
    Rgb(227, 119, 194),
    Rgb(23, 190, 207),
    Rgb(188, 189, 34),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rgb(pub u8, pub u8, pub u8);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One drawing primitive in scene units (origin top-left, y down).
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Polygon { points: Vec<(f32, f32)>, fill: Rgb, opacity: f32 },
    Line { points: Vec<(f32, f32)>, colour: Rgb, width: f32, dashed: bool },
    Circle { centre: (f32, f32), radius: f32, fill: Rgb, stroke: Option<Rgb> },
    /// `(x, y)` is the baseline point at the anchor; `vertical` turns the text 90° anticlockwise.
    Text { at: (f32, f32), text: String, size: f32, colour: Rgb, anchor: Anchor, vertical: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub width: f32,
    pub height: f32,
    pub items: Vec<Item>,
}

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the embedded DejaVu Sans parses")
}

/// Width of `text` at `size` px in the embedded font (advances plus kerning).
pub fn text_width(text: &str, size: f32) -> f32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// A linear map from logit space onto pixels, with percent tick marks.
struct Axis {
    lo: f64,
    hi: f64,
    pixel_lo: f32,
    pixel_hi: f32,
}

impl Axis {
    /// Covers every accuracy in `values` (percent) with 6% padding on each side in logit space.
    fn covering(values: impl Iterator<Item = f64>, pixel_lo: f32, pixel_hi: f32) -> Self {
        let t = Transform::Logit;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.map(|v| t.apply(v)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 0.0);
        }
        let pad = ((hi - lo) * 0.06).max(0.15);
        Axis { lo: lo - pad, hi: hi + pad, pixel_lo, pixel_hi }
    }

    fn pixel(&self, logit: f64) -> f32 {
        self.pixel_lo + ((logit - self.lo) / (self.hi - self.lo)) as f32 * (self.pixel_hi - self.pixel_lo)
    }

    fn pixel_of_percent(&self, acc: f64) -> f32 {
        self.pixel(Transform::Logit.apply(acc))
    }

    /// Percent ticks inside the range, thinned so neighbours stay ≥ 34 px apart; a narrow range
    /// (fewer than 4 round ticks) also gets the in-between values (15%, 25%, …).
    fn ticks(&self) -> Vec<f64> {
        const ROUND: [f64; 23] = [
            0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 97.0, 98.0, 99.0,
            99.5, 99.8, 99.9, 99.95,
        ];
        const IN_BETWEEN: [f64; 11] = [3.0, 4.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0, 96.0];
        let round = self.thinned(ROUND.to_vec());
        if round.len() >= 4 {
            return round;
        }
        let mut all: Vec<f64> = ROUND.iter().chain(&IN_BETWEEN).copied().collect();
        all.sort_by(f64::total_cmp);
        self.thinned(all)
    }

    fn thinned(&self, candidates: Vec<f64>) -> Vec<f64> {
        let mut ticks: Vec<f64> = Vec::new();
        let mut last_pixel: Option<f32> = None;
        for c in candidates {
            let l = Transform::Logit.apply(c);
            if l < self.lo || l > self.hi {
                continue;
            }
            let p = self.pixel(l);
            if last_pixel.is_none_or(|q| (p - q).abs() >= 34.0) {
                ticks.push(c);
                last_pixel = Some(p);
            }
        }
        ticks
    }
}

fn percent_label(acc: f64) -> String {
    if acc.fract() == 0.0 {
        format!("{acc:.0}%")
    } else {
        format!("{acc}%")
    }
}

/// One (model, regime) on one shift: its seeds' points (ID acc, shifted acc) and where its
/// marker and label go: the mean over seeds, with the seeds' range as error bars when there are
/// several.
struct EntryPoint {
    seeds: Vec<(f64, f64)>,
    id: f64,
    shift: f64,
    label: String,
    colour: Rgb,
}

/// The figure for `lb.fits[shift_index]`, or `None` when no entry and no testbed model has both
/// accuracies on that shift.
pub fn figure(lb: &Leaderboard, shift_index: usize) -> Option<Figure> {
    let shift_fit = &lb.fits[shift_index];
    let shift = &shift_fit.shift;
    let groups = super::summary::seed_groups(lb);
    let mut regimes: Vec<&str> = groups.keys().map(|(_, regime)| regime.as_str()).collect();
    regimes.sort();
    regimes.dedup();
    let colour_of = |regime: &str| REGIME_COLOURS[regimes.iter().position(|r| *r == regime).unwrap_or(0) % REGIME_COLOURS.len()];
    // Label by regime alone when that identifies the entry; add the model otherwise.
    let single_model = groups.keys().all(|(model, _)| Some(model) == groups.keys().next().map(|k| &k.0));
    let points: Vec<EntryPoint> = groups
        .iter()
        .filter_map(|((model, regime), rows)| {
            let seeds: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((r.acc_id?, r.acc_shifts[shift_index]?))).collect();
            let n = seeds.len();
            if n == 0 {
                return None;
            }
            let mean = |f: fn(&(f64, f64)) -> f64| seeds.iter().map(f).sum::<f64>() / n as f64;
            let name = if single_model { regime.clone() } else { format!("{regime} · {model}") };
            let label = match (n, rows.as_slice()) {
                (1, [row]) if groups.values().all(|g| g.len() == 1) && !single_model => format!("{name} · s{}", row.seed),
                (1, _) => name,
                _ => format!("{name} ({n} seeds)"),
            };
            Some(EntryPoint { id: mean(|p| p.0), shift: mean(|p| p.1), label, colour: colour_of(regime), seeds })
        })
        .collect();
    let testbed = &shift_fit.points;
    if points.is_empty() && testbed.is_empty() {
        return None;
    }

    let x = Axis::covering(points.iter().flat_map(|p| p.seeds.iter().map(|s| s.0)).chain(testbed.iter().map(|p| p.0)), LEFT, RIGHT);
    let y = Axis::covering(points.iter().flat_map(|p| p.seeds.iter().map(|s| s.1)).chain(testbed.iter().map(|p| p.1)), BOTTOM, TOP);
    let mut items = Vec::new();

    // Grid and tick labels.
    for tick in x.ticks() {
        let px = x.pixel_of_percent(tick);
        items.push(Item::Line { points: vec![(px, TOP), (px, BOTTOM)], colour: GRID, width: 1.0, dashed: false });
        items.push(text((px, BOTTOM + 18.0), &percent_label(tick), 12.0, INK, Anchor::Middle));
    }
    for tick in y.ticks() {
        let py = y.pixel_of_percent(tick);
        items.push(Item::Line { points: vec![(LEFT, py), (RIGHT, py)], colour: GRID, width: 1.0, dashed: false });
        items.push(text((LEFT - 6.0, py + 4.0), &percent_label(tick), 12.0, INK, Anchor::End));
    }

    // y = x, clipped to the plot area (both axes are logit, so it is straight here too).
    let (d_lo, d_hi) = (x.lo.max(y.lo), x.hi.min(y.hi));
    if d_lo < d_hi {
        items.push(Item::Line {
            points: vec![(x.pixel(d_lo), y.pixel(d_lo)), (x.pixel(d_hi), y.pixel(d_hi))],
            colour: DIAGONAL_GREY,
            width: 1.5,
            dashed: true,
        });
    }

    // Bootstrap band and fitted line, sampled across the x range and clamped to the plot area.
    let clamp_y = |py: f32| py.clamp(TOP, BOTTOM);
    let samples: Vec<f64> = (0..=80).map(|i| x.lo + (x.hi - x.lo) * i as f64 / 80.0).collect();
    let t = Transform::Logit;
    if !shift_fit.resampled().is_empty() {
        let band: Vec<(f32, f32, f32)> = samples
            .iter()
            .filter_map(|&lx| {
                let b = metrics::prediction_band(shift_fit.resampled(), t, t.inverse(lx))?;
                Some((x.pixel(lx), clamp_y(y.pixel_of_percent(b.lo)), clamp_y(y.pixel_of_percent(b.hi))))
            })
            .collect();
        let mut polygon: Vec<(f32, f32)> = band.iter().map(|&(px, _, hi)| (px, hi)).collect();
        polygon.extend(band.iter().rev().map(|&(px, lo, _)| (px, lo)));
        items.push(Item::Polygon { points: polygon, fill: BAND_BLUE, opacity: 0.18 });
    }
    if let Some(fit) = shift_fit.line() {
        let line: Vec<(f32, f32)> = samples
            .iter()
            .map(|&lx| (x.pixel(lx), y.pixel(fit.slope * lx + fit.intercept)))
            .filter(|&(_, py)| (TOP..=BOTTOM).contains(&py))
            .collect();
        if line.len() >= 2 {
            items.push(Item::Line { points: line, colour: FIT_BLUE, width: 2.0, dashed: false });
        }
    }

    // Markers: testbed first (underneath), entries on top.
    let mut occupied: Vec<Rect> = Vec::new();
    for &(id, acc) in testbed {
        let centre = (x.pixel_of_percent(id), y.pixel_of_percent(acc));
        items.push(Item::Circle { centre, radius: 4.0, fill: TESTBED_GREY, stroke: None });
        occupied.push(Rect::around(centre, 4.0));
    }
    let entry_centres: Vec<(f32, f32)> =
        points.iter().map(|p| (x.pixel_of_percent(p.id), y.pixel_of_percent(p.shift))).collect();
    // Several seeds: each seed as a small dot, the seeds' range as error bars through the mean.
    for (p, &(cx, cy)) in points.iter().zip(&entry_centres).filter(|(p, _)| p.seeds.len() > 1) {
        let range = |f: fn(&(f64, f64)) -> f64| {
            p.seeds.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let ((id_lo, id_hi), (shift_lo, shift_hi)) = (range(|s| s.0), range(|s| s.1));
        items.push(Item::Line { points: vec![(x.pixel_of_percent(id_lo), cy), (x.pixel_of_percent(id_hi), cy)], colour: p.colour, width: 1.5, dashed: false });
        items.push(Item::Line { points: vec![(cx, y.pixel_of_percent(shift_lo)), (cx, y.pixel_of_percent(shift_hi))], colour: p.colour, width: 1.5, dashed: false });
        for &(id, acc) in &p.seeds {
            let centre = (x.pixel_of_percent(id), y.pixel_of_percent(acc));
            items.push(Item::Circle { centre, radius: 3.0, fill: p.colour, stroke: None });
            occupied.push(Rect::around(centre, 3.0));
        }
    }
    for (p, &centre) in points.iter().zip(&entry_centres) {
        items.push(Item::Circle { centre, radius: 6.0, fill: p.colour, stroke: Some(Rgb(255, 255, 255)) });
        occupied.push(Rect::around(centre, 6.0));
    }
    for (p, &centre) in points.iter().zip(&entry_centres) {
        items.extend(place_label(&p.label, p.colour, centre, &mut occupied));
    }

    // Frame, titles, legend.
    items.push(Item::Line {
        points: vec![(LEFT, TOP), (RIGHT, TOP), (RIGHT, BOTTOM), (LEFT, BOTTOM), (LEFT, TOP)],
        colour: INK,
        width: 1.0,
        dashed: false,
    });
    let title = format!("{shift}: effective robustness ({} axes)", lb.transform);
    items.push(text(((LEFT + RIGHT) / 2.0, 28.0), &title, 16.0, INK, Anchor::Middle));
    let x_label = format!("{} accuracy (%), logit scale", lb.protocol.id_domain);
    items.push(text(((LEFT + RIGHT) / 2.0, BOTTOM + 44.0), &x_label, 13.0, INK, Anchor::Middle));
    items.push(Item::Text {
        at: (22.0, (TOP + BOTTOM) / 2.0),
        text: format!("{shift} accuracy (%), logit scale"),
        size: 13.0,
        colour: INK,
        anchor: Anchor::Middle,
        vertical: true,
    });
    items.extend(legend(shift_fit.n, shift_fit.fit.is_some(), !shift_fit.resampled().is_empty(), &regimes, colour_of));
    Some(Figure { width: WIDTH, height: HEIGHT, items })
}

fn text(at: (f32, f32), text: &str, size: f32, colour: Rgb, anchor: Anchor) -> Item {
    Item::Text { at, text: text.to_string(), size, colour, anchor, vertical: false }
}

fn legend(
    testbed_models: usize,
    has_fit: bool,
    has_band: bool,
    regimes: &[&str],
    colour_of: impl Fn(&str) -> Rgb,
) -> Vec<Item> {
    /// What a legend row shows left of its label.
    enum Swatch {
        Dot(Rgb, f32, bool),
        Stroke(Rgb, f32, bool),
        Band,
        Gap,
    }
    let mut rows = vec![(Swatch::Dot(TESTBED_GREY, 4.0, false), format!("testbed ({testbed_models} models)"))];
    if has_fit {
        rows.push((Swatch::Stroke(FIT_BLUE, 2.0, false), "linear fit".to_string()));
    }
    if has_band {
        rows.push((Swatch::Band, "95% bootstrap band".to_string()));
    }
    rows.push((Swatch::Stroke(DIAGONAL_GREY, 1.5, true), "y = x".to_string()));
    rows.push((Swatch::Gap, String::new()));
    rows.extend(regimes.iter().map(|r| (Swatch::Dot(colour_of(r), 6.0, true), r.to_string())));

    let x = RIGHT + 18.0;
    let mut y = TOP + 10.0;
    let mut items = Vec::new();
    for (swatch, label) in rows {
        match swatch {
            Swatch::Gap => {
                y += 8.0;
                continue;
            }
            Swatch::Dot(fill, radius, white_ring) => items.push(Item::Circle {
                centre: (x + 10.0, y),
                radius,
                fill,
                stroke: white_ring.then_some(Rgb(255, 255, 255)),
            }),
            Swatch::Stroke(colour, width, dashed) => {
                items.push(Item::Line { points: vec![(x, y), (x + 20.0, y)], colour, width, dashed })
            }
            Swatch::Band => items.push(Item::Polygon {
                points: vec![(x, y - 6.0), (x + 20.0, y - 6.0), (x + 20.0, y + 6.0), (x, y + 6.0)],
                fill: BAND_BLUE,
                opacity: 0.18,
            }),
        }
        items.push(text((x + 26.0, y + 4.0), &label, 12.0, INK, Anchor::Start));
        y += 22.0;
    }
    items
}

#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Rect {
    fn around((cx, cy): (f32, f32), r: f32) -> Self {
        Rect { x0: cx - r, y0: cy - r, x1: cx + r, y1: cy + r }
    }

    fn overlap(&self, other: &Rect) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        w * h
    }

    fn inside_plot(&self) -> bool {
        self.x0 >= LEFT + 2.0 && self.x1 <= RIGHT - 2.0 && self.y0 >= TOP + 2.0 && self.y1 <= BOTTOM - 2.0
    }
}

/// Puts a label near its point where it overlaps nothing placed so far (markers and labels):
/// candidates ring the point at growing distances; far placements get a thin leader line. When
/// every candidate collides, the least-overlapping one wins.
fn place_label(label: &str, colour: Rgb, (cx, cy): (f32, f32), occupied: &mut Vec<Rect>) -> Vec<Item> {
    const SIZE: f32 = 12.0;
    let (w, h) = (text_width(label, SIZE), SIZE);
    let mut best: Option<(f32, Rect, f32)> = None;
    'search: for distance in [10.0f32, 24.0, 40.0, 60.0] {
        for (dx, dy) in [(1.0, 0.0), (-1.0, 0.0), (0.7, -0.7), (0.7, 0.7), (-0.7, -0.7), (-0.7, 0.7), (0.0, -1.0), (0.0, 1.0)] {
            let (ax, ay) = (cx + dx * distance, cy + dy * distance);
            // Anchor the box on the side facing the point.
            let x0 = if dx > 0.1 { ax } else if dx < -0.1 { ax - w } else { ax - w / 2.0 };
            let y0 = if dy > 0.1 { ay } else if dy < -0.1 { ay - h } else { ay - h / 2.0 };
            let rect = Rect { x0: x0 - 2.0, y0: y0 - 2.0, x1: x0 + w + 2.0, y1: y0 + h + 2.0 };
            let mut cost: f32 = occupied.iter().map(|o| o.overlap(&rect)).sum();
            if !rect.inside_plot() {
                cost += 1e6;
            }
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, rect, distance));
            }
            if cost == 0.0 {
                break 'search;
            }
        }
    }
    let (_, rect, distance) = best.expect("at least one candidate");
    occupied.push(rect);
    let mut items = Vec::new();
    if distance > 10.0 {
        let target = (rect.x0.max(cx.min(rect.x1)), rect.y0.max(cy.min(rect.y1)));
        items.push(Item::Line { points: vec![(cx, cy), target], colour, width: 0.8, dashed: false });
    }
    // A translucent white backing keeps the label readable where it crosses a line or the band.
    let backing = vec![(rect.x0, rect.y0), (rect.x1, rect.y0), (rect.x1, rect.y1), (rect.x0, rect.y1)];
    items.push(Item::Polygon { points: backing, fill: Rgb(255, 255, 255), opacity: 0.75 });
    // Baseline sits ~20% of the size above the box bottom (DejaVu's descent).
    items.push(text((rect.x0 + 2.0, rect.y1 - 2.0 - SIZE * 0.2), label, SIZE, colour, Anchor::Start));
    items
}

/// The figure as a standalone SVG document.
pub fn to_svg(figure: &Figure) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{SVG_FONT_FAMILY}">"#,
        w = figure.width,
        h = figure.height
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for item in &figure.items {
        match item {
            Item::Polygon { points, fill, opacity } => {
                let _ = writeln!(s, r#"<polygon points="{}" fill="{}" fill-opacity="{opacity}"/>"#, svg_points(points), hex(*fill));
            }
            Item::Line { points, colour, width, dashed } => {
                let dash = if *dashed { r#" stroke-dasharray="6 4""# } else { "" };
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"{dash} stroke-linejoin="round"/>"#,
                    svg_points(points),
                    hex(*colour)
                );
            }
            Item::Circle { centre, radius, fill, stroke } => {
                let stroke = stroke.map_or(String::new(), |c| format!(r#" stroke="{}" stroke-width="1.5""#, hex(c)));
                let _ = writeln!(s, r#"<circle cx="{:.2}" cy="{:.2}" r="{radius}" fill="{}"{stroke}/>"#, centre.0, centre.1, hex(*fill));
            }
            Item::Text { at, text, size, colour, anchor, vertical } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let rotate = if *vertical { format!(r#" transform="rotate(-90 {:.2} {:.2})""#, at.0, at.1) } else { String::new() };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.2}" y="{:.2}" font-size="{size}" fill="{}" text-anchor="{anchor}"{rotate}>{}</text>"#,
                    at.0,
                    at.1,
                    hex(*colour),
                    xml_escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn svg_points(points: &[(f32, f32)]) -> String {
    points.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect::<Vec<_>>().join(" ")
}

fn hex(Rgb(r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The figure rasterised at `PNG_SCALE` pixels per unit, as PNG bytes.
pub fn to_png(figure: &Figure) -> Result<Vec<u8>> {
    use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Stroke, StrokeDash, Transform as Affine};
    let (w, h) = ((figure.width * PNG_SCALE) as u32, (figure.height * PNG_SCALE) as u32);
    let mut pixmap = Pixmap::new(w, h).context("cannot allocate the plot image")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let scale = Affine::from_scale(PNG_SCALE, PNG_SCALE);
    let paint = |c: Rgb, opacity: f32| {
        let mut p = Paint::default();
        p.set_color_rgba8(c.0, c.1, c.2, (opacity * 255.0).round() as u8);
        p.anti_alias = true;
        p
    };
    let path_of = |points: &[(f32, f32)], close: bool| {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        if close {
            pb.close();
        }
        pb.finish()
    };
    for item in &figure.items {
        match item {
            Item::Polygon { points, fill, opacity } => {
                if let Some(path) = path_of(points, true) {
                    pixmap.fill_path(&path, &paint(*fill, *opacity), FillRule::Winding, scale, None);
                }
            }
            Item::Line { points, colour, width, dashed } => {
                if let Some(path) = path_of(points, false) {
                    let stroke = Stroke {
                        width: *width,
                        line_join: tiny_skia::LineJoin::Round,
                        dash: if *dashed { StrokeDash::new(vec![6.0, 4.0], 0.0) } else { None },
                        ..Stroke::default()
                    };
                    pixmap.stroke_path(&path, &paint(*colour, 1.0), &stroke, scale, None);
                }
            }
            Item::Circle { centre, radius, fill, stroke } => {
                if let Some(path) = PathBuilder::from_circle(centre.0, centre.1, *radius) {
                    pixmap.fill_path(&path, &paint(*fill, 1.0), FillRule::Winding, scale, None);
                    if let Some(c) = stroke {
                        let s = Stroke { width: 1.5, ..Stroke::default() };
                        pixmap.stroke_path(&path, &paint(*c, 1.0), &s, scale, None);
                    }
                }
            }
            Item::Text { at, text, size, colour, anchor, vertical } => {
                draw_text(&mut pixmap, text, *at, *size, *colour, *anchor, *vertical);
            }
        }
    }
    encode_png(&pixmap)
}

/// Rasterises `text` with the embedded font into its own transparent image, then composites it
/// (rotated for vertical text) so both orientations share one glyph path.
fn draw_text(pixmap: &mut tiny_skia::Pixmap, text: &str, at: (f32, f32), size: f32, colour: Rgb, anchor: Anchor, vertical: bool) {
    let font = font();
    let px = size * PNG_SCALE;
    let scaled = font.as_scaled(PxScale::from(px));
    let width = text_width(text, size) * PNG_SCALE;
    let (ascent, descent) = (scaled.ascent(), scaled.descent());
    let (w, h) = (width.ceil() as u32 + 4, (ascent - descent).ceil() as u32 + 4);
    let Some(mut label) = tiny_skia::Pixmap::new(w, h) else { return };
    let stride = w as usize;
    let data = label.data_mut();
    let mut caret = 2.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(px, ab_glyph::point(caret, 2.0 + ascent));
        caret += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else { continue };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (x, y) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                return;
            }
            let i = (y as usize * stride + x as usize) * 4;
            let a = (coverage.clamp(0.0, 1.0) * 255.0).round() as u16;
            let a = a.max(data[i + 3] as u16);
            // Premultiplied RGBA, which tiny-skia expects.
            data[i] = (colour.0 as u16 * a / 255) as u8;
            data[i + 1] = (colour.1 as u16 * a / 255) as u8;
            data[i + 2] = (colour.2 as u16 * a / 255) as u8;
            data[i + 3] = a as u8;
        });
    }
    let shift = match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => width / 2.0,
        Anchor::End => width,
    } + 2.0;
    let (ax, ay) = (at.0 * PNG_SCALE, at.1 * PNG_SCALE);
    // Place the label image so that its baseline-left point lands on the anchor.
    let local = tiny_skia::Transform::from_translate(-shift, -(2.0 + ascent));
    let transform = if vertical {
        local.post_rotate(-90.0).post_translate(ax, ay)
    } else {
        local.post_translate(ax, ay)
    };
    pixmap.draw_pixmap(0, 0, label.as_ref(), &tiny_skia::PixmapPaint::default(), transform, None);
}

fn encode_png(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>> {
    // The background is opaque white, so premultiplied and straight RGBA coincide.
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("cannot encode the plot PNG")?;
    writer.write_image_data(pixmap.data()).context("cannot encode the plot PNG")?;
    writer.finish().context("cannot encode the plot PNG")?;
    Ok(out)
}

/// Writes `dir/plots/<shift>.svg` and `.png` for every shift with something to show.
pub fn write_plots(dir: &Path, lb: &Leaderboard) -> Result<()> {
    let plots = dir.join(PLOTS_DIR);
    std::fs::create_dir_all(&plots).with_context(|| format!("cannot create {}", plots.display()))?;
    for (i, f) in lb.fits.iter().enumerate() {
        let Some(fig) = figure(lb, i) else { continue };
        // The shift's name comes from the records, which anyone can edit.
        let name = crate::fsutil::checked_name(&f.shift, "shift name in the records")?;
        write_atomic(&plots.join(format!("{name}.svg")), to_svg(&fig).as_bytes())?;
        write_atomic(&plots.join(format!("{name}.png")), &to_png(&fig)?)?;
    }
    super::sweep_plot::write_sweep_plots(&plots, lb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_measures_text() {
        let w = text_width("resnet", 12.0);
        assert!(w > 30.0 && w < 50.0, "{w}");
        assert!(text_width("real+generated", 12.0) > w);
    }

    #[test]
    fn ticks_stay_inside_the_axis_and_apart() {
        let axis = Axis::covering([60.0, 99.0].into_iter(), 0.0, 500.0);
        let ticks = axis.ticks();
        assert!(ticks.contains(&70.0) && ticks.contains(&90.0), "{ticks:?}");
        for pair in ticks.windows(2) {
            assert!(axis.pixel_of_percent(pair[1]) - axis.pixel_of_percent(pair[0]) >= 34.0, "{ticks:?}");
        }
    }

    #[test]
    fn labels_avoid_each_other() {
        let mut occupied = vec![Rect::around((300.0, 300.0), 6.0)];
        let a = place_label("real+generated", INK, (300.0, 300.0), &mut occupied);
        let b = place_label("real+generated", INK, (302.0, 301.0), &mut occupied);
        assert!(!a.is_empty() && !b.is_empty());
        let (first, second) = (occupied[1], occupied[2]);
        assert_eq!(first.overlap(&second), 0.0, "{first:?} {second:?}");
    }

    #[test]
    fn svg_escapes_text() {
        let fig = Figure { width: 10.0, height: 10.0, items: vec![text((1.0, 1.0), "a<b & c", 12.0, INK, Anchor::Start)] };
        assert!(to_svg(&fig).contains("a&lt;b &amp; c"));
        let png = to_png(&fig).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
