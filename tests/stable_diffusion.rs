//! The `stable-diffusion` generator end to end on a tiny random-weight model written in the
//! diffusers layout: the same loading code a real checkpoint takes, in seconds on a CPU.

use candle_core::{DType, Device, Tensor};
use shiftbench::data::procedural::DomainStyle;
use shiftbench::data::RgbImage;
use shiftbench::generate::manifest::{self, MANIFEST_FILE};
use shiftbench::generate::sd::random::write_tiny_model;
use shiftbench::generate::sd::tokenizer::PromptTokenizer;
use shiftbench::generate::sd::weights::{locate_files, WeightFiles};
use shiftbench::generate::sd::{DTypeChoice, Img2ImgSource, Pipeline, Preset, Request, Sampling, SchedulerKind, SdGenerator, SdSettings};
use shiftbench::generate::{generate_set_with, merge_shards, GenerateStats, SetOptions, Shard, TemplateSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// One tiny model per test process (writing it is the slow part).
fn model_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), 11).unwrap();
        dir
    })
    .path()
}

fn files() -> WeightFiles {
    locate_files(model_dir(), Preset::V1_5).unwrap()
}

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| Pipeline::load(&files(), Preset::V1_5, &Device::Cpu, DType::F32).unwrap())
}

fn sampling(scheduler: SchedulerKind, steps: usize, guidance: f64) -> Sampling {
    Sampling { scheduler, steps, guidance, size: 32, strength: None }
}

fn request(prompt: &str, seed: u64) -> Request {
    Request { prompt: prompt.into(), seed, source: None }
}

