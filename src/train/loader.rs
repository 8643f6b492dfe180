//! Which images make each training step, and their pixels assembled ahead of the model.
//!
//! Batch `b` of epoch `e` is a pure function of (seed, e, b): the shuffle of an epoch comes
//! from the stream `train/shuffle` at index `e`, image `k` of the batch is augmented by the
//! stream at index `e << 32 | b·batch + k`, and per-batch mixing draws generated images by a
//! global counter. So any number of worker threads can build batches in any order, a resumed
//! job needs no saved random state, and the bytes never depend on the thread count.

use super::augment::{self, Augment};
use crate::data::ImageSet;
use crate::model::normalise_into;
use crate::rng::Stream;
use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::sync::mpsc::sync_channel;

/// How real and generated training images share the batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mix {
    /// One set, shuffled together (the paper's real + generated).
    Concat,
    /// Every batch takes this fraction from the generated images, drawn by its own stream; an
    /// epoch is one pass over the real images.
    GeneratedFraction(f64),
}

/// A training set: real images first, then generated ones from `generated_start` on.
#[derive(Clone, Copy)]
pub struct TrainData<'a> {
    pub images: &'a ImageSet,
    /// Index of the first generated image (`images.len()` when there are none). Only
    /// [`Mix::GeneratedFraction`] tells the two apart.
    pub generated_start: usize,
}

impl<'a> TrainData<'a> {
    /// A set with no generated part.
    pub fn plain(images: &'a ImageSet) -> Self {
        Self { images, generated_start: images.len() }
    }
}

/// Normalised pixels (NHWC, `f32`) and labels of one batch.
pub struct Batch {
    pub pixels: Vec<f32>,
    pub labels: Vec<u32>,
}

/// The batch layout of one training job.
pub struct BatchPlan<'a> {
    data: TrainData<'a>,
    augment: Augment,
    seed: u64,
    mix: Mix,
    /// Images per batch taken from the real part (all of them with [`Mix::Concat`]).
    real_per_batch: usize,
    generated_per_batch: usize,
    steps_per_epoch: usize,
}

