//! Prepare: the images a plan trains and evaluates on. Procedural domains are rendered into
//! memory; generated sets are generated (or resumed) into their keyed folders under `work/`;
//! file-backed domains are listed, labelled and counted (their images are decoded only when
//! evaluated); a job's training set is assembled from the in-memory sets.

use crate::data::procedural::render_domain;
use crate::data::imageset::{FileImageSet, Layout, SetSpec};
use crate::data::{ImageSet, ImageSource};
use crate::data::image::Preprocess;
use crate::eval::{Scoring, ScoringRule};
use crate::generate::{PreparedGenerators, ProceduralGenerator, SetOptions, SuiteGenerator};
use crate::suite::GeneratorBackend;
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

/// A labelled image set with the key of everything that determines its bytes, and the rule its
/// predictions are scored by (labels are in that rule's label space).
pub struct Dataset {
    pub images: Images,
    pub key: serde_json::Value,
    pub scoring: Scoring,
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
pub fn generated_set_source<'a>(config: &SuiteConfig, g: &GeneratedSetPlan, prepared: &'a PreparedGenerators, work: &Path) -> Result<GeneratedSetSource<'a>> {
    let c = config.generator(&g.generator).with_context(|| format!("generated set `{}` names no generator of the suite", g.name))?;
    anyhow::ensure!(
        !matches!(c.backend, GeneratorBackend::Diffusion(_)) || prepared.diffusion.contains_key(&g.generator),
        "generated set `{}` comes from `{}`, a diffusion model that `shiftbench run` trains before generating; run the suite to make this set",
        g.name,
        g.generator
    );
    let procedural = ProceduralGenerator::new(c.templates, c.conditioning.clone(), g.source.clone()).with_context(|| format!("generated set `{}`", g.name))?;
    let generator = SuiteGenerator::new(&g.generator, procedural, prepared);
    let key = crate::keys::generated_set(g, generator.key());
    let dir = crate::keys::generated_set_dir(work, &g.name, &key);
    Ok(GeneratedSetSource { generator, key, dir })
}

/// Renders the plan's domains, generates (or resumes) its generated sets and opens its
/// file-backed domains (artifacts from the fetch cache, named in `lock`). Sets of diffusion
/// generators come last: those models learn from the other sets, and are trained (or loaded)
/// into `generators` in between.
pub fn datasets(config: &SuiteConfig, plan: &Plan, generators: &mut PreparedGenerators, work: &Path, lock: &Path, multi: &MultiProgress) -> Result<Datasets> {
    let mut datasets = Datasets::new();
    for d in &plan.domains {
        let pb = multi.add(crate::progress::bar(d.count as u64, &d.name));
        let images = render_domain(plan.seed, &d.name, d.style, &plan.classes, d.count, plan.image_size, &pb);
        pb.finish_and_clear();
        let key = crate::keys::procedural_domain(&d.name, d.style, d.count, plan.image_size, plan.seed, &plan.classes);
        datasets.insert(d.name.clone(), Dataset { images: Images::Memory(images), key, scoring: Scoring::full(plan.num_classes), generated: false });
    }
    for d in &config.domains {
        let DomainData::Files(f) = &d.data else { continue };
        datasets.insert(d.name.clone(), open_scored_domain(config, &d.name, f, lock, None)?);
    }
    let by_diffusion = |g: &GeneratedSetPlan| config.generator(&g.generator).is_some_and(|c| matches!(c.backend, GeneratorBackend::Diffusion(_)));
    for g in plan.generated.iter().filter(|g| !by_diffusion(g)) {
        generate_into(config, plan, g, generators, work, multi, &mut datasets)?;
    }
    if plan.generated.iter().any(by_diffusion) {
        generators.diffusion = crate::generate::diffusion::prepare(config, plan, &|name| datasets.get(name).and_then(|d| match &d.images {
            Images::Memory(set) => Some((set, &d.key)),
            Images::Files(_) => None,
        }), work, multi)?;
    }
    for g in plan.generated.iter().filter(|g| by_diffusion(g)) {
        generate_into(config, plan, g, generators, work, multi, &mut datasets)?;
    }
    Ok(datasets)
}

/// Generates (or resumes) set `g` and adds it to `datasets`.
fn generate_into(config: &SuiteConfig, plan: &Plan, g: &GeneratedSetPlan, generators: &PreparedGenerators, work: &Path, multi: &MultiProgress, datasets: &mut Datasets) -> Result<()> {
    let GeneratedSetSource { generator, key, dir } = generated_set_source(config, g, generators, work)?;
    let pb = multi.add(crate::progress::bar(g.count as u64, &g.name));
    let (images, _manifest, stats) = g.generate(generator.as_dyn(), &dir, &pb, &SetOptions::default())?;
    pb.finish_and_clear();
    crate::progress::say(format!("{}: {} images generated, {} reused from {}", g.name, stats.rendered, stats.reused, dir.display()));
    datasets.insert(g.name.clone(), Dataset { images: Images::Memory(images), key, scoring: Scoring::full(plan.num_classes), generated: true });
    Ok(())
}

