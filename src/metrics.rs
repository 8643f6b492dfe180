//! Metrics over evaluation counts: accuracy, the "accuracy on the line" fit and effective
//! robustness (Taori et al. 2020), and generated-data degradation.
//!
//! Everything here is a pure function of numbers; the leaderboard (`report`) feeds it records.
//! Accuracies cross this API in percent (0–100), the unit of the records and the leaderboard.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Top-1 accuracy in percent: `100 · correct / n`.
///
/// An empty evaluation (`n == 0`) has accuracy 0, matching `RunRecord::accuracy`.
pub fn accuracy(correct: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * correct as f64 / n as f64
    }
}

/// Generated-data degradation in percentage points: `id_acc − generated_acc`.
///
/// Positive when the classifier does worse on generated images of the same classes than on real
/// ones (the paper's RQ5 reports up to ~20 points).
pub fn generated_degradation(id_acc: f64, generated_acc: f64) -> f64 {
    id_acc - generated_acc
}

/// Smallest probability the logit and probit transforms see; larger ones are capped at
/// `1 − PROB_CLAMP`. Accuracies of exactly 0% or 100% would otherwise map to ±∞ and poison a fit.
pub const PROB_CLAMP: f64 = 1e-6;

/// The scale on which accuracies are compared when fitting the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// `ln(p / (1 − p))`, the testbed's default.
    Logit,
    /// `Φ⁻¹(p)`, the inverse standard normal CDF.
    Probit,
    /// `p` itself.
    Linear,
}

impl Transform {
    /// Maps an accuracy in percent onto the fit scale, with `p = acc / 100`:
    /// logit `ln(p / (1 − p))`, probit `Φ⁻¹(p)`, linear `p`.
    ///
    /// For logit and probit, `p` is first clamped into `[PROB_CLAMP, 1 − PROB_CLAMP]` so that 0%
    /// and 100% stay finite. Linear needs no clamp.
    pub fn apply(self, acc_percent: f64) -> f64 {
        let p = acc_percent / 100.0;
        match self {
            Transform::Logit => {
                let p = clamp_probability(p);
                (p / (1.0 - p)).ln()
            }
            Transform::Probit => inverse_normal_cdf(clamp_probability(p)),
            Transform::Linear => p,
        }
    }

    /// Maps a value on the fit scale back to an accuracy in percent:
    /// logit `100 / (1 + e^(−t))`, probit `100 · Φ(t)`, linear `100 · t`.
    pub fn inverse(self, t: f64) -> f64 {
        match self {
            Transform::Logit => 100.0 * sigmoid(t),
            Transform::Probit => 100.0 * normal_cdf(t),
            Transform::Linear => 100.0 * t,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transform::Logit => "logit",
            Transform::Probit => "probit",
            Transform::Linear => "linear",
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transform name that is none of `logit`, `probit`, `linear`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown accuracy transform `{0}`; expected one of `logit`, `probit`, `linear`")]
pub struct UnknownTransform(pub String);

impl FromStr for Transform {
    type Err = UnknownTransform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logit" => Ok(Transform::Logit),
            "probit" => Ok(Transform::Probit),
            "linear" => Ok(Transform::Linear),
            other => Err(UnknownTransform(other.to_string())),
        }
    }
}

fn clamp_probability(p: f64) -> f64 {
    p.clamp(PROB_CLAMP, 1.0 - PROB_CLAMP)
}

/// `1 / (1 + e^(−t))`, written so that neither tail overflows.
fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// Standard normal CDF: `Φ(x) = erfc(−x / √2) / 2`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function `erfc(x) = 1 − erf(x)`, relative error below ~2e-14.
///
/// Two expansions, each used where it converges fast and loses no precision:
/// - `x < 1.5`: `erf(x) = (2/√π) e^(−x²) Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`, whose terms are all
///   positive (no cancellation), then `1 − erf`; erfc is still ≥ 0.03 there, so the subtraction
///   costs little relative precision.
/// - `x ≥ 1.5`: the continued fraction `erfc(x) = (e^(−x²)/√π) / (x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`,
///   evaluated backwards from a fixed depth, which keeps the far tail accurate in relative terms.
/// - Negative `x` uses `erfc(x) = 2 − erfc(−x)`.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.5 {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    // At x < 1.5 the terms fall geometrically after n ≈ x²; 60 is far more than needed.
    for n in 1..60 {
        term *= 2.0 * x2 / (2 * n + 1) as f64;
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    std::f64::consts::FRAC_2_SQRT_PI * (-x2).exp() * sum
}

fn erfc_continued_fraction(x: f64) -> f64 {
    // Depth 100 converges to machine precision for every x ≥ 1.5.
    const DEPTH: u32 = 100;
    let mut t = x;
    for n in (1..=DEPTH).rev() {
        t = x + (n as f64 / 2.0) / t;
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * t)
}

/// Inverse standard normal CDF `Φ⁻¹(p)` for `0 < p < 1` (±∞ at 0 and 1, NaN outside),
/// absolute error ~1e-14 in the range the transforms use.
///
/// Acklam's rational approximation (relative error 1.2e-9) refined by one Halley step on
/// `Φ(x) − p`. Upper-half probabilities use `Φ⁻¹(p) = −Φ⁻¹(1 − p)` (exact for `p ≥ 0.5`), so the
/// Halley step always works on a lower tail, where `Φ` is accurate in relative terms.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        return -lower_inverse_normal_cdf(1.0 - p);
    }
    lower_inverse_normal_cdf(p)
}

