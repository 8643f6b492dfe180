//! `paper.md`: the paper's five research questions laid out from run records alone, one table
//! per question, each cell with its spread over training seeds and each regime's paired gain
//! over `real` (the numbers of `summary.csv`), and under each table readings computed from those
//! numbers: which 95% intervals exclude 0, and in which direction. Nothing here knows which
//! regime "should" win; a question the records cannot answer says so.
//!
//! Which regimes answer which question comes from what the records say their classifiers
//! trained on (`train.sources`, `train.augment`, `train.generated_fraction`), never from regime
//! names: RQ2 compares regimes that differ only in how their generated sets were conditioned,
//! RQ4 regimes that differ only in the generator's variant.

use super::leaderboard::{Leaderboard, LeaderboardRow};
use super::markdown::REFERENCE_REGIME;
use super::summary::{self, Gain, SummaryRow};
use crate::csvfmt::fixed;
use crate::metrics::{self, Interval};
use crate::record::{Role, SourceKind, TrainSource};
use std::collections::BTreeMap;
use std::fmt::Write;

/// File name of the report inside a results folder.
pub const PAPER_FILE: &str = "paper.md";

/// The paper's default way of making generated data: text prompts from the 80 CLIP templates.
const DEFAULT_TEMPLATES: &str = "clip-imagenet-80";

/// One (model, regime) of the leaderboard's entries: its rows, one per seed.
struct Arm<'a> {
    model: String,
    regime: String,
    rows: Vec<&'a LeaderboardRow>,
}

impl Arm<'_> {
    fn sources(&self) -> Option<&[TrainSource]> {
        self.rows[0].train.sources.as_deref()
    }

    fn generated(&self) -> Vec<&TrainSource> {
        self.sources().map_or(Vec::new(), |s| s.iter().filter(|s| s.kind == SourceKind::Generated).collect())
    }

    fn is_sweep(&self) -> bool {
        self.rows[0].sweep.is_some()
    }
}

/// What two regimes may differ in and still answer one question.
#[derive(Clone, Copy, PartialEq)]
enum Facet {
    /// templates, conditioning, strength, source (RQ2).
    Conditioning,
    /// the generator's variant (RQ4).
    Variant,
}

/// How a generated set was conditioned, in words: `text (clip-imagenet-80)`,
/// `image (train)`, `text+image (clip-imagenet-80, strength 0.50, from train)`.
fn conditioning_label(s: &TrainSource) -> String {
    let templates = s.templates.as_deref().unwrap_or("no prompt");
    let source = s.source.as_deref().unwrap_or("?");
    match s.conditioning.as_deref() {
        Some("image") => format!("image (from {source})"),
        Some("text+image") => format!("text+image ({templates}, strength {}, from {source})", fixed(s.strength, 2)),
        Some(other) => format!("{other} ({templates})"),
        None => "unknown".into(),
    }
}

fn variant_label(s: &TrainSource) -> String {
    s.variant.clone().unwrap_or_else(|| "default".into())
}

/// Everything an arm trained on except `facet` and the generated sets' names: arms with equal
/// signatures differ at most in `facet`.
fn signature(arm: &Arm<'_>, facet: Facet) -> Option<String> {
    let train = &arm.rows[0].train;
    let sources = arm.sources()?;
    let mut parts: Vec<String> = sources
        .iter()
        .map(|s| match s.kind {
            SourceKind::Real => format!("real {} {}", s.set, s.images),
            SourceKind::Generated => {
                let mut p = format!("generated {} {}", s.images, s.generator.as_deref().unwrap_or(""));
                if facet != Facet::Conditioning {
                    p.push_str(&format!(" {}", conditioning_label(s)));
                }
                if facet != Facet::Variant {
                    p.push_str(&format!(" variant {}", variant_label(s)));
                }
                p
            }
        })
        .collect();
    parts.push(format!("augment {}", train.augment.as_deref().unwrap_or("")));
    parts.push(format!("fraction {}", fixed(train.generated_fraction, 4)));
    Some(parts.join("; "))
}

