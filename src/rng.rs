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
