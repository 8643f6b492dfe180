//! Training and evaluation throughput of the reference model, side by side with PyTorch.
//!
//! Run with `cargo bench --bench training`. The reference model is the `shapes` suite's
//! architecture at width 32 (3×3/2 stem, one basic block per stage, three stages), 32 px
//! images, batch 128, on every core. PyTorch runs the same network, batch, image size and
//! thread count (`benches/pytorch_reference.py`) when `$SHIFTBENCH_TORCH_PYTHON` (default
//! `python3`) can `import torch`; runs alternate between the two so that a busy machine slows
//! both alike. Each figure is the median of `$SHIFTBENCH_BENCH_RUNS` runs (default 5).
//!
//! A last section times the column matrix alone against the candle-primitives path it replaced.

use candle_core::{Device, Tensor, Var};
use serde::Deserialize;
use shiftbench::data::procedural::{render_domain, DomainStyle};
use shiftbench::data::ImageSet;
use shiftbench::model::im2col::{Geometry, Im2Col};
use shiftbench::model::{ResNet, ResNetConfig};
use shiftbench::eval::predict;
use shiftbench::train::{train, train_with, Augment, Mix, Schedule, TrainConfig, TrainData, TrainOptions};
use std::process::Command;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// One architecture and batch size measured in both frameworks.
struct Case {
    width: usize,
    batch: usize,
}

#[derive(Deserialize)]
struct TorchRun {
    torch: String,
    train_images_per_s: f64,
    eval_images_per_s: f64,
}

