//! The figure of a sweep (RQ3): the swept value on x, and two panels — accuracy (%) on the ID and
//! every shifted set, effective robustness (points) on every shift — one line per set through the
//! mean over seeds, each seed a small dot. One figure per (sweep, model, base regime).
//!
//! Built as a [`plot::Figure`] so SVG and PNG come from the same scene as the ER figures.

use super::leaderboard::{Leaderboard, LeaderboardRow};
use super::plot::{self, Anchor, Figure, Item, Rgb};
use super::summary::metric_values;
use crate::record::Role;
use std::collections::BTreeMap;

const WIDTH: f32 = 1040.0;
const HEIGHT: f32 = 520.0;
const TOP: f32 = 60.0;
const BOTTOM: f32 = 450.0;
/// Left and right edges of the two panels.
const PANELS: [(f32, f32); 2] = [(70.0, 430.0), (530.0, 890.0)];
use super::plot::{FIT_BLUE, GRID, INK, REGIME_COLOURS};

/// The colour of evaluation set `index` (ID first, then the shifts in the suite's order): the
/// ER figures' fit blue for the ID set, their regime palette for the shifts.
fn set_colour(index: usize) -> Rgb {
    match index {
        0 => FIT_BLUE,
        i => REGIME_COLOURS[(i - 1) % REGIME_COLOURS.len()],
    }
}

/// The rows of one sweep figure.
pub struct SweepSeries<'a> {
    pub sweep: String,
    pub key: String,
    pub model: String,
    /// The regime the sweep derived these from (`real+generated` for `real+generated.amount-2500`).
    pub base_regime: String,
    pub rows: Vec<&'a LeaderboardRow>,
}

/// Entries from sweeps, grouped by (sweep, model, base regime), in that order.
pub fn sweep_series(lb: &Leaderboard) -> Vec<SweepSeries<'_>> {
    let mut groups: BTreeMap<(String, String, String), SweepSeries<'_>> = BTreeMap::new();
    for row in lb.rows.iter().filter(|r| r.role == Role::Entry) {
        let Some(point) = &row.sweep else { continue };
        let suffix = format!(".{}-{}", point.sweep, crate::suite::sweep_value_label(point.value));
        let base = row.regime.strip_suffix(&suffix).unwrap_or(&row.regime).to_string();
        groups
            .entry((point.sweep.clone(), row.model.clone(), base.clone()))
            .or_insert_with(|| SweepSeries { sweep: point.sweep.clone(), key: point.key.clone(), model: row.model.clone(), base_regime: base, rows: Vec::new() })
            .rows
            .push(row);
    }
    groups.into_values().collect()
}

/// A linear axis over `values`, padded by 6% of the range, with about five round ticks.
struct Linear {
    lo: f64,
    hi: f64,
    pixel_lo: f32,
    pixel_hi: f32,
}

impl Linear {
    fn covering(values: impl Iterator<Item = f64>, pixel_lo: f32, pixel_hi: f32) -> Linear {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        // A flat series still gets a visible range around its value.
        let pad = ((hi - lo) * 0.06).max(hi.abs().max(1.0) * 0.02);
        Linear { lo: lo - pad, hi: hi + pad, pixel_lo, pixel_hi }
    }

    fn pixel(&self, v: f64) -> f32 {
        self.pixel_lo + ((v - self.lo) / (self.hi - self.lo)) as f32 * (self.pixel_hi - self.pixel_lo)
    }

