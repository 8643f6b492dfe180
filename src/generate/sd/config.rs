//! Presets and the diffusers `config.json` files, turned into candle-transformers configs.
//!
//! A model directory's own `config.json` always wins over the preset, so a tiny test model and
//! a real checkpoint go through the same code; the presets only fill in what a directory lacks.

use anyhow::{bail, Context, Result};
use candle_transformers::models::clip::text_model::{Activation, ClipTextConfig};
use candle_transformers::models::stable_diffusion::{clip, ddim, euler_ancestral_discrete, schedulers, unet_2d, vae};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

use super::preset::{Preset, SchedulerKind};

impl Preset {
    /// The public `unet/config.json` values of the preset's model, used when a directory has none.
    fn unet_json(self) -> &'static str {
        match self {
            Preset::V1_5 => r#"{"block_out_channels":[320,640,1280,1280],"down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],"up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],"attention_head_dim":8,"cross_attention_dim":768,"use_linear_projection":false}"#,
            Preset::V2_1 | Preset::SdTurbo => r#"{"block_out_channels":[320,640,1280,1280],"down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],"up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],"attention_head_dim":[5,10,20,20],"cross_attention_dim":1024,"use_linear_projection":true}"#,
            Preset::SdxlTurbo => r#"{"block_out_channels":[320,640,1280],"down_block_types":["DownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D"],"up_block_types":["CrossAttnUpBlock2D","CrossAttnUpBlock2D","UpBlock2D"],"attention_head_dim":[5,10,20],"transformer_layers_per_block":[1,2,10],"cross_attention_dim":2048,"use_linear_projection":true,"addition_embed_type":"text_time"}"#,
        }
    }

    fn vae_json(self) -> &'static str {
        match self {
            Preset::SdxlTurbo => r#"{"block_out_channels":[128,256,512,512],"latent_channels":4,"layers_per_block":2,"norm_num_groups":32,"scaling_factor":0.13025}"#,
            _ => r#"{"block_out_channels":[128,256,512,512],"latent_channels":4,"layers_per_block":2,"norm_num_groups":32,"scaling_factor":0.18215}"#,
        }
    }

    fn scheduler_json(self) -> &'static str {
        match self {
            Preset::V1_5 => r#"{"beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","num_train_timesteps":1000,"prediction_type":"epsilon","steps_offset":1,"timestep_spacing":"leading"}"#,
            Preset::V2_1 => r#"{"beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","num_train_timesteps":1000,"prediction_type":"v_prediction","steps_offset":1,"timestep_spacing":"leading"}"#,
            Preset::SdTurbo | Preset::SdxlTurbo => r#"{"beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","num_train_timesteps":1000,"prediction_type":"epsilon","steps_offset":1,"timestep_spacing":"trailing"}"#,
        }
    }

    fn text_json(self, second: bool) -> &'static str {
        match (self, second) {
            (Preset::V1_5, _) => r#"{"vocab_size":49408,"hidden_size":768,"intermediate_size":3072,"num_hidden_layers":12,"num_attention_heads":12,"max_position_embeddings":77,"hidden_act":"quick_gelu"}"#,
            (Preset::V2_1 | Preset::SdTurbo, _) => r#"{"vocab_size":49408,"hidden_size":1024,"intermediate_size":4096,"num_hidden_layers":23,"num_attention_heads":16,"max_position_embeddings":77,"hidden_act":"gelu"}"#,
            (Preset::SdxlTurbo, false) => r#"{"vocab_size":49408,"hidden_size":768,"intermediate_size":3072,"num_hidden_layers":12,"num_attention_heads":12,"max_position_embeddings":77,"hidden_act":"quick_gelu"}"#,
            (Preset::SdxlTurbo, true) => r#"{"vocab_size":49408,"hidden_size":1280,"intermediate_size":5120,"num_hidden_layers":32,"num_attention_heads":20,"max_position_embeddings":77,"hidden_act":"gelu"}"#,
        }
    }
}

/// Reads `dir/name` as JSON, or the preset's fallback when the file is absent.
fn json_or(dir: &Path, name: &str, fallback: &str) -> Result<Value> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON; restore it from the model repository", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::from_str(fallback).expect("built-in preset JSON")),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn get<T: for<'de> Deserialize<'de>>(v: &Value, key: &str, default: T, file: &str) -> Result<T> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => serde_json::from_value(x.clone()).with_context(|| format!("{file}: key `{key}` has an unexpected value {x}")),
    }
}

