//! Loaded Stable Diffusion models and the sampling loop (text-to-image and img2img).

use super::config::{self, SchedulerSpec, TextBuild, UnetSpec, VaeSpec};
use super::preset::{Preset, SchedulerKind};
use super::tokenizer::PromptTokenizer;
use super::weights::{posterior_mean_overrides, CheckedSafetensors, WeightFiles};
use crate::data::RgbImage;
use crate::rng::Stream;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::ClipTextTransformer as GenericClip;
use candle_transformers::models::stable_diffusion::{clip, unet_2d, vae};
use std::path::Path;

/// A CLIP text encoder as candle can build it (see [`config::TextBuild`]).
pub enum TextEncoder {
    Generic(GenericClip),
    /// candle's SD encoder; `penultimate` selects the second-to-last layer's output (SDXL).
    Preset { model: clip::ClipTextTransformer, penultimate: bool },
}

impl TextEncoder {
    pub fn build(vb: VarBuilder, spec: &config::TextSpec, penultimate: bool, file: &str) -> Result<Self> {
        Ok(match spec.build(penultimate, file)? {
            TextBuild::Generic(c) => TextEncoder::Generic(GenericClip::new(vb.pp("text_model"), &c)?),
            TextBuild::Preset(c) => TextEncoder::Preset { model: clip::ClipTextTransformer::new(vb, &c)?, penultimate },
        })
    }

    /// Per-token hidden states (B, tokens, width) for token ids (B, tokens).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            TextEncoder::Generic(m) => m.forward_with_mask(ids, usize::MAX)?,
            TextEncoder::Preset { model, penultimate: false } => model.forward(ids)?,
            TextEncoder::Preset { model, penultimate: true } => model.forward_until_encoder_layer(ids, usize::MAX, -2)?.1,
        })
    }
}

/// Whether the tokenizer folder asks for "!" padding; without a config the preset decides.
fn pads_with_bang(root: &Path, dir: &str, preset: Preset) -> bool {
    let read = |f: &str| std::fs::read_to_string(root.join(dir).join(f)).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    for f in ["tokenizer_config.json", "special_tokens_map.json"] {
        if let Some(v) = read(f) {
            let pad = v.get("pad_token");
            let text = pad.and_then(|p| p.as_str().map(str::to_string).or_else(|| p.get("content").and_then(|c| c.as_str()).map(str::to_string)));
            if let Some(t) = text {
                return t == "!";
            }
        }
    }
    preset != Preset::V1_5
}

/// Sampling settings for one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub scheduler: SchedulerKind,
    pub steps: usize,
    pub guidance: f64,
    /// Generation width = height in pixels (a multiple of 8).
    pub size: u32,
    /// img2img strength in (0, 1]; None for text-to-image.
    pub strength: Option<f64>,
}

/// One image to make.
#[derive(Clone, Debug)]
pub struct Request {
    pub prompt: String,
    pub seed: u64,
    /// img2img source (any size; resized to the generation size).
    pub source: Option<RgbImage>,
}

/// Everything needed to sample: tokenizers, text encoders, UNet, VAE, scheduler constants.
pub struct Pipeline {
    pub preset: Preset,
    tokenizers: Vec<PromptTokenizer>,
    encoders: Vec<TextEncoder>,
    unet: unet_2d::UNet2DConditionModel,
    pub unet_spec: UnetSpec,
    vae: vae::AutoEncoderKL,
    pub vae_spec: VaeSpec,
    scheduler: SchedulerSpec,
    pub device: Device,
    pub dtype: DType,
}