fn std_dev(img: &RgbImage) -> f64 {
    let n = img.pixels.len() as f64;
    let mean = img.pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
    (img.pixels.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Largest and mean absolute difference between two images' 8-bit channel values.
fn pixel_difference(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
    let diffs = a.pixels.iter().zip(&b.pixels).map(|(x, y)| x.abs_diff(*y));
    let max = diffs.clone().max().unwrap_or(0);
    (max, diffs.map(f64::from).sum::<f64>() / a.pixels.len() as f64)
}

fn source_image() -> RgbImage {
    shiftbench::data::procedural::render_domain_image(3, "train", DomainStyle::Photo, &[0, 1, 2], 4, 32).1
}

#[test]
fn text_to_image_and_img2img_make_varied_images_of_the_right_size() {
    let p = pipeline();
    let images = p.generate(&sampling(SchedulerKind::Ddim, 4, 7.5), &[request("a photo of a car.", 1), request("a sketch of the key.", 2)]).unwrap();
    assert_eq!(images.len(), 2);
    for img in &images {
        assert_eq!((img.width, img.height, img.pixels.len()), (32, 32, 32 * 32 * 3));
        assert!(std_dev(img) > 1.0, "a generated image is (nearly) constant: sd {}", std_dev(img));
    }
    assert_ne!(images[0], images[1]);

    let mut s = sampling(SchedulerKind::Ddim, 4, 7.5);
    s.strength = Some(0.5);
    let src = Request { source: Some(source_image()), ..request("a photo of a car.", 1) };
    let edited = p.generate(&s, std::slice::from_ref(&src)).unwrap();
    assert_eq!((edited[0].width, edited[0].height), (32, 32));
    assert!(std_dev(&edited[0]) > 1.0);
    assert_ne!(edited[0], images[0], "img2img must depend on the source image");
    let other_source = Request { source: Some(RgbImage::new(32, 32)), ..src.clone() };
    assert_ne!(p.generate(&s, &[other_source]).unwrap()[0], edited[0]);
    // Same seed, same bytes.
    assert_eq!(p.generate(&s, &[src]).unwrap()[0], edited[0]);

    // Guidance 0 (turbo style) with one Euler step, and a scheduler other than DDIM.
    let one = p.generate(&sampling(SchedulerKind::EulerAncestral, 1, 0.0), &[request("a photo of a fish.", 5)]).unwrap();
    assert!(std_dev(&one[0]) > 1.0);
}

#[test]
fn batched_sampling_equals_one_at_a_time() {
    let p = pipeline();
    let reqs = [request("a photo of a car.", 10), request("a painting of the fish.", 11), request("a toy key.", 12)];
    for s in [sampling(SchedulerKind::Ddim, 3, 7.5), sampling(SchedulerKind::EulerAncestral, 3, 7.5)] {
        let batch = p.generate(&s, &reqs).unwrap();
        // A true batched forward pass (the GPU path; seeds, guidance and noise are per image).
        // It runs the same arithmetic in other GEMM calls: on the development CPU it gave each
        // image bit for bit, on an AMD AVX2 CPU (another L1 geometry, so the `gemm` crate cuts
        // the reduction elsewhere) one pixel moved by one level. Only `generate` promises bytes
        // (it samples one image per call), so the fused pass is held to "the same image up to
        // rounding", far below how much two requests' images differ (checked after the loop).
        let fused = p.generate_batch(&s, &reqs).unwrap();
        for ((r, img), fused) in reqs.iter().zip(&batch).zip(&fused) {
            let alone = p.generate(&s, std::slice::from_ref(r)).unwrap();
            assert_eq!(&alone[0], img, "{:?}: batched and single generation differ for {:?}", s.scheduler, r.prompt);
            let (max, mean) = pixel_difference(fused, img);
            assert!(max <= 8 && mean <= 0.25, "{:?}: a fused batch changed {:?} beyond rounding: max {max}, mean {mean:.3} levels", s.scheduler, r.prompt);
        }
        // The bound can fail: images of different requests differ far more than rounding.
        let apart = pixel_difference(&batch[0], &batch[1]).1;
        assert!(apart > 4.0, "two prompts' images differ by only {apart:.2} levels on average: the bound above tests nothing");
    }
}

fn generator(batch_size: usize, img2img: bool) -> SdGenerator {
    let settings = SdSettings {
        preset: Preset::V1_5,
        templates: TemplateSet::ClipImagenet80,
        sampling: Sampling { scheduler: SchedulerKind::Ddim, steps: 2, guidance: 7.5, size: 32, strength: None },
        dtype: DTypeChoice::Auto,
        batch_size,
        img2img: img2img.then(|| Img2ImgSource { domain: "train".into(), style: DomainStyle::Photo, seed: 4, size: 16, strength: 0.75 }),
    };
    SdGenerator::new(settings, model_dir(), Device::Cpu).unwrap()
}

fn run(gen: &SdGenerator, dir: &Path, opts: &SetOptions) -> (Vec<manifest::ManifestRow>, GenerateStats) {
    let bar = indicatif::ProgressBar::hidden();
    let (images, rows, stats) = generate_set_with(gen, 4, "sd-gen", &[0, 1, 2], 6, 16, dir, &bar, opts).unwrap();
    assert_eq!(images.len(), rows.len());
    (rows, stats)
}

#[test]
fn generated_sets_are_reproducible_resumable_and_shardable() {
    let gen = generator(4, false);
    let full = tempfile::tempdir().unwrap();
    let (rows, stats) = run(&gen, full.path(), &SetOptions::default());
    assert_eq!(stats, GenerateStats { rendered: 6, reused: 0 });
    let manifest_bytes = std::fs::read(full.path().join(MANIFEST_FILE)).unwrap();
    let text = String::from_utf8(manifest_bytes.clone()).unwrap();
    assert!(text.starts_with("path,label,class_name,prompt,template_id,seed,generator,sha256,weights_sha256,scheduler,steps,guidance,gen_size,strength,source_image\n"), "{text}");
    let d = rows[0].diffusion.as_ref().unwrap();
    assert_eq!((d.scheduler.as_str(), d.steps, d.guidance, d.gen_size), ("ddim", 2, 7.5, 32));
    assert_eq!(d.weights_sha256, gen.weights_sha256);
    assert_eq!(rows[0].generator, "stable-diffusion/v1-5/clip-imagenet-80");
    for row in &rows {
        let png = std::fs::read(full.path().join(&row.path)).unwrap();
        let img = RgbImage::from_png(&png, Path::new(&row.path)).unwrap();
        assert_eq!((img.width, img.height), (16, 16), "stored at the suite's image size");
    }

    // Same seed, fresh folder, batch size 1: byte-identical manifest and images.
    let again = tempfile::tempdir().unwrap();
    run(&generator(1, false), again.path(), &SetOptions::default());
    assert_eq!(std::fs::read(again.path().join(MANIFEST_FILE)).unwrap(), manifest_bytes);
    for row in &rows {
        assert_eq!(std::fs::read(again.path().join(&row.path)).unwrap(), std::fs::read(full.path().join(&row.path)).unwrap());
    }

    // Resume: nothing rendered, nothing rewritten.
    let mtimes: Vec<_> = rows.iter().map(|r| std::fs::metadata(full.path().join(&r.path)).unwrap().modified().unwrap()).collect();
    let (_, stats) = run(&gen, full.path(), &SetOptions::default());
    assert_eq!(stats, GenerateStats { rendered: 0, reused: 6 });
    let mtimes2: Vec<_> = rows.iter().map(|r| std::fs::metadata(full.path().join(&r.path)).unwrap().modified().unwrap()).collect();
    assert_eq!(mtimes, mtimes2);

    // An interrupted run (stopped after 2 new images, one checkpoint per batch) finishes the set
    // on the next call without redoing the first two.
    let interrupted = tempfile::tempdir().unwrap();
    let stop = SetOptions { max_new: Some(2), checkpoint_every: 2, ..Default::default() };
    let (partial, stats) = run(&gen, interrupted.path(), &stop);
    assert_eq!((partial.len(), stats.rendered), (2, 2));
    assert_eq!(manifest::read(&interrupted.path().join(MANIFEST_FILE)).unwrap().len(), 2);
    let (_, stats) = run(&gen, interrupted.path(), &SetOptions::default());
    assert_eq!(stats, GenerateStats { rendered: 4, reused: 2 });
    assert_eq!(std::fs::read(interrupted.path().join(MANIFEST_FILE)).unwrap(), manifest_bytes);

    // Two shards merged equal the unsharded run; shard 3/6 regenerates image 3 alone.
    let (s0, s1, merged) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&gen, s0.path(), &SetOptions { shard: Shard::parse("0/2").unwrap(), ..Default::default() });
    run(&gen, s1.path(), &SetOptions { shard: Shard::parse("1/2").unwrap(), ..Default::default() });
    merge_shards(merged.path(), &[s0.path().to_path_buf(), s1.path().to_path_buf()]).unwrap();
    assert_eq!(std::fs::read(merged.path().join(MANIFEST_FILE)).unwrap(), manifest_bytes);
    for row in &rows {
        assert_eq!(std::fs::read(merged.path().join(&row.path)).unwrap(), std::fs::read(full.path().join(&row.path)).unwrap());
    }
    let single = tempfile::tempdir().unwrap();
    let (one, _) = run(&gen, single.path(), &SetOptions { shard: Shard { index: 3, count: 6 }, ..Default::default() });
    assert_eq!(one, vec![rows[3].clone()]);
    assert_eq!(std::fs::read(single.path().join(&rows[3].path)).unwrap(), std::fs::read(full.path().join(&rows[3].path)).unwrap());
    assert!(Shard::parse("2/2").is_err() && Shard::parse("x").is_err());
}

#[test]
fn img2img_sets_record_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, _) = run(&generator(2, true), dir.path(), &SetOptions::default());
    let d = rows[5].diffusion.as_ref().unwrap();
    assert_eq!((d.strength, d.source_image.as_deref()), (Some(0.75), Some("domain/train/5")));
}

