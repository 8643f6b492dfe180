//! Generators and generated sets.
//!
//! The paper prompts Stable Diffusion with one of CLIP's 80 ImageNet templates per image and
//! trains on the result. `procedural` is the offline stand-in: it reads the prompt text (not the
//! template id) with [`parse_prompt`] and paints the prompted class of the `shapes` world in the
//! look the words ask for. Images are a pure function of (class, prompt, image seed, size); a
//! generated set is a folder of PNGs plus a CSV manifest that records, per image, the prompt,
//! seed, generator id and PNG hash, so a set can be verified, resumed and regenerated.
//!
//! # Why the generator is not the test domains in disguise
//!
//! The generator reuses the object geometry and rasteriser primitives of `data::procedural` but
//! none of the domain painters or their parameter ranges. If it did, training on "generated
//! sketches" would be training on the sketch test set. How each generated look differs from the
//! shift domains:
//!
//! - **Photo (plain prompts)** — a studio shot: centred and large (little offset, almost no
//!   tilt), smooth sweep / bokeh / clean-sky backdrops, over-saturated colours, a glossy
//!   highlight and a feathered contact shadow, no sensor noise and a softened finish. The photo
//!   and v2 domains instead use off-centre, tilted objects with textured materials and
//!   directional shading on cluttered, noisy, white-balance-shifted backgrounds. This gap is the
//!   generator's signature, so a classifier trained on real photos loses accuracy on generated
//!   evaluation sets (the paper's RQ5).
//! - **Line art** (sketch, drawing, doodle) — single-pass, uniform-width, exact ink lines:
//!   sketches add 45° hatching on the shadow side on tinted paper; drawings are black/brown ink
//!   over a pale colour wash on white; doodles are thick wobbling ballpoint/marker lines on ruled
//!   notebook paper. The sketch domain is jittered, overshooting, multi-pass grey pencil with no
//!   fill or hatching on grainy paper.
//! - **Renditions** — painting/art rebuilds the picture from oriented impressionist dabs (the
//!   domain paints anisotropic brush-streak noise); cartoon is cel shading with a hard
//!   terminator and outlines in a darker shade of each part (the domain uses flat fills with black
//!   outlines, pop-art halftones or ink wash); rendering is bulge-shaded CG with a specular spot
//!   and a floor reflection; origami turns parts into shaded triangular facets with creases;
//!   toy is chunky primary plastic, plastic is translucent pastel; plushie is soft, fuzzy and
//!   stitched; video game is half-resolution pixel art with a quantised palette on a platformer
//!   sky; tattoo is blue-black contours and old-school inks on skin; embroidery is satin
//!   stitches and running stitches on linen; graffiti is sprayed neon with halos and drips on
//!   bricks; sculpture is monochrome marble, bronze or stone on a pedestal. None of these
//!   palettes, textures or backgrounds appear in the rendition domain.
//! - **Photo degradations** (blurry, pixelated, jpeg corrupted, dark, bright, black and white,
//!   low resolution, hard to see, bad) are whole-image operations on the studio photo; cropped
//!   and close-up change the framing; small/large/many change scale and count; clean/dirty and
//!   weird change saturation, add grime, or shift hues and proportions. The objectnet domain's
//!   large rotations, viewpoint shears, occluders and household backgrounds are never produced.

//!
//! # Conditioning (RQ2)
//!
//! [`Conditioning`] says what an image starts from. Text reads the prompt alone. Image and
//! text + image start from a real image of a procedural domain, taking from the world's own
//! parameters for it ([`crate::data::procedural::domain_scene`]) the object (class, parts,
//! proportions) and the pose its domain painter chose — never the domain's palette jitter,
//! background, lighting or noise, which the generator draws from its own sampler as always. Image
//! conditioning paints that object as a plain generated photo and reads no prompt (image
//! variations); text + image paints it in the prompt's look and blends `1 − strength` of the real
//! image's pixels back (img2img), so strength 1 keeps only the source's geometry.

pub mod diffusion;
pub mod manifest;
pub mod procedural;
pub mod sd;
pub mod prompt;
pub mod templates;

pub use manifest::ManifestRow;
pub use prompt::{parse_prompt, PromptStyle};
pub use templates::{CLIP_IMAGENET_TEMPLATES, PHOTO_OF_TEMPLATE};

use crate::data::procedural::{objects, validate, DomainStyle, CLASS_NAMES};
use crate::data::{ImageSet, RgbImage};
use crate::fsutil::{sha256_hex, write_atomic};
use crate::rng::{derive_seed, Stream};
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// Which prompt templates a generated set draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateSet {
    /// One of the 80 CLIP ImageNet templates, drawn uniformly per image (the paper's setting).
    // kebab-case alone would spell this "clip-imagenet80" (no break before digits).
    #[serde(rename = "clip-imagenet-80")]
    ClipImagenet80,
    /// Always "a photo of a {}." (the paper's no-diversity ablation).
    PhotoOf,
}

impl TemplateSet {
    /// The suite spelling (same as serde's).
    pub fn name(&self) -> &'static str {
        match self {
            TemplateSet::ClipImagenet80 => "clip-imagenet-80",
            TemplateSet::PhotoOf => "photo-of",
        }
    }

    /// (template id — index in CLIP_IMAGENET_TEMPLATES, or 0 for photo-of — and the prompt text)
    /// for image `index` of generated set `set`; seeded via Stream. Every generator shares it.
    pub fn prompt_for(&self, seed: u64, set: &str, index: u64, class_name: &str) -> (usize, String) {
        match self {
            TemplateSet::ClipImagenet80 => {
                let mut rng = Stream::new(seed, &format!("generate/{set}/template"), index);
                let id = rng.below(CLIP_IMAGENET_TEMPLATES.len() as u64) as usize;
                (id, templates::fill(CLIP_IMAGENET_TEMPLATES[id], class_name))
            }
            TemplateSet::PhotoOf => (0, templates::fill(PHOTO_OF_TEMPLATE, class_name)),
        }
    }
}