impl Pipeline {
    /// Loads a diffusers-layout model folder (configs from its `config.json` files, else the preset's).
    pub fn load(files: &WeightFiles, preset: Preset, device: &Device, dtype: DType) -> Result<Self> {
        crate::memory::tune_allocator();
        let root = &files.root;
        let unet_spec = config::unet_spec(root, preset)?;
        let vae_spec = config::vae_spec(root, preset)?;
        let scheduler = config::scheduler_spec(root, preset)?;
        let mut tokenizers = Vec::new();
        let mut encoders = Vec::new();
        let dual = files.text_encoder_2.is_some();
        let text_sets = [(Some(&files.text_encoder), Some(&files.tokenizer), "text_encoder", "tokenizer", false), (files.text_encoder_2.as_ref(), files.tokenizer_2.as_ref(), "text_encoder_2", "tokenizer_2", true)];
        for (enc, tok, enc_dir, tok_dir, second) in text_sets {
            let (Some(enc), Some(tok)) = (enc, tok) else { continue };
            let spec = config::text_spec(root, preset, second)?;
            tokenizers.push(PromptTokenizer::load(&root.join(tok), spec.max_position_embeddings, pads_with_bang(root, tok_dir, preset))?);
            let file = root.join(enc);
            let backend = CheckedSafetensors::open(&file)?;
            let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
            encoders.push(TextEncoder::build(vb, &spec, dual, &format!("{enc_dir}/config.json")).with_context(|| format!("loading the text encoder from {}", file.display()))?);
        }
        let unet_file = root.join(&files.unet);
        let unet_backend = CheckedSafetensors::open(&unet_file)?;
        let unet = Self::build_unet(Box::new(unet_backend), &unet_spec, device, dtype).with_context(|| format!("loading the UNet from {}", unet_file.display()))?;
        let vae_file = root.join(&files.vae);
        let mut vae_backend = CheckedSafetensors::open(&vae_file)?;
        let prefix = if vae_spec.config.use_quant_conv { "quant_conv" } else { "encoder.conv_out" };
        let (w, b) = (vae_backend.load_f32(&format!("{prefix}.weight"))?, vae_backend.load_f32(&format!("{prefix}.bias"))?);
        vae_backend.set_overrides(posterior_mean_overrides(w, b, prefix)?);
        let vae = Self::build_vae(Box::new(vae_backend), &vae_spec, device, dtype).with_context(|| format!("loading the VAE from {}", vae_file.display()))?;
        let pipeline = Self { preset, tokenizers, encoders, unet, unet_spec, vae, vae_spec, scheduler, device: device.clone(), dtype };
        pipeline.check_widths()?;
        Ok(pipeline)
    }

    /// A pipeline over arbitrary backends (random weights for benchmarks), configs from `root`
    /// or the preset. Tokenizer files are still read from `root`.
    pub fn from_backends(
        root: &Path,
        preset: Preset,
        tokenizer_files: &[&Path],
        text: Vec<Box<dyn SimpleBackend>>,
        unet: Box<dyn SimpleBackend>,
        vae: Box<dyn SimpleBackend>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        crate::memory::tune_allocator();
        let unet_spec = config::unet_spec(root, preset)?;
        let vae_spec = config::vae_spec(root, preset)?;
        let scheduler = config::scheduler_spec(root, preset)?;
        let dual = text.len() > 1;
        let mut tokenizers = Vec::new();
        let mut encoders = Vec::new();
        for (i, (backend, tok)) in text.into_iter().zip(tokenizer_files).enumerate() {
            let spec = config::text_spec(root, preset, i == 1)?;
            tokenizers.push(PromptTokenizer::load(tok, spec.max_position_embeddings, preset != Preset::V1_5)?);
            encoders.push(TextEncoder::build(VarBuilder::from_backend(backend, dtype, device.clone()), &spec, dual, "text encoder config")?);
        }
        let unet = Self::build_unet(unet, &unet_spec, device, dtype)?;
        let vae = Self::build_vae(vae, &vae_spec, device, dtype)?;
        let pipeline = Self { preset, tokenizers, encoders, unet, unet_spec, vae, vae_spec, scheduler, device: device.clone(), dtype };
        pipeline.check_widths()?;
        Ok(pipeline)
    }

