//! A Markdown rendering of a leaderboard, for READMEs, papers and terminals.

use super::leaderboard::{Leaderboard, LeaderboardRow, LEADERBOARD_SCHEMA};
use crate::csvfmt::{fixed, line_fields};
use crate::metrics::{self, Interval};
use super::summary::SummaryRow;
use crate::record::Role;
use std::fmt::Write;

/// The regime every other regime is compared with (DESIGN.md §4, "relative gain").
pub const REFERENCE_REGIME: &str = "real";

/// Four tables over the leaderboard entries: accuracies with their Clopper–Pearson intervals,
/// effective robustness with its bootstrap intervals (plus degradation), gains over the `real`
/// regime of the same model and seed, and the baseline fits. Missing values print as `–`.
pub fn markdown(lb: &Leaderboard) -> String {
    let protocol = &lb.protocol;
    let entries: Vec<&LeaderboardRow> = lb.rows.iter().filter(|r| r.role == Role::Entry).collect();
    let mut out = String::new();
    let key = |row: &LeaderboardRow| vec![row.model.clone(), row.regime.clone(), row.seed.to_string()];
    let key_header = ["model", "regime", "seed"].map(String::from).to_vec();

    let _ = writeln!(
        out,
        "Top-1 accuracy (%) with its exact 95% (Clopper–Pearson) interval. Built from run records; \
         leaderboard.csv schema {LEADERBOARD_SCHEMA}.\n"
    );
    let mut header = key_header.clone();
    header.push(protocol.id_domain.clone());
    header.extend(protocol.shifts.iter().cloned());
    header.extend(protocol.generated_eval.iter().cloned());
    push_table_header(&mut out, &header);
    for row in &entries {
        let mut cells = key(row);
        cells.push(with_interval(row.acc_id, row.acc_id_ci));
        cells.extend(row.acc_shifts.iter().zip(&row.acc_shifts_ci).map(|(&a, &ci)| with_interval(a, ci)));
        if protocol.generated_eval.is_some() {
            cells.push(with_interval(row.acc_generated, row.acc_generated_ci));
        }
        push_row(&mut out, &cells);
    }

    let _ = writeln!(
        out,
        "\nEffective robustness (points) against the {} fit over the testbed, with its 95% bootstrap \
         interval ({} resamples of the testbed models){}.\n",
        lb.transform,
        metrics::DEFAULT_RESAMPLES,
        if protocol.generated_eval.is_some() { "; degradation = ID accuracy − generated-set accuracy" } else { "" }
    );
    let mut header = key_header.clone();
    header.extend(protocol.shifts.iter().map(|s| format!("ER {s}")));
    header.push("ER mean".into());
    if protocol.generated_eval.is_some() {
        header.push("degradation".into());
    }
    push_table_header(&mut out, &header);
    for row in &entries {
        let mut cells = key(row);
        cells.extend(row.er.iter().zip(&row.er_ci).map(|(&e, &ci)| with_interval(e, ci)));
        cells.push(cell(row.er_mean));
        if protocol.generated_eval.is_some() {
            cells.push(cell(row.gen_degradation));
        }
        push_row(&mut out, &cells);
    }

    let gains: Vec<(&LeaderboardRow, &LeaderboardRow)> = entries
        .iter()
        .filter(|r| r.regime != REFERENCE_REGIME)
        .filter_map(|r| {
            let reference = entries
                .iter()
                .find(|b| b.regime == REFERENCE_REGIME && b.model == r.model && b.seed == r.seed)?;
            Some((*r, *reference))
        })
        .collect();
    if !gains.is_empty() {
        let _ = writeln!(
            out,
            "\nGain over the `{REFERENCE_REGIME}` regime of the same model and seed (points): shifted accuracy, then ER.\n"
        );
        let mut header = key_header.clone();
        header.push(protocol.id_domain.clone());
        header.extend(protocol.shifts.iter().cloned());
        header.extend(protocol.shifts.iter().map(|s| format!("ER {s}")));
        push_table_header(&mut out, &header);
        let gain = |reference: Option<f64>, value: Option<f64>| cell(reference.zip(value).map(|(r, v)| metrics::gain_over(r, v)));
        for (row, reference) in gains {
            let mut cells = key(row);
            cells.push(gain(reference.acc_id, row.acc_id));
            cells.extend(row.acc_shifts.iter().zip(&reference.acc_shifts).map(|(&v, &r)| gain(r, v)));
            cells.extend(row.er.iter().zip(&reference.er).map(|(&v, &r)| gain(r, v)));
            push_row(&mut out, &cells);
        }
    }

    if super::summary::has_seed_spread(lb) {
        push_seed_tables(&mut out, lb);
    }

    let _ = writeln!(out, "\nBaseline fits, `{}(shift) = slope · {}(ID) + intercept` over the testbed models.\n", lb.transform, lb.transform);
    push_row(&mut out, &["shift", "testbed models", "slope", "intercept", "r"].map(String::from));
    push_row(&mut out, &["---", "---:", "---:", "---:", "---:"].map(String::from));
    for f in &lb.fits {
        let [slope, intercept, r] = line_fields(f.line()).map(dash);
        push_row(&mut out, &[f.shift.clone(), f.n.to_string(), slope, intercept, r]);
    }
    out
}

