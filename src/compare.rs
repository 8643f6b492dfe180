//! `shiftbench compare`: evaluate a classifier trained elsewhere on a suite's evaluation sets,
//! write its records beside the suite's own and rebuild the leaderboard, so outside classifiers
//! sit in one table with the suite's rows, scored by the same protocols and measured against the
//! same fits.
//!
//! A compared classifier is identified by what decides its predictions: the bytes of its
//! weights (sha256), how they are read (architecture or ONNX), the eval transform and the
//! harness. Its records are keyed by that identity, the evaluation set and the protocol, like a
//! trained job's, so re-running `compare` skips what is done and a changed weights file is
//! evaluated again. Records are `records/compared/<name>/external/seed-0/<domain>.json`: the
//! harness knows nothing of the classifier's training, so the leaderboard leaves its
//! `train_images` and `epochs` empty and calls its regime `external`.
//!
//! A suite with `[metrics.baseline_table]` also measures effective robustness against the
//! table's baselines (`robustness::baseline`): their points go into the records' protocol, so
//! the leaderboard's `er_table_<shift>` columns need nothing but records.

use crate::data::image::Preprocess;
use crate::eval::RecordSubject;
use crate::model::Classifier;
use crate::plan::Plan;
use crate::predict::ModelSource;
use crate::record::{Provenance, Role, TrainSummary};
use crate::suite::{DomainData, Suite};
use anyhow::{ensure, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The regime column of a compared classifier's rows.
pub const REGIME: &str = "external";

/// What `shiftbench compare` is asked to do.
#[derive(Clone, Debug)]
pub struct CompareRequest {
    /// The row name of the classifier in the leaderboard.
    pub name: String,
    /// The classifier: torchvision-layout safetensors weights of an architecture, or an ONNX graph.
    pub source: ModelSource,
    /// The classifier's own eval transform for the suite's file-backed sets (default: each
    /// domain's `preprocess`); its crop must be the suite's `image_size`.
    pub preprocess: Option<Preprocess>,
    pub out: PathBuf,
    /// `--seed`: the suite seed of the folder (procedural and generated sets depend on it).
    pub seed: Option<u64>,
    pub lock: PathBuf,
}

/// What a compare call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareSummary {
    /// Evaluation sets scored now.
    pub evaluated: Vec<String>,
    /// Evaluation sets whose record was already there with this classifier's key.
    pub skipped: Vec<String>,
}

/// Runs `req` on `suite`: claims the results folder (as `run` does), evaluates on every
/// evaluation set of the suite's protocol that lacks this classifier's record, writes the
/// records atomically, and rebuilds the leaderboard from all records in the folder.
pub fn compare(suite: &Suite, req: &CompareRequest) -> Result<CompareSummary> {
    crate::fsutil::checked_name(&req.name, "--name").map_err(|e| anyhow::anyhow!("--name {e}: use letters, digits, `-`, `_` and `.`"))?;
    let config = &suite.config;
    crate::run::check_before_work(suite, &req.out)?;
    let mut plan = Plan::new(config, req.seed.unwrap_or(config.seed), false);
    // Read before any evaluation, so a table that is not fetched is the first thing a user sees.
    plan.protocol.baseline_table = crate::robustness::baseline::protocol_table(config, &req.lock)?;
    if let Some(p) = &req.preprocess {
        ensure!(
            p.crop == config.image_size,
            "--preprocess `{}` crops {}×{}, but suite `{}` evaluates at {}×{} (its image_size); give a transform with crop={}",
            p.name, p.crop, p.crop, suite.name(), config.image_size, config.image_size, config.image_size
        );
    }
    let mut model = load(&req.source, config.image_size, config.num_classes())?;
    let identity = identity(req, model.as_ref())?;
    let identity_hash = crate::keys::hash(&identity);

    let manifest = crate::folder::RunManifest { suite: suite.name().to_string(), suite_hash: suite.hash.clone(), seed: plan.seed, quick: false };
    let _owner = crate::folder::claim(&req.out, &manifest)?;
    let work = req.out.join("work");
    let multi = indicatif::MultiProgress::new();
    if !crate::progress::is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let wanted: BTreeSet<String> = plan.eval_sets.iter().map(|(s, _)| s.clone()).collect();
    let datasets = eval_datasets(suite, &plan, &wanted, req, &work, &multi)?;

    let info = model.info();
    let train = TrainSummary { arch: info.arch, parameters: info.parameters, train_images: None, epochs: None, final_loss: None, sources: None, augment: None, generated_fraction: None };
    let lock_hash = crate::run::lock_hash(suite, None, &req.lock)?;
    let mut summary = CompareSummary { evaluated: Vec::new(), skipped: Vec::new() };
    for (set, role) in &plan.eval_sets {
        let dataset = datasets.get(set).with_context(|| format!("evaluation set `{set}` was not prepared"))?;
        let key = crate::keys::record(&identity_hash, &dataset.key, &plan.protocol);
        let path = req.out.join(crate::record::record_file_name(Role::Compared, &req.name, REGIME, 0, set));
        if crate::run::record_matches(&path, &key) {
            summary.skipped.push(set.clone());
            continue;
        }
        let data = dataset.images.source();
        let pb = multi.add(crate::progress::bar(data.len() as u64, &format!("{} on {set}", req.name)));
        let loader = crate::data::imageset::Loader::with_batch(crate::eval::EVAL_BATCH);
        let ranked = crate::eval::predict_with(model.as_mut(), data, plan.protocol.flip_tta, &dataset.scoring, &loader, &pb)
            .with_context(|| format!("evaluating `{}` on `{set}`", req.name))?;
        pb.finish_and_clear();
        let labels: Vec<u32> = (0..data.len()).map(|i| data.label(i)).collect();
        let counts = crate::eval::count(&ranked, &labels, dataset.scoring.classes())?;
        let subject = RecordSubject { suite: suite.name(), role: Role::Compared, model: &req.name, regime: REGIME, seed: 0, domain: set, domain_role: *role, sweep: None };
        let provenance = Provenance {
            harness_version: crate::HARNESS_VERSION.to_string(),
            git_revision: crate::GIT_REVISION.to_string(),
            suite_hash: suite.hash.clone(),
            lock_hash: lock_hash.clone(),
            job_hash: key,
            device: "cpu".to_string(),
            suite_seed: Some(plan.seed),
            checkpoint_sha256: Some(identity["weights_sha256"].as_str().unwrap_or_default().to_string()),
        };
        let record = crate::eval::record(&subject, counts, &dataset.scoring, &plan.protocol, &train, provenance);
        let mut text = serde_json::to_string_pretty(&record)?;
        text.push('\n');
        crate::fsutil::write_atomic(&req.out.join(record.file_name()), text.as_bytes())?;
        summary.evaluated.push(set.clone());
    }
    let records = crate::report::load_records(&req.out)?;
    let lb = crate::report::build(&records)?;
    crate::report::write(&req.out, &lb)?;
    Ok(summary)
}

