//! Batches of an [`ImageSource`], decoded by worker threads ahead of the consumer, with bounded
//! memory: at most `depth` batches are claimed and not yet consumed. Batches reach the consumer
//! in index order, each holding the images of its index range, so what the consumer computes
//! cannot depend on the batch size, the number of workers or their timing.

use crate::data::{ImageSource, RgbImage};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

/// How a set is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loader {
    /// Images per batch.
    pub batch: usize,
    /// Decoding threads; 0 decodes on the caller's thread, one image after the other.
    pub workers: usize,
    /// Batches decoded ahead of the consumer (at least 1).
    pub depth: usize,
}

impl Loader {
    /// `batch` images per batch on every available core, a batch per worker ahead.
    pub fn with_batch(batch: usize) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { batch, workers, depth: workers + 1 }
    }
}

struct State {
    next: usize,
    consumed: usize,
    done: BTreeMap<usize, Result<Vec<RgbImage>>>,
    stop: bool,
}

/// Sets `stop` when the consumer leaves, however it leaves, so the workers end.
struct StopOnDrop<'a>(&'a Mutex<State>, &'a Condvar);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.stop = true;
        }
        self.1.notify_all();
    }
}

fn decode(source: &dyn ImageSource, size: u32, start: usize, end: usize) -> Result<Vec<RgbImage>> {
    (start..end).map(|i| source.image(i, size).with_context(|| format!("image {i} of the set"))).collect()
}

/// Calls `consume(start, images)` for each batch of `source`, in order, with the images
/// `start..start + images.len()` at `size`. The first error (a file that does not decode, in
/// index order, or one `consume` returns) ends the loop and is returned.
pub fn for_each_batch(source: &dyn ImageSource, size: u32, loader: &Loader, progress: &ProgressBar, mut consume: impl FnMut(usize, Vec<RgbImage>) -> Result<()>) -> Result<()> {
    let n = source.len();
    let batch = loader.batch.max(1);
    let batches = n.div_ceil(batch);
    let range = |k: usize| (k * batch, ((k + 1) * batch).min(n));
    if loader.workers == 0 {
        for k in 0..batches {
            let (start, end) = range(k);
            let images = decode(source, size, start, end)?;
            progress.inc(images.len() as u64);
            consume(start, images)?;
        }
        return Ok(());
    }
    let depth = loader.depth.max(1);
    let state = Mutex::new(State { next: 0, consumed: 0, done: BTreeMap::new(), stop: false });
    let cv = Condvar::new();
    let worker = || loop {
        let k = {
            let Ok(mut s) = state.lock() else { return };
            loop {
                if s.stop || s.next >= batches {
                    return;
                }
                if s.next < s.consumed + depth {
                    break;
                }
                s = match cv.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            s.next += 1;
            s.next - 1
        };
        let (start, end) = range(k);
        let images = decode(source, size, start, end);
        let Ok(mut s) = state.lock() else { return };
        s.done.insert(k, images);
        cv.notify_all();
    };
    std::thread::scope(|scope| {
        for _ in 0..loader.workers.min(batches) {
            scope.spawn(worker);
        }
        let _stop = StopOnDrop(&state, &cv);
        for k in 0..batches {
            let images = {
                let mut s = state.lock().map_err(|_| anyhow::anyhow!("an image decoding thread panicked"))?;
                loop {
                    if let Some(r) = s.done.remove(&k) {
                        s.consumed = k + 1;
                        cv.notify_all();
                        break r;
                    }
                    s = cv.wait(s).map_err(|_| anyhow::anyhow!("an image decoding thread panicked"))?;
                }
            }?;
            progress.inc(images.len() as u64);
            consume(range(k).0, images)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source that counts images in flight (decoded, not yet dropped by the consumer).
    struct Counting {
        n: usize,
        made: AtomicUsize,
        fail_at: Option<usize>,
    }

    impl ImageSource for Counting {
        fn len(&self) -> usize {
            self.n
        }
        fn label(&self, i: usize) -> u32 {
            i as u32
        }
        fn image(&self, i: usize, size: u32) -> Result<RgbImage> {
            anyhow::ensure!(Some(i) != self.fail_at, "bad file {i}");
            self.made.fetch_add(1, Ordering::SeqCst);
            let mut img = RgbImage::new(size, size);
            img.pixels[0] = i as u8;
            Ok(img)
        }
    }

    #[test]
    fn batches_arrive_in_order_with_bounded_lookahead_for_any_loader() {
        for loader in [Loader { batch: 7, workers: 0, depth: 1 }, Loader { batch: 7, workers: 3, depth: 2 }, Loader { batch: 1, workers: 4, depth: 4 }] {
            let src = Counting { n: 50, made: AtomicUsize::new(0), fail_at: None };
            let mut seen = Vec::new();
            for_each_batch(&src, 2, &loader, &ProgressBar::hidden(), |start, images| {
                // Decoded so far minus consumed: never more than depth batches ahead (+ this one).
                let ahead = src.made.load(Ordering::SeqCst) - start;
                assert!(ahead <= (loader.depth + 1) * loader.batch, "{loader:?}: {ahead} images decoded ahead");
                seen.extend(images.iter().map(|i| i.pixels[0] as usize));
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{loader:?}");
        }
    }

    #[test]
    fn the_first_bad_image_in_index_order_is_the_error() {
        let src = Counting { n: 40, made: AtomicUsize::new(0), fail_at: Some(13) };
        let loader = Loader { batch: 4, workers: 3, depth: 3 };
        let e = for_each_batch(&src, 2, &loader, &ProgressBar::hidden(), |_, _| Ok(())).unwrap_err();
        assert!(format!("{e:#}").contains("image 13 of the set: bad file 13"), "{e:#}");
    }
}
