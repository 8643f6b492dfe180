//! The `stable-diffusion` generator: Stable Diffusion through candle-transformers.
//!
//! # Presets
//!
//! | preset | model (diffusers layout) | size | steps | guidance | scheduler |
//! |---|---|---|---|---|---|
//! | `v1-5` | runwayml/stable-diffusion-v1-5 (the paper's) | 512 | 50 | 7.5 | DDIM |
//! | `v2-1` | stabilityai/stable-diffusion-2-1 (v-prediction) | 768 | 50 | 7.5 | DDIM |
//! | `sd-turbo` | stabilityai/sd-turbo (SD 2.1 base, distilled) | 512 | 1 | 0 | Euler ancestral, trailing |
//! | `sdxl-turbo` | stabilityai/sdxl-turbo | 512 | 1 | 0 | Euler ancestral, trailing |
//!
//! **Schedulers.** diffusers' default for SD 1.5 is PNDM, which candle does not implement;
//! candle offers DDIM, DDPM, Euler ancestral and UniPC. We use DDIM with eta = 0 for the 50-step
//! presets: deterministic after the initial noise, and the scheduler candle's own SD examples use.
//! PNDM and DDIM at 50 steps sample the same model, but pixels differ from a diffusers run. The
//! turbo models were published with (non-ancestral) Euler and trailing spacing; candle has only
//! the ancestral variant, which for one step is identical (sigma_up = sigma_down = 0 on the last
//! step, so the update is x0 = x - sigma * eps). For several steps it adds ancestral noise, which we
//! draw from our own seeded streams because candle's step draws from the unseedable CPU RNG.
//!
//! **sd-turbo.** candle has no preset for it; the UNet, VAE, scheduler and text-encoder values
//! here are those of the public `stabilityai/sd-turbo` config files (SD 2.1 base: heads
//! [5, 10, 20, 20], cross-attention 1024, linear projections, OpenCLIP ViT-H text encoder cut to
//! 23 layers, epsilon prediction, trailing spacing).
//!
//! **What candle's SDXL UNet leaves out (sdxl-turbo).** diffusers' SDXL UNet adds to its timestep
//! embedding an `add_embedding` of (a) the pooled, projected output of the second text encoder
//! (`text_embeds`) and (b) six "micro-conditioning" numbers (`time_ids`: original size, crop
//! top-left, target size). candle's `UNet2DConditionModel` implements neither
//! (`addition_embed_type = "text_time"` is ignored and the `add_embedding.*` weights are never
//! read), so the model is run without the global prompt summary and size/crop signals it was
//! trained with. Prompt content still arrives through cross-attention, so images follow the prompt,
//! but composition and colour are less faithful and outputs do not match diffusers pixel for pixel.
//! We do feed both encoders' penultimate-layer states (as diffusers does), not the final layer.
//!
//! **Smaller gaps.** candle's GEGLU feed-forward (every UNet transformer block) and its SD 2.x /
//! SDXL-G text encoder use the tanh approximation of GELU where diffusers and transformers use the
//! exact erf form. img2img encodes the source image to the VAE posterior's mean (see
//! [`weights::posterior_mean_overrides`]); diffusers samples from the posterior, whose std is tiny.
//!
//! **candle limits we guard against.** (1) candle 0.11.1's `DownBlock2D`/`UpBlock2D` build their
//! ResNet blocks with 32 groups whatever `norm_num_groups` says, so a UNet config with another
//! value is refused (every published SD UNet uses 32). (2) Its CPU batched matmul folds a product
//! with a shared right-hand side into one GEMM without checking that the left-hand rows are
//! adjacent; the VAE's attention block feeds it a transposed view, so on CPU the VAE runs one
//! image at a time ([`pipeline::Pipeline::decode_raw`]).
//!
//! # Cross-check against diffusers
//!
//! `tests/stable_diffusion.rs::one_unet_step_matches_diffusers` (opt-in: SHIFTBENCH_TORCH_PYTHON
//! names a Python with torch, diffusers and transformers) runs `benches/diffusers_step.py` on the
//! tiny test model, batch of 2, and fails above float rounding. Last run (torch 2.15, diffusers
//! 0.42.1; largest absolute difference over the reference's largest magnitude): CLIP text
//! encoder 4.6e-7, VAE decode 4.2e-7, VAE encode (posterior mean) 1.0e-6, one UNet step 8.3e-5
//! against stock diffusers and 9.9e-7 when diffusers' GEGLU uses candle's tanh GELU, so the
//! approximation is the only difference left.
//!
//! # Determinism
//!
//! Initial latents, img2img noise and ancestral noise come from `rng::Stream`s keyed by the
//! image's own seed (derived from suite seed, set name and image index; the index fixes the
//! class), so any image can be regenerated alone and batching never changes an image.