/// What a generated image is conditioned on (the paper's RQ2). A suite's `conditioning` key.
#[derive(Clone, Debug, PartialEq)]
pub enum Conditioning {
    /// The label prompt alone (`templates` decides which prompts): text-to-image.
    Text,
    /// A real image alone, the analogue of Stable Diffusion image variations: generated image
    /// *i* keeps the class, object and pose of image *i* of the `source` domain and is painted
    /// by the generator's own photo renderer; no prompt is read.
    Image { source: String },
    /// The label prompt applied to a real image, the analogue of img2img: `strength` in (0, 1]
    /// is how much of the picture the prompt repaints (1 = none of the source's pixels survive).
    TextImage { source: String, strength: f64 },
}

impl Conditioning {
    /// The suite spelling.
    pub fn name(&self) -> &'static str {
        match self {
            Conditioning::Text => "text",
            Conditioning::Image { .. } => "image",
            Conditioning::TextImage { .. } => "text+image",
        }
    }

    /// The real domain the images are made from (None for text).
    pub fn source(&self) -> Option<&str> {
        match self {
            Conditioning::Text => None,
            Conditioning::Image { source } | Conditioning::TextImage { source, .. } => Some(source),
        }
    }

    pub fn strength(&self) -> Option<f64> {
        match self {
            Conditioning::TextImage { strength, .. } => Some(*strength),
            _ => None,
        }
    }
}

/// The real images a conditioned procedural generator starts from: a procedural domain, as
/// planned (its size under the run's profile).
#[derive(Clone, Debug, PartialEq)]
pub struct RealSource {
    pub domain: String,
    pub style: DomainStyle,
    /// Images in the domain under the run's profile.
    pub count: usize,
    /// The suite seed in force (the domain's images are drawn from it).
    pub seed: u64,
}

impl RealSource {
    /// The source image of generated image `index`: the same index, wrapped to the largest
    /// whole number of class rounds in the domain, so a set larger than its source re-uses the
    /// source's images (several variations of each, never an image outside the domain) and
    /// image `index` keeps its label `index % classes`.
    pub fn index_for(&self, index: u64, classes: usize) -> u64 {
        let rounds = (self.count - self.count % classes.max(1)).max(1) as u64;
        index % rounds
    }
}

/// What every generator offers [`generate_set_with`]: an id for the manifest, its prompt templates, the
/// extra manifest columns it records, and a way to render a batch of planned rows.
pub trait Generator: Sync {
    /// The manifest's `generator` column.
    fn id(&self) -> String;
    fn templates(&self) -> TemplateSet;
    /// (template id, prompt text) of image `index`: the templates' draw unless the generator
    /// reads no prompt.
    fn prompt_for(&self, seed: u64, set: &str, index: u64, class_name: &str) -> (usize, String) {
        self.templates().prompt_for(seed, set, index, class_name)
    }
    /// The conditioning columns of image `index` (None: text-to-image, no such columns).
    fn conditioning_columns(&self, _index: u64, _classes: usize) -> Option<manifest::ConditioningColumns> {
        None
    }
    /// Extra manifest columns for image `index` (None: the eight base columns only).
    fn diffusion_columns(&self, index: u64) -> Result<Option<manifest::DiffusionColumns>>;
    /// How many images `render` is given at once.
    fn batch_size(&self) -> usize;
    /// Renders one image per planned row, at `size` pixels, in row order.
    fn render(&self, plans: &[&ManifestRow], classes: &[usize], size: u32) -> Result<Vec<RgbImage>>;
}

impl Generator for ProceduralGenerator {
    fn id(&self) -> String {
        ProceduralGenerator::id(self)
    }
    fn templates(&self) -> TemplateSet {
        self.templates
    }
    fn diffusion_columns(&self, _index: u64) -> Result<Option<manifest::DiffusionColumns>> {
        Ok(None)
    }
    fn batch_size(&self) -> usize {
        CHECKPOINT_EVERY
    }
    fn prompt_for(&self, seed: u64, set: &str, index: u64, class_name: &str) -> (usize, String) {
        ProceduralGenerator::prompt_for(self, seed, set, index, class_name)
    }
    fn conditioning_columns(&self, index: u64, classes: usize) -> Option<manifest::ConditioningColumns> {
        let source = self.source.as_ref()?;
        Some(manifest::ConditioningColumns {
            conditioning: self.conditioning.name().to_string(),
            strength: self.conditioning.strength(),
            source_image: format!("domain/{}/{}", source.domain, source.index_for(index, classes)),
        })
    }
    fn render(&self, plans: &[&ManifestRow], classes: &[usize], size: u32) -> Result<Vec<RgbImage>> {
        plans
            .par_iter()
            .map(|p| match &self.source {
                None => Ok(ProceduralGenerator::render(self, classes[p.label as usize], &p.prompt, p.seed, size)),
                Some(source) => {
                    let index = source.index_for(image_index(&p.path), classes.len());
                    let scene = crate::data::procedural::domain_scene(source.seed, &source.domain, source.style, classes, index, size);
                    anyhow::ensure!(scene.label == p.label, "{}: source image {index} of `{}` has label {}, not {}", p.path, source.domain, scene.label, p.label);
                    Ok(self.render_from(&scene, &p.prompt, p.seed, size))
                }
            })
            .collect()
    }
}