/// `Φ⁻¹(p)` for `0 < p ≤ 0.5`.
fn lower_inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    // Below this the central rational function loses accuracy and the tail form takes over.
    const P_LOW: f64 = 0.02425;

    let x = if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };

    // One Halley step: with e = Φ(x) − p and u = e / φ(x), x ← x − u / (1 + x·u/2).
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// An ordinary-least-squares line `y = slope · x + intercept` on the transformed scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    /// Pearson correlation of the transformed points (0 when the shifted accuracies do not vary).
    pub r: f64,
    /// Number of points fitted.
    pub n: usize,
}

/// Fits `transform(shift_acc) = slope · transform(id_acc) + intercept` by ordinary least squares
/// over `(id_acc, shift_acc)` points in percent:
///
/// `slope = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²`, `intercept = ȳ − slope · x̄`,
/// `r = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² · Σ(y − ȳ)²)`, with `x = transform(id_acc)`,
/// `y = transform(shift_acc)`.
///
/// `None` when there are fewer than two points, all ID accuracies are equal (no line is
/// determined), or a point is not finite.
pub fn fit_line(points: &[(f64, f64)], transform: Transform) -> Option<LinearFit> {
    if points.len() < 2 {
        return None;
    }
    let xy: Vec<(f64, f64)> = points.iter().map(|&(id, shift)| (transform.apply(id), transform.apply(shift))).collect();
    if xy.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    // Equal x values can leave a rounding-sized Σ(x − x̄)² instead of an exact 0: test equality.
    if xy.iter().all(|&(x, _)| x == xy[0].0) {
        return None;
    }
    let n = xy.len() as f64;
    let mean_x = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &(x, y) in &xy {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let slope = sxy / sxx;
    let r = if syy > 0.0 { sxy / (sxx * syy).sqrt() } else { 0.0 };
    Some(LinearFit { slope, intercept: mean_y - slope * mean_x, r, n: xy.len() })
}

impl LinearFit {
    /// The shifted accuracy (percent) the line predicts for an ID accuracy (percent):
    /// `transform⁻¹(slope · transform(id_acc) + intercept)`.
    pub fn predict(&self, transform: Transform, id_acc: f64) -> f64 {
        transform.inverse(self.slope * transform.apply(id_acc) + self.intercept)
    }
}

/// Effective robustness in percentage points: how far a classifier's shifted accuracy lies above
/// the baseline line, `shift_acc − transform⁻¹(slope · transform(id_acc) + intercept)`.
/// With the logit transform this is `shift_acc − 100 · sigmoid(slope · logit(id_acc/100) + intercept)`.
pub fn effective_robustness(fit: &LinearFit, transform: Transform, id_acc: f64, shift_acc: f64) -> f64 {
    shift_acc - fit.predict(transform, id_acc)
}

/// A two-sided interval `[lo, hi]` around an estimate, in the estimate's unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// Confidence level of every interval shiftbench reports.
pub const CONFIDENCE: f64 = 0.95;

/// Exact (Clopper–Pearson) 95% interval of a top-1 accuracy, in percent.
///
/// With `k = correct`, `n` images and `α = 0.05`, the bounds are quantiles of beta distributions:
/// `lo = 100 · B⁻¹(α/2; k, n − k + 1)` (0 when `k = 0`) and
/// `hi = 100 · B⁻¹(1 − α/2; k + 1, n − k)` (100 when `k = n`).
/// It is conservative: its coverage is at least 95% for every true accuracy.
///
/// `None` when `n == 0` (nothing measured) or `correct > n` (impossible counts).
pub fn clopper_pearson(correct: u64, n: u64) -> Option<Interval> {
    if n == 0 || correct > n {
        return None;
    }
    let alpha = 1.0 - CONFIDENCE;
    let (k, n) = (correct as f64, n as f64);
    let lo = if correct == 0 { 0.0 } else { beta_quantile(alpha / 2.0, k, n - k + 1.0) };
    let hi = if correct as f64 == n { 1.0 } else { beta_quantile(1.0 - alpha / 2.0, k + 1.0, n - k) };
    Some(Interval { lo: 100.0 * lo, hi: 100.0 * hi })
}

/// `ln Γ(x)` for `x > 0`: Lanczos approximation (g = 7, 9 terms), relative error ~1e-15, with the
/// reflection-free form that is valid for `x ≥ 0.5` and `Γ(x) = Γ(x + 1) / x` below it.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularised incomplete beta function `I_x(a, b) = B(x; a, b) / B(a, b)`, the CDF of a
/// Beta(a, b) variable, for `a, b > 0` and `0 ≤ x ≤ 1`.
///
/// Evaluated as `x^a (1 − x)^b / (a · B(a, b))` times the continued fraction
/// `1 / (1 + d₁ / (1 + d₂ / (1 + …)))` with `d₂ₘ₊₁ = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))`
/// and `d₂ₘ = m (b − m) x / ((a + 2m − 1)(a + 2m))` (modified Lentz), which converges fast for
/// `x < (a + 1) / (a + b + 2)`; above that it uses the symmetry `I_x(a, b) = 1 − I_{1−x}(b, a)`.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b));
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    // Lentz's method: TINY stands in for a zero denominator. The fraction needs O(√max(a, b))
    // terms; 100,000 covers counts far beyond any evaluation set.
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    const MAX_TERMS: u32 = 100_000;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=MAX_TERMS {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The `q`-quantile of Beta(a, b): the `x` with `I_x(a, b) = q`, by bisection on `[0, 1]`.
///
/// `I_x` is increasing in `x`, so bisection cannot fail or oscillate; 200 halvings reach the
/// spacing of doubles everywhere in `[0, 1]`, including quantiles near 0 such as `B⁻¹(0.025; 1, n)`.
pub fn beta_quantile(q: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if regularized_incomplete_beta(mid, a, b) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Relative gain of a regime over the reference (`real`) regime of the same model and seed, in
/// points: `value − reference` (for shifted accuracy or ER alike). Positive means the regime helps.
pub fn gain_over(reference: f64, value: f64) -> f64 {
    value - reference
}

/// Mean, sample standard deviation and range of one metric over a classifier's seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (`n − 1` in the denominator); `None` for a single seed.
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
}

/// The spread of `values`; `None` when there are none or one is not finite.
///
/// The mean is a plain left-to-right sum over the values in the order given (callers pass them in
/// seed order), so the same values always give the same bytes.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = (n >= 2).then(|| (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt());
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Spread { n, mean, sd, min, max })
}

