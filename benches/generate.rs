//! Stable Diffusion generation throughput (images/s) on the device present.
//!
//! CPU (default): the tiny random model of the tests, sampled with each preset's steps, guidance
//! and scheduler at 32 px, batch 1 and 4: `cargo bench --bench generate`.
//!
//! GPU: the real sd-turbo architecture (865M-parameter UNet, VAE, 23-layer OpenCLIP-H text
//! encoder) with random weights made on the device (no files), 512 px, one step, guidance 0:
//!
//! ```text
//! SHIFTBENCH_BENCH_DEVICE=cuda cargo bench --features cuda --bench generate
//! ```
//!
//! The same real architecture on the CPU (f32, batch 1), as the reference a GPU figure is read
//! against: `SHIFTBENCH_BENCH_DEVICE=cpu-real SHIFTBENCH_BENCH_IMAGES=2 cargo bench --bench generate`.
//!
//! Optional: SHIFTBENCH_BENCH_DTYPE=f16|bf16|f32 (default f16 on CUDA), SHIFTBENCH_BENCH_IMAGES=N
//! timed images per batch size (default 16), SHIFTBENCH_BENCH_PRESET=sd-turbo|v1-5|v2-1 (real
//! architecture modes).

use candle_core::{DType, Device};
use shiftbench::generate::sd::random::{tiny_tokenizer_json, write_tiny_model};
use shiftbench::generate::sd::weights::{locate_files, RandomFill, RandomWeights};
use shiftbench::generate::sd::{Pipeline, Preset, Request, Sampling};
use std::time::Instant;

fn requests(n: usize, offset: u64) -> Vec<Request> {
    (0..n as u64).map(|i| Request { prompt: format!("a photo of a car number {i}."), seed: offset + i, source: None }).collect()
}

/// Images per second over `total` images generated in batches of `batch`, after one warm-up batch.
fn rate(p: &Pipeline, s: &Sampling, batch: usize, total: usize) -> f64 {
    p.generate(s, &requests(batch, 1_000_000)).expect("warm-up batch");
    let t = Instant::now();
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        p.generate(s, &requests(n, done as u64)).expect("timed batch");
        done += n;
    }
    if !p.device.is_cpu() {
        p.device.synchronize().expect("device sync");
    }
    total as f64 / t.elapsed().as_secs_f64()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let images = env_usize("SHIFTBENCH_BENCH_IMAGES", 16);
    match std::env::var("SHIFTBENCH_BENCH_DEVICE").as_deref() {
        Ok("cuda") => real_architecture(Device::new_cuda(0).expect("SHIFTBENCH_BENCH_DEVICE=cuda needs a build with --features cuda and a CUDA GPU"), images, &[1, 4]),
        Ok("cpu-real") => real_architecture(Device::Cpu, images, &[1]),
        Ok(other) if other != "cpu" => panic!("SHIFTBENCH_BENCH_DEVICE={other}: use cpu, cpu-real or cuda"),
        _ => cpu(images),
    }
}

fn cpu(images: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tiny_model(dir.path(), 1).expect("tiny model");
    let files = locate_files(dir.path(), Preset::V1_5).expect("tiny model files");
    let p = Pipeline::load(&files, Preset::V1_5, &Device::Cpu, DType::F32).expect("tiny model loads");
    println!("tiny random model (UNet 32/64 channels, VAE 16/32, CLIP 2x32) on CPU, 32 px, f32");
    for preset in [Preset::V1_5, Preset::V2_1, Preset::SdTurbo, Preset::SdxlTurbo] {
        let (_, steps, guidance, scheduler) = preset.defaults();
        let s = Sampling { scheduler, steps, guidance, size: 32, strength: None };
        for batch in [1, 4] {
            let r = rate(&p, &s, batch, images);
            println!("{:>10} sampling ({steps} steps, guidance {guidance}, {}), batch {batch}: {r:8.2} images/s", preset.name(), scheduler.name());
        }
    }
}

/// A preset's full-size architecture with random weights made on `device`, at its own size,
/// steps and guidance.
fn real_architecture(device: Device, images: usize, batches: &[usize]) {
    let dtype = match std::env::var("SHIFTBENCH_BENCH_DTYPE").as_deref() {
        Ok("f32") => DType::F32,
        Ok("bf16") => DType::BF16,
        Ok("f16") => DType::F16,
        _ if device.is_cpu() => DType::F32,
        _ => DType::F16,
    };
    let preset = match std::env::var("SHIFTBENCH_BENCH_PRESET").as_deref() {
        Ok("v1-5") => Preset::V1_5,
        Ok("v2-1") => Preset::V2_1,
        _ => Preset::SdTurbo,
    };
    // The configs come from the preset (an empty folder has no config.json); only a tokenizer is
    // written, since prompts still need ids (any ids below the real vocabulary size will do).
    let dir = tempfile::tempdir().expect("temp dir");
    let tok = dir.path().join("tokenizer.json");
    std::fs::write(&tok, serde_json::to_vec(&tiny_tokenizer_json()).unwrap()).unwrap();
    let random = || Box::new(RandomWeights::new(RandomFill::Device)) as Box<dyn candle_nn::var_builder::SimpleBackend>;
    let t = Instant::now();
    let p = Pipeline::from_backends(dir.path(), preset, &[tok.as_path()], vec![random()], random(), random(), &device, dtype).expect("real-size model with random weights");
    println!("{} architecture, random weights, built in {:.1} s on {:?}, {dtype:?}", preset.name(), t.elapsed().as_secs_f64(), device);
    let (size, steps, guidance, scheduler) = preset.defaults();
    let s = Sampling { scheduler, steps, guidance, size, strength: None };
    for &batch in batches {
        let r = rate(&p, &s, batch, images);
        println!("{} {size} px, {steps} step(s), guidance {guidance}, batch {batch}: {r:.3} images/s ({:.3} s/image)", preset.name(), 1.0 / r);
    }
}
