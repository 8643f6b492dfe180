//! The baseline fit shared by every effective-robustness number: `shiftbench er`, the
//! reference fits and the leaderboard all score a classifier against a `BaselineFit`, so they
//! cannot drift apart in how a line is fitted, resampled or read.

use crate::metrics::{self, Interval, LinearFit, Transform};

/// File name of the baseline fits, in a results folder (the leaderboard's) and in
/// `shiftbench er`'s output folder.
pub const FITS_FILE: &str = "fits.csv";

/// An "accuracy on the line" baseline: a line in `transform` space through the baseline models'
/// (ID, shifted) accuracies, with bootstrap refits over those models for intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineFit {
    pub transform: Transform,
    pub line: LinearFit,
    /// Bootstrap refits (`metrics::bootstrap_fits`); empty for a fixed (published) fit, with zero
    /// resamples, or when the points allow no refit.
    pub resampled: Vec<LinearFit>,
}

/// A classifier scored against a baseline. Accuracies percent, ER points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The shifted accuracy the baseline line predicts from the ID accuracy.
    pub predicted: f64,
    /// Effective robustness: shifted accuracy minus `predicted`.
    pub er: f64,
    /// 95% bootstrap interval of `er` (baseline uncertainty only); `None` without resamples.
    pub interval: Option<Interval>,
}

impl BaselineFit {
    /// Fits the line through `points` (ID, shifted accuracy, percent) and draws `resamples`
    /// bootstrap refits from the random stream `(seed, purpose)`. `None` when fewer than two
    /// points with distinct ID accuracies allow a line.
    ///
    /// `purpose` names the stream (e.g. `er/bootstrap/<shift>`), so each caller's resamples stay
    /// reproducible on their own.
    pub fn fit(points: &[(f64, f64)], transform: Transform, resamples: usize, seed: u64, purpose: &str) -> Option<Self> {
        let line = metrics::fit_line(points, transform)?;
        let resampled = metrics::bootstrap_fits(points, transform, resamples, seed, purpose).unwrap_or_default();
        Some(Self { transform, line, resampled })
    }

    /// A fixed line (a published fit) with no baseline models to resample: its scores carry no
    /// interval.
    pub fn fixed(line: LinearFit, transform: Transform) -> Self {
        Self { transform, line, resampled: Vec::new() }
    }

    /// Scores a classifier with accuracies `id_acc` and `shift_acc` (percent).
    pub fn score(&self, id_acc: f64, shift_acc: f64) -> Score {
        Score {
            predicted: self.line.predict(self.transform, id_acc),
            er: metrics::effective_robustness(&self.line, self.transform, id_acc, shift_acc),
            interval: metrics::er_interval(&self.resampled, self.transform, id_acc, shift_acc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: [(f64, f64); 4] = [(60.0, 48.0), (70.0, 59.0), (80.0, 70.5), (76.0, 70.0)];

    #[test]
    fn fit_is_metrics_fit_line_plus_its_bootstrap() {
        let t = Transform::Logit;
        let b = BaselineFit::fit(&POINTS, t, 50, 3, "unit").unwrap();
        assert_eq!(b.line, metrics::fit_line(&POINTS, t).unwrap());
        assert_eq!(b.resampled, metrics::bootstrap_fits(&POINTS, t, 50, 3, "unit").unwrap());
        assert!(BaselineFit::fit(&POINTS[..1], t, 50, 3, "unit").is_none());
    }

    #[test]
    fn score_is_residual_with_interval_only_when_resampled() {
        let t = Transform::Logit;
        let b = BaselineFit::fit(&POINTS, t, 200, 0, "unit").unwrap();
        let s = b.score(74.0, 66.0);
        assert_eq!(s.er, metrics::effective_robustness(&b.line, t, 74.0, 66.0));
        assert!((66.0 - s.predicted - s.er).abs() < 1e-12);
        assert!(s.interval.is_some());
        let fixed = BaselineFit::fixed(b.line, t).score(74.0, 66.0);
        assert_eq!((fixed.predicted, fixed.er, fixed.interval), (s.predicted, s.er, None));
        assert!(BaselineFit::fit(&POINTS, t, 0, 0, "unit").unwrap().score(74.0, 66.0).interval.is_none());
    }
}