/// The two-sided critical value `t` of Student's t distribution with `df` degrees of freedom:
/// `P(|T| > t) = 1 − confidence`.
///
/// From the identity `P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2)`: with `x = B⁻¹(1 − confidence;
/// df/2, 1/2)`, `t = √(df · (1 − x) / x)` (12.7062 for df = 1, 4.3027 for df = 2 at 95%).
pub fn student_t_critical(confidence: f64, df: f64) -> f64 {
    let x = beta_quantile(1.0 - confidence, df / 2.0, 0.5);
    (df * (1.0 - x) / x).sqrt()
}

/// 95% paired-t interval of the mean of `differences` (one per seed: regime minus reference
/// regime on the same seed): `mean ± t(0.95, n − 1) · sd / √n`. `None` below two seeds or for a
/// non-finite difference. It treats seeds as independent draws of the training randomness and
/// assumes the differences are roughly normal; with 3 seeds `t = 4.30`, so it is wide on purpose.
pub fn paired_t_interval(differences: &[f64]) -> Option<Interval> {
    let s = spread(differences)?;
    let sd = s.sd?;
    let half = student_t_critical(CONFIDENCE, (s.n - 1) as f64) * sd / (s.n as f64).sqrt();
    Some(Interval { lo: s.mean - half, hi: s.mean + half })
}

