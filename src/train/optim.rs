//! SGD with momentum and selective weight decay, and gradient clipping by global norm.

use crate::model::Param;
use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// SGD with (optionally Nesterov) momentum and L2 weight decay on the parameters marked for it,
/// in PyTorch's formulation: `g ← ∇ + λ·w`, `v ← μ·v + g`, `w ← w − η·(g + μ·v if nesterov else v)`.
pub struct Sgd {
    params: Vec<Param>,
    velocity: Vec<Option<Tensor>>,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

/// Prefix of a momentum buffer's name in an optimiser checkpoint.
pub const MOMENTUM_PREFIX: &str = "momentum.";

impl Sgd {
    pub fn new(params: Vec<Param>, momentum: f64, nesterov: bool, weight_decay: f64) -> Self {
        let velocity = params.iter().map(|_| None).collect();
        Self { params, velocity, momentum, nesterov, weight_decay }
    }

    /// One update. `grad_scale` multiplies every gradient first (global-norm clipping);
    /// `None` leaves them untouched.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: Option<f64>) -> Result<()> {
        for (p, v) in self.params.iter().zip(self.velocity.iter_mut()) {
            let Some(grad) = grads.get(p.var.as_tensor()) else { continue };
            // Detached copies: otherwise every update would record an op referencing the
            // previous velocity and gradient, and the whole training history stays alive.
            let (grad, w) = (&grad.detach(), &p.var.as_tensor().detach());
            let grad = &match grad_scale {
                Some(s) => (grad * s)?,
                None => grad.clone(),
            };
            let g = if p.decay && self.weight_decay > 0.0 { (grad + (w * self.weight_decay)?)? } else { grad.clone() };
            let update = if self.momentum > 0.0 {
                let new_v = match v.take() {
                    Some(old) => ((old * self.momentum)? + &g)?,
                    None => g.clone(),
                };
                let u = if self.nesterov { (&g + (&new_v * self.momentum)?)? } else { new_v.clone() };
                *v = Some(new_v);
                u
            } else {
                g
            };
            p.var.set(&(w - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The momentum buffers that exist so far, named `momentum.<parameter name>`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .zip(&self.velocity)
            .filter_map(|(p, v)| Some((format!("{MOMENTUM_PREFIX}{}", p.name), v.as_ref()?.clone())))
            .collect()
    }

    /// Restores buffers saved by [`Sgd::state`]; a parameter without one starts afresh, as it
    /// would have had no gradient yet. `what` names the file in errors.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, what: &str) -> Result<()> {
        for (p, v) in self.params.iter().zip(self.velocity.iter_mut()) {
            *v = match tensors.get(&format!("{MOMENTUM_PREFIX}{}", p.name)) {
                Some(t) => {
                    anyhow::ensure!(
                        t.dims() == p.var.dims(),
                        "{what}: momentum of `{}` has shape {:?}, the model expects {:?}; delete it to restart the job",
                        p.name, t.dims(), p.var.dims()
                    );
                    Some(t.to_device(p.var.device())?.to_dtype(p.var.dtype())?)
                }
                None => None,
            };
        }
        Ok(())
    }
}

/// PyTorch's `clip_grad_norm_`: the L2 norm of all gradients taken together, and the factor
/// `min(1, max_norm / (norm + 1e-6))` that brings it under `max_norm`.
pub fn clip_factor(params: &[Param], grads: &GradStore, max_norm: f64) -> Result<(f64, f64)> {
    let mut sum_sq = 0.0;
    for p in params {
        if let Some(g) = grads.get(p.var.as_tensor()) {
            sum_sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>().context("gradient norm")?;
        }
    }
    let norm = sum_sq.sqrt();
    Ok((norm, (max_norm / (norm + 1e-6)).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn param(name: &str, values: &[f32], shape: &[usize], decay: bool) -> Param {
        let t = Tensor::from_slice(values, shape, &Device::Cpu).unwrap();
        Param { name: name.into(), var: Var::from_tensor(&t).unwrap(), decay }
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 2e-6 * w.abs().max(1.0), "{got:?} vs torch {want:?}");
        }
        assert_eq!(got.len(), want.len());
    }

    /// Three steps on `Σ a·w² + Σ c·b²` with `w` decayed and `b` not, as in
    /// fixtures/torch/reference.py (`torch.optim.SGD`, lr 0.1, momentum 0.9, weight_decay 0.01
    /// on `w` only). Returns (w, b, momentum of w, momentum of b).
    fn three_steps(nesterov: bool) -> [Vec<f32>; 4] {
        let w = param("w", &[1.0, -2.0, 0.5, 3.0], &[2, 2], true);
        let b = param("b", &[0.25, -1.5], &[2], false);
        let (wv, bv) = (w.var.clone(), b.var.clone());
        let a = Tensor::new(&[[1f32, 0.5], [2.0, 0.1]], &Device::Cpu).unwrap();
        let c = Tensor::new(&[3f32, 0.2], &Device::Cpu).unwrap();
        let mut opt = Sgd::new(vec![w, b], 0.9, nesterov, 0.01);
        for _ in 0..3 {
            let loss = ((wv.as_tensor().sqr().unwrap() * &a).unwrap().sum_all().unwrap()
                + (bv.as_tensor().sqr().unwrap() * &c).unwrap().sum_all().unwrap())
            .unwrap();
            opt.step(&loss.backward().unwrap(), 0.1, None).unwrap();
        }
        let state = opt.state();
        [flat(wv.as_tensor()), flat(bv.as_tensor()), flat(&state["momentum.w"]), flat(&state["momentum.b"])]
    }

    // Reference values: fixtures/torch/reference.py with torch 2.15.0 (CPU, float32):
    // torch.optim.SGD([{"params": [w], "weight_decay": 0.01}, {"params": [b], "weight_decay": 0.0}], lr=0.1, momentum=0.9, nesterov=...)
    #[test]
    fn sgd_with_momentum_matches_torch() {
        let [w, b, mw, mb] = three_steps(false);
        assert_close(&w, &[0.05819422006607056, -0.9626490473747253, -0.2711232304573059, 2.652892589569092]);
        assert_close(&b, &[-0.2134999781847, -1.1748238801956177]);
        assert_close(&mw, &[3.993067979812622, -4.719529628753662, 2.7007369995117188, 1.657303810119629]);
        assert_close(&mb, &[1.1849998235702515, -1.5357599258422852]);
    }

    #[test]
    fn sgd_with_nesterov_momentum_matches_torch() {
        let [w, b, mw, mb] = three_steps(true);
        assert_close(&w, &[-0.11165107786655426, -0.6437194347381592, -0.21675261855125427, 2.511122941970825]);
        assert_close(&b, &[-0.07601598650217056, -1.0497807264328003]);
        assert_close(&mw, &[3.186910390853882, -4.259181022644043, 1.5161240100860596, 1.6246893405914307]);
        assert_close(&mb, &[0.3263999819755554, -1.477785587310791]);
    }

    #[test]
    fn momentum_state_round_trips_and_rejects_a_wrong_shape() {
        let p = param("w", &[1.0, 2.0], &[2], true);
        let v = p.var.clone();
        let mut opt = Sgd::new(vec![p], 0.9, false, 0.0);
        assert!(opt.state().is_empty(), "no buffer before the first step");
        opt.step(&v.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap(), 0.1, None).unwrap();
        let saved = opt.state();
        assert_eq!(flat(&saved["momentum.w"]), vec![2.0, 4.0]);
        let mut fresh = Sgd::new(vec![param("w", &[0.0, 0.0], &[2], true)], 0.9, false, 0.0);
        fresh.load_state(&saved, "test").unwrap();
        assert_eq!(flat(&fresh.state()["momentum.w"]), vec![2.0, 4.0]);
        let wrong: HashMap<String, Tensor> = [("momentum.w".to_string(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap())].into();
        let e = fresh.load_state(&wrong, "optim.safetensors").unwrap_err().to_string();
        assert!(e.contains("optim.safetensors") && e.contains("`w`") && e.contains("delete"), "{e}");
    }

    // torch.nn.utils.clip_grad_norm_([g1, g2], max_norm=1.5) with grads (3, −4, 1) and (2, 0.5):
    // total norm 5.5; torch 2.15.0 leaves g1 = [0.8181817531585693, -1.0909090042114258,
    // 0.27272725105285645], g2 = [0.5454545021057129, 0.13636362552642822].
    #[test]
    fn clipping_matches_torch_clip_grad_norm() {
        let g1 = param("g1", &[0.0; 3], &[3], true);
        let g2 = param("g2", &[0.0; 2], &[2], false);
        // Loss whose gradients are exactly the reference gradients.
        let loss = ((g1.var.as_tensor() * Tensor::new(&[3f32, -4.0, 1.0], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap()
            + (g2.var.as_tensor() * Tensor::new(&[2f32, 0.5], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let params = vec![g1, g2];
        let (norm, factor) = clip_factor(&params, &grads, 1.5).unwrap();
        assert!((norm - 5.5).abs() < 1e-12, "{norm}");
        // Plain SGD with lr 1 from zero leaves −(clipped gradient) in each parameter.
        let (v1, v2) = (params[0].var.clone(), params[1].var.clone());
        Sgd::new(params, 0.0, false, 0.0).step(&grads, 1.0, Some(factor)).unwrap();
        let neg = |t: &Tensor| flat(&t.neg().unwrap());
        assert_close(&neg(v1.as_tensor()), &[0.8181817531585693, -1.0909090042114258, 0.27272725105285645]);
        assert_close(&neg(v2.as_tensor()), &[0.5454545021057129, 0.13636362552642822]);
        let (_, loose) = clip_factor(&[], &grads, 1.5).unwrap();
        assert_eq!(loose, 1.0, "nothing to clip");
    }
}