/// A suite's generator, ready to render: the built-in one (with its real source, if conditioned
/// on images), a Stable Diffusion generator whose weights were located (and hashed) beforehand,
/// or a diffusion model the run trained.
pub enum SuiteGenerator<'a> {
    Procedural(ProceduralGenerator),
    StableDiffusion(&'a sd::SdGenerator),
    Diffusion(&'a diffusion::DiffusionGenerator),
}

/// The generators of a suite that had to be prepared before any image: Stable Diffusion's
/// located weights ([`sd::prepare`]) and the trained diffusion models ([`diffusion::prepare`]).
#[derive(Default)]
pub struct PreparedGenerators {
    pub sd: std::collections::BTreeMap<String, sd::SdGenerator>,
    pub diffusion: std::collections::BTreeMap<String, diffusion::DiffusionGenerator>,
}

impl<'a> SuiteGenerator<'a> {
    /// The generator named `name` among the `prepared` ones; `procedural` is what it is when it
    /// is none of them.
    pub fn new(name: &str, procedural: ProceduralGenerator, prepared: &'a PreparedGenerators) -> Self {
        match (prepared.sd.get(name), prepared.diffusion.get(name)) {
            (Some(g), _) => SuiteGenerator::StableDiffusion(g),
            (None, Some(g)) => SuiteGenerator::Diffusion(g),
            (None, None) => SuiteGenerator::Procedural(procedural),
        }
    }

    pub fn as_dyn(&self) -> &dyn Generator {
        match self {
            SuiteGenerator::Procedural(g) => g,
            SuiteGenerator::StableDiffusion(g) => *g,
            SuiteGenerator::Diffusion(g) => *g,
        }
    }

    /// What identifies the generator in cache keys (the procedural id alone, as before Stable
    /// Diffusion existed, so old procedural sets keep their folders; a conditioned one adds its
    /// source domain's key and strength).
    pub fn key(&self) -> serde_json::Value {
        match self {
            SuiteGenerator::Procedural(g) => g.key(),
            SuiteGenerator::StableDiffusion(g) => g.key(),
            SuiteGenerator::Diffusion(g) => serde_json::json!({"generator": g.id(), "weights": crate::keys::hash(&g.key), "sample_steps": g.config.sample_steps}),
        }
    }
}

/// Version tag of the procedural painter; bump it whenever its output changes so manifests and
/// caches keyed by the generator id are invalidated.
const PROCEDURAL_VERSION: &str = "procedural-v1";

/// The built-in, offline stand-in for Stable Diffusion: text-to-image, image variations and
/// img2img ([`Conditioning`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ProceduralGenerator {
    pub templates: TemplateSet,
    pub conditioning: Conditioning,
    /// The real images of an image-conditioned generator (None exactly when `conditioning` is text).
    pub source: Option<RealSource>,
}

impl ProceduralGenerator {
    /// The text-to-image generator with `templates`.
    pub const fn text(templates: TemplateSet) -> Self {
        Self { templates, conditioning: Conditioning::Text, source: None }
    }

    /// A generator conditioned as `conditioning` says, its source being the planned domain
    /// `source` (ignored for text conditioning). Errors when a conditioned one has no source.
    pub fn new(templates: TemplateSet, conditioning: Conditioning, source: Option<RealSource>) -> Result<Self> {
        match (conditioning.source(), source) {
            (None, _) => Ok(Self::text(templates)),
            (Some(name), Some(s)) if s.domain == name => Ok(Self { templates, conditioning, source: Some(s) }),
            (Some(name), _) => anyhow::bail!("the image-conditioned generator's source `{name}` is not a procedural domain of the plan"),
        }
    }

    /// e.g. "procedural-v1/clip-imagenet-80", "procedural-v1/image",
    /// "procedural-v1/photo-of/text+image"
    pub fn id(&self) -> String {
        match self.conditioning {
            Conditioning::Text => format!("{PROCEDURAL_VERSION}/{}", self.templates.name()),
            // No prompt is read, so the templates do not make another generator.
            Conditioning::Image { .. } => format!("{PROCEDURAL_VERSION}/image"),
            Conditioning::TextImage { .. } => format!("{PROCEDURAL_VERSION}/{}/text+image", self.templates.name()),
        }
    }

    /// The cache key: the id alone for text (the key every text set had before conditioning
    /// existed); with the source domain's key and the strength otherwise.
    pub fn key(&self) -> serde_json::Value {
        match &self.source {
            None => serde_json::json!(self.id()),
            Some(s) => serde_json::json!({
                "generator": self.id(),
                "source": {"domain": s.domain, "style": s.style, "count": s.count, "seed": s.seed},
                "strength": self.conditioning.strength(),
            }),
        }
    }

    /// (template id — index in CLIP_IMAGENET_TEMPLATES, or 0 for photo-of — and the prompt text)
    /// for image `index` of generated set `set`; seeded via Stream. Image conditioning reads no
    /// prompt: (0, "").
    pub fn prompt_for(&self, seed: u64, set: &str, index: u64, class_name: &str) -> (usize, String) {
        match self.conditioning {
            Conditioning::Image { .. } => (0, String::new()),
            _ => self.templates.prompt_for(seed, set, index, class_name),
        }
    }

    /// One image from a real image's scene. Image conditioning paints the source's object in
    /// its pose as a plain generated photo (the generator's backdrop, colours, gloss and finish;
    /// none of the source's background, lighting or noise). Text + image paints it the way
    /// `prompt` asks, then keeps `1 - strength` of the source's pixels: the blend a diffusion
    /// model's partial re-noising amounts to at the level of the picture.
    pub fn render_from(&self, source: &crate::data::procedural::DomainScene, prompt: &str, image_seed: u64, size: u32) -> RgbImage {
        let class = source.object.class;
        let style = match self.conditioning {
            Conditioning::Image { .. } => PromptStyle::default(),
            _ => prompt::parse_prompt_for_class(prompt, CLASS_NAMES[class]),
        };
        let mut rng = Stream::new(image_seed, PROCEDURAL_VERSION, 0);
        let painted = procedural::paint_from(source.object.clone(), source.pose, &style, &mut rng, size).to_image();
        match self.conditioning.strength() {
            Some(strength) if strength < 1.0 && source.image.width == painted.width && source.image.height == painted.height => {
                let keep = 1.0 - strength as f32;
                let pixels = painted.pixels.iter().zip(&source.image.pixels).map(|(&p, &s)| (p as f32 * strength as f32 + s as f32 * keep).round().clamp(0.0, 255.0) as u8).collect();
                RgbImage { pixels, ..painted }
            }
            _ => painted,
        }
    }

