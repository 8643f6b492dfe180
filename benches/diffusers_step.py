"""Cross-check shiftbench's candle Stable Diffusion pipeline against diffusers/transformers.

Usage: python benches/diffusers_step.py MODEL_DIR IO.safetensors TIMESTEP [PROMPT...]

MODEL_DIR is a diffusers-layout model folder (e.g. the tiny random model the Rust test writes).
IO.safetensors holds what the candle side computed: `latents` (B,4,h,w), `text` (B,77,D) text
embeddings, `candle_out` the UNet output for them at TIMESTEP, and optionally `ids` (B,77) token
ids with the candle text embeddings in `text`, `candle_decoded` = VAE decode of `latents`, and
`images` (B,3,H,W in [-1, 1]) with `candle_encoded` = their scaled VAE posterior means.
With PROMPTs, `token_ids` (one row per prompt after the first two) holds shiftbench's token ids,
compared with transformers' slow CLIPTokenizer read from MODEL_DIR/tokenizer/vocab.json +
merges.txt; mismatching prompts are listed in `tokenizer_mismatches`.
Prints one JSON line with the largest absolute and relative (to the reference's largest
magnitude) differences of each part.
"""
import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.activations import GEGLU
from transformers import CLIPTextModel, CLIPTokenizer


def diff(ours, ref):
    ours, ref = ours.double(), ref.double()
    abs_diff = (ours - ref).abs().max().item()
    return abs_diff, abs_diff / max(ref.abs().max().item(), 1e-30)


def main():
    model_dir, io_file, timestep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    io = load_file(io_file)
    report = {}
    prompts = sys.argv[4:]
    if prompts and "token_ids" in io:
        tokenizer = CLIPTokenizer.from_pretrained(f"{model_dir}/tokenizer")
        ref_ids = tokenizer(prompts[2:], padding="max_length", max_length=77, truncation=True).input_ids
        ours = io["token_ids"].tolist()
        report["tokenizer_mismatches"] = [p for p, a, b in zip(prompts[2:], ours, ref_ids) if a != b]
    with torch.no_grad():
        unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet", torch_dtype=torch.float32).eval()
        ref = unet(io["latents"], timestep, encoder_hidden_states=io["text"]).sample
        report["unet_max_abs_diff"], report["unet_max_rel_diff"] = diff(io["candle_out"], ref)
        # candle's GEGLU feed-forward uses the tanh approximation of GELU, diffusers the exact
        # erf form. Running diffusers with the approximation isolates every other difference.
        for module in unet.modules():
            if isinstance(module, GEGLU):
                module.gelu = lambda gate: F.gelu(gate, approximate="tanh")
        ref_tanh = unet(io["latents"], timestep, encoder_hidden_states=io["text"]).sample
        report["unet_tanh_gelu_max_abs_diff"], report["unet_tanh_gelu_max_rel_diff"] = diff(io["candle_out"], ref_tanh)
        if "ids" in io:
            text_model = CLIPTextModel.from_pretrained(f"{model_dir}/text_encoder", torch_dtype=torch.float32).eval()
            ref_text = text_model(io["ids"].long()).last_hidden_state
            report["text_max_abs_diff"], report["text_max_rel_diff"] = diff(io["text"], ref_text)
        if "candle_decoded" in io:
            vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae", torch_dtype=torch.float32).eval()
            ref_img = vae.decode(io["latents"] / vae.config.scaling_factor).sample
            report["vae_max_abs_diff"], report["vae_max_rel_diff"] = diff(io["candle_decoded"], ref_img)
        if "images" in io:
            vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae", torch_dtype=torch.float32).eval()
            ref_mean = vae.encode(io["images"]).latent_dist.mean * vae.config.scaling_factor
            report["vae_encode_max_abs_diff"], report["vae_encode_max_rel_diff"] = diff(io["candle_encoded"], ref_mean)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