#[test]
fn missing_weights_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("unet")).unwrap();
    std::fs::copy(model_dir().join("unet/diffusion_pytorch_model.safetensors"), dir.path().join("unet/diffusion_pytorch_model.safetensors")).unwrap();
    let e = locate_files(dir.path(), Preset::V1_5).unwrap_err().to_string();
    for w in ["vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/tokenizer.json", "--weights", "SHIFTBENCH_SD_WEIGHTS", "runwayml/stable-diffusion-v1-5"] {
        assert!(e.contains(w), "{e:?} should mention {w:?}");
    }
    assert!(!e.contains("unet/"), "the UNet is present: {e}");
    let e = locate_files(dir.path(), Preset::SdxlTurbo).unwrap_err().to_string();
    assert!(e.contains("text_encoder_2/model.safetensors") && e.contains("tokenizer_2/tokenizer.json"), "{e}");
}

/// The error of loading a tiny model whose UNet config.json has `from` replaced by `to`.
fn load_error_after_unet_config_edit(from: &str, to: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), 3).unwrap();
    let config = dir.path().join("unet/config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(from), "{from} is not in the tiny UNet config");
    std::fs::write(&config, text.replace(from, to)).unwrap();
    let files = locate_files(dir.path(), Preset::V1_5).unwrap();
    match Pipeline::load(&files, Preset::V1_5, &Device::Cpu, DType::F32) {
        Ok(_) => panic!("a UNet config with {to} loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_mis_shaped_tensor_names_the_file_and_the_tensor() {
    let e = load_error_after_unet_config_edit("\"cross_attention_dim\": 32", "\"cross_attention_dim\": 48");
    assert!(e.contains("unet/diffusion_pytorch_model.safetensors"), "{e}");
    assert!(e.contains("attn2.to_k.weight") && e.contains("[32, 32]") && e.contains("48"), "{e}");
}

const TOKENIZER_PROMPTS: [&str; 5] = ["a photo of a car.", "A  Bad PHOTO of the key-ring 42!", "itap of the fish's tail.", "", "the thethe of of toto, photo"];

#[test]
fn vocab_and_merges_tokenize_like_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), 3).unwrap();
    let tok = dir.path().join("tokenizer");
    let fast = PromptTokenizer::load(&tok.join("tokenizer.json"), 77, false).unwrap();
    let slow = PromptTokenizer::load(&tok.join("vocab.json"), 77, false).unwrap();
    for prompt in TOKENIZER_PROMPTS {
        assert_eq!(fast.ids(prompt).unwrap(), slow.ids(prompt).unwrap(), "{prompt:?}");
    }
    // A folder with only the pair (as Stable Diffusion repositories ship it) is complete.
    std::fs::remove_file(tok.join("tokenizer.json")).unwrap();
    let files = locate_files(dir.path(), Preset::V1_5).unwrap();
    assert_eq!(files.tokenizer, Path::new("tokenizer/vocab.json"));
    assert!(files.hashed_files().contains(&Path::new("tokenizer/merges.txt").to_path_buf()));
    let p = Pipeline::load(&files, Preset::V1_5, &Device::Cpu, DType::F32).unwrap();
    assert_eq!(p.token_ids("a photo of a car.").unwrap(), fast.ids("a photo of a car.").unwrap());
    // Without merges.txt the folder is incomplete, and the error says so.
    std::fs::remove_file(tok.join("merges.txt")).unwrap();
    let e = locate_files(dir.path(), Preset::V1_5).unwrap_err().to_string();
    assert!(e.contains("tokenizer/merges.txt"), "{e}");
    std::fs::write(tok.join("merges.txt"), "#version: 0.2\nt h e\n").unwrap();
    let e = PromptTokenizer::load(&tok.join("vocab.json"), 77, false).err().unwrap().to_string();
    assert!(e.contains("merges.txt:2") && e.contains("two tokens"), "{e}");
}

