//! A Markdown summary of a leaderboard, for READMEs and terminals.

use super::leaderboard::{fixed, Leaderboard};
use crate::record::Role;
use std::fmt::Write;

/// Two tables: the leaderboard entries (accuracies, mean ER, degradation) and the baseline fits.
/// Missing values print as `–`.
pub fn markdown(lb: &Leaderboard) -> String {
    let protocol = &lb.protocol;
    let mut out = String::new();

    let mut header = vec!["model".to_string(), "regime".to_string(), "seed".to_string(), protocol.id_domain.clone()];
    header.extend(protocol.shifts.iter().cloned());
    header.extend(protocol.generated_eval.iter().cloned());
    header.push("ER mean".to_string());
    if protocol.generated_eval.is_some() {
        header.push("degradation".to_string());
    }
    let _ = writeln!(out, "Top-1 accuracy (%), effective robustness and degradation (points), {} fit.\n", lb.transform);
    push_row(&mut out, &header);
    push_row(
        &mut out,
        &header.iter().enumerate().map(|(i, _)| if i < 3 { "---" } else { "---:" }.to_string()).collect::<Vec<_>>(),
    );

    for row in lb.rows.iter().filter(|r| r.role == Role::Entry) {
        let mut cells = vec![row.model.clone(), row.regime.clone(), row.seed.to_string(), cell(row.acc_id)];
        cells.extend(row.acc_shifts.iter().map(|&a| cell(a)));
        if protocol.generated_eval.is_some() {
            cells.push(cell(row.acc_generated));
        }
        cells.push(cell(row.er_mean));
        if protocol.generated_eval.is_some() {
            cells.push(cell(row.gen_degradation));
        }
        push_row(&mut out, &cells);
    }

    out.push('\n');
    push_row(&mut out, &["shift", "testbed models", "slope", "intercept", "r"].map(String::from));
    push_row(&mut out, &["---", "---:", "---:", "---:", "---:"].map(String::from));
    for f in &lb.fits {
        let dash = |s: String| if s.is_empty() { "–".to_string() } else { s };
        push_row(
            &mut out,
            &[
                f.shift.clone(),
                f.n.to_string(),
                dash(fixed(f.fit.map(|l| l.slope), 4)),
                dash(fixed(f.fit.map(|l| l.intercept), 4)),
                dash(fixed(f.fit.map(|l| l.r), 4)),
            ],
        );
    }
    out
}

fn cell(x: Option<f64>) -> String {
    let s = fixed(x, 2);
    if s.is_empty() {
        "–".to_string()
    } else {
        s
    }
}

fn push_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        // A pipe inside a cell would split it; model and regime names are the only free text.
        let _ = write!(out, " {} |", c.replace('|', "\\|"));
    }
    out.push('\n');
}
