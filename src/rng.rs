//! Named, counter-based random streams.
//!
//! Every random choice in shiftbench flows from the suite seed through a stream keyed by
//! `(seed, purpose)` and positioned by an index, so any single item (one image, one shuffle of
//! one epoch) can be regenerated alone and nothing depends on the order work was scheduled in.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// A deterministic random stream for one `(seed, purpose, index)` triple.
pub struct Stream {
    rng: ChaCha8Rng,
}

impl Stream {
    /// The stream for `purpose` (e.g. `"domain/sketch"`, `"init/resnet-w16"`) under `seed`,
    /// positioned at item `index`. Different purposes give unrelated streams.
    pub fn new(seed: u64, purpose: &str, index: u64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"shiftbench-stream-v1\0");
        hasher.update(seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(index);
        Self { rng }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [0, n). `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Stream::below needs a positive bound");
        // Lemire-style rejection keeps the draw unbiased.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.rng.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal draw (Box–Muller; one value per call keeps streams position-stable).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(`shape`, scale 1) draw, `shape > 0` (Marsaglia & Tsang 2000). Shapes below one use
    /// the boost `Gamma(a) = Gamma(a + 1) · U^(1/a)`, which keeps the squeeze test valid.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        assert!(shape > 0.0 && shape.is_finite(), "Stream::gamma needs a positive finite shape");
        if shape < 1.0 {
            let boost = self.unit().max(f64::MIN_POSITIVE).powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u < 1.0 - 0.0331 * x.powi(4) || u.max(f64::MIN_POSITIVE).ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(`a`, `b`) draw as `X / (X + Y)` with independent gammas.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// Dirichlet draw with the given concentrations: normalised independent gammas.
    pub fn dirichlet(&mut self, alphas: &[f64]) -> Vec<f64> {
        let draws: Vec<f64> = alphas.iter().map(|&a| self.gamma(a)).collect();
        let total: f64 = draws.iter().sum();
        draws.iter().map(|g| g / total).collect()
    }

    /// One element of a non-empty slice, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A 64-bit seed derived from a parent seed and a label, for handing to sub-components.
pub fn derive_seed(seed: u64, purpose: &str, index: u64) -> u64 {
    Stream::new(seed, purpose, index).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_values_and_purposes_differ() {
        let a: Vec<u64> = (0..4).map(|_| 0).scan(Stream::new(7, "x", 3), |s, _: u64| Some(s.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(Stream::new(7, "x", 3), |s, _: u64| Some(s.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(Stream::new(7, "x", 3).next_u64(), Stream::new(7, "y", 3).next_u64());
        assert_ne!(Stream::new(7, "x", 3).next_u64(), Stream::new(7, "x", 4).next_u64());
        assert_ne!(Stream::new(7, "x", 3).next_u64(), Stream::new(8, "x", 3).next_u64());
    }

    /// Sample mean and variance of `n` draws.
    fn moments(n: usize, mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        (mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64)
    }

    #[test]
    fn gamma_beta_and_dirichlet_have_their_textbook_moments() {
        // Gamma(k): mean k, variance k. 40k draws: standard error of the mean ≤ 0.011·√k.
        let mut s = Stream::new(3, "moments", 0);
        for k in [0.5, 1.0, 2.5] {
            let (m, v) = moments(40_000, || s.gamma(k));
            assert!((m - k).abs() < 0.05 * k.max(1.0), "Gamma({k}) mean {m}");
            assert!((v - k).abs() < 0.1 * k.max(1.0), "Gamma({k}) variance {v}");
        }
        // Beta(a, b): mean a/(a+b), variance ab/((a+b)²(a+b+1)); Beta(1, 1) is uniform (1/12).
        for (a, b) in [(1.0, 1.0), (2.0, 5.0)] {
            let (m, v) = moments(40_000, || s.beta(a, b));
            let (em, ev) = (a / (a + b), a * b / ((a + b) * (a + b) * (a + b + 1.0)));
            assert!((m - em).abs() < 0.01 && (v - ev).abs() < 0.01, "Beta({a},{b}): {m} {v}");
        }
        // Dirichlet(1, 1, 1): on the simplex, each coordinate Beta(1, 2) (mean 1/3, variance 1/18).
        let draws: Vec<Vec<f64>> = (0..20_000).map(|_| s.dirichlet(&[1.0; 3])).collect();
        assert!(draws.iter().all(|w| w.iter().all(|&x| x >= 0.0) && (w.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        for i in 0..3 {
            let mut it = draws.iter().map(|w| w[i]);
            let (m, v) = moments(draws.len(), || it.next().unwrap());
            assert!((m - 1.0 / 3.0).abs() < 0.01 && (v - 1.0 / 18.0).abs() < 0.005, "coordinate {i}: {m} {v}");
        }
    }

    #[test]
    fn below_stays_in_range_and_shuffle_is_a_permutation() {
        let mut s = Stream::new(1, "t", 0);
        for n in 1..50 {
            assert!(s.below(n) < n);
        }
        let mut v: Vec<u32> = (0..100).collect();
        s.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted);
    }
}