/// An int or a per-block list (diffusers accepts both for several keys).
fn per_block(v: &Value, key: &str, blocks: usize, default: usize, file: &str) -> Result<Vec<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(vec![default; blocks]),
        Some(Value::Number(n)) => Ok(vec![n.as_u64().with_context(|| format!("{file}: `{key}` must be a positive integer"))? as usize; blocks]),
        Some(Value::Array(a)) if a.len() == blocks => a
            .iter()
            .map(|x| x.as_u64().map(|n| n as usize).with_context(|| format!("{file}: `{key}` entries must be integers")))
            .collect(),
        Some(x) => bail!("{file}: `{key}` = {x} must be an integer or a list with one entry per block ({blocks})"),
    }
}

/// The UNet as candle builds it, plus what candle's constructor takes separately.
#[derive(Clone, Debug)]
pub struct UnetSpec {
    pub config: unet_2d::UNet2DConditionModelConfig,
    pub in_channels: usize,
    pub out_channels: usize,
    /// `addition_embed_type` (SDXL's "text_time"), which candle's UNet does not implement.
    pub addition_embed_type: Option<String>,
}

pub fn unet_spec(dir: &Path, preset: Preset) -> Result<UnetSpec> {
    let file = "unet/config.json";
    let v = json_or(dir, file, preset.unet_json())?;
    let channels: Vec<usize> = get(&v, "block_out_channels", vec![], file)?;
    if channels.is_empty() {
        bail!("{file}: `block_out_channels` is missing or empty");
    }
    let n = channels.len();
    let down: Vec<String> = get(&v, "down_block_types", vec![], file)?;
    let up: Vec<String> = get(&v, "up_block_types", vec![], file)?;
    if down.len() != n || up.len() != n {
        bail!("{file}: `down_block_types` and `up_block_types` need one entry per `block_out_channels` entry ({n})");
    }
    for (i, d) in down.iter().enumerate() {
        let mirrored = match d.as_str() {
            "CrossAttnDownBlock2D" => "CrossAttnUpBlock2D",
            "DownBlock2D" => "UpBlock2D",
            other => bail!("{file}: down block type `{other}` is not supported by candle's UNet (CrossAttnDownBlock2D or DownBlock2D)"),
        };
        if up[n - 1 - i] != mirrored {
            bail!("{file}: candle's UNet needs `up_block_types` to mirror `down_block_types`; up block {} is `{}`, expected `{mirrored}`", n - 1 - i, up[n - 1 - i]);
        }
    }
    for (key, allowed) in [("act_fn", "silu"), ("mid_block_type", "UNetMidBlock2DCrossAttn"), ("resnet_time_scale_shift", "default"), ("time_embedding_type", "positional")] {
        let value: Option<String> = get(&v, key, None, file)?;
        if let Some(value) = value.filter(|x| x != allowed) {
            bail!("{file}: `{key}` = \"{value}\" is not supported by candle's UNet (only \"{allowed}\")");
        }
    }
    let class_embed: Option<String> = get(&v, "class_embed_type", None, file)?;
    if let Some(c) = class_embed {
        bail!("{file}: `class_embed_type` = \"{c}\" is not supported by candle's UNet");
    }
    // diffusers' misnomer: `attention_head_dim` holds the number of heads unless
    // `num_attention_heads` is given; candle follows the same reading.
    let heads = match v.get("num_attention_heads") {
        Some(x) if !x.is_null() => per_block(&v, "num_attention_heads", n, 8, file)?,
        _ => per_block(&v, "attention_head_dim", n, 8, file)?,
    };
    let layers = per_block(&v, "transformer_layers_per_block", n, 1, file)?;
    let blocks = (0..n)
        .map(|i| unet_2d::BlockConfig {
            out_channels: channels[i],
            use_cross_attn: (down[i] == "CrossAttnDownBlock2D").then_some(layers[i]),
            attention_head_dim: heads[i],
        })
        .collect();
    let cross: Value = v.get("cross_attention_dim").cloned().unwrap_or(Value::from(768));
    let cross_attention_dim = match &cross {
        Value::Number(x) => x.as_u64().unwrap_or(0) as usize,
        Value::Array(a) => a.first().and_then(|x| x.as_u64()).unwrap_or(0) as usize,
        _ => 0,
    };
    if cross_attention_dim == 0 {
        bail!("{file}: `cross_attention_dim` must be a positive integer");
    }
    let norm_num_groups: usize = get(&v, "norm_num_groups", 32, file)?;
    if norm_num_groups != 32 {
        // candle 0.11.1's DownBlock2D and UpBlock2D build their ResNet blocks with the default 32
        // groups whatever the config says, so any other value would silently compute a different
        // network than the weights were trained as. Every published SD UNet uses 32.
        bail!("{file}: `norm_num_groups` = {norm_num_groups} is not supported: candle's UNet always normalises its down/up ResNet blocks in 32 groups (every published Stable Diffusion UNet uses 32)");
    }
    let config = unet_2d::UNet2DConditionModelConfig {
        center_input_sample: get(&v, "center_input_sample", false, file)?,
        flip_sin_to_cos: get(&v, "flip_sin_to_cos", true, file)?,
        freq_shift: get(&v, "freq_shift", 0.0, file)?,
        blocks,
        layers_per_block: get(&v, "layers_per_block", 2, file)?,
        downsample_padding: get(&v, "downsample_padding", 1, file)?,
        mid_block_scale_factor: get(&v, "mid_block_scale_factor", 1.0, file)?,
        norm_num_groups,
        norm_eps: get(&v, "norm_eps", 1e-5, file)?,
        cross_attention_dim,
        sliced_attention_size: None,
        use_linear_projection: get(&v, "use_linear_projection", false, file)?,
    };
    Ok(UnetSpec {
        config,
        in_channels: get(&v, "in_channels", 4, file)?,
        out_channels: get(&v, "out_channels", 4, file)?,
        addition_embed_type: get(&v, "addition_embed_type", None, file)?,
    })
}

