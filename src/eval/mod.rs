//! Evaluation: a classifier's ranked predictions on a labelled image source under a scoring rule
//! (optionally with flip test-time averaging), the counts they give, and the run record that
//! holds them.

pub mod scoring;
pub use scoring::{count, Counts, Scoring, ScoringRule};

use crate::data::imageset::{for_each_batch, Loader};
use crate::data::ImageSource;
use crate::model::{normalise_into, Classifier};
use crate::record::{DomainRole, Protocol, Provenance, Role, RunRecord, ScoringSummary, SweepPoint, TrainSummary, RECORD_SCHEMA};
use anyhow::{ensure, Result};
use candle_core::Tensor;

/// Images per forward pass. Each image's logits do not depend on its batch mates (evaluation
/// mode), so this changes speed and memory only.
pub const EVAL_BATCH: usize = 250;

/// The [`scoring::TOP`] best labels of `scoring` for every image of `source`, in order. With
/// `flip_tta`, scored on the sum of the logits of the image and of its mirror image: logits, not
/// softmax probabilities, as the FFCV ImageNet recipe the paper trains with does; for two views
/// the two differ only on near-ties. Images are decoded by worker threads a few batches ahead.
pub fn predict(model: &mut dyn Classifier, source: &dyn ImageSource, flip_tta: bool, scoring: &Scoring) -> Result<Vec<Vec<u32>>> {
    predict_with(model, source, flip_tta, scoring, &Loader::with_batch(EVAL_BATCH), &indicatif::ProgressBar::hidden())
}

/// [`predict`] with a chosen loader (batch size, decoding threads) and a progress bar counting
/// images. The predictions do not depend on the loader: batches arrive in index order and an
/// image's logits do not depend on its batch mates.
pub fn predict_with(model: &mut dyn Classifier, source: &dyn ImageSource, flip_tta: bool, scoring: &Scoring, loader: &Loader, progress: &indicatif::ProgressBar) -> Result<Vec<Vec<u32>>> {
    ensure!(
        model.num_classes() == scoring.model_classes,
        "the classifier has {} classes, but scoring `{}` reads a {}-class model: use weights with one logit per class of the suite's vocabulary",
        model.num_classes(),
        scoring.rule.name(),
        scoring.model_classes
    );
    let size = model.input_size();
    let classes = model.num_classes();
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
        let rows = logits.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        out.extend(rows.chunks_exact(classes).map(|row| scoring.rank(row)));
        ensure!(out.len() == start + images.len(), "batch at {start} out of order");
        Ok(())
    })?;
    Ok(out)
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
pub fn record(subject: &RecordSubject, counts: Counts, scoring: &Scoring, protocol: &Protocol, train: &TrainSummary, provenance: Provenance) -> RunRecord {
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
        correct_top5: Some(counts.correct_top5),
        per_class_total: counts.per_class_total,
        per_class_correct: counts.per_class_correct,
        protocol: protocol.clone(),
        // The suite's own classes scored over every logit need no description (and keep the
        // records of earlier suites as they were).
        scoring: (scoring.rule != ScoringRule::Full).then(|| ScoringSummary {
            name: scoring.rule.name().to_string(),
            classes: scoring.classes() as u64,
            logits: scoring.logits_read() as u64,
        }),
        train: train.clone(),
        provenance,
        sweep: subject.sweep.cloned(),
    }
}