    pub fn build_unet(backend: Box<dyn SimpleBackend + '_>, spec: &UnetSpec, device: &Device, dtype: DType) -> Result<unet_2d::UNet2DConditionModel> {
        let vb = VarBuilder::from_backend(backend, dtype, device.clone());
        Ok(unet_2d::UNet2DConditionModel::new(vb, spec.in_channels, spec.out_channels, false, spec.config.clone())?)
    }

    pub fn build_vae(backend: Box<dyn SimpleBackend + '_>, spec: &VaeSpec, device: &Device, dtype: DType) -> Result<vae::AutoEncoderKL> {
        let vb = VarBuilder::from_backend(backend, dtype, device.clone());
        Ok(vae::AutoEncoderKL::new(vb, 3, 3, spec.config.clone())?)
    }

    fn check_widths(&self) -> Result<()> {
        if self.unet_spec.in_channels != self.vae_spec.config.latent_channels {
            bail!(
                "unet/config.json has in_channels = {} but the VAE makes {} latent channels (inpainting UNets are not supported)",
                self.unet_spec.in_channels,
                self.vae_spec.config.latent_channels
            );
        }
        Ok(())
    }

    /// Text conditioning (B, tokens, width) for prompts; several encoders are concatenated on
    /// the feature axis (SDXL).
    pub fn encode_prompts(&self, prompts: &[&str]) -> Result<Tensor> {
        let mut parts = Vec::new();
        for (tok, enc) in self.tokenizers.iter().zip(&self.encoders) {
            let ids: Vec<u32> = prompts.iter().map(|p| tok.ids(p)).collect::<Result<Vec<_>>>()?.concat();
            let ids = Tensor::from_vec(ids, (prompts.len(), tok.context()), &self.device)?;
            parts.push(enc.forward(&ids)?);
        }
        let emb = Tensor::cat(&parts, D::Minus1)?;
        let width = emb.dim(D::Minus1)?;
        if width != self.unet_spec.config.cross_attention_dim {
            bail!(
                "the text encoder makes {width}-wide embeddings but unet/config.json has cross_attention_dim = {}; the model folder mixes parts of different models",
                self.unet_spec.config.cross_attention_dim
            );
        }
        Ok(emb)
    }