/// Number of bootstrap resamples of the baseline models when nobody asks otherwise.
pub const DEFAULT_RESAMPLES: usize = 1000;

/// Refits the baseline line on `resamples` bootstrap resamples of `points` (`(id_acc, shift_acc)`
/// in percent): each resample draws `points.len()` models with replacement from
/// `Stream::new(seed, purpose, b)` for resample `b`, and is fitted like the original.
///
/// A resample whose ID accuracies are all equal determines no line; it is redrawn from the same
/// stream (so the result stays a pure function of the inputs) up to 1,000 times. Returns `None`
/// when the full sample has no fit, otherwise exactly `resamples` fits in resample order.
pub fn bootstrap_fits(
    points: &[(f64, f64)],
    transform: Transform,
    resamples: usize,
    seed: u64,
    purpose: &str,
) -> Option<Vec<LinearFit>> {
    fit_line(points, transform)?;
    let n = points.len();
    let mut fits = Vec::with_capacity(resamples);
    let mut sample = Vec::with_capacity(n);
    for b in 0..resamples {
        let mut stream = crate::rng::Stream::new(seed, purpose, b as u64);
        let fit = (0..1000).find_map(|_| {
            sample.clear();
            sample.extend((0..n).map(|_| points[stream.below(n as u64) as usize]));
            fit_line(&sample, transform)
        })?;
        fits.push(fit);
    }
    Some(fits)
}

/// The central 95% percentile interval of `values` (linear interpolation between order
/// statistics, position `q · (len − 1)`, numpy's default). `None` for an empty slice or when a
/// value is not finite.
pub fn percentile_interval(values: &[f64]) -> Option<Interval> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let alpha = 1.0 - CONFIDENCE;
    Some(Interval { lo: quantile_sorted(&sorted, alpha / 2.0), hi: quantile_sorted(&sorted, 1.0 - alpha / 2.0) })
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let below = pos.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let frac = pos - below as f64;
    sorted[below] + frac * (sorted[above] - sorted[below])
}

/// 95% bootstrap band of the baseline line at one ID accuracy (percent): the percentile interval
/// of `fit_b.predict(id_acc)` over the resampled fits.
pub fn prediction_band(fits: &[LinearFit], transform: Transform, id_acc: f64) -> Option<Interval> {
    let predictions: Vec<f64> = fits.iter().map(|f| f.predict(transform, id_acc)).collect();
    percentile_interval(&predictions)
}

/// 95% bootstrap interval of a classifier's effective robustness: the percentile interval of
/// `effective_robustness(fit_b, id_acc, shift_acc)` over the resampled fits. It reflects the
/// uncertainty of the baseline line only, not the sampling error of the classifier's own
/// accuracies (their Clopper–Pearson intervals show that).
pub fn er_interval(fits: &[LinearFit], transform: Transform, id_acc: f64, shift_acc: f64) -> Option<Interval> {
    let ers: Vec<f64> = fits.iter().map(|f| effective_robustness(f, transform, id_acc, shift_acc)).collect();
    percentile_interval(&ers)
}

#[cfg(test)]
mod tests {
    #[test]
    fn student_t_critical_values_match_the_tables() {
        // Two-sided 95% critical values from any t table.
        for (df, t) in [(1.0, 12.7062), (2.0, 4.3027), (4.0, 2.7764), (9.0, 2.2622), (29.0, 2.0452)] {
            let got = student_t_critical(0.95, df);
            assert!((got - t).abs() < 5e-4, "df {df}: {got} vs {t}");
        }
    }

    #[test]
    fn paired_interval_of_three_seeds_by_hand() {
        // d = 1, 2, 6: mean 3, sd √7 = 2.6458, half width 4.3027 · 2.6458 / √3 = 6.5724.
        let i = paired_t_interval(&[1.0, 2.0, 6.0]).unwrap();
        assert!((i.lo - (3.0 - 6.5724)).abs() < 1e-3 && (i.hi - (3.0 + 6.5724)).abs() < 1e-3, "{i:?}");
        assert_eq!(paired_t_interval(&[1.0]), None);
        assert_eq!(paired_t_interval(&[1.0, f64::NAN]), None);
        let s = spread(&[4.0, 1.0, 7.0]).unwrap();
        assert_eq!((s.n, s.mean, s.sd, s.min, s.max), (3, 4.0, Some(3.0), 1.0, 7.0));
        assert_eq!(spread(&[2.5]).unwrap().sd, None);
    }