pub mod config;
pub mod preset;
pub mod pipeline;
pub mod random;
pub mod tokenizer;
pub mod weights;

pub use preset::{DTypeChoice, Preset, SchedulerKind, SdConfig};
pub use pipeline::{Pipeline, Request, Sampling};
pub use weights::{WeightFiles, WeightsSource, WEIGHTS_ENV};

use crate::data::RgbImage;
use crate::suite::{GeneratorBackend, SuiteConfig};
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Resamples a square image to `size`×`size` with a triangle (bilinear) filter whose support
/// grows with the scale factor, so downscaling averages instead of aliasing.
pub fn resize(img: &RgbImage, size: u32) -> RgbImage {
    if img.width == size && img.height == size {
        return img.clone();
    }
    let horizontal = resample_axis(&img.pixels, img.width as usize, img.height as usize, size as usize, true);
    let pixels = resample_axis(&horizontal, size as usize, img.height as usize, size as usize, false);
    RgbImage { width: size, height: size, pixels: pixels.iter().map(|&v| v.round().clamp(0.0, 255.0) as u8).collect() }
}

fn resample_axis<T: Copy + Into<f64>>(src: &[T], w: usize, h: usize, out: usize, along_x: bool) -> Vec<f64> {
    let n_in = if along_x { w } else { h };
    let scale = n_in as f64 / out as f64;
    let support = scale.max(1.0);
    let weights: Vec<(usize, Vec<f64>)> = (0..out)
        .map(|o| {
            let centre = (o as f64 + 0.5) * scale;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(n_in);
            let mut ws: Vec<f64> = (lo..hi).map(|i| (1.0 - ((i as f64 + 0.5 - centre) / support).abs()).max(0.0)).collect();
            let sum: f64 = ws.iter().sum();
            ws.iter_mut().for_each(|x| *x /= sum.max(1e-12));
            (lo, ws)
        })
        .collect();
    let (ow, oh) = if along_x { (out, h) } else { (w, out) };
    let mut dst = vec![0.0; ow * oh * 3];
    for y in 0..oh {
        for x in 0..ow {
            let (lo, ws) = &weights[if along_x { x } else { y }];
            for c in 0..3 {
                let mut acc = 0.0;
                for (k, wgt) in ws.iter().enumerate() {
                    let (sx, sy) = if along_x { (lo + k, y) } else { (x, lo + k) };
                    acc += wgt * src[(sy * w + sx) * 3 + c].into();
                }
                dst[(y * ow + x) * 3 + c] = acc;
            }
        }
    }
    dst
}

/// The device generation runs on: the first CUDA GPU when built with `cuda` and one is present.
pub fn default_device() -> Device {
    Device::cuda_if_available(0).unwrap_or(Device::Cpu)
}

/// The model dtype for a choice on a device: f32 on CPU (candle's CPU half-precision kernels
/// are slow and the reference numbers are f32), f16 on a GPU unless told otherwise.
pub fn resolve_dtype(choice: DTypeChoice, device: &Device) -> Result<DType> {
    Ok(match (choice, device.is_cpu()) {
        (DTypeChoice::Auto, true) | (DTypeChoice::F32, _) => DType::F32,
        (DTypeChoice::Auto, false) | (DTypeChoice::F16, _) => DType::F16,
        (DTypeChoice::Bf16, _) => DType::BF16,
    })
}