#[derive(Clone, Debug)]
pub struct VaeSpec {
    pub config: vae::AutoEncoderKLConfig,
    /// Latents are scaled by this before the UNet sees them.
    pub scaling_factor: f64,
}

pub fn vae_spec(dir: &Path, preset: Preset) -> Result<VaeSpec> {
    let file = "vae/config.json";
    let v = json_or(dir, file, preset.vae_json())?;
    let block_out_channels: Vec<usize> = get(&v, "block_out_channels", vec![], file)?;
    if block_out_channels.is_empty() {
        bail!("{file}: `block_out_channels` is missing or empty");
    }
    for (key, want) in [("in_channels", 3usize), ("out_channels", 3)] {
        let got: usize = get(&v, key, want, file)?;
        if got != want {
            bail!("{file}: `{key}` = {got}; the VAE must map RGB images ({want} channels)");
        }
    }
    Ok(VaeSpec {
        config: vae::AutoEncoderKLConfig {
            block_out_channels,
            layers_per_block: get(&v, "layers_per_block", 2, file)?,
            latent_channels: get(&v, "latent_channels", 4, file)?,
            norm_num_groups: get(&v, "norm_num_groups", 32, file)?,
            use_quant_conv: get(&v, "use_quant_conv", true, file)?,
            use_post_quant_conv: get(&v, "use_post_quant_conv", true, file)?,
        },
        scaling_factor: get(&v, "scaling_factor", 0.18215, file)?,
    })
}

/// The text encoder's shape, read from `text_encoder*/config.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSpec {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: String,
}

pub fn text_spec(dir: &Path, preset: Preset, second: bool) -> Result<TextSpec> {
    let file = if second { "text_encoder_2/config.json" } else { "text_encoder/config.json" };
    let v = json_or(dir, file, preset.text_json(second))?;
    // CLIPTextModel configs are flat; full CLIPModel configs nest them under `text_config`.
    let v = v.get("text_config").cloned().unwrap_or(v);
    Ok(TextSpec {
        vocab_size: get(&v, "vocab_size", 49408, file)?,
        hidden_size: get(&v, "hidden_size", 768, file)?,
        intermediate_size: get(&v, "intermediate_size", 3072, file)?,
        num_hidden_layers: get(&v, "num_hidden_layers", 12, file)?,
        num_attention_heads: get(&v, "num_attention_heads", 12, file)?,
        max_position_embeddings: get(&v, "max_position_embeddings", 77, file)?,
        hidden_act: get(&v, "hidden_act", "quick_gelu".to_string(), file)?,
    })
}

/// How candle can build a text encoder of this shape.
pub enum TextBuild {
    /// Any quick-GELU CLIP: the general `models::clip` text model (public config).
    Generic(ClipTextConfig),
    /// A shape equal to one of candle's Stable Diffusion presets (needed for GELU encoders, whose
    /// config candle keeps private, and for SDXL's penultimate-layer output).
    Preset(clip::Config),
}

impl TextSpec {
    fn same_shape(&self, hidden: usize, inter: usize, layers: usize, heads: usize, act: &str) -> bool {
        (self.vocab_size, self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.num_attention_heads, self.max_position_embeddings)
            == (49408, hidden, inter, layers, heads, 77)
            && self.hidden_act == act
    }