/// The label of an arm along `facet` (its generated sets' labels joined).
fn facet_label(arm: &Arm<'_>, facet: Facet) -> String {
    let labels: Vec<String> = arm.generated().iter().map(|s| if facet == Facet::Conditioning { conditioning_label(s) } else { variant_label(s) }).collect();
    labels.join(" + ")
}

/// Whether an arm trains the paper's default way: real sets, or generated sets from the 80
/// templates with text conditioning and the default generator.
fn is_default_setting(arm: &Arm<'_>) -> bool {
    arm.generated().iter().all(|s| s.conditioning.as_deref() == Some("text") && s.templates.as_deref() == Some(DEFAULT_TEMPLATES) && s.variant.is_none())
}

/// The report, from a leaderboard built from the records of suite `suite`.
pub fn paper(lb: &Leaderboard, suite: &str) -> String {
    let summary = summary::summarize(lb);
    let arms = arms(lb);
    let described = arms.iter().all(|a| a.sources().is_some());
    let mut out = String::new();
    let seeds: std::collections::BTreeSet<u64> = arms.iter().flat_map(|a| a.rows.iter().map(|r| r.seed)).collect();
    let _ = writeln!(out, "# `{suite}`: the paper's five research questions\n");
    let _ = writeln!(
        out,
        "Built by `shiftbench paper` from the run records alone: {} classifiers ({} entries over training seeds {}, {} testbed models). \
         Each cell is the mean ± sample standard deviation over training seeds; in parentheses, the regime's gain over `{REFERENCE_REGIME}` of the same model: \
         the mean of the per-seed differences with its 95% paired-t interval (summary.csv). Accuracies are percent, ER and gains percentage points. \
         An interval that excludes 0 is a difference the seeds support; one that includes 0 is not a measured difference.",
        lb.rows.len(),
        lb.rows.iter().filter(|r| r.role == Role::Entry).count(),
        seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        lb.rows.iter().filter(|r| r.role == Role::Testbed).count(),
    );
    if !described {
        let _ = writeln!(
            out,
            "\nSome records do not say what their classifiers trained on (no `train.sources`: made by an older harness), so RQ2 and RQ4, \
             which group regimes by it, cannot be read from them; every regime is shown under RQ1. Re-run the suite to fill it."
        );
    }
    rq1(&mut out, lb, &summary, &arms, described);
    rq_facet(&mut out, lb, &summary, &arms, described, Facet::Conditioning);
    rq3(&mut out, lb, &summary);
    rq_facet(&mut out, lb, &summary, &arms, described, Facet::Variant);
    rq5(&mut out, lb, &arms);
    out
}

fn arms(lb: &Leaderboard) -> Vec<Arm<'_>> {
    summary::seed_groups(lb).into_iter().map(|((model, regime), rows)| Arm { model, regime, rows }).collect()
}

/// The metrics the comparison tables show: ID and shifted accuracy, then ER per shift.
fn table_metrics(lb: &Leaderboard) -> Vec<(String, String)> {
    let p = &lb.protocol;
    let mut out = vec![(format!("acc_{}", p.id_domain), p.id_domain.clone())];
    out.extend(p.shifts.iter().map(|s| (format!("acc_{s}"), s.clone())));
    out.extend(p.shifts.iter().map(|s| (format!("er_{s}"), format!("ER {s}"))));
    out
}

fn summary_row<'s>(summary: &'s [SummaryRow], model: &str, regime: &str, metric: &str) -> Option<&'s SummaryRow> {
    summary.iter().find(|r| r.model == model && r.regime == regime && r.metric == metric)
}

/// `92.87 ± 1.40 (+44.87 [34.98, 54.75])`: the spread, then the gain over `real` when there is one.
fn summary_cell(row: Option<&SummaryRow>) -> String {
    let Some(row) = row else { return "–".into() };
    let mut cell = match row.spread {
        Some(s) => match s.sd {
            Some(sd) => format!("{} ± {}", fixed(Some(s.mean), 2), fixed(Some(sd), 2)),
            None => fixed(Some(s.mean), 2),
        },
        None => return "–".into(),
    };
    if let Some(g) = row.gain {
        let _ = write!(cell, " ({})", gain_text(&g));
    }
    cell
}