/// The last shuffled order of each purpose a builder used, so a worker shuffles once per epoch
/// (or generated pass), not once per batch.
#[derive(Default)]
pub struct OrderCache {
    entries: Vec<(&'static str, u64, Vec<usize>)>,
}

impl OrderCache {
    fn get(&mut self, seed: u64, purpose: &'static str, index: u64, n: usize) -> &[usize] {
        let slot = match self.entries.iter().position(|e| e.0 == purpose) {
            Some(i) => i,
            None => {
                self.entries.push((purpose, u64::MAX, Vec::new()));
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[slot];
        if entry.1 != index || entry.2.len() != n {
            entry.2 = (0..n).collect();
            Stream::new(seed, purpose, index).shuffle(&mut entry.2);
            entry.1 = index;
        }
        &entry.2
    }
}

impl<'a> BatchPlan<'a> {
    pub fn new(data: TrainData<'a>, batch_size: usize, augment: Augment, mix: Mix, seed: u64) -> Result<Self> {
        let n = data.images.len();
        anyhow::ensure!(n > 0, "the training set is empty; check the domain sizes in the suite");
        let real = data.generated_start.min(n);
        let (real_per_batch, generated_per_batch) = match mix {
            Mix::Concat => (batch_size.min(n), 0),
            Mix::GeneratedFraction(f) => {
                anyhow::ensure!(
                    real > 0 && real < n,
                    "per-batch mixing needs both real and generated training images; this regime has {real} real and {} generated",
                    n - real
                );
                let batch = batch_size.min(n).max(2);
                let generated = ((batch as f64 * f).round() as usize).clamp(1, batch - 1);
                ((batch - generated).min(real), generated)
            }
        };
        let steps_per_epoch = match mix {
            Mix::Concat => steps_per_epoch(n, batch_size),
            Mix::GeneratedFraction(_) => (real / real_per_batch).max(1),
        };
        Ok(Self { data, augment, seed, mix, real_per_batch, generated_per_batch, steps_per_epoch })
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    pub fn batch_len(&self) -> usize {
        self.real_per_batch + self.generated_per_batch
    }

    /// Indices into the training set of global step `step`.
    pub fn indices(&self, step: u64, cache: &mut OrderCache) -> Vec<usize> {
        let spe = self.steps_per_epoch as u64;
        let (epoch, b) = (step / spe, (step % spe) as usize);
        let real = match self.mix {
            Mix::Concat => self.data.images.len(),
            Mix::GeneratedFraction(_) => self.data.generated_start,
        };
        let r = self.real_per_batch;
        let mut idx = cache.get(self.seed, "train/shuffle", epoch, real)[b * r..(b + 1) * r].to_vec();
        if self.generated_per_batch > 0 {
            // Generated images are consumed in passes over fresh shuffles, independent of the
            // real epochs, so no generated image repeats before all have been seen.
            let generated = self.data.images.len() - real;
            let g = self.generated_per_batch as u64;
            for k in step * g..(step + 1) * g {
                let (pass, pos) = (k / generated as u64, (k % generated as u64) as usize);
                idx.push(real + cache.get(self.seed, "train/mix-generated", pass, generated)[pos]);
            }
        }
        idx
    }

    /// The batch of global step `step`.
    pub fn assemble(&self, step: u64, cache: &mut OrderCache) -> Batch {
        let spe = self.steps_per_epoch as u64;
        let (epoch, b) = (step / spe, step % spe);
        let idx = self.indices(step, cache);
        let aug_index = epoch << 32 | b * self.batch_len() as u64;
        Batch {
            pixels: batch_pixels(self.data.images, &idx, self.augment, self.seed, aug_index),
            labels: idx.iter().map(|&i| self.data.images.labels[i]).collect(),
        }
    }
}

/// Optimiser steps per epoch over `n` images. The last incomplete batch is dropped: tiny
/// batches make batch-norm statistics erratic.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    (n / batch_size.min(n).max(1)).max(1)
}

/// Normalised NHWC pixels of the images of `set` at `indices`, augmenting when asked; image `k`
/// uses the augmentation stream at `aug_index + k`. With several views per image
/// ([`Augment::views`]) the batch holds view 0 of every image, then view 1 of every image, ...
pub fn batch_pixels(set: &ImageSet, indices: &[usize], augment: Augment, aug_seed: u64, aug_index: u64) -> Vec<f32> {
    let s = set.size as usize;
    let per = set.image_bytes();
    let mut views: Vec<Vec<f32>> = vec![Vec::with_capacity(indices.len() * per); augment.views()];
    for (k, &i) in indices.iter().enumerate() {
        let raw = &set.pixels[i * per..(i + 1) * per];
        let stream = |purpose: &str| Stream::new(aug_seed, purpose, aug_index + k as u64);
        let pixels: Vec<std::borrow::Cow<[u8]>> = match augment {
            Augment::None => vec![raw.into()],
            Augment::Standard => vec![augment::standard(raw, s, &mut stream("augment/standard")).into()],
            Augment::Augmix => vec![augment::crop_flip_augmix(raw, s, &mut stream("augment/augmix")).into()],
            Augment::AugmixJsd => augment::augmix_jsd_views(raw, s, &mut stream("augment/augmix-jsd")).map(Into::into).into(),
        };
        for (view, pixels) in views.iter_mut().zip(&pixels) {
            normalise_into(pixels, view);
        }
    }
    views.concat()
}

/// Calls `consume` with the batches of steps `start..end` in order. With `threads > 0`, that
/// many workers build them ahead (worker `w` builds every step `≡ w` mod `threads`, at most
/// two each in flight) while `consume` runs; with 0, each is built just before it is consumed.
/// `consume` can stop early with `Break`.
pub fn for_each_batch(
    plan: &BatchPlan,
    start: u64,
    end: u64,
    threads: usize,
    mut consume: impl FnMut(u64, Batch) -> Result<ControlFlow<()>>,
) -> Result<()> {
    if threads == 0 {
        let mut cache = OrderCache::default();
        for step in start..end {
            if consume(step, plan.assemble(step, &mut cache))?.is_break() {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..threads as u64)
            .map(|w| {
                let (tx, rx) = sync_channel::<Batch>(1);
                scope.spawn(move || {
                    let mut cache = OrderCache::default();
                    let mut step = start + w;
                    // A send fails once the consumer has stopped: then there is nothing to do.
                    while step < end && tx.send(plan.assemble(step, &mut cache)).is_ok() {
                        step += threads as u64;
                    }
                });
                rx
            })
            .collect();
        for step in start..end {
            let batch = receivers[((step - start) % threads as u64) as usize]
                .recv()
                .context("a batch-building thread stopped unexpectedly")?;
            if consume(step, batch)?.is_break() {
                break;
            }
        }
        // Dropping the receivers here (before the scope joins) releases blocked workers.
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RgbImage;

    fn set(n: u32, size: u32) -> ImageSet {
        let mut s = ImageSet::with_size(size);
        for i in 0..n {
            let px = (0..size * size * 3).map(|j| ((i * 37 + j * 11) % 256) as u8).collect();
            s.push(i % 3, &RgbImage { width: size, height: size, pixels: px });
        }
        s
    }

    fn all_batches(plan: &BatchPlan, threads: usize, start: u64, end: u64) -> Vec<(u64, Vec<u32>, Vec<u32>)> {
        let mut out = Vec::new();
        for_each_batch(plan, start, end, threads, |step, b| {
            out.push((step, b.pixels.iter().map(|p| p.to_bits()).collect(), b.labels));
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        out
    }

    #[test]
    fn prefetched_batches_are_byte_identical_for_any_thread_count() {
        let images = set(40, 8);
        for (augment, mix) in [(Augment::None, Mix::Concat), (Augment::Augmix, Mix::Concat), (Augment::Standard, Mix::GeneratedFraction(0.25)), (Augment::AugmixJsd, Mix::Concat)] {
            let plan = BatchPlan::new(TrainData { images: &images, generated_start: 28 }, 8, augment, mix, 5).unwrap();
            let reference = all_batches(&plan, 0, 0, 12);
            assert_eq!(reference.len(), 12);
            for threads in [1, 2, 3] {
                assert_eq!(all_batches(&plan, threads, 0, 12), reference, "{threads} threads, {augment:?} {mix:?}");
            }
            // Starting mid-way (a resumed job) gives the same batches as running through.
            assert_eq!(all_batches(&plan, 2, 5, 12), reference[5..].to_vec());
        }
    }

    #[test]
    fn concatenation_keeps_the_original_batch_layout() {
        // The layout the harness has always used: epoch shuffle, consecutive slices, augment
        // stream index epoch << 32 | b·batch + k. Changing it would change every result.
        let images = set(30, 8);
        let plan = BatchPlan::new(TrainData::plain(&images), 8, Augment::Standard, Mix::Concat, 9).unwrap();
        assert_eq!(plan.steps_per_epoch(), 3);
        let mut order: Vec<usize> = (0..30).collect();
        Stream::new(9, "train/shuffle", 1).shuffle(&mut order);
        let batch = plan.assemble(3 + 2, &mut OrderCache::default());
        let idx = &order[16..24];
        assert_eq!(batch.pixels, batch_pixels(&images, idx, Augment::Standard, 9, 1 << 32 | 16));
        assert_eq!(batch.labels, idx.iter().map(|&i| images.labels[i]).collect::<Vec<_>>());
    }

    #[test]
    fn augmix_jsd_batches_hold_a_clean_view_then_two_mixes_of_it() {
        let images = set(12, 8);
        let idx = [3usize, 7, 0];
        let per = images.image_bytes();
        let pixels = batch_pixels(&images, &idx, Augment::AugmixJsd, 4, 100);
        assert_eq!(pixels.len(), 3 * idx.len() * per, "three views of every image");
        let normalise = |raw: &[u8]| {
            let mut v = Vec::new();
            normalise_into(raw, &mut v);
            v
        };
        for (k, &i) in idx.iter().enumerate() {
            let raw = &images.pixels[i * per..(i + 1) * per];
            let views = augment::augmix_jsd_views(raw, 8, &mut Stream::new(4, "augment/augmix-jsd", 100 + k as u64));
            for (v, view) in views.iter().enumerate() {
                let at = (v * idx.len() + k) * per;
                assert_eq!(pixels[at..at + per], normalise(view)[..], "view {v} of image {k}");
            }
            assert_ne!(views[1], views[2], "the two mixes are drawn independently");
        }
        // The single-view regimes keep their layout.
        assert_eq!(batch_pixels(&images, &idx, Augment::Augmix, 4, 100).len(), idx.len() * per);
    }

    #[test]
    fn per_batch_mixing_takes_its_fraction_and_covers_the_generated_set() {
        let images = set(40, 4);
        let plan = BatchPlan::new(TrainData { images: &images, generated_start: 24 }, 8, Augment::None, Mix::GeneratedFraction(0.5), 1).unwrap();
        assert_eq!((plan.steps_per_epoch(), plan.batch_len()), (6, 8), "an epoch is one pass over the 24 real images");
        let mut cache = OrderCache::default();
        let mut real_seen = Vec::new();
        let mut generated_seen = Vec::new();
        for step in 0..6 {
            let idx = plan.indices(step, &mut cache);
            assert_eq!(idx.iter().filter(|&&i| i >= 24).count(), 4, "half of every batch is generated");
            real_seen.extend(idx.iter().copied().filter(|&i| i < 24));
            generated_seen.extend(idx.iter().copied().filter(|&i| i >= 24));
        }
        real_seen.sort();
        assert_eq!(real_seen, (0..24).collect::<Vec<_>>(), "each real image once per epoch");
        // 24 generated draws over 16 images: the first pass covers all of them once.
        let mut first_pass = generated_seen[..16].to_vec();
        first_pass.sort();
        assert_eq!(first_pass, (24..40).collect::<Vec<_>>());
    }

    #[test]
    fn per_batch_mixing_needs_both_parts() {
        let images = set(10, 4);
        let e = BatchPlan::new(TrainData::plain(&images), 4, Augment::None, Mix::GeneratedFraction(0.5), 0).err().unwrap();
        assert!(e.to_string().contains("10 real and 0 generated"), "{e}");
    }
}
