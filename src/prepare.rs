//! Prepare: the images a plan trains and evaluates on. Procedural domains are rendered into
//! memory; generated sets are generated (or resumed) into their keyed folders under `work/`;
//! a job's training set is assembled from them.

use crate::data::procedural::render_domain;
use crate::data::ImageSet;
use crate::generate::sd::SdGenerator;
use crate::generate::{SetOptions, SuiteGenerator};
use crate::plan::{GeneratedSetPlan, Job, Plan};
use crate::suite::SuiteConfig;
use crate::train::Mix;
use anyhow::{Context, Result};
use indicatif::MultiProgress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A labelled image set with the key of everything that determines its bytes.
pub struct Dataset {
    pub images: ImageSet,
    pub key: serde_json::Value,
    /// Made by a generator (per-batch mixing draws these separately).
    pub generated: bool,
}

/// Every set of a plan, by name.
pub type Datasets = BTreeMap<String, Dataset>;

/// A generated set's generator, ready to render, with the key and folder its images live under.
pub struct GeneratedSetSource<'a> {
    pub generator: SuiteGenerator<'a>,
    pub key: serde_json::Value,
    pub dir: PathBuf,
}

/// Where generated set `g` comes from: `run` and `generate` both find its folder here.
pub fn generated_set_source<'a>(config: &SuiteConfig, g: &GeneratedSetPlan, sd: &'a BTreeMap<String, SdGenerator>, work: &Path) -> Result<GeneratedSetSource<'a>> {
    let templates = config.generator(&g.generator).map(|c| c.templates).with_context(|| format!("generated set `{}` names no generator of the suite", g.name))?;
    let generator = SuiteGenerator::new(&g.generator, templates, sd);
    let key = crate::keys::generated_set(g, generator.key());
    let dir = crate::keys::generated_set_dir(work, &g.name, &key);
    Ok(GeneratedSetSource { generator, key, dir })
}

/// Renders the plan's domains and generates (or resumes) its generated sets.
pub fn datasets(config: &SuiteConfig, plan: &Plan, sd: &BTreeMap<String, SdGenerator>, work: &Path, multi: &MultiProgress) -> Result<Datasets> {
    let mut datasets = Datasets::new();
    for d in &plan.domains {
        let pb = multi.add(crate::progress::bar(d.count as u64, &d.name));
        let images = render_domain(plan.seed, &d.name, d.style, &plan.classes, d.count, plan.image_size, &pb);
        pb.finish_and_clear();
        let key = crate::keys::procedural_domain(&d.name, d.style, d.count, plan.image_size, plan.seed, &plan.classes);
        datasets.insert(d.name.clone(), Dataset { images, key, generated: false });
    }
    for g in &plan.generated {
        let GeneratedSetSource { generator, key, dir } = generated_set_source(config, g, sd, work)?;
        let pb = multi.add(crate::progress::bar(g.count as u64, &g.name));
        let (images, _manifest, stats) = g.generate(generator.as_dyn(), &dir, &pb, &SetOptions::default())?;
        pb.finish_and_clear();
        crate::progress::say(format!("{}: {} images generated, {} reused from {}", g.name, stats.rendered, stats.reused, dir.display()));
        datasets.insert(g.name.clone(), Dataset { images, key, generated: true });
    }
    Ok(datasets)
}

/// A job's training images (`train_images` of them when concatenated), and the index where its
/// generated images start when they are mixed per batch (real sets first, then generated ones).
pub fn training_set(job: &Job, datasets: &Datasets, train_images: usize) -> (ImageSet, usize) {
    let fraction = |set: ImageSet| {
        // Sets are label-balanced in index order, so a prefix stays balanced.
        if job.train_fraction < 1.0 {
            let n = ((set.len() as f64 * job.train_fraction).round() as usize).max(1);
            set.truncated(n)
        } else {
            set
        }
    };
    if job.config.mix == Mix::Concat {
        let parts: Vec<&ImageSet> = job.train_sets.iter().map(|s| &datasets[s].images).collect();
        let all = ImageSet::concat(&parts);
        let all = if job.train_fraction < 1.0 { all.truncated(train_images) } else { all };
        let n = all.len();
        return (all, n);
    }
    let part = |generated: bool| {
        let sets: Vec<&ImageSet> = job.train_sets.iter().map(|s| &datasets[s]).filter(|d| d.generated == generated).map(|d| &d.images).collect();
        fraction(ImageSet::concat(&sets))
    };
    let (real, generated) = (part(false), part(true));
    let start = real.len();
    (ImageSet::concat(&[&real, &generated]), start)
}
