//! Cross-entropy with label smoothing, and AugMix's Jensen–Shannon consistency term.

use anyhow::Result;
use candle_core::{Tensor, D};

/// Cross-entropy with label smoothing `ε`: `(1−ε)·NLL(y) + ε·mean_k(−log p_k)`, batch-averaged
/// (PyTorch's `F.cross_entropy(label_smoothing=ε)`).
pub fn smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, smoothing: f64) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = log_probs.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?.mean_all()?;
    if smoothing == 0.0 {
        return Ok(nll);
    }
    let uniform = log_probs.mean(D::Minus1)?.neg()?.mean_all()?;
    Ok(((nll * (1.0 - smoothing))? + (uniform * smoothing)?)?)
}

/// Coefficient of the AugMix consistency term (Hendrycks et al. 2020, λ = 12).
pub const JSD_WEIGHT: f64 = 12.0;

/// AugMix's Jensen–Shannon consistency among the predictions for several views of the same
/// images: `mean_i KL(p_i ‖ M)` with `M = clamp(mean_i p_i, 1e-7, 1)`, each KL summed over
/// classes and averaged over the batch (the reference's `F.kl_div(log M, p_i, 'batchmean')`).
pub fn jensen_shannon_consistency(views: &[Tensor]) -> Result<Tensor> {
    anyhow::ensure!(!views.is_empty(), "the consistency loss needs at least one view");
    // log p from log_softmax: a probability that underflows to 0 then contributes 0·finite.
    let log_probs = views.iter().map(|l| candle_nn::ops::log_softmax(l, D::Minus1)).collect::<candle_core::Result<Vec<_>>>()?;
    let probs = log_probs.iter().map(|lp| lp.exp()).collect::<candle_core::Result<Vec<_>>>()?;
    let n = views.len() as f64;
    let mixture = (Tensor::stack(&probs, 0)?.sum(0)? / n)?.clamp(1e-7f32, 1f32)?.log()?;
    let batch = views[0].dim(0)? as f64;
    let mut total = None;
    for (p, lp) in probs.iter().zip(&log_probs) {
        let kl = (p * (lp - &mixture)?)?.sum_all()?;
        total = Some(match total {
            None => kl,
            Some(t) => (t + kl)?,
        });
    }
    Ok((total.expect("at least one view") / (n * batch))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn loss(smoothing: f64) -> f32 {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[2f32, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4], [-3.0, 1.0, 2.0, -0.5]], &dev).unwrap();
        let labels = Tensor::new(&[0u32, 3, 1], &dev).unwrap();
        smoothed_cross_entropy(&logits, &labels, smoothing).unwrap().to_scalar::<f32>().unwrap()
    }

    // Reference values: fixtures/torch/reference.py with torch 2.15.0 (float32):
    // F.cross_entropy(logits, labels, label_smoothing=0.1) and without smoothing.
    #[test]
    fn label_smoothing_matches_torch_cross_entropy() {
        assert!((loss(0.1) - 1.0836868286132812).abs() < 1e-6, "{}", loss(0.1));
        assert!((loss(0.0) - 0.9870201945304871).abs() < 1e-6, "{}", loss(0.0));
    }

    // fixtures/torch/reference.py ("augmix jensen-shannon"), torch 2.15.0, float32: the
    // reference AugMix script's consistency term for these three views.
    #[test]
    fn jensen_shannon_consistency_matches_the_augmix_reference() {
        let dev = Device::Cpu;
        let views = [
            Tensor::new(&[[2f32, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]], &dev).unwrap(),
            Tensor::new(&[[1.5f32, -0.5, 0.0, 0.2], [-1.0, 0.3, 2.0, 0.4]], &dev).unwrap(),
            Tensor::new(&[[3f32, -2.0, 0.1, -0.3], [0.0, 0.0, 0.0, 0.0]], &dev).unwrap(),
        ];
        let got = jensen_shannon_consistency(&views).unwrap().to_scalar::<f32>().unwrap();
        assert!((got - 0.07584472745656967).abs() < 1e-6, "{got}");
        // Identical views agree perfectly; a saturated softmax (p underflowing to 0) stays finite.
        let same = jensen_shannon_consistency(&[views[0].clone(), views[0].clone(), views[0].clone()]).unwrap().to_scalar::<f32>().unwrap();
        assert!(same.abs() < 1e-7, "{same}");
        let extreme = Tensor::new(&[[200f32, -200.0, 0.0, 0.0]], &dev).unwrap();
        let flat = Tensor::new(&[[0f32, 0.0, 0.0, 0.0]], &dev).unwrap();
        let got = jensen_shannon_consistency(&[extreme, flat]).unwrap().to_scalar::<f32>().unwrap();
        assert!(got.is_finite() && got > 0.0, "{got}");
    }

    #[test]
    fn label_smoothing_matches_closed_form() {
        // Two classes, logits (0, 0): p = ½ each, NLL = ln 2, uniform term = ln 2.
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0]], &dev).unwrap();
        let labels = Tensor::new(&[0u32, 1], &dev).unwrap();
        let got = smoothed_cross_entropy(&logits, &labels, 0.1).unwrap().to_scalar::<f32>().unwrap() as f64;
        let lse = (2f64.exp() + 1.0).ln();
        let row1 = 0.9 * 2f64.ln() + 0.1 * 2f64.ln();
        let row2 = 0.9 * lse + 0.1 * ((lse - 2.0) + lse) / 2.0;
        assert!((got - (row1 + row2) / 2.0).abs() < 1e-5, "{got}");
    }
}
