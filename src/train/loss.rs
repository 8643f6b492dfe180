//! Cross-entropy with label smoothing.

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