    pub fn build(&self, penultimate: bool, file: &str) -> Result<TextBuild> {
        if self.same_shape(768, 3072, 12, 12, "quick_gelu") && penultimate {
            return Ok(TextBuild::Preset(clip::Config::sdxl()));
        }
        if self.same_shape(1024, 4096, 23, 16, "gelu") {
            return Ok(TextBuild::Preset(clip::Config::v2_1()));
        }
        if self.same_shape(1280, 5120, 32, 20, "gelu") {
            return Ok(TextBuild::Preset(clip::Config::sdxl2()));
        }
        match (self.hidden_act.as_str(), penultimate) {
            ("quick_gelu", false) => Ok(TextBuild::Generic(ClipTextConfig {
                vocab_size: self.vocab_size,
                embed_dim: self.hidden_size,
                activation: Activation::QuickGelu,
                intermediate_size: self.intermediate_size,
                max_position_embeddings: self.max_position_embeddings,
                pad_with: None,
                num_hidden_layers: self.num_hidden_layers,
                num_attention_heads: self.num_attention_heads,
                projection_dim: self.hidden_size,
            })),
            _ => bail!(
                "{file}: a `{}` text encoder of width {} with {} layers is not one candle can build \
                 (quick_gelu encoders of any shape, or the exact SD 2.x / SDXL encoder shapes)",
                self.hidden_act, self.hidden_size, self.num_hidden_layers
            ),
        }
    }
}

/// Scheduler constants from `scheduler/scheduler_config.json` (or the preset's).
#[derive(Clone, Debug)]
pub struct SchedulerSpec {
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: schedulers::BetaSchedule,
    pub train_timesteps: usize,
    pub prediction: schedulers::PredictionType,
    pub steps_offset: usize,
    pub spacing: schedulers::TimestepSpacing,
}

pub fn scheduler_spec(dir: &Path, preset: Preset) -> Result<SchedulerSpec> {
    let file = "scheduler/scheduler_config.json";
    let v = json_or(dir, file, preset.scheduler_json())?;
    let schedule: String = get(&v, "beta_schedule", "scaled_linear".into(), file)?;
    let prediction: String = get(&v, "prediction_type", "epsilon".into(), file)?;
    let spacing: String = get(&v, "timestep_spacing", "leading".into(), file)?;
    Ok(SchedulerSpec {
        beta_start: get(&v, "beta_start", 0.00085, file)?,
        beta_end: get(&v, "beta_end", 0.012, file)?,
        beta_schedule: match schedule.as_str() {
            "scaled_linear" => schedulers::BetaSchedule::ScaledLinear,
            "linear" => schedulers::BetaSchedule::Linear,
            "squaredcos_cap_v2" => schedulers::BetaSchedule::SquaredcosCapV2,
            other => bail!("{file}: beta_schedule `{other}` is not one candle implements (scaled_linear, linear, squaredcos_cap_v2)"),
        },
        train_timesteps: get(&v, "num_train_timesteps", 1000, file)?,
        prediction: match prediction.as_str() {
            "epsilon" => schedulers::PredictionType::Epsilon,
            "v_prediction" => schedulers::PredictionType::VPrediction,
            "sample" => schedulers::PredictionType::Sample,
            other => bail!("{file}: prediction_type `{other}` is unknown (epsilon, v_prediction, sample)"),
        },
        steps_offset: get(&v, "steps_offset", 1, file)?,
        spacing: match spacing.as_str() {
            "leading" => schedulers::TimestepSpacing::Leading,
            "trailing" => schedulers::TimestepSpacing::Trailing,
            "linspace" => schedulers::TimestepSpacing::Linspace,
            other => bail!("{file}: timestep_spacing `{other}` is unknown (leading, trailing, linspace)"),
        },
    })
}

impl SchedulerSpec {
    pub fn build(&self, kind: SchedulerKind, steps: usize) -> Result<Box<dyn schedulers::Scheduler>> {
        let built = match kind {
            SchedulerKind::Ddim => schedulers::SchedulerConfig::build(
                &ddim::DDIMSchedulerConfig {
                    beta_start: self.beta_start,
                    beta_end: self.beta_end,
                    beta_schedule: self.beta_schedule,
                    eta: 0.0,
                    steps_offset: self.steps_offset,
                    prediction_type: self.prediction,
                    train_timesteps: self.train_timesteps,
                    timestep_spacing: self.spacing,
                },
                steps,
            ),
            SchedulerKind::EulerAncestral => schedulers::SchedulerConfig::build(
                &euler_ancestral_discrete::EulerAncestralDiscreteSchedulerConfig {
                    beta_start: self.beta_start,
                    beta_end: self.beta_end,
                    beta_schedule: self.beta_schedule,
                    steps_offset: self.steps_offset,
                    prediction_type: self.prediction,
                    train_timesteps: self.train_timesteps,
                    timestep_spacing: self.spacing,
                },
                steps,
            ),
        };
        built.map_err(|e| anyhow::anyhow!("cannot build the {} scheduler for {steps} steps: {e}", kind.name()))
    }
}