    /// One image for `class` (index into CLASS_NAMES) from `prompt` with `image_seed`; pure function.
    ///
    /// Panics if `class` is not an index into `CLASS_NAMES`.
    pub fn render(&self, class: usize, prompt: &str, image_seed: u64, size: u32) -> RgbImage {
        assert!(class < CLASS_NAMES.len(), "class index {class} is outside the {} procedural classes", CLASS_NAMES.len());
        let style = prompt::parse_prompt_for_class(prompt, CLASS_NAMES[class]);
        let mut rng = Stream::new(image_seed, PROCEDURAL_VERSION, 0);
        let object = objects::sample(class, &mut rng);
        procedural::paint(object, &style, &mut rng, size).to_image()
    }
}

/// How much of a [`generate_set_with`] call was rendered and how much reused from disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateStats {
    pub rendered: usize,
    pub reused: usize,
}

/// Images rendered between manifest checkpoints: a killed run loses at most this many renders.
const CHECKPOINT_EVERY: usize = 512;

/// One slice of a generated set: image `index` belongs to shard `index % count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` (0 <= I < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || anyhow::anyhow!("--shard `{text}` must be I/N with 0 <= I < N, e.g. 0/4 (Slurm: $SLURM_ARRAY_TASK_ID/N, Kubernetes: $JOB_COMPLETION_INDEX/N)");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, image: u64) -> bool {
        image % self.count as u64 == self.index as u64
    }
}

/// Options of [`generate_set_with`].
#[derive(Clone, Copy, Debug)]
pub struct SetOptions {
    pub shard: Shard,
    /// Stop after rendering this many new images (the manifest keeps everything finished): a
    /// deterministic stand-in for a killed run in tests, and a way to cap a session's work.
    pub max_new: Option<usize>,
    /// Images checkpointed to the manifest at once.
    pub checkpoint_every: usize,
}

impl Default for SetOptions {
    fn default() -> Self {
        Self { shard: Shard::WHOLE, max_new: None, checkpoint_every: CHECKPOINT_EVERY }
    }
}

/// Generates (or resumes) the generated set `set` in `dir`: images at
/// `dir/images/<class_name>/<index:06>.png`, manifest at `dir/manifest.csv`, both written
/// atomically. Label = index % classes.len() (position in `classes`, which are indices into
/// CLASS_NAMES); per-image seed = rng::derive_seed(seed, &format!("generate/{set}"), index).
/// An image listed in the manifest whose file exists and whose sha256 matches is decoded and
/// reused; anything else is (re)generated. Only the images of `opts.shard` are considered.
/// Returns the images (index order), the manifest rows, and how many images were rendered and
/// how many reused.
#[allow(clippy::too_many_arguments)]
pub fn generate_set_with(
    gen: &dyn Generator,
    seed: u64,
    set: &str,
    classes: &[usize],
    count: usize,
    size: u32,
    dir: &Path,
    progress: &indicatif::ProgressBar,
    opts: &SetOptions,
) -> Result<(ImageSet, Vec<ManifestRow>, GenerateStats)> {
    validate(classes, size).with_context(|| format!("cannot generate set '{set}'"))?;
    let manifest_path = dir.join(manifest::MANIFEST_FILE);
    let previous = previous_rows(&manifest_path);
    let plans: Vec<ManifestRow> = (0..count as u64)
        .filter(|&i| opts.shard.contains(i))
        .map(|i| plan_row(gen, seed, set, classes, i))
        .collect::<Result<_>>()?;
    let mut images = ImageSet::with_size(size);
    let mut rows: Vec<ManifestRow> = Vec::with_capacity(plans.len());
    let mut stats = GenerateStats::default();
    for chunk in plans.chunks(opts.checkpoint_every.max(1)) {
        let reused: Vec<Option<(RgbImage, ManifestRow)>> = chunk.par_iter().map(|plan| reuse(plan, previous.get(&plan.path), dir, size)).collect();
        let todo: Vec<&ManifestRow> = chunk.iter().zip(&reused).filter(|(_, r)| r.is_none()).map(|(p, _)| p).collect();
        progress.inc((chunk.len() - todo.len()) as u64);
        let budget = opts.max_new.map(|m| m.saturating_sub(stats.rendered)).unwrap_or(usize::MAX);
        let todo = &todo[..todo.len().min(budget)];
        let mut fresh: HashMap<String, (RgbImage, ManifestRow)> = HashMap::new();
        for batch in todo.chunks(gen.batch_size().max(1)) {
            let rendered = gen.render(batch, classes, size)?;
            anyhow::ensure!(rendered.len() == batch.len(), "generator {} returned {} images for {} requests", gen.id(), rendered.len(), batch.len());
            let written: Vec<Result<(RgbImage, ManifestRow)>> = batch.par_iter().zip(rendered).map(|(plan, image)| store(plan, image, dir)).collect();
            for w in written {
                let (image, row) = w?;
                fresh.insert(row.path.clone(), (image, row));
            }
            progress.inc(batch.len() as u64);
        }
        let mut stopped = false;
        for (plan, old) in chunk.iter().zip(reused) {
            let (image, row, was_reused) = match (old, fresh.remove(&plan.path)) {
                (Some((image, row)), _) => (image, row, true),
                (None, Some((image, row))) => (image, row, false),
                (None, None) => {
                    stopped = true;
                    continue;
                }
            };
            images.push(row.label, &image);
            rows.push(row);
            if was_reused {
                stats.reused += 1;
            } else {
                stats.rendered += 1;
            }
        }
        // Checkpoint: finished rows plus the old rows not yet re-checked, so an interrupted
        // run keeps everything it could still reuse.
        let done: std::collections::HashSet<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        let pending = plans.iter().filter(|p| !done.contains(p.path.as_str())).filter_map(|p| previous.get(&p.path).filter(|old| same_request(old, p)).cloned());
        let mut checkpoint: Vec<ManifestRow> = rows.iter().cloned().chain(pending).collect();
        checkpoint.sort_by_key(|r| image_index(&r.path));
        write_atomic(&manifest_path, &manifest::to_csv(&checkpoint)?)?;
        if stopped {
            break;
        }
    }
    if plans.is_empty() {
        write_atomic(&manifest_path, &manifest::to_csv(&rows)?)?;
    }
    Ok((images, rows, stats))
}