    /// Multiples of 1, 2 or 5 × 10^k giving at most 6 ticks.
    fn ticks(&self) -> Vec<f64> {
        let span = self.hi - self.lo;
        let raw = span / 5.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| span / s <= 6.0).unwrap_or(10.0 * magnitude);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

fn tick_label(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn text(at: (f32, f32), text: &str, size: f32, colour: Rgb, anchor: Anchor) -> Item {
    Item::Text { at, text: text.to_string(), size, colour, anchor, vertical: false }
}

/// The figure of one series.
pub fn figure(lb: &Leaderboard, series: &SweepSeries<'_>) -> Figure {
    let p = &lb.protocol;
    // (panel, set name, per row: (value, metric)) for accuracy on ID + shifts, then ER on shifts.
    let accuracy_names: Vec<String> = std::iter::once(p.id_domain.clone()).chain(p.shifts.iter().cloned()).collect();
    let value_of = |row: &LeaderboardRow, metric: &str| metric_values(lb, row).into_iter().find(|(m, _)| m == metric).and_then(|(_, v)| v);
    let panels: [(String, Vec<(String, String)>); 2] = [
        ("accuracy (%)".into(), accuracy_names.iter().map(|s| (s.clone(), format!("acc_{s}"))).collect()),
        ("effective robustness (points)".into(), p.shifts.iter().map(|s| (s.clone(), format!("er_{s}"))).collect()),
    ];
    let colour_of = |set: &str| set_colour(accuracy_names.iter().position(|n| n == set).unwrap_or(0));
    let sweep_value = |row: &LeaderboardRow| row.sweep.as_ref().map_or(0.0, |s| s.value);

    let x_values: Vec<f64> = series.rows.iter().map(|r| sweep_value(r)).collect();
    let mut items = Vec::new();
    for ((left, right), (title, sets)) in PANELS.iter().zip(&panels) {
        let points: Vec<(String, Vec<(f64, f64)>)> = sets
            .iter()
            .map(|(set, metric)| (set.clone(), series.rows.iter().filter_map(|r| Some((sweep_value(r), value_of(r, metric)?))).collect()))
            .collect();
        let x = Linear::covering(x_values.iter().copied(), *left, *right);
        let y = Linear::covering(points.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)), BOTTOM, TOP);
        for t in x.ticks() {
            let px = x.pixel(t);
            items.push(Item::Line { points: vec![(px, TOP), (px, BOTTOM)], colour: GRID, width: 1.0, dashed: false });
            items.push(text((px, BOTTOM + 18.0), &tick_label(t), 12.0, INK, Anchor::Middle));
        }
        for t in y.ticks() {
            let py = y.pixel(t);
            items.push(Item::Line { points: vec![(*left, py), (*right, py)], colour: GRID, width: 1.0, dashed: false });
            items.push(text((*left - 6.0, py + 4.0), &tick_label(t), 12.0, INK, Anchor::End));
        }
        for (set, pts) in &points {
            let colour = colour_of(set);
            // Mean over seeds at each swept value (grouped by the value's bits), in value order.
            let mut by_value: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
            for &(v, m) in pts {
                by_value.entry(v.to_bits()).or_insert((v, Vec::new())).1.push(m);
            }
            let mut means: Vec<(f64, f64)> = by_value.values().map(|(v, ms)| (*v, ms.iter().sum::<f64>() / ms.len() as f64)).collect();
            means.sort_by(|a, b| a.0.total_cmp(&b.0));
            if means.len() >= 2 {
                items.push(Item::Line { points: means.iter().map(|&(v, m)| (x.pixel(v), y.pixel(m))).collect(), colour, width: 2.0, dashed: false });
            }
            for &(v, m) in pts {
                items.push(Item::Circle { centre: (x.pixel(v), y.pixel(m)), radius: 2.5, fill: colour, stroke: None });
            }
            for &(v, m) in &means {
                items.push(Item::Circle { centre: (x.pixel(v), y.pixel(m)), radius: 4.5, fill: colour, stroke: Some(Rgb(255, 255, 255)) });
            }
        }
        items.push(Item::Line {
            points: vec![(*left, TOP), (*right, TOP), (*right, BOTTOM), (*left, BOTTOM), (*left, TOP)],
            colour: INK,
            width: 1.0,
            dashed: false,
        });
        items.push(text(((left + right) / 2.0, TOP - 10.0), title, 13.0, INK, Anchor::Middle));
        items.push(text(((left + right) / 2.0, BOTTOM + 42.0), &series.key, 13.0, INK, Anchor::Middle));
    }
    let seeds = {
        let mut s: Vec<u64> = series.rows.iter().map(|r| r.seed).collect();
        s.sort();
        s.dedup();
        s.len()
    };
    let title = format!("sweep `{}`: {} · {} ({} seed{}; line = mean, dots = seeds)", series.sweep, series.base_regime, series.model, seeds, if seeds == 1 { "" } else { "s" });
    items.push(text((WIDTH / 2.0, 26.0), &title, 16.0, INK, Anchor::Middle));
    // Legend: one swatch per evaluation set.
    let mut y = TOP + 10.0;
    for set in &accuracy_names {
        items.push(Item::Line { points: vec![(910.0, y), (930.0, y)], colour: colour_of(set), width: 2.0, dashed: false });
        items.push(text((936.0, y + 4.0), set, 12.0, INK, Anchor::Start));
        y += 22.0;
    }
    Figure { width: WIDTH, height: HEIGHT, items }
}

/// The file name (without folder) of a series' SVG figure.
pub fn file_name(series: &SweepSeries<'_>) -> String {
    format!("{}.svg", stem(series))
}

fn stem(series: &SweepSeries<'_>) -> String {
    format!("sweep-{}-{}-{}", series.sweep, series.model, series.base_regime)
}

/// `plots/sweep-<sweep>-<model>-<base regime>.svg|png` for every series.
pub fn write_sweep_plots(plots: &std::path::Path, lb: &Leaderboard) -> anyhow::Result<()> {
    for series in sweep_series(lb) {
        let stem = stem(&series);
        // Built from record values, which anyone can edit.
        let stem = crate::fsutil::checked_name(&stem, "sweep plot name from the records")?;
        let fig = figure(lb, &series);
        crate::fsutil::write_atomic(&plots.join(format!("{stem}.svg")), plot::to_svg(&fig).as_bytes())?;
        crate::fsutil::write_atomic(&plots.join(format!("{stem}.png")), &plot::to_png(&fig)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_inside() {
        let axis = Linear { lo: -3.0, hi: 47.0, pixel_lo: 0.0, pixel_hi: 100.0 };
        assert_eq!(axis.ticks(), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        let axis = Linear { lo: 0.1, hi: 0.9, pixel_lo: 0.0, pixel_hi: 100.0 };
        assert_eq!(axis.ticks().iter().map(|t| tick_label(*t)).collect::<Vec<_>>(), ["0.2", "0.4", "0.6", "0.8"]);
    }
}