    /// Token ids (padded to the context) of the first tokenizer, for cross-checks.
    pub fn token_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        self.tokenizers[0].ids(prompt)
    }

    /// The VAE decoder's raw output (B, 3, H, W) in about [-1, 1] for scaled latents.
    pub fn decode_raw(&self, latents: &Tensor) -> Result<Tensor> {
        let x = (latents / self.vae_spec.scaling_factor)?.to_dtype(self.dtype)?;
        Ok(self.vae_per_image(&x, |x| self.vae.decode(x))?.to_dtype(DType::F32)?)
    }

    /// Runs a VAE pass over a batch; on CPU one image at a time. candle 0.11.1's CPU matmul
    /// folds a batched product with a shared right-hand side into one GEMM without checking that
    /// the left-hand rows are adjacent, so the VAE attention block (a `Linear` applied to a
    /// transposed view) gives wrong numbers for batches of two or more there. CUDA's matmul has
    /// no such fold. `tests/stable_diffusion.rs` checks batch against single images.
    fn vae_per_image(&self, x: &Tensor, pass: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Result<Tensor> {
        if !self.device.is_cpu() || x.dim(0)? <= 1 {
            return Ok(pass(x)?);
        }
        let parts = (0..x.dim(0)?).map(|i| pass(&x.narrow(0, i, 1)?)).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// One UNet evaluation: noise (or v) prediction for latents at `timestep`.
    pub fn unet_step(&self, latents: &Tensor, timestep: f64, text: &Tensor) -> Result<Tensor> {
        Ok(self.unet.forward(&latents.to_dtype(self.dtype)?, timestep, &text.to_dtype(self.dtype)?)?.to_dtype(DType::F32)?)
    }

    /// Standard-normal latents (B, C, size/8, size/8) from each request's seed and `purpose`.
    fn seeded_normal(&self, requests: &[Request], purpose: &str, latent: usize) -> Result<Tensor> {
        let channels = self.vae_spec.config.latent_channels;
        let n = channels * latent * latent;
        let mut values = Vec::with_capacity(n * requests.len());
        for r in requests {
            let mut s = Stream::new(r.seed, purpose, 0);
            values.extend((0..n).map(|_| s.normal() as f32));
        }
        Ok(Tensor::from_vec(values, (requests.len(), channels, latent, latent), &self.device)?)
    }

    /// Generates one image per request at `sampling.size` pixels. Each image depends only on its
    /// own request, never on the batch it is in: on CPU the requests are sampled one at a time, so
    /// that guarantee holds by construction rather than resting on the GEMM rounding the same for
    /// every row count (today it does: the tests compare a fused CPU batch bit for bit). On a GPU
    /// the batch runs together for speed and may differ from single-image runs in the last bits.
    pub fn generate(&self, sampling: &Sampling, requests: &[Request]) -> Result<Vec<RgbImage>> {
        if self.device.is_cpu() {
            let mut out = Vec::with_capacity(requests.len());
            for r in requests {
                out.extend(self.generate_batch(sampling, std::slice::from_ref(r))?);
            }
            return Ok(out);
        }
        self.generate_batch(sampling, requests)
    }

    /// [`Pipeline::generate`] for the whole batch at once.
    pub fn generate_batch(&self, sampling: &Sampling, requests: &[Request]) -> Result<Vec<RgbImage>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let size = sampling.size as usize;
        // The VAE downsamples once per block after the first.
        let factor = 1usize << (self.vae_spec.config.block_out_channels.len() - 1);
        if size % factor != 0 {
            bail!("generation size {size} must be a multiple of {factor} for this VAE");
        }
        let latent = size / factor;
        let prompts: Vec<&str> = requests.iter().map(|r| r.prompt.as_str()).collect();
        let cond = self.encode_prompts(&prompts)?;
        let guided = sampling.guidance > 1.0;
        let text = if guided {
            let uncond = self.encode_prompts(&[""])?;
            let uncond = uncond.broadcast_as(cond.shape())?.contiguous()?;
            Tensor::cat(&[&uncond, &cond], 0)?
        } else {
            cond
        };
        let mut scheduler = self.scheduler.build(sampling.scheduler, sampling.steps)?;
        let timesteps = scheduler.timesteps().to_vec();
        let noise = self.seeded_normal(requests, "sd/initial-noise", latent)?;
        let (mut latents, start) = match sampling.strength {
            None => ((&noise * scheduler.init_noise_sigma())?, 0),
            Some(strength) => {
                let init_steps = ((sampling.steps as f64 * strength) as usize).min(sampling.steps);
                if init_steps == 0 {
                    bail!("img2img strength {strength} with {} steps leaves no denoising step; raise the strength or the steps", sampling.steps);
                }
                let start = sampling.steps - init_steps;
                let encoded = self.encode_images(requests, size)?;
                (scheduler.add_noise(&encoded, noise, timesteps[start])?, start)
            }
        };
        for (i, &t) in timesteps.iter().enumerate().skip(start) {
            let input = if guided { Tensor::cat(&[&latents, &latents], 0)? } else { latents.clone() };
            let input = scheduler.scale_model_input(input, t)?;
            let pred = self.unet_step(&input, t as f64, &text)?;
            let pred = if guided {
                let halves = pred.chunk(2, 0)?;
                (&halves[0] + ((&halves[1] - &halves[0])? * sampling.guidance)?)?
            } else {
                pred
            };
            latents = match sampling.scheduler {
                SchedulerKind::Ddim => scheduler.step(&pred, t, &latents)?,
                SchedulerKind::EulerAncestral => {
                    let sigma = |t: usize| -> Result<f64> {
                        // candle keeps the sigma table private; add_noise(0, 1, t) = sigma(t).
                        let one = Tensor::ones(1, DType::F32, &Device::Cpu)?;
                        Ok(scheduler.add_noise(&Tensor::zeros(1, DType::F32, &Device::Cpu)?, one, t)?.to_vec1::<f32>()?[0] as f64)
                    };
                    let from = sigma(t)?;
                    let to = match timesteps.get(i + 1) {
                        Some(&next) => sigma(next)?,
                        None => 0.0,
                    };
                    self.euler_ancestral_step(&latents, &pred, from, to, requests, i)?
                }
            };
        }
        self.decode(&latents)
    }

    /// One Euler-ancestral step from sigma `from` to `to`, with the ancestral noise drawn from each
    /// request's own stream (candle's scheduler draws it from the unseedable device RNG).
    fn euler_ancestral_step(&self, sample: &Tensor, pred: &Tensor, from: f64, to: f64, requests: &[Request], step: usize) -> Result<Tensor> {
        let x0 = match self.scheduler.prediction {
            candle_transformers::models::stable_diffusion::schedulers::PredictionType::Epsilon => (sample - (pred * from)?)?,
            candle_transformers::models::stable_diffusion::schedulers::PredictionType::VPrediction => {
                ((pred * (-from / (from * from + 1.0).sqrt()))? + (sample / (from * from + 1.0))?)?
            }
            candle_transformers::models::stable_diffusion::schedulers::PredictionType::Sample => pred.clone(),
        };
        let up = (to * to * (from * from - to * to) / (from * from)).max(0.0).sqrt();
        let down = (to * to - up * up).max(0.0).sqrt();
        let derivative = ((sample - &x0)? / from)?;
        let next = (sample + (derivative * (down - from))?)?;
        if up == 0.0 {
            return Ok(next);
        }
        let latent = sample.dim(2)?;
        let noise = self.seeded_normal(requests, &format!("sd/ancestral-noise/{step}"), latent)?;
        Ok((next + (noise * up)?)?)
    }

    /// VAE latents (scaled) of the requests' source images, at the posterior mean.
    fn encode_images(&self, requests: &[Request], size: usize) -> Result<Tensor> {
        let mut values = Vec::with_capacity(requests.len() * 3 * size * size);
        for r in requests {
            let source = r.source.as_ref().context("img2img needs a source image for every request")?;
            let img = super::resize(source, size as u32);
            // HWC u8 -> CHW in [-1, 1], as diffusers' image processor.
            for c in 0..3 {
                for p in 0..size * size {
                    values.push(img.pixels[p * 3 + c] as f32 / 127.5 - 1.0);
                }
            }
        }
        self.encode_raw(&Tensor::from_vec(values, (requests.len(), 3, size, size), &self.device)?)
    }

    /// Scaled VAE posterior means (B, C, H/8, W/8) of images (B, 3, H, W) in [-1, 1].
    pub fn encode_raw(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.to_dtype(self.dtype)?;
        // `sample()` is the posterior mean here: see `weights::posterior_mean_overrides`.
        let mean = self.vae_per_image(&x, |x| self.vae.encode(x)?.sample())?;
        Ok((mean.to_dtype(DType::F32)? * self.vae_spec.scaling_factor)?)
    }

    /// Decodes latents to 8-bit images, rounding as diffusers' `numpy_to_pil` does.
    fn decode(&self, latents: &Tensor) -> Result<Vec<RgbImage>> {
        let images = self.decode_raw(latents)?;
        let images = ((images / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
        let images = (images * 255.0)?.round()?.to_dtype(DType::U8)?.permute((0, 2, 3, 1))?.to_device(&Device::Cpu)?;
        let (b, h, w, _) = images.dims4()?;
        let mut out = Vec::with_capacity(b);
        for i in 0..b {
            let pixels = images.get(i)?.flatten_all()?.to_vec1::<u8>()?;
            out.push(RgbImage { width: w as u32, height: h as u32, pixels });
        }
        Ok(out)
    }
}