/// Where img2img source images come from: the real domain's image with the same index (and so
/// the same class), as the paper conditions each generated image on one real training image.
#[derive(Clone, Debug)]
pub struct Img2ImgSource {
    pub domain: String,
    pub style: crate::data::procedural::DomainStyle,
    pub seed: u64,
    /// The suite's image size (the size the real domain is rendered at).
    pub size: u32,
    pub strength: f64,
}

/// Everything a suite's `stable-diffusion` generator section resolves to.
#[derive(Clone, Debug)]
pub struct SdSettings {
    pub preset: Preset,
    pub templates: super::TemplateSet,
    pub sampling: Sampling,
    pub dtype: DTypeChoice,
    pub batch_size: usize,
    pub img2img: Option<Img2ImgSource>,
}

/// The `stable-diffusion` generator: settings, located weights, and the models, loaded on the
/// first image that actually has to be rendered (a fully resumed set never loads them).
pub struct SdGenerator {
    pub settings: SdSettings,
    pub files: WeightFiles,
    pub weights_sha256: String,
    device: Device,
    pipeline: std::sync::OnceLock<Pipeline>,
}

impl SdGenerator {
    /// Locates and hashes the weights (an error names every missing file); loads nothing yet.
    pub fn new(settings: SdSettings, root: &std::path::Path, device: Device) -> Result<Self> {
        let files = weights::locate_files(root, settings.preset)?;
        let weights_sha256 = weights::weights_hash(&files)?;
        Ok(Self { settings, files, weights_sha256, device, pipeline: std::sync::OnceLock::new() })
    }

    pub fn pipeline(&self) -> Result<&Pipeline> {
        if let Some(p) = self.pipeline.get() {
            return Ok(p);
        }
        let dtype = resolve_dtype(self.settings.dtype, &self.device)?;
        let p = Pipeline::load(&self.files, self.settings.preset, &self.device, dtype)?;
        Ok(self.pipeline.get_or_init(|| p))
    }

    /// Everything that changes the images, for cache keys.
    pub fn key(&self) -> serde_json::Value {
        let s = &self.settings;
        serde_json::json!({
            "generator": super::Generator::id(self),
            "weights": self.weights_sha256,
            "scheduler": s.sampling.scheduler.name(),
            "steps": s.sampling.steps,
            "guidance": s.sampling.guidance,
            "gen_size": s.sampling.size,
            "dtype": format!("{:?}", resolve_dtype(s.dtype, &self.device).ok()),
            "img2img": s.img2img.as_ref().map(|i| serde_json::json!({"domain": i.domain, "strength": i.strength})),
        })
    }
}

impl super::Generator for SdGenerator {
    fn id(&self) -> String {
        format!("stable-diffusion/{}/{}", self.settings.preset.name(), self.settings.templates.name())
    }

    fn templates(&self) -> super::TemplateSet {
        self.settings.templates
    }

    fn diffusion_columns(&self, index: u64) -> Result<Option<super::manifest::DiffusionColumns>> {
        let s = &self.settings;
        Ok(Some(super::manifest::DiffusionColumns {
            weights_sha256: self.weights_sha256.clone(),
            scheduler: s.sampling.scheduler.name().to_string(),
            steps: s.sampling.steps,
            guidance: s.sampling.guidance,
            gen_size: s.sampling.size,
            strength: s.img2img.as_ref().map(|i| i.strength),
            source_image: s.img2img.as_ref().map(|i| format!("domain/{}/{index}", i.domain)),
        }))
    }

    fn batch_size(&self) -> usize {
        self.settings.batch_size
    }

    fn render(&self, plans: &[&super::ManifestRow], classes: &[usize], size: u32) -> Result<Vec<RgbImage>> {
        let pipeline = self.pipeline()?;
        let requests: Vec<Request> = plans
            .iter()
            .map(|p| Request {
                prompt: p.prompt.clone(),
                seed: p.seed,
                source: self.settings.img2img.as_ref().map(|src| {
                    let index = super::image_index(&p.path);
                    crate::data::procedural::render_domain_image(src.seed, &src.domain, src.style, classes, index, src.size).1
                }),
            })
            .collect();
        let mut sampling = self.settings.sampling.clone();
        sampling.strength = self.settings.img2img.as_ref().map(|i| i.strength);
        let images = pipeline.generate(&sampling, &requests)?;
        Ok(images.iter().map(|img| resize(img, size)).collect())
    }
}

