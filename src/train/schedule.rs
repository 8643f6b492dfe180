//! Learning-rate schedules, evaluated at a fractional epoch so that the rate changes every step.

use serde::{Deserialize, Serialize};

/// The learning-rate schedule a suite's `training.schedule` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warm-up to the peak at `peak_epoch`, then linear decay to zero (the paper's).
    Triangular,
    /// Half-cosine from the peak to zero after a linear warm-up (`peak_epoch` or `warmup_epochs`).
    Cosine,
    /// The peak, multiplied by `gamma` at each of `milestones`, after an optional warm-up.
    Step,
    /// The peak throughout, after an optional warm-up.
    Constant,
}


/// One job's learning-rate schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct LrSchedule {
    pub kind: Schedule,
    /// The rate at the end of the warm-up.
    pub peak: f64,
    /// End of the linear warm-up from zero, in epochs: the peak of `triangular`, the start of
    /// `cosine`'s decay, the warm-up of `step` and `constant` (zero: none).
    pub warmup: f64,
    pub epochs: f64,
    /// `step` only: epochs at which the rate is multiplied by `gamma`, increasing.
    pub milestones: Vec<f64>,
    pub gamma: f64,
}

impl LrSchedule {
    /// Learning rate at fractional epoch `t` (in `[0, epochs]`).
    ///
    /// Warm-up: `peak · t/warmup`. Then triangular: `peak · (E − t)/(E − warmup)`; cosine:
    /// `peak · ½(1 + cos(π·(t − warmup)/(E − warmup)))`; step: `peak · γ^(milestones ≤ t)`;
    /// constant: `peak`.
    pub fn at(&self, t: f64) -> f64 {
        let peak = self.peak;
        let warmup = self.warmup.min(self.epochs);
        if self.kind == Schedule::Constant && warmup == 0.0 {
            return peak;
        }
        if t < warmup {
            return peak * t / warmup;
        }
        let span = (self.epochs - warmup).max(f64::MIN_POSITIVE);
        let progress = ((t - warmup) / span).clamp(0.0, 1.0);
        match self.kind {
            Schedule::Triangular => peak * (1.0 - progress),
            Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            // Repeated products, as PyTorch's MultiStepLR applies gamma, not gamma^k.
            Schedule::Step => self.milestones.iter().filter(|&&m| t >= m).fold(peak, |lr, _| lr * self.gamma),
            Schedule::Constant => peak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: Schedule, warmup: f64) -> LrSchedule {
        LrSchedule { kind, peak: 0.4, warmup, epochs: 6.0, milestones: vec![3.0, 5.0], gamma: 0.1 }
    }

    /// Our rate at every step of 6 epochs × 4 steps, as PyTorch's scheduler sees it.
    fn per_step(s: &LrSchedule) -> Vec<f64> {
        (0..24).map(|k| s.at(k as f64 / 4.0)).collect()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "step {k}: {g} vs torch {w}\n{got:?}");
        }
    }

    #[test]
    fn triangular_schedule_peaks_then_reaches_zero() {
        let lr = |t| LrSchedule { kind: Schedule::Triangular, peak: 0.4, warmup: 2.0, epochs: 10.0, milestones: vec![], gamma: 0.1 }.at(t);
        assert_eq!(lr(0.0), 0.0);
        assert!((lr(1.0) - 0.2).abs() < 1e-12);
        assert!((lr(2.0) - 0.4).abs() < 1e-12);
        assert!((lr(6.0) - 0.2).abs() < 1e-12);
        assert!(lr(10.0).abs() < 1e-12);
    }

    // Reference values: fixtures/torch/reference.py, torch 2.15.0. Warm-up runs are
    // SequentialLR(LinearLR(start_factor=1e-12, total_iters=8), ...) stepped once per step, so
    // they differ from our exact zero start by ~4e-13.
    const TORCH_WARMUP: [f64; 8] = [4e-13, 0.05000000000035, 0.10000000000030002, 0.15000000000025002, 0.20000000000020002, 0.25000000000015, 0.30000000000009996, 0.35000000000005];

    #[test]
    fn step_matches_torch_multistep_lr() {
        // L.MultiStepLR(opt, milestones=[12, 20], gamma=0.1)
        let mut want = vec![0.4; 12];
        want.extend([0.04000000000000001; 8]);
        want.extend([0.004000000000000001; 4]);
        assert_close(&per_step(&schedule(Schedule::Step, 0.0)), &want, 0.0);
        // SequentialLR([LinearLR(1e-12, 8), MultiStepLR(milestones=[4, 12], gamma=0.1)], milestones=[8])
        let mut warm = TORCH_WARMUP.to_vec();
        warm.extend_from_slice(&want[8..]);
        assert_close(&per_step(&schedule(Schedule::Step, 2.0)), &warm, 1e-12);
    }

    #[test]
    fn cosine_matches_torch_cosine_annealing() {
        // L.CosineAnnealingLR(opt, T_max=24)
        let plain = [0.4, 0.3982889722747621, 0.39318516525781366, 0.38477590650225735, 0.37320508075688774, 0.358670668058247, 0.34142135623730946, 0.3217522858017441, 0.3, 0.27653668647301793, 0.2517638090205041, 0.22610523844401031, 0.19999999999999996, 0.17389476155598965, 0.14823619097949584, 0.12346331352698206, 0.10000000000000002, 0.07824771419825585, 0.0585786437626905, 0.041329331941752985, 0.026794919243112253, 0.015224093497742648, 0.006814834742186358, 0.001711027725237923];
        assert_close(&per_step(&schedule(Schedule::Cosine, 0.0)), &plain, 1e-14);
        // SequentialLR([LinearLR(1e-12, 8), CosineAnnealingLR(T_max=16)], milestones=[8])
        let mut warm = TORCH_WARMUP.to_vec();
        warm.extend([0.4, 0.3961570560806461, 0.3847759065022574, 0.3662939224605091, 0.3414213562373095, 0.31111404660392045, 0.276536686473018, 0.2390180644032257, 0.2, 0.16098193559677437, 0.12346331352698207, 0.08888595339607962, 0.05857864376269051, 0.03370607753949093, 0.015224093497742654, 0.0038429439193539143]);
        assert_close(&per_step(&schedule(Schedule::Cosine, 2.0)), &warm, 1e-12);
    }

    #[test]
    fn constant_warms_up_only_when_asked() {
        assert_eq!(schedule(Schedule::Constant, 0.0).at(0.0), 0.4);
        let s = schedule(Schedule::Constant, 2.0);
        assert_eq!((s.at(0.0), s.at(1.0), s.at(2.0), s.at(5.9)), (0.0, 0.2, 0.4, 0.4));
    }
}