/// The image index encoded in a manifest path (`images/<class>/<index>.png`).
pub fn image_index(path: &str) -> u64 {
    Path::new(path).file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX)
}

/// Joins shard folders (each with its manifest and images) into `out`, verifying every image
/// against its shard manifest. The result equals an unsharded run's folder.
pub fn merge_shards(out: &Path, shard_dirs: &[std::path::PathBuf]) -> Result<Vec<ManifestRow>> {
    anyhow::ensure!(!shard_dirs.is_empty(), "name at least one shard folder to merge");
    let mut rows: Vec<ManifestRow> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for dir in shard_dirs {
        let manifest_path = dir.join(manifest::MANIFEST_FILE);
        let shard_rows = manifest::read(&manifest_path).with_context(|| format!("shard folder {} has no readable manifest; run its `shiftbench generate --shard` first", dir.display()))?;
        for row in shard_rows {
            let bytes = std::fs::read(dir.join(&row.path)).with_context(|| format!("{} lists {} but the file is missing; re-run that shard", manifest_path.display(), row.path))?;
            anyhow::ensure!(sha256_hex(&bytes) == row.sha256, "{} in {} does not match its manifest hash; re-run that shard", row.path, dir.display());
            if let Some(&i) = seen.get(&row.path) {
                anyhow::ensure!(rows[i] == row, "{} appears in two shards with different contents; were the shards made from the same suite and seed?", row.path);
                continue;
            }
            let target = out.join(&row.path);
            if std::fs::read(&target).map(|b| b != bytes).unwrap_or(true) {
                write_atomic(&target, &bytes)?;
            }
            seen.insert(row.path.clone(), rows.len());
            rows.push(row);
        }
    }
    rows.sort_by_key(|r| image_index(&r.path));
    write_atomic(&out.join(manifest::MANIFEST_FILE), &manifest::to_csv(&rows)?)?;
    Ok(rows)
}

/// Rows of an existing manifest by path; a missing or unreadable manifest means nothing to reuse.
fn previous_rows(path: &Path) -> HashMap<String, ManifestRow> {
    if !path.exists() {
        return HashMap::new();
    }
    manifest::read(path).map(|rows| rows.into_iter().map(|r| (r.path.clone(), r)).collect()).unwrap_or_default()
}

/// The manifest row image `index` will have, minus its hash.
fn plan_row(gen: &dyn Generator, seed: u64, set: &str, classes: &[usize], index: u64) -> Result<ManifestRow> {
    let label = (index % classes.len() as u64) as u32;
    let class_name = CLASS_NAMES[classes[label as usize]].to_string();
    let (template_id, prompt) = gen.prompt_for(seed, set, index, &class_name);
    Ok(ManifestRow {
        path: format!("images/{class_name}/{index:06}.png"),
        label,
        class_name,
        prompt,
        template_id,
        seed: derive_seed(seed, &format!("generate/{set}"), index),
        generator: gen.id(),
        sha256: String::new(),
        diffusion: gen.diffusion_columns(index)?,
        conditioning: gen.conditioning_columns(index, classes.len()),
    })
}

/// Whether an old row describes the same image request as a plan (everything but the hash).
fn same_request(old: &ManifestRow, plan: &ManifestRow) -> bool {
    ManifestRow { sha256: String::new(), ..old.clone() } == *plan
}

/// The image on disk when the old row vouches for it.
fn reuse(plan: &ManifestRow, old: Option<&ManifestRow>, dir: &Path, size: u32) -> Option<(RgbImage, ManifestRow)> {
    let old = old.filter(|o| same_request(o, plan))?;
    let image = verified_image(&dir.join(&plan.path), &old.sha256, size)?;
    Some((image, old.clone()))
}

/// Writes a rendered image and returns its finished row.
fn store(plan: &ManifestRow, image: RgbImage, dir: &Path) -> Result<(RgbImage, ManifestRow)> {
    let file = dir.join(&plan.path);
    let png = image.to_png();
    write_atomic(&file, &png).with_context(|| format!("cannot write generated image {}", file.display()))?;
    Ok((image, ManifestRow { sha256: sha256_hex(&png), ..plan.clone() }))
}

