//! The leaderboard across training seeds: per (model, regime) the spread of every accuracy and
//! ER over its seeds, and each regime's gain over `real` as a paired difference over the seeds
//! both were trained with.
//!
//! One seed's difference of a few points between two rows is within what float rounding alone
//! moves a single training (README, "The published results"); this table is where a reader sees
//! whether a difference survives the seeds.

use super::leaderboard::{Leaderboard, LeaderboardRow};
use super::markdown::REFERENCE_REGIME;
use crate::csvfmt::{self, fixed};
use crate::metrics::{self, Interval, Spread};
use crate::record::Role;
use anyhow::Result;
use std::collections::BTreeMap;

/// File name of the across-seeds table inside a results folder.
pub const SUMMARY_FILE: &str = "summary.csv";

/// Version of `summary.csv`'s columns (README, "`summary.csv` columns").
pub const SUMMARY_SCHEMA: u32 = 1;

/// The columns of `summary.csv`, in order.
pub const SUMMARY_HEADER: [&str; 12] =
    ["model", "regime", "metric", "seeds", "mean", "sd", "min", "max", "gain_pairs", "gain", "gain_lo", "gain_hi"];

/// A regime's gain over the reference regime of the same model on one metric: the mean of the
/// per-seed differences over the seeds both have, with its paired-t 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gain {
    pub pairs: usize,
    pub mean: f64,
    pub interval: Option<Interval>,
}

/// One (model, regime, metric) line of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub model: String,
    pub regime: String,
    /// The leaderboard column it summarises (`acc_sketch`, `er_v2`, `gen_degradation`, ...).
    pub metric: String,
    /// `None` when no seed has the metric.
    pub spread: Option<Spread>,
    /// `None` for the reference regime itself, or without a seed in common with it.
    pub gain: Option<Gain>,
}

/// The leaderboard columns summarised, with each row's value, in leaderboard column order.
pub fn metric_values(lb: &Leaderboard, row: &LeaderboardRow) -> Vec<(String, Option<f64>)> {
    let p = &lb.protocol;
    let mut out = vec![(format!("acc_{}", p.id_domain), row.acc_id)];
    out.extend(p.shifts.iter().zip(&row.acc_shifts).map(|(s, &a)| (format!("acc_{s}"), a)));
    if let Some(generated) = &p.generated_eval {
        out.push((format!("acc_{generated}"), row.acc_generated));
    }
    out.extend(p.shifts.iter().zip(&row.er).map(|(s, &e)| (format!("er_{s}"), e)));
    out.push(("er_mean".into(), row.er_mean));
    if p.generated_eval.is_some() {
        out.push(("gen_degradation".into(), row.gen_degradation));
    }
    out
}

/// Leaderboard entries grouped by (model, regime), each group's rows in seed order (the
/// leaderboard's own row order).
pub fn seed_groups(lb: &Leaderboard) -> BTreeMap<(String, String), Vec<&LeaderboardRow>> {
    let mut groups: BTreeMap<(String, String), Vec<&LeaderboardRow>> = BTreeMap::new();
    for row in lb.rows.iter().filter(|r| r.role == Role::Entry) {
        groups.entry((row.model.clone(), row.regime.clone())).or_default().push(row);
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|r| r.seed);
    }
    groups
}

/// The summary of `lb`'s entries (the testbed is one training per model and is left out).
/// Rows are sorted by model, regime (byte order), then metric in leaderboard column order.
pub fn summarize(lb: &Leaderboard) -> Vec<SummaryRow> {
    let groups = seed_groups(lb);
    let mut out = Vec::new();
    for ((model, regime), rows) in &groups {
        let values_by_seed = per_seed(lb, rows);
        let Some((_, first)) = values_by_seed.first() else { continue };
        let gains = (regime != REFERENCE_REGIME).then(|| groups.get(&(model.clone(), REFERENCE_REGIME.to_string())).map(|r| paired_gains(&values_by_seed, &per_seed(lb, r))));
        for (m, (metric, _)) in first.iter().enumerate() {
            let values: Vec<f64> = values_by_seed.iter().filter_map(|(_, v)| v[m].1).collect();
            out.push(SummaryRow {
                model: model.clone(),
                regime: regime.clone(),
                metric: metric.clone(),
                spread: metrics::spread(&values),
                gain: gains.as_ref().and_then(|g| g.as_ref()).and_then(|g| g[m]),
            });
        }
    }
    out
}