fn torch_python() -> Option<String> {
    let python = std::env::var("SHIFTBENCH_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python).args(["-c", "import torch"]).output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(python)
}

fn torch_run(python: &str, case: &Case, images: usize, threads: usize, channels_last: bool) -> TorchRun {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_reference.py");
    let mut cmd = Command::new(python);
    cmd.arg(script);
    for (flag, value) in [("--width", case.width), ("--batch", case.batch), ("--images", images), ("--threads", threads), ("--runs", 1)] {
        cmd.args([flag, &value.to_string()]);
    }
    if channels_last {
        cmd.arg("--channels-last");
    }
    let out = cmd.output().expect("cannot start the PyTorch reference");
    assert!(out.status.success(), "PyTorch reference failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("PyTorch reference printed no JSON")
}

/// Images/s for one training epoch and one evaluation pass over `images`.
fn train_config(batch_size: usize, augment: Augment) -> TrainConfig {
    TrainConfig {
        epochs: 1, batch_size, lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 5e-4,
        label_smoothing: 0.1, schedule: Schedule::Triangular, peak_epoch: 0.5, milestones: vec![], gamma: 0.1,
        clip_grad_norm: None, augment, mix: Mix::Concat, seed: 0,
    }
}

fn shiftbench_run(case: &Case, images: &ImageSet, device: &Device) -> (f64, f64) {
    let config = train_config(case.batch, Augment::None);
    let model_config = ResNetConfig { width: case.width, blocks: 1, stages: 3, num_classes: 10, image_size: 32 };
    let mut model = ResNet::new(model_config, 0, device).unwrap();
    let t = Instant::now();
    train(&mut model, images, &config, device, |_, _, _| {}).unwrap();
    let train_rate = images.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    predict(&mut model, images, false).unwrap();
    (train_rate, images.len() as f64 / t.elapsed().as_secs_f64())
}

fn main() {
    let device = Device::Cpu;
    let runs: usize = std::env::var("SHIFTBENCH_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let classes: Vec<usize> = (0..10).collect();
    let n_images = 1024;
    let images = render_domain(0, "bench", DomainStyle::Photo, &classes, n_images, 32, &indicatif::ProgressBar::hidden());
    let python = torch_python();
    if python.is_none() {
        println!("PyTorch not importable (set SHIFTBENCH_TORCH_PYTHON to a python with torch): shiftbench figures only");
    }
    println!("{runs} runs each, {n_images} images at 32 px, {threads} threads; images/s, median");
    // The reference model first; then the default suite's own model and batch.
    for case in [Case { width: 32, batch: 128 }, Case { width: 16, batch: 64 }] {
        // One untimed run warms the allocator and the GEMM packing buffers.
        shiftbench_run(&case, &images, &device);
        let (mut ours_train, mut ours_eval, mut torch_runs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (t, e) = shiftbench_run(&case, &images, &device);
            ours_train.push(t);
            ours_eval.push(e);
            if let Some(python) = &python {
                // PyTorch's faster memory format for this network, chosen per run.
                torch_runs.push([false, true].map(|cl| torch_run(python, &case, n_images, threads, cl)));
            }
        }
        let (ours_train, ours_eval) = (median(ours_train), median(ours_eval));
        println!(
            "resnet-w{}-b1-s3, batch {}: shiftbench training {ours_train:.0}, evaluation {ours_eval:.0}",
            case.width, case.batch
        );
        if !torch_runs.is_empty() {
            let pick = |f: fn(&TorchRun) -> f64, i: usize| median(torch_runs.iter().map(|r| f(&r[i])).collect());
            let train_nchw = pick(|r| r.train_images_per_s, 0);
            let train_cl = pick(|r| r.train_images_per_s, 1);
            let eval_nchw = pick(|r| r.eval_images_per_s, 0);
            let eval_cl = pick(|r| r.eval_images_per_s, 1);
            let (torch_train, torch_eval) = (train_nchw.max(train_cl), eval_nchw.max(eval_cl));
            println!(
                "  PyTorch {} training {torch_train:.0} (NCHW {train_nchw:.0}, channels-last {train_cl:.0}), evaluation {torch_eval:.0} (NCHW {eval_nchw:.0}, channels-last {eval_cl:.0})",
                torch_runs[0][0].torch
            );
            println!(
                "  shiftbench / PyTorch (PyTorch's faster format): training {:.2}, evaluation {:.2}",
                ours_train / torch_train,
                ours_eval / torch_eval
            );
        }
    }

    // Batch assembly (decode, augment, normalise) on builder threads while the model steps,
    // against building each batch on the training thread.
    let model_config = ResNetConfig { width: 16, blocks: 1, stages: 3, num_classes: 10, image_size: 32 };
    for augment in [Augment::None, Augment::Standard, Augment::Augmix] {
        let config = train_config(64, augment);
        let rate = |threads: usize| {
            let mut model = ResNet::new(model_config.clone(), 0, &device).unwrap();
            let opts = TrainOptions { loader_threads: threads, ..TrainOptions::default() };
            let t = Instant::now();
            train_with(&mut model, TrainData::plain(&images), &config, &opts, &device, |_, _, _| {}).unwrap();
            images.len() as f64 / t.elapsed().as_secs_f64()
        };
        let rates: Vec<(usize, f64)> = [0usize, 1, 2].into_iter().map(|n| (n, median((0..runs).map(|_| rate(n)).collect()))).collect();
        let shown: Vec<String> = rates.iter().map(|(n, r)| format!("{n} builders {r:.0} ({:.2}×)", r / rates[0].1)).collect();
        println!("resnet-w16-b1-s3 training, augment {augment:?}: {}", shown.join(", "));
    }

    // The column matrix alone, forward + backward, against the candle-primitives reference.
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 16, 16, 16), &device).unwrap()).unwrap();
    let geometry = Geometry::same_padding(64, 16, 16, 16, 3, 1);
    let time = |f: &dyn Fn() -> Tensor| {
        let runs: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                let cols = f();
                cols.sum_all().unwrap().backward().unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        median(runs)
    };
    let op = time(&|| x.as_tensor().apply_op1(Im2Col(geometry)).unwrap());
    let reference = time(&|| shiftbench::model::im2col_reference(x.as_tensor(), 3, 1).unwrap());
    println!(
        "im2col forward+backward, 64×16×16×16, 3×3: op {op:.2} ms, candle primitives {reference:.2} ms ({:.1}× faster)",
        reference / op
    );
}