/// The across-seeds tables (`summary.csv` in Markdown): each metric's mean ± standard deviation
/// over seeds, then each regime's paired gain over `real` with its 95% paired-t interval.
fn push_seed_tables(out: &mut String, lb: &Leaderboard) {
    let rows = super::summary::summarize(lb);
    let mut keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.model.as_str(), r.regime.as_str())).collect();
    keys.dedup();
    fn rows_of<'a>(rows: &'a [SummaryRow], key: (&str, &str)) -> Vec<&'a SummaryRow> {
        rows.iter().filter(|r| (r.model.as_str(), r.regime.as_str()) == key).collect()
    }
    let metrics_of = |key: (&str, &str)| rows_of(&rows, key);
    let Some(first) = keys.first() else { return };
    let names: Vec<String> = metrics_of(*first).iter().map(|r| r.metric.clone()).collect();

    let _ = writeln!(
        out,
        "\nAcross training seeds (summary.csv): mean ± sample standard deviation over the seeds of each model and regime.\n"
    );
    let mut header: Vec<String> = ["model", "regime", "seeds"].map(String::from).to_vec();
    header.extend(names.iter().cloned());
    push_table_header(out, &header);
    for &key in &keys {
        let cells_of = metrics_of(key);
        let seeds = cells_of.iter().filter_map(|r| r.spread).map(|s| s.n).max().unwrap_or(0);
        let mut cells = vec![key.0.to_string(), key.1.to_string(), seeds.to_string()];
        cells.extend(cells_of.iter().map(|r| match r.spread {
            Some(s) => match s.sd {
                Some(sd) => format!("{} ± {}", fixed(Some(s.mean), 2), fixed(Some(sd), 2)),
                None => fixed(Some(s.mean), 2),
            },
            None => "–".into(),
        }));
        push_row(out, &cells);
    }

    let gains: Vec<(&str, &str)> = keys.iter().copied().filter(|&k| metrics_of(k).iter().any(|r| r.gain.is_some())).collect();
    if gains.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nGain over `{REFERENCE_REGIME}` across seeds (points): mean of the per-seed differences with its 95% paired-t interval \
         (seeds trained in both regimes; no interval from one pair).\n"
    );
    let mut header: Vec<String> = ["model", "regime", "pairs"].map(String::from).to_vec();
    header.extend(names.iter().cloned());
    push_table_header(out, &header);
    for key in gains {
        let cells_of = metrics_of(key);
        let pairs = cells_of.iter().filter_map(|r| r.gain).map(|g| g.pairs).max().unwrap_or(0);
        let mut cells = vec![key.0.to_string(), key.1.to_string(), pairs.to_string()];
        cells.extend(cells_of.iter().map(|r| match r.gain {
            Some(g) => with_interval(Some(g.mean), g.interval),
            None => "–".into(),
        }));
        push_row(out, &cells);
    }
}

/// `98.20 [97.36, 98.85]`, or just the value when there is no interval.
fn with_interval(value: Option<f64>, interval: Option<Interval>) -> String {
    match (value, interval) {
        (Some(_), Some(i)) => format!("{} [{}, {}]", cell(value), fixed(Some(i.lo), 2), fixed(Some(i.hi), 2)),
        _ => cell(value),
    }
}

fn cell(x: Option<f64>) -> String {
    dash(fixed(x, 2))
}

fn dash(s: String) -> String {
    if s.is_empty() {
        "–".to_string()
    } else {
        s
    }
}

/// The header row and the alignment row: the three key columns left, numbers right.
fn push_table_header(out: &mut String, header: &[String]) {
    push_row(out, header);
    push_row(out, &header.iter().enumerate().map(|(i, _)| if i < 3 { "---" } else { "---:" }.to_string()).collect::<Vec<_>>());
}

fn push_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        // A pipe inside a cell would split it; model and regime names are the only free text.
        let _ = write!(out, " {} |", c.replace('|', "\\|"));
    }
    out.push('\n');
}