/// `+44.87 [34.98, 54.75]`, or the mean alone without an interval.
fn gain_text(g: &Gain) -> String {
    match g.interval {
        Some(i) => format!("{} [{}, {}]", signed(g.mean), fixed(Some(i.lo), 2), fixed(Some(i.hi), 2)),
        None => signed(g.mean),
    }
}

fn signed(x: f64) -> String {
    let s = fixed(Some(x), 2);
    if s.starts_with('-') || s == "0.00" {
        s
    } else {
        format!("+{s}")
    }
}

/// Which side of 0 an interval lies on: `Some(true)` above, `Some(false)` below, `None` across.
fn side(i: Interval) -> Option<bool> {
    if i.lo > 0.0 {
        Some(true)
    } else if i.hi < 0.0 {
        Some(false)
    } else {
        None
    }
}

/// One reading of `regime` against `reference`: the metrics whose paired interval excludes 0
/// (with the gain), then those whose interval includes it.
fn reading(subject: &str, reference: &str, gains: &[(String, Option<Gain>)], metrics: &[(String, String)]) -> String {
    let shown: Vec<(&str, Gain)> = metrics.iter().filter_map(|(m, label)| Some((label.as_str(), gains.iter().find(|(g, _)| g == m)?.1?))).collect();
    if shown.is_empty() {
        return format!("`{subject}` vs `{reference}`: no seed was trained in both, so there is no paired difference.");
    }
    if shown.iter().all(|(_, g)| g.interval.is_none()) {
        return format!("`{subject}` vs `{reference}`: fewer than two seeds pair up, so no interval: no difference can be read.");
    }
    let excludes: Vec<String> = shown.iter().filter(|(_, g)| g.interval.and_then(side).is_some()).map(|(l, g)| format!("{l} {}", gain_text(g))).collect();
    let includes: Vec<&str> = shown.iter().filter(|(_, g)| g.interval.is_some_and(|i| side(i).is_none())).map(|(l, _)| *l).collect();
    let mut text = format!("`{subject}` vs `{reference}`: ");
    if excludes.is_empty() {
        text.push_str("every interval includes 0");
    } else {
        let _ = write!(text, "the interval excludes 0 on {}", excludes.join(", "));
        if !includes.is_empty() {
            let _ = write!(text, "; it includes 0 on {}", includes.join(", "));
        }
    }
    let pairs = shown.iter().map(|(_, g)| g.pairs).max().unwrap_or(0);
    let _ = write!(text, " ({pairs} paired seeds).");
    text
}

fn push_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {} |", c.replace('|', "\\|"));
    }
    out.push('\n');
}

/// Header and alignment rows: the first `keys` columns left-aligned, the rest right.
fn push_header(out: &mut String, header: &[String], keys: usize) {
    push_row(out, header);
    push_row(out, &(0..header.len()).map(|i| if i < keys { "---" } else { "---:" }.to_string()).collect::<Vec<_>>());
}

/// A comparison table: one row per arm, `label` its first column, then the table metrics.
fn arm_table(out: &mut String, lb: &Leaderboard, summary: &[SummaryRow], arms: &[&Arm<'_>], first: &str, label: impl Fn(&Arm<'_>) -> String) {
    let metrics = table_metrics(lb);
    let mut header: Vec<String> = vec!["model".into(), "regime".into(), first.into(), "seeds".into()];
    header.extend(metrics.iter().map(|(_, l)| l.clone()));
    push_header(out, &header, 3);
    for &arm in arms {
        let mut cells = vec![arm.model.clone(), arm.regime.clone(), label(arm), arm.rows.len().to_string()];
        cells.extend(metrics.iter().map(|(m, _)| summary_cell(summary_row(summary, &arm.model, &arm.regime, m))));
        push_row(out, &cells);
    }
}

/// What an arm trained on, in words: `train (5000) + gen-train (5000, generated)`.
fn trained_on(arm: &Arm<'_>) -> String {
    let Some(sources) = arm.sources() else { return "–".into() };
    let sets: Vec<String> = sources.iter().map(|s| match s.kind {
        SourceKind::Real => format!("{} ({})", s.set, s.images),
        SourceKind::Generated => format!("{} ({}, generated)", s.set, s.images),
    }).collect();
    let mut text = sets.join(" + ");
    if let Some(a) = arm.rows[0].train.augment.as_deref().filter(|a| *a != "none") {
        let _ = write!(text, ", augment {a}");
    }
    if let Some(f) = arm.rows[0].train.generated_fraction {
        let _ = write!(text, ", {} generated per batch", fixed(Some(f), 2));
    }
    text
}