/// The decoded image if the file exists, hashes to `sha256` and has the expected size.
fn verified_image(file: &Path, sha256: &str, size: u32) -> Option<RgbImage> {
    let bytes = std::fs::read(file).ok()?;
    if sha256_hex(&bytes) != sha256 {
        return None;
    }
    RgbImage::from_png(&bytes, file).ok().filter(|img| img.width == size && img.height == size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::procedural::{contact_sheet, render_domain_image, DomainStyle};

    /// The procedural generator over a whole set with default options.
    #[allow(clippy::too_many_arguments)]
    fn generate_set(gen: &ProceduralGenerator, seed: u64, set: &str, classes: &[usize], count: usize, size: u32, dir: &Path, progress: &indicatif::ProgressBar) -> Result<(ImageSet, Vec<ManifestRow>, GenerateStats)> {
        generate_set_with(gen, seed, set, classes, count, size, dir, progress, &SetOptions::default())
    }

    const CLIP: ProceduralGenerator = ProceduralGenerator::text(TemplateSet::ClipImagenet80);
    const PHOTO_OF: ProceduralGenerator = ProceduralGenerator::text(TemplateSet::PhotoOf);

    /// Prompts covering every medium and degradation the parser knows.
    const PROMPTS: [&str; 24] = [
        "a photo of a {}.",
        "a sketch of a {}.",
        "a drawing of the {}.",
        "a doodle of a {}.",
        "a painting of a {}.",
        "a cartoon {}.",
        "a rendering of the {}.",
        "the origami {}.",
        "a toy {}.",
        "the plastic {}.",
        "a plushie {}.",
        "a {} in a video game.",
        "a tattoo of a {}.",
        "the embroidered {}.",
        "graffiti of a {}.",
        "a sculpture of the {}.",
        "a jpeg corrupted photo of a {}.",
        "a pixelated photo of the {}.",
        "a black and white photo of a {}.",
        "a dark photo of the {}.",
        "a photo of many {}.",
        "a close-up photo of a {}.",
        "a photo of a dirty {}.",
        "a photo of the hard to see {}.",
    ];

    fn std_dev(image: &RgbImage) -> f64 {
        let n = image.pixels.len() as f64;
        let mean = image.pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
        (image.pixels.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
    }

    #[test]
    fn ids_and_template_names() {
        assert_eq!(CLIP.id(), "procedural-v1/clip-imagenet-80");
        assert_eq!(PHOTO_OF.id(), "procedural-v1/photo-of");
        for t in [TemplateSet::ClipImagenet80, TemplateSet::PhotoOf] {
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.name()));
        }
    }

    #[test]
    fn prompts_are_seeded_and_cover_the_templates() {
        assert_eq!(PHOTO_OF.prompt_for(1, "gen", 5, "car"), (0, "a photo of a car.".to_string()));
        assert_eq!(CLIP.prompt_for(1, "gen", 5, "car"), CLIP.prompt_for(1, "gen", 5, "car"));
        let ids: std::collections::HashSet<usize> = (0..2000).map(|i| CLIP.prompt_for(1, "gen", i, "car").0).collect();
        assert_eq!(ids.len(), 80, "2000 uniform draws should hit all 80 templates");
        let (id, text) = CLIP.prompt_for(9, "gen", 3, "key");
        assert_eq!(text, templates::fill(CLIP_IMAGENET_TEMPLATES[id], "key"));
        let differs = (0..50).any(|i| CLIP.prompt_for(1, "gen", i, "car") != CLIP.prompt_for(1, "other", i, "car"));
        assert!(differs, "the set name must change the draws");
    }

    #[test]
    fn render_is_pure_and_seed_dependent() {
        let a = CLIP.render(4, "a cartoon fish.", 77, 32);
        assert_eq!(a, CLIP.render(4, "a cartoon fish.", 77, 32));
        assert_ne!(a, CLIP.render(4, "a cartoon fish.", 78, 32));
        assert_ne!(a, CLIP.render(4, "a sketch of a fish.", 77, 32));
        assert_ne!(a, CLIP.render(5, "a cartoon fish.", 77, 32));
    }

    #[test]
    fn every_class_and_prompt_style_renders_at_two_sizes() {
        for size in [32, 64] {
            for (class, name) in CLASS_NAMES.iter().enumerate() {
                for (k, template) in PROMPTS.iter().enumerate() {
                    let prompt = templates::fill(template, name);
                    let image = CLIP.render(class, &prompt, (class * 100 + k) as u64, size);
                    assert_eq!((image.width, image.height), (size, size));
                    let sd = std_dev(&image);
                    assert!(sd > 6.0, "'{prompt}' at {size}px is nearly flat (sd {sd:.1})");
                }
            }
        }
    }

    #[test]
    fn generated_line_art_is_light_with_dark_lines() {
        for (i, template) in ["a sketch of a {}.", "a drawing of the {}.", "a doodle of a {}."].iter().enumerate() {
            for (class, name) in CLASS_NAMES.iter().enumerate() {
                let image = CLIP.render(class, &templates::fill(template, name), (i * 10 + class) as u64, 32);
                let mean = image.pixels.iter().map(|&v| v as f64).sum::<f64>() / image.pixels.len() as f64;
                assert!(mean > 150.0, "{template} {name}: mean {mean:.0}");
                assert!(image.pixels.iter().any(|&v| v < 90), "{template} {name}: no dark line");
            }
        }
    }

    /// Mean absolute difference between horizontal neighbours: high for noisy, cluttered images.
    fn roughness(image: &RgbImage) -> f64 {
        let w = image.width as usize * 3;
        let mut sum = 0.0;
        let mut n = 0.0;
        for row in image.pixels.chunks(w) {
            for i in 3..row.len() {
                sum += (row[i] as f64 - row[i - 3] as f64).abs();
                n += 1.0;
            }
        }
        sum / n
    }

    #[test]
    fn generated_photos_are_smoother_than_domain_photos() {
        let classes: Vec<usize> = (0..10).collect();
        let mut generated = 0.0;
        let mut real = 0.0;
        for i in 0..60u64 {
            let class = (i % 10) as usize;
            generated += roughness(&PHOTO_OF.render(class, &templates::fill(PHOTO_OF_TEMPLATE, CLASS_NAMES[class]), i, 32));
            real += roughness(&render_domain_image(1, "val", DomainStyle::Photo, &classes, i, 32).1);
        }
        assert!(generated < real * 0.8, "generated roughness {generated:.0} vs domain photos {real:.0}");
    }

    #[test]
    fn generate_set_writes_resumes_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let classes = [2, 7, 8];
        let (images, rows, stats) = generate_set(&CLIP, 5, "gen-train", &classes, 9, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats, GenerateStats { rendered: 9, reused: 0 });
        assert_eq!((images.len(), rows.len()), (9, 9));
        assert_eq!(images.labels, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
        assert_eq!(rows[4].path, "images/key/000004.png");
        assert_eq!(rows[4].class_name, "key");
        assert_eq!(rows[4].seed, derive_seed(5, "generate/gen-train", 4));
        assert_eq!(rows[4].generator, "procedural-v1/clip-imagenet-80");
        for (i, row) in rows.iter().enumerate() {
            let bytes = std::fs::read(dir.path().join(&row.path)).unwrap();
            assert_eq!(sha256_hex(&bytes), row.sha256);
            assert_eq!(images.image(i), CLIP.render(classes[row.label as usize], &row.prompt, row.seed, 32));
        }
        let manifest_path = dir.path().join("manifest.csv");
        let text = std::fs::read_to_string(&manifest_path).unwrap();
        assert!(text.starts_with("path,label,class_name,prompt,template_id,seed,generator,sha256\n"));
        assert_eq!(manifest::read(&manifest_path).unwrap(), rows);

        // Resume: nothing is rendered or rewritten.
        let mtimes: Vec<_> = rows.iter().map(|r| std::fs::metadata(dir.path().join(&r.path)).unwrap().modified().unwrap()).collect();
        let (again, rows2, stats2) = generate_set(&CLIP, 5, "gen-train", &classes, 9, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats2, GenerateStats { rendered: 0, reused: 9 });
        assert_eq!((again.pixels, rows2.clone()), (images.pixels.clone(), rows.clone()));
        let mtimes2: Vec<_> = rows.iter().map(|r| std::fs::metadata(dir.path().join(&r.path)).unwrap().modified().unwrap()).collect();
        assert_eq!(mtimes, mtimes2);

        // A corrupted PNG and a deleted one are regenerated, byte-identical to the originals.
        let original = std::fs::read(dir.path().join(&rows[3].path)).unwrap();
        std::fs::write(dir.path().join(&rows[3].path), b"not a png").unwrap();
        std::fs::remove_file(dir.path().join(&rows[6].path)).unwrap();
        let (repaired, rows3, stats3) = generate_set(&CLIP, 5, "gen-train", &classes, 9, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats3, GenerateStats { rendered: 2, reused: 7 });
        assert_eq!(std::fs::read(dir.path().join(&rows[3].path)).unwrap(), original);
        assert_eq!((repaired.pixels, rows3), (images.pixels, rows));
    }

    #[test]
    fn generate_set_extends_and_survives_a_broken_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let bar = indicatif::ProgressBar::hidden();
        generate_set(&PHOTO_OF, 1, "g", &[0, 1], 4, 32, dir.path(), &bar).unwrap();
        let (_, rows, stats) = generate_set(&PHOTO_OF, 1, "g", &[0, 1], 6, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats, GenerateStats { rendered: 2, reused: 4 });
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|r| r.template_id == 0 && r.prompt.starts_with("a photo of a ")));
        std::fs::write(dir.path().join("manifest.csv"), "garbage\n\"unterminated").unwrap();
        let (_, _, stats) = generate_set(&PHOTO_OF, 1, "g", &[0, 1], 6, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats, GenerateStats { rendered: 6, reused: 0 });
        // A different generator (template set) never reuses the other's images.
        let (_, _, stats) = generate_set(&CLIP, 1, "g", &[0, 1], 6, 32, dir.path(), &bar).unwrap();
        assert_eq!(stats.reused, 0);
    }

    #[test]
    fn generate_set_rejects_bad_classes() {
        let dir = tempfile::tempdir().unwrap();
        let bar = indicatif::ProgressBar::hidden();
        assert!(generate_set(&CLIP, 1, "g", &[], 3, 32, dir.path(), &bar).is_err());
        assert!(generate_set(&CLIP, 1, "g", &[12], 3, 32, dir.path(), &bar).is_err());
    }

    const ALL: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn conditioned(conditioning: Conditioning) -> ProceduralGenerator {
        let source = RealSource { domain: "train".into(), style: DomainStyle::Photo, count: 60, seed: 3 };
        ProceduralGenerator::new(TemplateSet::ClipImagenet80, conditioning, Some(source)).unwrap()
    }

    fn image_gen() -> ProceduralGenerator {
        conditioned(Conditioning::Image { source: "train".into() })
    }

    fn img2img(strength: f64) -> ProceduralGenerator {
        conditioned(Conditioning::TextImage { source: "train".into(), strength })
    }

    fn source_scene(index: u64) -> crate::data::procedural::DomainScene {
        crate::data::procedural::domain_scene(3, "train", DomainStyle::Photo, &ALL, index, 32)
    }

    fn grey(image: &RgbImage) -> Vec<f64> {
        image.pixels.chunks(3).map(|p| p.iter().map(|&v| v as f64).sum::<f64>() / 3.0).collect()
    }

    /// Correlation of two images' edge maps (central-difference gradient magnitude): high when
    /// the same silhouette sits in the same place, whatever the colours and backgrounds.
    fn edge_correlation(a: &RgbImage, b: &RgbImage) -> f64 {
        let n = a.width as usize;
        let edges = |g: Vec<f64>| -> Vec<f64> {
            let mut out = Vec::new();
            for y in 1..n - 1 {
                for x in 1..n - 1 {
                    let dx = g[y * n + x + 1] - g[y * n + x - 1];
                    let dy = g[(y + 1) * n + x] - g[(y - 1) * n + x];
                    out.push((dx * dx + dy * dy).sqrt());
                }
            }
            out
        };
        let (ea, eb) = (edges(grey(a)), edges(grey(b)));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(&ea), mean(&eb));
        let cov: f64 = ea.iter().zip(&eb).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let var = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
        cov / (var(&ea, ma) * var(&eb, mb)).sqrt().max(1e-9)
    }

    fn mean_abs_difference(a: &RgbImage, b: &RgbImage) -> f64 {
        a.pixels.iter().zip(&b.pixels).map(|(&x, &y)| (x as f64 - y as f64).abs()).sum::<f64>() / a.pixels.len() as f64
    }

    /// Generated image `index` of a conditioned set: its planned row and its pixels.
    fn conditioned_image(gen: &ProceduralGenerator, index: u64) -> (ManifestRow, RgbImage) {
        let row = plan_row(gen, 3, "gen", &ALL, index).unwrap();
        let image = Generator::render(gen, &[&row], &ALL, 32).unwrap().remove(0);
        (row, image)
    }

    #[test]
    fn image_conditioning_keeps_class_shape_and_pose_and_changes_the_look() {
        let gen = image_gen();
        let (mut own, mut other, mut text, mut generated_rough, mut real_rough) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..30u64 {
            let (row, image) = conditioned_image(&gen, i);
            let source = source_scene(i);
            assert_eq!((row.label, source.label), (source.object.class as u32, (i % 10) as u32), "the class is the source's");
            assert_eq!((row.prompt.as_str(), row.template_id), ("", 0), "image conditioning reads no prompt");
            assert_eq!(row.conditioning.as_ref().map(|c| (c.conditioning.as_str(), c.strength, c.source_image.as_str())), Some(("image", None, format!("domain/train/{i}").as_str())));
            assert_eq!(image, conditioned_image(&gen, i).1, "deterministic");
            assert!(mean_abs_difference(&image, &source.image) > 20.0, "image {i} keeps the source's look");
            own += edge_correlation(&image, &source.image);
            other += edge_correlation(&image, &source_scene(i + 10).image);
            let unconditioned = CLIP.render(row.label as usize, "a photo of a thing.", row.seed, 32);
            text += edge_correlation(&unconditioned, &source.image);
            generated_rough += roughness(&image);
            real_rough += roughness(&source.image);
        }
        // Same silhouette in the same place: the edges line up with the source's, not with
        // another image of the same class, nor does a text-only image of the class.
        assert!(own > 2.0 * other.max(text), "edge correlation with the source {own:.2}, another source {other:.2}, text-only {text:.2}");
        assert!(generated_rough < real_rough * 0.8, "the generator's own finish: roughness {generated_rough:.0} vs the source photos' {real_rough:.0}");
    }

    #[test]
    fn strength_moves_img2img_away_from_its_source() {
        let strengths = [0.25, 0.5, 0.75, 1.0];
        let mut distance = [0.0f64; 4];
        for i in 0..20u64 {
            let source = source_scene(i);
            for (k, &s) in strengths.iter().enumerate() {
                let (row, image) = conditioned_image(&img2img(s), i);
                assert_eq!(row.conditioning.as_ref().and_then(|c| c.strength), Some(s));
                assert_eq!(image, conditioned_image(&img2img(s), i).1, "deterministic");
                distance[k] += mean_abs_difference(&image, &source.image);
            }
            // Strength 1 keeps none of the source's pixels: it is the prompt painted over the
            // source's object and pose, which still line up with the source's edges.
            let (row, full) = conditioned_image(&img2img(1.0), i);
            assert_eq!(full, img2img(1.0).render_from(&source, &row.prompt, row.seed, 32));
            assert_ne!(full, conditioned_image(&img2img(0.5), i).1);
        }
        assert!(distance.windows(2).all(|w| w[0] < w[1]), "distance to the source must grow with strength: {distance:?}");
        assert!(distance[0] > 0.0);
    }

    #[test]
    fn sets_larger_than_their_source_reuse_its_images_and_keep_labels() {
        // 60 source images (6 rounds of 10 classes): image 60 + k redraws source image k.
        let gen = image_gen();
        let source = gen.source.clone().unwrap();
        assert_eq!((source.index_for(7, 10), source.index_for(67, 10)), (7, 7));
        let odd = RealSource { count: 65, ..source };
        assert_eq!(odd.index_for(63, 10), 3, "wrapped to whole class rounds, so the label stays index % classes");
        let (row, _) = conditioned_image(&gen, 67);
        assert_eq!(row.conditioning.unwrap().source_image, "domain/train/7");
        assert!(ProceduralGenerator::new(TemplateSet::PhotoOf, Conditioning::Image { source: "val".into() }, gen.source.clone()).is_err(), "the source must be the named domain");
    }

    #[test]
    fn ids_and_keys_name_the_conditioning() {
        assert_eq!(CLIP.key(), serde_json::json!("procedural-v1/clip-imagenet-80"), "text keys are what they were before conditioning");
        assert_eq!(image_gen().id(), "procedural-v1/image");
        assert_eq!(img2img(0.5).id(), "procedural-v1/clip-imagenet-80/text+image");
        let keys = [CLIP.key(), image_gen().key(), img2img(0.5).key(), img2img(0.75).key()];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let mut bigger = img2img(0.5);
        bigger.source.as_mut().unwrap().count = 70;
        assert_ne!(bigger.key(), img2img(0.5).key(), "the source's size changes which images are redrawn");
    }

    /// Writes a contact sheet of generated images (rows: classes, columns: prompts) to /tmp:
    /// `cargo test --lib generate::tests::write_generated_contact_sheet -- --ignored`.
    #[test]
    #[ignore]
    fn write_generated_contact_sheet() {
        for (half, prompts) in PROMPTS.chunks(PROMPTS.len() / 2).enumerate() {
            let mut tiles = Vec::new();
            for (class, name) in CLASS_NAMES.iter().enumerate() {
                for (k, template) in prompts.iter().enumerate() {
                    tiles.push(CLIP.render(class, &templates::fill(template, name), (class * 31 + k) as u64, 32));
                }
            }
            std::fs::write(format!("/tmp/generated_prompts_{}.png", half + 1), contact_sheet(&tiles, prompts.len(), 3).to_png()).unwrap();
        }
        let photos: Vec<RgbImage> = (0..40u64)
            .map(|i| PHOTO_OF.render((i % 10) as usize, &templates::fill(PHOTO_OF_TEMPLATE, CLASS_NAMES[(i % 10) as usize]), i, 32))
            .collect();
        std::fs::write("/tmp/generated_photos.png", contact_sheet(&photos, 10, 4).to_png()).unwrap();
    }
}