/// A file-backed domain ready to evaluate: opened ([`open_file_domain`]), its scoring rule made
/// concrete, its images relabelled into the rule's label space (the ID-axis rules keep only
/// images of their classes), read with `preprocess` when given (a compared classifier's own
/// transform; the rule's border crop is kept) and keyed by all of that.
pub fn open_scored_domain(config: &SuiteConfig, name: &str, f: &FileDomain, lock: &Path, preprocess: Option<&Preprocess>) -> Result<Dataset> {
    let set = open_file_domain(config, name, f, lock)?;
    let objectnet = match (&f.objectnet_from, set.objectnet_classes()) {
        (_, Some(own)) => Some(own.clone()),
        (Some(other), None) => Some(objectnet_classes_of(config, other, lock).with_context(|| format!("domain `{name}`: reading ObjectNet's mappings from domain `{other}`"))?),
        (None, None) => None,
    };
    let scoring = Scoring::for_rule(f.scoring, &config.vocabulary, objectnet.as_ref()).with_context(|| format!("domain `{name}`"))?;
    let labels = scoring.relabel(set.labels()).with_context(|| format!("domain `{name}`"))?;
    let listed = set.len();
    let mut set = set.relabeled(&labels).with_context(|| format!("domain `{name}`"))?;
    if let Some(p) = preprocess {
        let mut p = p.clone();
        p.border = f.scoring.border().max(p.border);
        set = set.with_preprocess(p);
    }
    let kept = if set.len() < listed { format!(", {} of {listed} kept by protocol {}", set.len(), f.scoring.name()) } else { String::new() };
    crate::progress::say(format!("{name}: {} images ({}, {}{kept})", set.len(), f.layout.name(), set.preprocess().name));
    let mut key = crate::keys::file_domain(name, f.layout, &set.preprocess().name, config.image_size, set.fingerprint());
    // Keys of full-scored sets stay as they were; a rule (and its border) changes what is counted.
    if f.scoring != ScoringRule::Full || set.preprocess().border > 0 {
        key["scoring"] = serde_json::json!({"rule": f.scoring.name(), "border": set.preprocess().border});
    }
    Ok(Dataset { images: Images::Files(set), key, scoring, generated: false })
}

/// ObjectNet's class list from the mapping files of the suite's ObjectNet domain `name`.
fn objectnet_classes_of(config: &SuiteConfig, name: &str, lock: &Path) -> Result<crate::data::imageset::ObjectnetClasses> {
    let Some(DomainData::Files(f)) = config.domain(name).map(|d| &d.data) else {
        anyhow::bail!("`{name}` is not a file-backed domain of the suite");
    };
    let (root, _) = domain_root(name, f, lock)?;
    let read = |file: &str| std::fs::read_to_string(root.join(file)).with_context(|| format!("cannot read {}; is the ObjectNet archive extracted completely?", root.join(file).display()));
    let texts: Vec<String> = crate::data::imageset::objectnet::MAPPING_FILES.iter().map(|f| read(f)).collect::<Result<_>>()?;
    crate::data::imageset::objectnet::parse_mappings(&texts[0], &texts[1], &texts[2], &texts[3])
}

/// The folder a file-backed domain's layout is in, and the lock entry of its artifact.
fn domain_root(name: &str, f: &FileDomain, lock: &Path) -> Result<(PathBuf, Option<crate::fetch::lock::Artifact>)> {
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
    Ok((root, artifact))
}

/// Opens a file-backed domain: finds its folder (an artifact's extraction in the fetch cache,
/// never downloaded here, or a local folder), labels it with the suite's classes and checks its
/// counts against the domain's `expect` and, for class-folder layouts, the artifact's.
pub fn open_file_domain(config: &SuiteConfig, name: &str, f: &FileDomain, lock: &Path) -> Result<FileImageSet> {
    let (root, artifact) = domain_root(name, f, lock)?;
    let lock_expect = artifact.as_ref().and_then(|a| a.expect.clone());
    let class_folders = matches!(f.layout, Layout::WnidFolders | Layout::ClassIndexFolders);
    let vocab = &config.vocabulary;
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
    if let Some(subset) = match f.scoring {
        ScoringRule::ImagenetR => Some(crate::data::imageset::ClassSubset::ImagenetR),
        ScoringRule::ImagenetA => Some(crate::data::imageset::ClassSubset::ImagenetA),
        _ => None,
    } {
        // ImageNet-R and -A have folders for their 200 classes only.
        spec.required = Some(subset.labels(vocab)?);
    }
    let set = FileImageSet::open(&spec, vocab, f.preprocess.clone()).with_context(|| format!("domain `{name}` ({}, layout {})", root.display(), f.layout.name()))?;
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
