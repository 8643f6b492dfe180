//! The Stable Diffusion choices a suite makes, free of candle: presets, schedulers, precision,
//! and a generator section with every default applied. `suite` resolves into these types
//! without depending on the model code.

use serde::{Deserialize, Serialize};

/// A named model family with the paper's (or the model card's) sampling defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Stable Diffusion v1.5, the paper's generator.
    #[serde(rename = "v1-5")]
    V1_5,
    /// Stable Diffusion 2.1 (768 px, v-prediction).
    #[serde(rename = "v2-1")]
    V2_1,
    /// SD-Turbo: SD 2.1 base distilled for one-step sampling.
    #[serde(rename = "sd-turbo")]
    SdTurbo,
    /// SDXL-Turbo: SDXL distilled for one-step sampling (two text encoders).
    #[serde(rename = "sdxl-turbo")]
    SdxlTurbo,
}

/// The schedulers candle-transformers provides that we can drive deterministically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerKind {
    /// DDIM with eta = 0: no noise after the initial latents.
    Ddim,
    /// Euler ancestral; its per-step noise comes from our seeded stream, not candle's RNG.
    EulerAncestral,
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::EulerAncestral => "euler-ancestral",
        }
    }
}

/// Compute precision of the models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DTypeChoice {
    /// f32 on CPU, f16 on CUDA.
    Auto,
    F32,
    F16,
    Bf16,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::V1_5 => "v1-5",
            Preset::V2_1 => "v2-1",
            Preset::SdTurbo => "sd-turbo",
            Preset::SdxlTurbo => "sdxl-turbo",
        }
    }

    /// The Hugging Face repository whose diffusers layout the preset expects.
    pub fn hf_repo(self) -> &'static str {
        match self {
            Preset::V1_5 => "runwayml/stable-diffusion-v1-5",
            Preset::V2_1 => "stabilityai/stable-diffusion-2-1",
            Preset::SdTurbo => "stabilityai/sd-turbo",
            Preset::SdxlTurbo => "stabilityai/sdxl-turbo",
        }
    }

    /// Default (generation size, steps, guidance, scheduler).
    pub fn defaults(self) -> (u32, usize, f64, SchedulerKind) {
        match self {
            // diffusers' defaults, which the paper relied on; DDIM replaces PNDM (see module doc).
            Preset::V1_5 => (512, 50, 7.5, SchedulerKind::Ddim),
            Preset::V2_1 => (768, 50, 7.5, SchedulerKind::Ddim),
            // The turbo model cards: one step, no classifier-free guidance.
            Preset::SdTurbo | Preset::SdxlTurbo => (512, 1, 0.0, SchedulerKind::EulerAncestral),
        }
    }

    /// Whether the model has a second text encoder (`text_encoder_2/`, `tokenizer_2/`).
    pub fn dual_text_encoder(self) -> bool {
        self == Preset::SdxlTurbo
    }
}

/// A `stable-diffusion` generator section with the preset's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct SdConfig {
    pub preset: Preset,
    /// The suite's `weights` key, if any (`--weights` / `SHIFTBENCH_SD_WEIGHTS` win over it).
    pub weights: Option<String>,
    pub scheduler: SchedulerKind,
    pub steps: usize,
    pub guidance: f64,
    /// Generation resolution in pixels.
    pub size: u32,
    pub dtype: DTypeChoice,
    pub batch_size: usize,
    /// img2img: the source domain and the strength.
    pub img2img: Option<(String, f64)>,
}