#[test]
fn a_unet_with_other_than_32_norm_groups_is_refused() {
    let e = load_error_after_unet_config_edit("\"norm_num_groups\": 32", "\"norm_num_groups\": 8");
    assert!(e.contains("unet/config.json") && e.contains("norm_num_groups") && e.contains("32"), "{e}");
}

/// Every model pass gives each image of a batch what it gives that image alone (within float
/// rounding): guards against candle's CPU batched-matmul fold (see `Pipeline::decode_raw`).
#[test]
fn model_passes_treat_batch_members_independently() {
    let p = pipeline();
    let mut s = shiftbench::rng::Stream::new(5, "batch-check", 0);
    let mut normal = |shape: (usize, usize, usize, usize)| {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        Tensor::from_vec((0..n).map(|_| s.normal() as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
    };
    let latents = normal((3, 4, 8, 8));
    let images = (normal((3, 3, 32, 32)) * 0.5).unwrap();
    let text = p.encode_prompts(&["a photo of a car.", "a sketch of the key.", ""]).unwrap();
    type Pass<'a> = Box<dyn Fn(&Tensor, std::ops::Range<usize>) -> Tensor + 'a>;
    let passes: [(&str, &Tensor, Pass); 3] = [
        ("VAE decode", &latents, Box::new(|x, _| p.decode_raw(x).unwrap())),
        ("VAE encode", &images, Box::new(|x, _| p.encode_raw(x).unwrap())),
        ("UNet", &latents, Box::new(|x, r| p.unet_step(x, 500.0, &text.narrow(0, r.start, r.len()).unwrap()).unwrap())),
    ];
    for (name, input, pass) in passes {
        let whole = pass(input, 0..3);
        for i in 0..3 {
            let alone = pass(&input.narrow(0, i, 1).unwrap(), i..i + 1);
            let diff = (whole.narrow(0, i, 1).unwrap() - &alone).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = alone.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff <= 1e-5 * scale, "{name}: image {i} in a batch of 3 differs from alone by {diff} (largest value {scale})");
        }
    }
}

/// A suite whose generated set uses a stable-diffusion generator with `weights`.
fn sd_suite(dir: &Path, weights: &str) -> std::path::PathBuf {
    let shapes = include_str!("../suites/shapes.toml");
    let text = shapes.replacen(
        "kind = \"procedural\"\ntemplates = \"clip-imagenet-80\"",
        &format!("kind = \"stable-diffusion\"\ntemplates = \"clip-imagenet-80\"\npreset = \"v1-5\"\nweights = \"{weights}\"\nsteps = 2\nsize = 32"),
        1,
    );
    assert_ne!(text, shapes);
    let path = dir.join("sd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_and_run_fail_before_any_work_without_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("no-model");
    std::fs::create_dir_all(&empty).unwrap();
    let suite = sd_suite(tmp.path(), empty.to_str().unwrap());
    let bin = env!("CARGO_BIN_EXE_shiftbench");
    for args in [vec!["check", suite.to_str().unwrap()], vec!["run", suite.to_str().unwrap(), "--quick", "--out", tmp.path().join("out").to_str().unwrap()]] {
        let out = Command::new(bin).args(&args).env_remove("SHIFTBENCH_SD_WEIGHTS").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded without weights");
        for w in ["unet/diffusion_pytorch_model.safetensors", "tokenizer/tokenizer.json", "--weights", "SHIFTBENCH_SD_WEIGHTS", "generator `procedural`"] {
            assert!(err.contains(w), "{args:?}: {err:?} should mention {w:?}");
        }
        assert!(!tmp.path().join("out/work").exists(), "{args:?} started work before failing");
    }
    // The --weights flag (and the env var) point at a complete model: check passes.
    let out = Command::new(bin).args(["check", suite.to_str().unwrap(), "--weights", model_dir().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stable-diffusion weights complete"));
}

#[test]
fn the_generate_command_shards_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = sd_suite(tmp.path(), model_dir().to_str().unwrap());
    let bin = env!("CARGO_BIN_EXE_shiftbench");
    let out = tmp.path().join("results");
    let gen = |extra: &[&str], dir: &Path| {
        let mut args = vec!["generate", suite.to_str().unwrap(), "--set", "gen-val", "--quick", "--out", out.to_str().unwrap(), "--dir", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = Command::new(bin).args(&args).env("SHIFTBENCH_CACHE", tmp.path().join("cache")).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let (whole, a, b, merged) = (tmp.path().join("whole"), tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("merged"));
    gen(&[], &whole);
    gen(&["--shard", "0/2"], &a);
    gen(&["--shard", "1/2"], &b);
    let o = Command::new(bin).args(["generate", "--merge", merged.to_str().unwrap(), a.to_str().unwrap(), b.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole_manifest = std::fs::read(whole.join(MANIFEST_FILE)).unwrap();
    assert_eq!(std::fs::read(merged.join(MANIFEST_FILE)).unwrap(), whole_manifest);
    // gen-val: 1000 images scaled by the quick profile's 0.08.
    assert_eq!(manifest::read(&whole.join(MANIFEST_FILE)).unwrap().len(), 80);
}

/// Runs one UNet step through diffusers on the same tiny weights, latents and text embeddings
/// (opt-in: SHIFTBENCH_TORCH_PYTHON names a Python with torch + diffusers + transformers).
#[test]
fn one_unet_step_matches_diffusers() {
    let Some(python) = std::env::var_os("SHIFTBENCH_TORCH_PYTHON") else {
        println!("skipped: set SHIFTBENCH_TORCH_PYTHON to a Python with torch, diffusers and transformers to compare with diffusers");
        return;
    };
    let p = pipeline();
    let text = p.encode_prompts(&["a photo of a car.", ""]).unwrap();
    let mut s = shiftbench::rng::Stream::new(1, "diffusers-compare", 0);
    let latents: Vec<f32> = (0..2 * 4 * 8 * 8).map(|_| s.normal() as f32).collect();
    let latents = Tensor::from_vec(latents, (2, 4, 8, 8), &Device::Cpu).unwrap();
    let out = p.unet_step(&latents, 981.0, &text).unwrap();
    let ids: Vec<u32> = ["a photo of a car.", ""].iter().flat_map(|t| p.token_ids(t).unwrap()).collect();
    let ids = Tensor::from_vec(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), (2, 77), &Device::Cpu).unwrap();
    let token_ids: Vec<u32> = TOKENIZER_PROMPTS.iter().flat_map(|t| p.token_ids(t).unwrap()).collect();
    let token_ids = Tensor::from_vec(token_ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), (TOKENIZER_PROMPTS.len(), 77), &Device::Cpu).unwrap();
    let decoded = p.decode_raw(&latents).unwrap();
    let images: Vec<f32> = (0..2 * 3 * 32 * 32).map(|_| s.uniform(-1.0, 1.0) as f32).collect();
    let images = Tensor::from_vec(images, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let encoded = p.encode_raw(&images).unwrap();
    let io = tempfile::tempdir().unwrap();
    let io_file = io.path().join("io.safetensors");
    let tensors = std::collections::HashMap::from([("latents".to_string(), latents), ("text".to_string(), text), ("candle_out".to_string(), out), ("ids".to_string(), ids), ("token_ids".to_string(), token_ids), ("candle_decoded".to_string(), decoded), ("images".to_string(), images), ("candle_encoded".to_string(), encoded)]);
    candle_core::safetensors::save(&tensors, &io_file).unwrap();
    if let Some(keep) = std::env::var_os("SHIFTBENCH_DIFFUSERS_KEEP") {
        // For investigating a mismatch by hand: the model folder and the exchanged tensors.
        std::fs::copy(&io_file, Path::new(&keep).join("io.safetensors")).unwrap();
        println!("model folder: {}", model_dir().display());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/diffusers_step.py");
    // The prompts the ids came from, then those the tokenizers are compared on.
    let prompts = ["a photo of a car.", ""].into_iter().chain(TOKENIZER_PROMPTS);
    let o = Command::new(python).arg(script).arg(model_dir()).arg(&io_file).arg("981").args(prompts).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&o.stderr));
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["tokenizer_mismatches"], serde_json::json!([]), "transformers' CLIPTokenizer gives other ids");
    // Float rounding only, once diffusers uses candle's tanh GELU in the UNet feed-forward.
    for part in ["unet_tanh_gelu_max_rel_diff", "text_max_rel_diff", "vae_max_rel_diff", "vae_encode_max_rel_diff"] {
        let rel = report[part].as_f64().unwrap();
        assert!(rel < 1e-5, "candle and diffusers disagree: {part} = {rel}");
    }
    // Against stock diffusers (exact erf GELU) the approximation itself shows (8e-5 last run).
    let rel = report["unet_max_rel_diff"].as_f64().unwrap();
    assert!(rel < 1e-3, "candle and diffusers disagree: unet_max_rel_diff = {rel}");
}

/// `artifact:NAME` weights: a tar.gz of the diffusers folder pinned in datasets.lock, fetched from
/// a mirror folder, then read by `generate` from the cache without any network.
#[test]
fn weights_from_a_pinned_archive() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let archive = mirror.join("sd-tiny.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all("sd-tiny", model_dir()).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let bytes = std::fs::read(&archive).unwrap();
    let sha = format!("{:x}", Sha256::digest(&bytes));
    // Port 9 (discard) on loopback: the mirror must satisfy the fetch without it.
    let lock = format!(
        "version = 1\n\n[[artifact]]\nname = \"sd-tiny\"\nurls = [\"http://127.0.0.1:9/sd-tiny.tar.gz\"]\nsha256 = \"{sha}\"\nbytes = {}\nformat = \"tar.gz\"\nlicense = \"test weights\"\nhomepage = \"https://example.org/sd-tiny\"\n",
        bytes.len()
    );
    std::fs::write(tmp.path().join("datasets.lock"), lock).unwrap();
    let suite = sd_suite(tmp.path(), "artifact:sd-tiny");
    let bin = env!("CARGO_BIN_EXE_shiftbench");
    let cache = tmp.path().join("cache");
    let shiftbench = |args: &[&str]| Command::new(bin).args(args).current_dir(tmp.path()).env("SHIFTBENCH_CACHE", &cache).env_remove("SHIFTBENCH_SD_WEIGHTS").output().unwrap();
    let generate = |dir: &Path, weights: Option<&str>| {
        let mut args = vec!["generate", suite.to_str().unwrap(), "--set", "gen-val", "--quick", "--max-new", "2", "--dir", dir.to_str().unwrap()];
        if let Some(w) = weights {
            args.extend(["--weights", w]);
        }
        shiftbench(&args)
    };
    // Not fetched yet: the error says how to get it, and nothing is generated.
    let o = generate(&tmp.path().join("early"), None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("shiftbench fetch sd-tiny"), "{err}");
    assert!(!tmp.path().join("early").exists());
    let o = shiftbench(&["fetch", "sd-tiny", "--mirror", mirror.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let from_archive = tmp.path().join("from-archive");
    let o = generate(&from_archive, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same files read from a plain folder give the same weights hash and the same images.
    let from_folder = tmp.path().join("from-folder");
    let o = generate(&from_folder, Some(model_dir().to_str().unwrap()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (manifest::read(&from_archive.join(MANIFEST_FILE)).unwrap(), manifest::read(&from_folder.join(MANIFEST_FILE)).unwrap());
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
}

/// The full-size architectures the presets describe (their built-in configs: the public
/// model cards' values) build in candle and make an image end to end, at 64 px with one step to
/// stay quick. Random weights, so only shapes and wiring are checked, not pictures.
#[test]
fn preset_architectures_build_and_generate() {
    use shiftbench::generate::sd::weights::{RandomFill, RandomWeights};
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tokenizer.json");
    std::fs::write(&tok, serde_json::to_vec(&shiftbench::generate::sd::random::tiny_tokenizer_json()).unwrap()).unwrap();
    let random = || Box::new(RandomWeights::new(RandomFill::Device)) as Box<dyn candle_nn::var_builder::SimpleBackend>;
    for preset in [Preset::V1_5, Preset::SdTurbo] {
        let t = std::time::Instant::now();
        let p = Pipeline::from_backends(dir.path(), preset, &[tok.as_path()], vec![random()], random(), random(), &Device::Cpu, DType::F32).unwrap();
        let (_, _, _, scheduler) = preset.defaults();
        let img = p.generate(&Sampling { scheduler, steps: 1, guidance: 0.0, size: 64, strength: None }, &[request("a photo of a car.", 1)]).unwrap();
        assert_eq!((img[0].width, img[0].height), (64, 64));
        println!("{}: built and generated in {:.1} s", preset.name(), t.elapsed().as_secs_f64());
    }
}
