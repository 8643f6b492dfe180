//! Prepare: the images a plan trains and evaluates on. Procedural domains are rendered into
//! memory; generated sets are generated (or resumed) into their keyed folders under `work/`;
//! file-backed domains are listed, labelled and counted (their images are decoded only when
//! evaluated); a job's training set is assembled from the in-memory sets.

use crate::data::procedural::render_domain;
use crate::data::imageset::{FileImageSet, Layout, SetSpec, Vocabulary};
use crate::data::{ImageSet, ImageSource};
use crate::generate::sd::SdGenerator;
use crate::generate::{ProceduralGenerator, SetOptions, SuiteGenerator};
use crate::plan::{GeneratedSetPlan, Job, Plan};
use crate::suite::{DomainData, FileDomain, FileSource, SuiteConfig};
use crate::train::Mix;
use anyhow::{Context, Result};
use indicatif::MultiProgress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A set's images: in memory (rendered or generated) or read from files when evaluated.
pub enum Images {
    Memory(ImageSet),
    Files(FileImageSet),
}

impl Images {
    pub fn source(&self) -> &dyn ImageSource {
        match self {
            Images::Memory(s) => s,
            Images::Files(s) => s,
        }
    }
}

/// A labelled image set with the key of everything that determines its bytes.
pub struct Dataset {
    pub images: Images,
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
    let c = config.generator(&g.generator).with_context(|| format!("generated set `{}` names no generator of the suite", g.name))?;
    let procedural = ProceduralGenerator::new(c.templates, c.conditioning.clone(), g.source.clone()).with_context(|| format!("generated set `{}`", g.name))?;
    let generator = SuiteGenerator::new(&g.generator, procedural, sd);
    let key = crate::keys::generated_set(g, generator.key());
    let dir = crate::keys::generated_set_dir(work, &g.name, &key);
    Ok(GeneratedSetSource { generator, key, dir })
}

/// Renders the plan's domains, generates (or resumes) its generated sets and opens its
/// file-backed domains (artifacts from the fetch cache, named in `lock`).
pub fn datasets(config: &SuiteConfig, plan: &Plan, sd: &BTreeMap<String, SdGenerator>, work: &Path, lock: &Path, multi: &MultiProgress) -> Result<Datasets> {
    let mut datasets = Datasets::new();
    for d in &plan.domains {
        let pb = multi.add(crate::progress::bar(d.count as u64, &d.name));
        let images = render_domain(plan.seed, &d.name, d.style, &plan.classes, d.count, plan.image_size, &pb);
        pb.finish_and_clear();
        let key = crate::keys::procedural_domain(&d.name, d.style, d.count, plan.image_size, plan.seed, &plan.classes);
        datasets.insert(d.name.clone(), Dataset { images: Images::Memory(images), key, generated: false });
    }
    for d in &config.domains {
        let DomainData::Files(f) = &d.data else { continue };
        let set = open_file_domain(config, &d.name, f, lock)?;
        crate::progress::say(format!("{}: {} images ({}, {})", d.name, set.len(), f.layout.name(), f.preprocess.name));
        let key = crate::keys::file_domain(&d.name, f.layout, &f.preprocess.name, plan.image_size, set.fingerprint());
        datasets.insert(d.name.clone(), Dataset { images: Images::Files(set), key, generated: false });
    }
    for g in &plan.generated {
        let GeneratedSetSource { generator, key, dir } = generated_set_source(config, g, sd, work)?;
        let pb = multi.add(crate::progress::bar(g.count as u64, &g.name));
        let (images, _manifest, stats) = g.generate(generator.as_dyn(), &dir, &pb, &SetOptions::default())?;
        pb.finish_and_clear();
        crate::progress::say(format!("{}: {} images generated, {} reused from {}", g.name, stats.rendered, stats.reused, dir.display()));
        datasets.insert(g.name.clone(), Dataset { images: Images::Memory(images), key, generated: true });
    }
    Ok(datasets)
}