/// Each metric of `regime` (model `model`) against `reference` of the same model, paired over
/// the seeds both have: `(metric, gain)` in leaderboard column order, the gain `None` where no
/// seed pairs up. Empty when either regime has no entry rows.
pub fn gains_between(lb: &Leaderboard, model: &str, regime: &str, reference: &str) -> Vec<(String, Option<Gain>)> {
    let groups = seed_groups(lb);
    let (Some(rows), Some(base)) = (groups.get(&(model.to_string(), regime.to_string())), groups.get(&(model.to_string(), reference.to_string()))) else {
        return Vec::new();
    };
    let values = per_seed(lb, rows);
    let names: Vec<String> = values.first().map(|(_, v)| v.iter().map(|(m, _)| m.clone()).collect()).unwrap_or_default();
    names.into_iter().zip(paired_gains(&values, &per_seed(lb, base))).collect()
}

type SeedValues = Vec<(u64, Vec<(String, Option<f64>)>)>;

fn per_seed(lb: &Leaderboard, rows: &[&LeaderboardRow]) -> SeedValues {
    rows.iter().map(|r| (r.seed, metric_values(lb, r))).collect()
}

/// Per metric: the mean of (value − reference) over the seeds both have, with its paired-t interval.
fn paired_gains(values: &SeedValues, reference: &SeedValues) -> Vec<Option<Gain>> {
    let metrics = values.first().map_or(0, |(_, v)| v.len());
    (0..metrics)
        .map(|m| {
            let differences: Vec<f64> = values
                .iter()
                .filter_map(|(seed, v)| {
                    let (_, base) = reference.iter().find(|(s, _)| s == seed)?;
                    Some(metrics::gain_over(base[m].1?, v[m].1?))
                })
                .collect();
            let s = metrics::spread(&differences)?;
            Some(Gain { pairs: s.n, mean: s.mean, interval: metrics::paired_t_interval(&differences) })
        })
        .collect()
}

/// `summary.csv`: [`SUMMARY_HEADER`], 2 decimals, empty where a value is undefined (a standard
/// deviation or interval from one seed, a gain of the reference regime).
pub fn summary_csv(rows: &[SummaryRow]) -> Result<String> {
    let mut w = csvfmt::writer();
    w.write_record(SUMMARY_HEADER)?;
    for r in rows {
        let s = r.spread;
        let g = r.gain;
        w.write_record([
            r.model.clone(),
            r.regime.clone(),
            r.metric.clone(),
            s.map_or(0, |s| s.n).to_string(),
            fixed(s.map(|s| s.mean), 2),
            fixed(s.and_then(|s| s.sd), 2),
            fixed(s.map(|s| s.min), 2),
            fixed(s.map(|s| s.max), 2),
            g.map_or(String::new(), |g| g.pairs.to_string()),
            fixed(g.map(|g| g.mean), 2),
            fixed(g.and_then(|g| g.interval).map(|i| i.lo), 2),
            fixed(g.and_then(|g| g.interval).map(|i| i.hi), 2),
        ])?;
    }
    csvfmt::finish(w)
}

/// Whether any (model, regime) has more than one seed: only then is an across-seeds section worth
/// a reader's time.
pub fn has_seed_spread(lb: &Leaderboard) -> bool {
    seed_groups(lb).values().any(|rows| rows.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_every_field_a_row_writes() {
        let csv = summary_csv(&[SummaryRow {
            model: "m".into(),
            regime: "r".into(),
            metric: "acc_val".into(),
            spread: metrics::spread(&[1.0, 2.0, 6.0]),
            gain: Some(Gain { pairs: 3, mean: 3.0, interval: metrics::paired_t_interval(&[1.0, 2.0, 6.0]) }),
        }])
        .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], SUMMARY_HEADER.join(","));
        assert_eq!(lines[1], "m,r,acc_val,3,3.00,2.65,1.00,6.00,3,3.00,-3.57,9.57");
    }
}
