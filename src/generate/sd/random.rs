//! Random-weight Stable Diffusion models in the diffusers layout, for tests and benchmarks.
//!
//! [`write_tiny_model`] writes a complete, loadable model folder (configs, a small CLIP-style BPE
//! tokenizer in both file formats, seeded safetensors) that goes through exactly the loading code of a real
//! checkpoint. Tensor names and shapes are whatever candle's constructors ask for, captured by
//! [`RandomWeights`], so they can never drift from what the loader expects.

use super::config;
use super::preset::Preset;
use super::pipeline::{Pipeline, TextEncoder};
use super::tokenizer::{clip_tokenizer_json, MERGES_FILE, VOCAB_FILE};
use super::weights::{save_safetensors, RandomFill, RandomWeights};
use crate::fsutil::write_atomic;
use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// Characters of the tiny vocabulary; each appears alone and as a word end (`c</w>`).
const TINY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789.,'-!";
/// A few merges so the BPE model really merges (pairs must be in the vocabulary).
const TINY_MERGES: [(&str, &str); 6] = [("o", "f</w>"), ("t", "h"), ("th", "e</w>"), ("p", "h"), ("ph", "o"), ("t", "o</w>")];

/// The tiny tokenizer's vocabulary size (its last two ids are start and end of text).
pub fn tiny_vocab_size() -> usize {
    TINY_CHARS.chars().count() * 2 + TINY_MERGES.len() + 2
}

/// The tiny vocabulary (token -> id; the last two are start and end of text) and its merges.
pub fn tiny_vocab_and_merges() -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let mut vocab = serde_json::Map::new();
    let mut push = |token: String| {
        let id = vocab.len();
        vocab.entry(token).or_insert(json!(id));
    };
    for c in TINY_CHARS.chars() {
        push(c.to_string());
    }
    for c in TINY_CHARS.chars() {
        push(format!("{c}</w>"));
    }
    for (a, b) in TINY_MERGES {
        push(format!("{a}{b}"));
    }
    push("<|startoftext|>".into());
    push("<|endoftext|>".into());
    (vocab, TINY_MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect())
}

/// A CLIP-style byte-level BPE tokenizer.json (the structure of openai/clip-vit-base-patch32's)
/// over the tiny vocabulary.
pub fn tiny_tokenizer_json() -> serde_json::Value {
    let (vocab, merges) = tiny_vocab_and_merges();
    clip_tokenizer_json(vocab, merges).expect("the tiny vocabulary has start and end tokens")
}

/// diffusers/transformers configs of the tiny model (SD 1.x architecture, a few channels wide).
pub fn tiny_configs() -> [(&'static str, serde_json::Value); 4] {
    let vocab = tiny_vocab_size();
    [
        (
            "unet/config.json",
            json!({
                "_class_name": "UNet2DConditionModel",
                "sample_size": 8, "in_channels": 4, "out_channels": 4,
                "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
                "block_out_channels": [32, 64], "layers_per_block": 1,
                "attention_head_dim": 4, "cross_attention_dim": 32, "norm_num_groups": 32, "norm_eps": 1e-5,
                "flip_sin_to_cos": true, "freq_shift": 0, "downsample_padding": 1, "mid_block_scale_factor": 1,
                "act_fn": "silu", "center_input_sample": false, "use_linear_projection": false
            }),
        ),
        (
            "vae/config.json",
            json!({
                "_class_name": "AutoencoderKL",
                "in_channels": 3, "out_channels": 3,
                "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
                "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
                "block_out_channels": [16, 32], "layers_per_block": 1, "latent_channels": 4,
                "norm_num_groups": 8, "sample_size": 32, "act_fn": "silu", "scaling_factor": 0.18215
            }),
        ),
        (
            "text_encoder/config.json",
            json!({
                "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
                "vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "projection_dim": 32,
                "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
                "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
                "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": 1
            }),
        ),
        (
            "scheduler/scheduler_config.json",
            json!({
                "_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                "num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "leading",
                "clip_sample": false, "set_alpha_to_one": false
            }),
        ),
    ]
}

/// Writes a complete tiny model (seeded random weights) to `dir` in the diffusers layout.
pub fn write_tiny_model(dir: &Path, seed: u64) -> Result<()> {
    for (file, value) in tiny_configs() {
        write_atomic(&dir.join(file), serde_json::to_string_pretty(&value)?.as_bytes())?;
    }
    // Both tokenizer formats, as CLIP repositories ship them; the loader prefers tokenizer.json.
    write_atomic(&dir.join("tokenizer/tokenizer.json"), serde_json::to_string_pretty(&tiny_tokenizer_json())?.as_bytes())?;
    let (vocab, merges) = tiny_vocab_and_merges();
    write_atomic(&dir.join("tokenizer").join(VOCAB_FILE), serde_json::to_string_pretty(&vocab)?.as_bytes())?;
    write_atomic(&dir.join("tokenizer").join(MERGES_FILE), format!("#version: 0.2\n{}\n", merges.join("\n")).as_bytes())?;
    write_random_weights(dir, Preset::V1_5, seed)
}

/// Builds each model of the folder's configs over a seeded [`RandomWeights`] and saves what the
/// constructors asked for as the diffusers weight files.
pub fn write_random_weights(dir: &Path, preset: Preset, seed: u64) -> Result<()> {
    let device = Device::Cpu;
    let text = Arc::new(RandomWeights::new(RandomFill::Seeded(seed)));
    let spec = config::text_spec(dir, preset, false)?;
    TextEncoder::build(VarBuilder::from_backend(Box::new(Shared(text.clone())), DType::F32, device.clone()), &spec, false, "text_encoder/config.json")?;
    save_safetensors(&text.tensors(), &dir.join("text_encoder/model.safetensors"))?;
    let unet = Arc::new(RandomWeights::new(RandomFill::Seeded(seed.wrapping_add(1))));
    Pipeline::build_unet(Box::new(Shared(unet.clone())), &config::unet_spec(dir, preset)?, &device, DType::F32)?;
    save_safetensors(&unet.tensors(), &dir.join("unet/diffusion_pytorch_model.safetensors"))?;
    let vae = Arc::new(RandomWeights::new(RandomFill::Seeded(seed.wrapping_add(2))));
    Pipeline::build_vae(Box::new(Shared(vae.clone())), &config::vae_spec(dir, preset)?, &device, DType::F32)?;
    save_safetensors(&vae.tensors(), &dir.join("vae/diffusion_pytorch_model.safetensors"))?;
    Ok(())
}

/// Lets a constructor consume a boxed backend while we keep a handle to read the tensors back.
pub struct Shared(pub Arc<RandomWeights>);

impl SimpleBackend for Shared {
    fn get(&self, s: candle_core::Shape, name: &str, h: candle_nn::Init, dtype: DType, dev: &Device) -> candle_core::Result<candle_core::Tensor> {
        self.0.get(s, name, h, dtype, dev)
    }
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<candle_core::Tensor> {
        self.0.get_unchecked(name, dtype, dev)
    }
    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_tensor(name)
    }
}