/// The weights source for a generator: `--weights` (or `SHIFTBENCH_SD_WEIGHTS`, which the
/// command line reads into the same value), else the suite's `weights` key, else the preset's
/// repository in the Hugging Face cache.
pub fn weights_source(config: &SdConfig, weights_override: Option<&str>) -> WeightsSource {
    match weights_override.filter(|w| !w.is_empty()).or(config.weights.as_deref()) {
        Some(w) => WeightsSource::parse(w),
        None => WeightsSource::HfCache { repo: config.preset.hf_repo().to_string(), revision: None },
    }
}

/// Settings of a `stable-diffusion` generator of `suite` (img2img sources are `suite`'s domains).
pub fn settings_for(suite: &SuiteConfig, config: &SdConfig, templates: super::TemplateSet, seed: u64) -> SdSettings {
    let img2img = config.img2img.as_ref().and_then(|(source, strength)| {
        // The validator allows procedural domains only as img2img sources.
        let crate::suite::DomainData::Procedural { style, .. } = suite.domain(source)?.data else { return None };
        Some(Img2ImgSource { domain: source.clone(), style, seed, size: suite.image_size, strength: *strength })
    });
    SdSettings {
        preset: config.preset,
        templates,
        sampling: Sampling {
            scheduler: config.scheduler,
            steps: config.steps,
            guidance: config.guidance,
            size: config.size,
            strength: img2img.as_ref().map(|i| i.strength),
        },
        dtype: config.dtype,
        batch_size: config.batch_size,
        img2img,
    }
}

/// The stable-diffusion generators a suite's generated sets use, with their configs.
fn used_generators(suite: &SuiteConfig) -> impl Iterator<Item = (&crate::suite::GeneratorConfig, &SdConfig)> {
    let used: std::collections::BTreeSet<&str> = suite.generated.iter().map(|g| g.generator.as_str()).collect();
    suite.generators.iter().filter(move |g| used.contains(g.name.as_str())).filter_map(|g| match &g.backend {
        GeneratorBackend::StableDiffusion(c) => Some((g, c)),
        GeneratorBackend::Procedural | GeneratorBackend::Diffusion(_) => None,
    })
}

/// The stable-diffusion generators a suite uses, by generator name, with their model folders
/// located. Fails, naming every missing file and how to provide it, before any work starts.
pub fn locate_all(suite: &SuiteConfig, suite_path: &Path, weights_override: Option<&str>, lock: &Path) -> Result<Vec<(String, PathBuf, WeightFiles)>> {
    let mut out = Vec::new();
    for (g, config) in used_generators(suite) {
        let ctx = || format!("generator `{}` (stable-diffusion, preset {}) of suite {}", g.name, config.preset.name(), suite_path.display());
        let root = weights::resolve_root(&weights_source(config, weights_override), lock, None).with_context(ctx)?;
        let files = weights::locate_files(&root, config.preset).with_context(ctx)?;
        out.push((g.name.clone(), root, files));
    }
    Ok(out)
}

/// Builds (without loading models) every stable-diffusion generator a suite uses.
pub fn prepare(suite: &SuiteConfig, suite_path: &Path, seed: u64, weights_override: Option<&str>, lock: &Path) -> Result<BTreeMap<String, SdGenerator>> {
    let mut out = BTreeMap::new();
    let located = locate_all(suite, suite_path, weights_override, lock)?;
    for ((g, config), (name, root, _)) in used_generators(suite).zip(located) {
        let generator = SdGenerator::new(settings_for(suite, config, g.templates, seed), &root, default_device())
            .with_context(|| format!("generator `{name}` of suite {}", suite_path.display()))?;
        out.insert(name, generator);
    }
    Ok(out)
}