fn rq1(out: &mut String, lb: &Leaderboard, summary: &[SummaryRow], arms: &[Arm<'_>], described: bool) {
    let _ = writeln!(out, "\n## RQ1: real, generated, and real + generated data\n");
    let chosen: Vec<&Arm<'_>> = arms.iter().filter(|a| !a.is_sweep() && (!described || is_default_setting(a))).collect();
    if chosen.is_empty() {
        let _ = writeln!(out, "No records for this question.");
        return;
    }
    let _ = writeln!(
        out,
        "Regimes trained on real images, on generated images made the paper's way (text prompts from the 80 CLIP templates), or on both. \
         The effective-robustness figure of each shift is `plots/<shift>.svg`: {}.\n",
        lb.protocol.shifts.iter().map(|s| format!("`plots/{s}.svg`")).collect::<Vec<_>>().join(", ")
    );
    arm_table(out, lb, summary, &chosen, "trains on", trained_on);
    push_readings(out, lb, &chosen, |arm| (arm.regime != REFERENCE_REGIME).then(|| REFERENCE_REGIME.to_string()));
}

/// One reading per arm that has a reference, as a list under the table.
fn push_readings(out: &mut String, lb: &Leaderboard, arms: &[&Arm<'_>], reference: impl Fn(&Arm<'_>) -> Option<String>) {
    let metrics = table_metrics(lb);
    let lines: Vec<String> = arms
        .iter()
        .filter_map(|&arm| {
            let reference = reference(arm)?;
            Some(reading(&format!("{}/{}", arm.model, arm.regime), &format!("{}/{reference}", arm.model), &summary::gains_between(lb, &arm.model, &arm.regime, &reference), &metrics))
        })
        .collect();
    if !lines.is_empty() {
        out.push('\n');
        for line in lines {
            let _ = writeln!(out, "- {line}");
        }
    }
}

fn rq_facet(out: &mut String, lb: &Leaderboard, summary: &[SummaryRow], arms: &[Arm<'_>], described: bool, facet: Facet) {
    let (title, what, column) = match facet {
        Facet::Conditioning => ("RQ2: conditioning strategies", "differ only in how their generated images were conditioned (prompt templates, real-image conditioning, strength)", "conditioning"),
        Facet::Variant => ("RQ4: base vs fine-tuned generator", "differ only in the generator's variant (e.g. base or fine-tuned weights)", "generator variant"),
    };
    let _ = writeln!(out, "\n## {title}\n");
    if !described {
        let _ = writeln!(out, "No records for this question: the records do not say what their classifiers trained on.");
        return;
    }
    // Arms that train on generated sets, grouped by everything but the facet.
    let mut groups: BTreeMap<(String, String), Vec<&Arm<'_>>> = BTreeMap::new();
    for arm in arms.iter().filter(|a| !a.is_sweep() && !a.generated().is_empty()) {
        if let Some(sig) = signature(arm, facet) {
            groups.entry((arm.model.clone(), sig)).or_default().push(arm);
        }
    }
    let groups: Vec<Vec<&Arm<'_>>> = groups
        .into_values()
        .filter(|g| g.iter().map(|a| facet_label(a, facet)).collect::<std::collections::BTreeSet<_>>().len() > 1)
        .map(|mut g| {
            g.sort_by_key(|a| (facet_order(a, facet), a.regime.clone()));
            g
        })
        .collect();
    if groups.is_empty() {
        let _ = writeln!(out, "No records for this question: no two regimes of one model {what}.");
        return;
    }
    let _ = writeln!(out, "Regimes that {what}; everything else they trained on is the same.");
    for group in groups {
        out.push('\n');
        arm_table(out, lb, summary, &group, column, |a| facet_label(a, facet));
        let reference = group[0].regime.clone();
        let _ = writeln!(out, "\nPaired against `{reference}` ({}), the first row:", facet_label(group[0], facet));
        push_readings(out, lb, &group[1..], |_| Some(reference.clone()));
    }
}

/// Table order along a facet: text with the 80 templates (the paper's default) first, then one
/// template, image, text+image by strength; the default variant first.
fn facet_order(arm: &Arm<'_>, facet: Facet) -> (u8, u64, String) {
    let generated = arm.generated();
    let Some(s) = generated.first() else { return (9, 0, String::new()) };
    match facet {
        Facet::Variant => (u8::from(s.variant.is_some()), 0, variant_label(s)),
        Facet::Conditioning => {
            let rank = match (s.conditioning.as_deref(), s.templates.as_deref()) {
                (Some("text"), Some(DEFAULT_TEMPLATES)) => 0,
                (Some("text"), _) => 1,
                (Some("image"), _) => 2,
                (Some("text+image"), _) => 3,
                _ => 4,
            };
            (rank, (s.strength.unwrap_or(0.0) * 1e6) as u64, conditioning_label(s))
        }
    }
}

fn rq3(out: &mut String, lb: &Leaderboard, summary: &[SummaryRow]) {
    let _ = writeln!(out, "\n## RQ3: how much generated data\n");
    let series = super::sweep_plot::sweep_series(lb);
    if series.is_empty() {
        let _ = writeln!(out, "No records for this question: no regime comes from a `[[sweeps]]` entry.");
        return;
    }
    let metrics = table_metrics(lb);
    for s in series {
        let _ = writeln!(
            out,
            "`{}` of `{}/{}` swept over `{}`: gain over `{REFERENCE_REGIME}` per value (mean of the per-seed differences, 95% paired-t interval). \
             Figure: `plots/{}`.\n",
            s.sweep, s.model, s.base_regime, s.key, super::sweep_plot::file_name(&s)
        );
        let mut values: Vec<(f64, &str)> = s.rows.iter().filter_map(|r| Some((r.sweep.as_ref()?.value, r.regime.as_str()))).collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        values.dedup_by(|a, b| a.1 == b.1);
        let mut header: Vec<String> = vec![s.sweep.clone(), "seeds".into()];
        header.extend(metrics.iter().map(|(_, l)| l.clone()));
        push_header(out, &header, 1);
        let mut excluded: Vec<(String, Vec<String>)> = metrics.iter().map(|(_, l)| (l.clone(), Vec::new())).collect();
        for (value, regime) in &values {
            let seeds = s.rows.iter().filter(|r| r.regime == *regime).count();
            let mut cells = vec![crate::suite::sweep_value_label(*value), seeds.to_string()];
            for (k, (m, _)) in metrics.iter().enumerate() {
                let row = summary_row(summary, &s.model, regime, m);
                let gain = row.and_then(|r| r.gain);
                cells.push(gain.as_ref().map_or("–".into(), gain_text));
                if let Some(up) = gain.and_then(|g| g.interval).and_then(side) {
                    excluded[k].1.push(format!("{} ({})", crate::suite::sweep_value_label(*value), if up { "above" } else { "below" }));
                }
            }
            push_row(out, &cells);
        }
        let with: Vec<String> = excluded.iter().filter(|(_, v)| !v.is_empty()).map(|(l, v)| format!("{l} at {}", v.join(", "))).collect();
        let without: Vec<&str> = excluded.iter().filter(|(_, v)| v.is_empty()).map(|(l, _)| l.as_str()).collect();
        let best = metrics
            .iter()
            .filter_map(|(m, l)| {
                let (value, gain) = values.iter().filter_map(|(v, regime)| Some((*v, summary_row(summary, &s.model, regime, m)?.gain?.mean))).max_by(|a, b| a.1.total_cmp(&b.1))?;
                Some((l, value, gain))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let _ = write!(out, "\n- Intervals that exclude 0: {}", if with.is_empty() { "none".to_string() } else { with.join("; ") });
        if !without.is_empty() {
            let _ = write!(out, "; at no value: {}", without.join(", "));
        }
        out.push_str(".\n");
        if let Some((label, value, gain)) = best {
            let _ = writeln!(out, "- Largest mean gain: {label} {} at {}.", signed(gain), crate::suite::sweep_value_label(value));
        }
        out.push('\n');
    }
}

fn rq5(out: &mut String, lb: &Leaderboard, arms: &[Arm<'_>]) {
    let _ = writeln!(out, "\n## RQ5: degradation on generated data\n");
    let Some(generated) = lb.protocol.generated_eval.clone() else {
        let _ = writeln!(out, "No records for this question: the protocol has no generated evaluation set.");
        return;
    };
    let id = lb.protocol.id_domain.clone();
    let _ = writeln!(
        out,
        "Degradation = accuracy on `{id}` − accuracy on `{generated}` (generated images of the same classes), points: mean ± sd over the \
         classifiers of each row (the seeds of an entry regime; the models of the testbed), with the 95% t interval of that mean.\n"
    );
    let mut header: Vec<String> = ["role", "model", "regime", "classifiers"].map(String::from).to_vec();
    header.extend([id.clone(), generated.clone(), "degradation".into(), "95% interval".into()]);
    push_header(out, &header, 3);
    let mut lines: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |out: &mut String, role: &str, model: &str, regime: &str, rows: &[&LeaderboardRow]| {
        let values = |f: fn(&LeaderboardRow) -> Option<f64>| rows.iter().filter_map(|r| f(r)).collect::<Vec<f64>>();
        let degradation = values(|r| r.gen_degradation);
        let interval = metrics::paired_t_interval(&degradation);
        let cells = vec![
            role.to_string(),
            model.to_string(),
            regime.to_string(),
            rows.len().to_string(),
            spread_text(&values(|r| r.acc_id)),
            spread_text(&values(|r| r.acc_generated)),
            spread_text(&degradation),
            interval.map_or("–".into(), |i| format!("[{}, {}]", fixed(Some(i.lo), 2), fixed(Some(i.hi), 2))),
        ];
        push_row(out, &cells);
        lines.push((format!("{role} {model}/{regime}"), degradation));
    };
    for arm in arms {
        push(out, "entry", &arm.model, &arm.regime, &arm.rows[..]);
    }
    // Every other role (the testbed, classifiers compared from outside) as one row per regime.
    let mut others: BTreeMap<(Role, String), Vec<&LeaderboardRow>> = BTreeMap::new();
    for r in lb.rows.iter().filter(|r| r.role != Role::Entry) {
        others.entry((r.role, r.regime.clone())).or_default().push(r);
    }
    for ((role, regime), rows) in &others {
        let role = serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        push(out, &role, &format!("({} models)", rows.len()), regime, &rows[..]);
    }
    let mut above = Vec::new();
    let mut below = Vec::new();
    let mut across = Vec::new();
    for (name, values) in &lines {
        match metrics::paired_t_interval(values).map(side) {
            Some(Some(true)) => above.push(name.as_str()),
            Some(Some(false)) => below.push(name.as_str()),
            Some(None) => across.push(name.as_str()),
            None => {}
        }
    }
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let _ = writeln!(out, "\n- Worse on generated images (interval above 0): {}.", list(&above));
    let _ = writeln!(out, "- Better on generated images (interval below 0): {}.", list(&below));
    let _ = writeln!(out, "- No measured difference (interval includes 0): {}.", list(&across));
    let largest = lines.iter().filter_map(|(name, v)| Some((name, metrics::spread(v)?.mean))).max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, mean)) = largest {
        let _ = writeln!(out, "- Largest mean degradation: {name}, {} points (the paper reports up to about 20 for ImageNet classifiers).", fixed(Some(mean), 2));
    }
}

/// `34.33 ± 1.31`, the mean alone for one value, `–` for none.
fn spread_text(values: &[f64]) -> String {
    match metrics::spread(values) {
        Some(s) => match s.sd {
            Some(sd) => format!("{} ± {}", fixed(Some(s.mean), 2), fixed(Some(sd), 2)),
            None => fixed(Some(s.mean), 2),
        },
        None => "–".into(),
    }
}

/// Writes `dir/paper.md` and the figures it points to (`dir/plots/`: the ER figure per shift
/// and every sweep's figure), each file atomically.
pub fn write(dir: &std::path::Path, lb: &Leaderboard, suite: &str) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(&dir.join(PAPER_FILE), paper(lb, suite).as_bytes())?;
    super::plot::write_plots(dir, lb)
}