/// The classifier `source` describes, for `image_size` inputs; it must have one logit per class
/// of the suite's vocabulary.
pub fn load(source: &ModelSource, image_size: u32, classes: usize) -> Result<Box<dyn Classifier + Send>> {
    let model = crate::predict::load_model(source, image_size as usize)?;
    ensure!(
        model.num_classes() == classes,
        "the classifier has {} outputs but the suite's vocabulary has {classes} classes; compare evaluates classifiers of the suite's label space (for ImageNet suites, 1000 logits in torchvision's class order)",
        model.num_classes()
    );
    ensure!(model.input_size() == image_size as usize, "the classifier takes {}×{} inputs but the suite evaluates at {image_size}×{image_size}", model.input_size(), model.input_size());
    Ok(model)
}

/// What decides a compared classifier's predictions (the key its records are cached by).
fn identity(req: &CompareRequest, model: &dyn Classifier) -> Result<serde_json::Value> {
    let (kind, path, arch) = match &req.source {
        ModelSource::Torchvision { arch, weights } => ("safetensors", weights, arch.clone()),
        ModelSource::Onnx(p) => ("onnx", p, model.info().arch),
    };
    let (sha, _, _) = crate::fetch::hash_file(path)?;
    Ok(serde_json::json!({
        "harness": crate::HARNESS_VERSION,
        "kernels": crate::model::kernels::ARITHMETIC,
        "kind": kind,
        "arch": arch,
        "weights_sha256": sha,
        "preprocess": req.preprocess.as_ref().map(|p| p.name.clone()),
    }))
}

/// Only the evaluation sets of the plan: procedural ones rendered, generated ones generated (or
/// reused from `work/`), file-backed ones opened with the classifier's transform (the procedural
/// world and generated sets are already at the suite's size, so a transform does not apply).
fn eval_datasets(suite: &Suite, plan: &Plan, wanted: &BTreeSet<String>, req: &CompareRequest, work: &Path, multi: &indicatif::MultiProgress) -> Result<crate::prepare::Datasets> {
    let config = &suite.config;
    let mut only = plan.clone();
    only.domains.retain(|d| wanted.contains(&d.name));
    only.generated.retain(|g| wanted.contains(&g.name));
    only.jobs.clear();
    let sd = crate::generate::sd::prepare(config, &suite.path, plan.seed, None, &req.lock)?;
    let mut generators = crate::generate::PreparedGenerators { sd, ..Default::default() };
    let mut file_free = config.clone();
    file_free.domains.retain(|d| !matches!(d.data, DomainData::Files(_)));
    let mut datasets = crate::prepare::datasets(&file_free, &only, &mut generators, work, &req.lock, multi)?;
    for d in &config.domains {
        let DomainData::Files(f) = &d.data else { continue };
        if wanted.contains(&d.name) {
            datasets.insert(d.name.clone(), crate::prepare::open_scored_domain(config, &d.name, f, &req.lock, req.preprocess.as_ref())?);
        }
    }
    Ok(datasets)
}