/// Opens a file-backed domain: finds its folder (an artifact's extraction in the fetch cache,
/// never downloaded here, or a local folder), labels it with the suite's classes and checks its
/// counts against the domain's `expect` and, for class-folder layouts, the artifact's.
pub fn open_file_domain(config: &SuiteConfig, name: &str, f: &FileDomain, lock: &Path) -> Result<FileImageSet> {
    let (base, artifact) = match &f.source {
        FileSource::Folder(p) => (p.clone(), None),
        FileSource::Artifact(a) => {
            let lock = crate::fetch::lock::Lock::load(lock)?;
            let artifact = lock.get(a)?.clone();
            let mut opts = crate::fetch::FetchOptions::new(crate::fetch::default_cache_dir()?);
            opts.offline = true;
            let fetched = crate::fetch::fetch(&artifact, &opts).map_err(|e| anyhow::anyhow!("domain `{name}`: {e}; run `shiftbench fetch {a}` first"))?;
            let dir = fetched.extracted.with_context(|| format!("domain `{name}`: artifact `{a}` is a plain file; a domain reads an archive (format tar, tar.gz or zip)"))?;
            (dir, Some(artifact))
        }
    };
    let lock_expect = artifact.as_ref().and_then(|a| a.expect.clone());
    let root = match f.root.as_deref().or(lock_expect.as_ref().and_then(|e| e.root.as_deref())) {
        Some(r) => base.join(r),
        None => base,
    };
    let class_folders = matches!(f.layout, Layout::WnidFolders | Layout::ClassIndexFolders);
    let vocab = Vocabulary::named(&config.class_names());
    let mut spec = SetSpec::new(f.layout, &root);
    spec.val_labels = f.labels.clone();
    spec.id_map = f.id_map.clone();
    spec.artifact_sha256 = artifact.as_ref().and_then(|a| a.sha256().map(str::to_string));
    let fix = match &f.source {
        FileSource::Artifact(a) => format!("delete {} and run `shiftbench fetch {a}` to extract it again", root.display()),
        FileSource::Folder(p) => format!("complete the folder {} or correct the domain's `expect`", p.display()),
    };
    // The lock's `expect` counts the class folders under its own root: it applies when the
    // domain reads that folder.
    let same_root = f.root.is_none() || f.root.as_deref() == lock_expect.as_ref().and_then(|e| e.root.as_deref());
    let checks = f.expect.iter().chain(lock_expect.iter().filter(|_| class_folders && same_root));
    let set = FileImageSet::open(&spec, &vocab, f.preprocess.clone()).with_context(|| format!("domain `{name}` ({}, layout {})", root.display(), f.layout.name()))?;
    for e in checks {
        crate::data::imageset::check_counts(set.labels(), e).with_context(|| format!("domain `{name}` ({}): {fix}", root.display()))?;
    }
    Ok(set)
}

/// A job's training images (`train_images` of them when concatenated), and the index where its
/// generated images start when they are mixed per batch (real sets first, then generated ones).
pub fn training_set(job: &Job, datasets: &Datasets, train_images: usize) -> Result<(ImageSet, usize)> {
    // The validator keeps file-backed domains out of `train_on`; they are never in memory.
    let memory = |s: &str| match &datasets[s].images {
        Images::Memory(m) => Ok(m),
        Images::Files(_) => Err(anyhow::anyhow!("`{s}` is a file-backed set; training reads in-memory sets only")),
    };
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
        let parts: Vec<&ImageSet> = job.train_sets.iter().map(|s| memory(s)).collect::<Result<_>>()?;
        let all = ImageSet::concat(&parts);
        let all = if job.train_fraction < 1.0 { all.truncated(train_images) } else { all };
        let n = all.len();
        return Ok((all, n));
    }
    let part = |generated: bool| -> Result<ImageSet> {
        let sets: Vec<&ImageSet> = job.train_sets.iter().filter(|s| datasets[s.as_str()].generated == generated).map(|s| memory(s)).collect::<Result<_>>()?;
        Ok(fraction(ImageSet::concat(&sets)))
    };
    let (real, generated) = (part(false)?, part(true)?);
    let start = real.len();
    Ok((ImageSet::concat(&[&real, &generated]), start))
}