    use super::*;
    use proptest::prelude::*;

    const ALL: [Transform; 3] = [Transform::Logit, Transform::Probit, Transform::Linear];

    #[test]
    fn accuracy_is_percent() {
        assert_eq!(accuracy(250, 1000), 25.0);
        assert_eq!(accuracy(1000, 1000), 100.0);
        assert_eq!(accuracy(0, 0), 0.0);
    }

    #[test]
    fn degradation_is_id_minus_generated() {
        assert_eq!(generated_degradation(74.5, 60.0), 14.5);
        assert!(generated_degradation(50.0, 55.0) < 0.0);
    }

    #[test]
    fn transform_names_round_trip() {
        for t in ALL {
            assert_eq!(t.to_string().parse::<Transform>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        let err = "Logit".parse::<Transform>().unwrap_err();
        assert!(err.to_string().contains("`Logit`"), "{err}");
    }

    #[test]
    fn inverse_normal_cdf_matches_known_quantiles() {
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.025, -1.959963984540054),
            (0.8413447460685429, 1.0),
            (0.99, 2.326347874040841),
            (0.001, -3.090232306167814),
            (1e-6, -4.753424308822899),
            (0.02425, -1.9729610513118845),
        ];
        for (p, want) in cases {
            let got = inverse_normal_cdf(p);
            assert!((got - want).abs() < 1e-12, "Φ⁻¹({p}) = {got}, want {want}");
        }
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert!(inverse_normal_cdf(1.5).is_nan());
    }

