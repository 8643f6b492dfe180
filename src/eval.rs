//! Evaluation: a classifier's top-1 predictions on a labelled image source (optionally with
//! flip test-time averaging), the per-class counts they give, and the run record that holds them.

use crate::data::imageset::{for_each_batch, Loader};
use crate::data::ImageSource;
use crate::model::{normalise_into, Classifier};
use crate::record::{DomainRole, Protocol, Provenance, Role, RunRecord, SweepPoint, TrainSummary, RECORD_SCHEMA};
use anyhow::{ensure, Result};
use candle_core::Tensor;

/// Images per forward pass. Each image's logits do not depend on its batch mates (evaluation
/// mode), so this changes speed and memory only.
pub const EVAL_BATCH: usize = 250;

/// Top-1 predictions for every image of `source`, in order. With `flip_tta`, the class with
/// the highest sum of the logits of the image and of its mirror image: logits, not softmax
/// probabilities, as the FFCV ImageNet recipe the paper trains with does; for two views the two
/// differ only on near-ties. Images are decoded by worker threads a few batches ahead.
pub fn predict(model: &mut dyn Classifier, source: &dyn ImageSource, flip_tta: bool) -> Result<Vec<u32>> {
    predict_with(model, source, flip_tta, &Loader::with_batch(EVAL_BATCH), &indicatif::ProgressBar::hidden())
}

/// [`predict`] with a chosen loader (batch size, decoding threads) and a progress bar counting
/// images. The predictions do not depend on the loader: batches arrive in index order and an
/// image's logits do not depend on its batch mates.
pub fn predict_with(model: &mut dyn Classifier, source: &dyn ImageSource, flip_tta: bool, loader: &Loader, progress: &indicatif::ProgressBar) -> Result<Vec<u32>> {
    let size = model.input_size();
    let device = model.device().clone();
    let mirror = Tensor::from_vec((0..size as u32).rev().collect::<Vec<u32>>(), size, &device)?;
    let mut out = Vec::with_capacity(source.len());
    for_each_batch(source, size as u32, loader, progress, |start, images| {
        let mut pixels = Vec::with_capacity(images.len() * size * size * 3);
        for image in &images {
            normalise_into(&image.pixels, &mut pixels);
        }
        let x = Tensor::from_vec(pixels, (images.len(), size, size, 3), &device)?;
        let mut logits = model.logits(&x)?;
        if flip_tta {
            // NHWC: axis 2 is the image width.
            logits = (logits + model.logits(&x.index_select(&mirror, 2)?)?)?;
        }
        out.extend(crate::model::argmax(&logits)?);
        ensure!(out.len() == start + images.len(), "batch at {start} out of order");
        Ok(())
    })?;
    Ok(out)
}

/// Top-1 counts of one evaluation, overall and per true class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub n: u64,
    pub correct: u64,
    pub per_class_total: Vec<u64>,
    pub per_class_correct: Vec<u64>,
}

/// Counts `predictions` against `labels` over `classes` classes.
pub fn count(predictions: &[u32], labels: &[u32], classes: usize) -> Result<Counts> {
    ensure!(predictions.len() == labels.len(), "{} predictions for {} images", predictions.len(), labels.len());
    let mut per_class_total = vec![0u64; classes];
    let mut per_class_correct = vec![0u64; classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        let l = l as usize;
        ensure!(l < classes, "label {l} outside the suite's {classes} classes");
        per_class_total[l] += 1;
        if p as usize == l {
            per_class_correct[l] += 1;
        }
    }
    Ok(Counts { n: labels.len() as u64, correct: per_class_correct.iter().sum(), per_class_total, per_class_correct })
}

/// Which evaluation a record is of: the classifier's row and the evaluation set.
#[derive(Clone, Debug)]
pub struct RecordSubject<'a> {
    pub suite: &'a str,
    pub role: Role,
    pub model: &'a str,
    pub regime: &'a str,
    pub seed: u64,
    pub domain: &'a str,
    pub domain_role: DomainRole,
    pub sweep: Option<&'a SweepPoint>,
}

/// The run record of one evaluation.
pub fn record(subject: &RecordSubject, counts: Counts, protocol: &Protocol, train: &TrainSummary, provenance: Provenance) -> RunRecord {
    RunRecord {
        schema: RECORD_SCHEMA,
        suite: subject.suite.to_string(),
        role: subject.role,
        model: subject.model.to_string(),
        regime: subject.regime.to_string(),
        seed: subject.seed,
        domain: subject.domain.to_string(),
        domain_role: subject.domain_role,
        n: counts.n,
        correct: counts.correct,
        per_class_total: counts.per_class_total,
        per_class_correct: counts.per_class_correct,
        protocol: protocol.clone(),
        train: train.clone(),
        provenance,
        sweep: subject.sweep.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_true_class_and_sum_to_the_total() {
        let c = count(&[0, 1, 1, 2, 0], &[0, 1, 2, 2, 1], 3).unwrap();
        assert_eq!(c.n, 5);
        assert_eq!(c.correct, 3);
        assert_eq!(c.per_class_total, vec![1, 2, 2]);
        assert_eq!(c.per_class_correct, vec![1, 1, 1]);
    }

    #[test]
    fn a_label_outside_the_classes_or_a_length_mismatch_is_an_error() {
        assert!(count(&[0], &[3], 3).is_err());
        assert!(count(&[0, 1], &[0], 3).is_err());
    }
}