    #[test]
    fn erfc_matches_known_values() {
        let cases = [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (1.5, 0.033894853524689274),
            (2.0, 0.004677734981047266),
            (3.0, 2.209049699858544e-05),
            (5.0, 1.537459794428035e-12),
            (-1.0, 1.8427007929497148),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1e-13, "erfc({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn extreme_accuracies_stay_finite() {
        for t in ALL {
            assert!(t.apply(0.0).is_finite(), "{t}");
            assert!(t.apply(100.0).is_finite(), "{t}");
        }
        assert!((Transform::Logit.apply(100.0) - (1e6f64 - 1.0).ln()).abs() < 1e-6);
    }

    #[test]
    fn fit_recovers_a_known_line() {
        for t in ALL {
            let (slope, intercept) = (0.9232, -0.4977);
            let points: Vec<(f64, f64)> = [55.0, 61.5, 68.0, 72.25, 77.0, 83.5]
                .iter()
                .map(|&id| (id, t.inverse(slope * t.apply(id) + intercept)))
                .collect();
            let fit = fit_line(&points, t).unwrap();
            assert!((fit.slope - slope).abs() < 1e-9, "{t}: {fit:?}");
            assert!((fit.intercept - intercept).abs() < 1e-9, "{t}: {fit:?}");
            assert!((fit.r - 1.0).abs() < 1e-12, "{t}: {fit:?}");
            assert_eq!(fit.n, 6);
        }
    }

    #[test]
    fn fit_needs_two_distinct_id_accuracies() {
        assert_eq!(fit_line(&[], Transform::Logit), None);
        assert_eq!(fit_line(&[(70.0, 50.0)], Transform::Logit), None);
        assert_eq!(fit_line(&[(70.0, 50.0), (70.0, 55.0), (70.0, 52.0)], Transform::Logit), None);
        assert_eq!(fit_line(&[(0.1, 50.0), (0.1, 55.0), (0.1, 52.0)], Transform::Linear), None);
        assert_eq!(fit_line(&[(f64::NAN, 50.0), (60.0, 55.0)], Transform::Linear), None);
        assert!(fit_line(&[(60.0, 50.0), (70.0, 55.0)], Transform::Logit).is_some());
    }

    #[test]
    fn flat_line_has_zero_correlation() {
        let fit = fit_line(&[(60.0, 50.0), (70.0, 50.0)], Transform::Logit).unwrap();
        assert_eq!(fit.slope, 0.0);
        assert_eq!(fit.r, 0.0);
    }

    #[test]
    fn effective_robustness_sign() {
        let t = Transform::Logit;
        let fit = LinearFit { slope: 1.0709, intercept: -2.3701, r: 0.99, n: 85 };
        let on_line = fit.predict(t, 74.3);
        assert!(effective_robustness(&fit, t, 74.3, on_line).abs() < 1e-12);
        assert!(effective_robustness(&fit, t, 74.3, on_line + 5.0) > 0.0);
        assert!(effective_robustness(&fit, t, 74.3, on_line - 5.0) < 0.0);
        // Hand check: logit(0.743) = 1.06162…, 1.0709·1.06162 − 2.3701 = −1.23321…, sigmoid = 22.562…%.
        assert!((on_line - 22.5620).abs() < 1e-3, "{on_line}");
        assert!((effective_robustness(&fit, t, 74.3, 34.3) - (34.3 - on_line)).abs() < 1e-12);
    }

    /// Reference values computed with SciPy 1.17.1 (`scipy.stats.beta.ppf(0.025, k, n - k + 1)` and
    /// `beta.ppf(0.975, k + 1, n - k)`, times 100), an implementation independent of ours.
    #[test]
    fn clopper_pearson_matches_scipy() {
        let cases = [
            (0, 10, 0.0, 30.849710781876073),
            (10, 10, 69.15028921812392, 100.0),
            (5, 10, 18.708602844739854, 81.29139715526014),
            (3000, 10000, 29.102761130989375, 30.908899697600013),
            (1, 1000, 0.0025317487491294042, 0.5558924279826672),
            (982, 1000, 97.17009587509808, 98.92980520705854),
        ];
        for (k, n, lo, hi) in cases {
            let got = clopper_pearson(k, n).unwrap();
            assert!((got.lo - lo).abs() < 1e-9, "{k}/{n}: lo {} want {lo}", got.lo);
            assert!((got.hi - hi).abs() < 1e-9, "{k}/{n}: hi {} want {hi}", got.hi);
        }
        assert_eq!(clopper_pearson(0, 0), None);
        assert_eq!(clopper_pearson(11, 10), None);
    }

    /// SciPy 1.17.1: `scipy.special.betainc(2.5, 3.5, 0.3)`, `betainc(3000, 7001, 0.3)`,
    /// `gammaln(0.1)`, `gammaln(1000.5)`.
    #[test]
    fn special_functions_match_scipy() {
        assert!((regularized_incomplete_beta(0.3, 2.5, 3.5) - 0.29675298929566646).abs() < 1e-13);
        assert!((regularized_incomplete_beta(0.3, 3000.0, 7001.0) - 0.5037723775457666).abs() < 1e-10);
        assert!((ln_gamma(0.1) - 2.252712651734206).abs() < 1e-13);
        assert!((ln_gamma(1000.5) - 5908.674175848678).abs() < 1e-9);
        assert_eq!(regularized_incomplete_beta(0.0, 2.0, 3.0), 0.0);
        assert_eq!(regularized_incomplete_beta(1.0, 2.0, 3.0), 1.0);
    }

    #[test]
    fn percentile_interval_interpolates_like_numpy() {
        // numpy.percentile(range(0, 101), [2.5, 97.5]) = [2.5, 97.5].
        let values: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        let i = percentile_interval(&values).unwrap();
        assert!((i.lo - 2.5).abs() < 1e-12 && (i.hi - 97.5).abs() < 1e-12, "{i:?}");
        assert_eq!(percentile_interval(&[]), None);
        assert_eq!(percentile_interval(&[1.0, f64::NAN]), None);
        assert_eq!(percentile_interval(&[4.0]), Some(Interval { lo: 4.0, hi: 4.0 }));
    }

    fn noisy_baseline() -> Vec<(f64, f64)> {
        [(60.0, 41.0), (64.0, 47.5), (70.0, 52.0), (73.0, 57.0), (78.0, 60.5), (81.0, 66.0), (85.0, 70.0)].to_vec()
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_fit() {
        let points = noisy_baseline();
        let t = Transform::Logit;
        let fits = bootstrap_fits(&points, t, 500, 7, "bootstrap/v2").unwrap();
        assert_eq!(fits.len(), 500);
        assert_eq!(Some(fits.clone()), bootstrap_fits(&points, t, 500, 7, "bootstrap/v2"));
        assert_ne!(Some(fits.clone()), bootstrap_fits(&points, t, 500, 8, "bootstrap/v2"));
        let full = fit_line(&points, t).unwrap();
        let band = prediction_band(&fits, t, 72.0).unwrap();
        let on_line = full.predict(t, 72.0);
        assert!(band.lo < on_line && on_line < band.hi, "{band:?} vs {on_line}");
        // The band widens away from the centre of the data.
        let far = prediction_band(&fits, t, 95.0).unwrap();
        assert!(far.hi - far.lo > band.hi - band.lo, "{far:?} vs {band:?}");
        let er = er_interval(&fits, t, 72.0, on_line + 3.0).unwrap();
        assert!(er.lo < 3.0 && 3.0 < er.hi, "{er:?}");
        // No line, no bootstrap.
        assert_eq!(bootstrap_fits(&[(70.0, 50.0), (70.0, 52.0)], t, 10, 0, "x"), None);
    }

    #[test]
    fn gain_is_regime_minus_reference() {
        assert_eq!(gain_over(21.75, 34.5), 12.75);
        assert!(gain_over(61.9, 61.0) < 0.0);
    }

    proptest! {
        #[test]
        fn logit_round_trips(acc in 0.001f64..99.999) {
            let back = Transform::Logit.inverse(Transform::Logit.apply(acc));
            prop_assert!((back - acc).abs() < 1e-9, "{} -> {}", acc, back);
        }

        #[test]
        fn probit_round_trips(acc in 0.001f64..99.999) {
            let back = Transform::Probit.inverse(Transform::Probit.apply(acc));
            prop_assert!((back - acc).abs() < 1e-9, "{} -> {}", acc, back);
        }

        #[test]
        fn linear_round_trips(acc in 0.0f64..100.0) {
            let back = Transform::Linear.inverse(Transform::Linear.apply(acc));
            prop_assert!((back - acc).abs() < 1e-12);
        }

        #[test]
        fn transforms_are_increasing(a in 0.001f64..99.0, gap in 0.01f64..1.0) {
            for t in ALL {
                prop_assert!(t.apply(a + gap) > t.apply(a), "{}", t);
            }
        }

        #[test]
        fn clopper_pearson_contains_the_estimate_within_0_100(n in 1u64..5000, frac in 0.0f64..=1.0) {
            let k = ((n as f64) * frac).round() as u64;
            let ci = clopper_pearson(k, n).unwrap();
            let acc = accuracy(k, n);
            prop_assert!(0.0 <= ci.lo && ci.lo <= acc && acc <= ci.hi && ci.hi <= 100.0, "{}/{}: {:?}", k, n, ci);
        }

        #[test]
        fn fits_do_not_depend_on_row_order(
            points in proptest::collection::vec((1.0f64..99.0, 1.0f64..99.0), 3..30),
            rotation in 0usize..30,
        ) {
            let t = Transform::Logit;
            let mut shuffled = points.clone();
            shuffled.reverse();
            let len = shuffled.len();
            shuffled.rotate_left(rotation % len);
            match (fit_line(&points, t), fit_line(&shuffled, t)) {
                (Some(a), Some(b)) => {
                    prop_assert!((a.slope - b.slope).abs() <= 1e-9 * (1.0 + a.slope.abs()), "{:?} {:?}", a, b);
                    prop_assert!((a.intercept - b.intercept).abs() <= 1e-9 * (1.0 + a.intercept.abs()));
                    prop_assert!((a.r - b.r).abs() <= 1e-9);
                }
                (a, b) => prop_assert_eq!(a, b),
            }
        }

        #[test]
        fn logit_residuals_of_the_baseline_sum_to_zero(
            points in proptest::collection::vec((1.0f64..99.0, 1.0f64..99.0), 3..30),
        ) {
            let t = Transform::Logit;
            if let Some(fit) = fit_line(&points, t) {
                let residuals: f64 = points.iter().map(|&(x, y)| t.apply(y) - (fit.slope * t.apply(x) + fit.intercept)).sum();
                prop_assert!(residuals.abs() < 1e-9, "Σ residuals = {}", residuals);
            }
        }

        #[test]
        fn a_point_on_the_fitted_line_has_zero_er(
            slope in 0.5f64..1.5, intercept in -2.5f64..0.5, id in 20.0f64..95.0,
        ) {
            let t = Transform::Logit;
            let fit = LinearFit { slope, intercept, r: 1.0, n: 2 };
            let shift = fit.predict(t, id);
            prop_assert!(effective_robustness(&fit, t, id, shift).abs() < 1e-9);
        }
    }
}
