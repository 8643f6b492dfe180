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
//!
//! The first section times each convolution pass of the reference model (forward `cols·W`,
//! input gradient `dY·Wᵀ`, weight gradient `colsᵀ·dY`, the products alone) on the `gemm` crate,
//! as the fused op called it before the fixed-order kernels, and on each kernel path this CPU
//! can run, in GFLOP/s, next to a measured FMA peak. `cargo bench --bench training -- kernels`
//! runs that section only.

use candle_core::{Device, Tensor, Var};
use serde::Deserialize;
use shiftbench::data::procedural::{render_domain, DomainStyle};
use shiftbench::data::ImageSet;
use shiftbench::model::im2col::{Geometry, Im2Col};
use shiftbench::model::kernels::{matmul, matmul_chunked, Isa, View};
use shiftbench::model::{ResNet, ResNetConfig};
use shiftbench::eval::{predict, Scoring};
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
    predict(&mut model, images, false, &Scoring::full(10)).unwrap();
    (train_rate, images.len() as f64 / t.elapsed().as_secs_f64())
}

/// `lhs · rhs` through the `gemm` crate, exactly as `fused::Conv` called it before the
/// fixed-order kernels: the baseline of the per-pass figures.
#[allow(clippy::too_many_arguments)]
fn gemm_matmul(m: usize, n: usize, k: usize, lhs: &[f32], lhs_strides: (usize, usize), rhs: &[f32], rhs_strides: (usize, usize)) -> Vec<f32> {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n);
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let mut dst = vec![0f32; m * n];
    // SAFETY: the operands hold at least m·k and k·n elements at the given strides (checked
    // above) and dst holds m·n.
    unsafe {
        gemm::gemm(
            m, n, k,
            dst.as_mut_ptr(), 1, n as isize, false,
            lhs.as_ptr(), lhs_strides.1 as isize, lhs_strides.0 as isize,
            rhs.as_ptr(), rhs_strides.1 as isize, rhs_strides.0 as isize,
            0.0, 1.0, false, false, false, parallelism,
        );
    }
    dst
}

/// Best-of-`reps` seconds of `f` after one warm-up call.
fn best_time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// FMA throughput in GFLOP/s of every pool thread at once (as the products run): 16
/// independent vector chains per thread (enough to hide the FMA latency on two pipes), no
/// memory traffic. The ceiling the products are measured against.
fn fma_peak_gflops(isa: Isa) -> f64 {
    const STEPS: usize = 20_000_000;
    let lanes = match isa {
        Isa::Scalar => return f64::NAN,
        Isa::Avx2 => 8.0,
        Isa::Avx512 => 16.0,
    };
    let seconds = best_time(3, || {
        rayon::broadcast(|_| std::hint::black_box(fma_chains(isa, STEPS)));
    });
    rayon::current_num_threads() as f64 * 16.0 * lanes * 2.0 * STEPS as f64 / seconds / 1e9
}

#[cfg(target_arch = "x86_64")]
fn fma_chains(isa: Isa, steps: usize) -> f32 {
    use std::arch::x86_64::*;
    #[target_feature(enable = "avx2,fma")]
    fn avx2(steps: usize) -> f32 {
        let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 16];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|&a| _mm256_cvtss_f32(a)).sum()
    }
    #[target_feature(enable = "avx512f")]
    fn avx512(steps: usize) -> f32 {
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 16];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|&a| _mm512_cvtss_f32(a)).sum()
    }
    assert!(isa.is_available());
    // SAFETY: the CPU supports the features (checked just above).
    unsafe {
        match isa {
            Isa::Avx2 => avx2(steps),
            _ => avx512(steps),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_chains(_isa: Isa, _steps: usize) -> f32 {
    f32::NAN
}

/// GFLOP/s of each convolution pass of the reference model (width 32, batch 128, 32 px), the
/// products alone: the `gemm` crate as called before, and each fixed-order kernel path.
fn kernel_passes() {
    // As in training: without it every fresh output buffer is page-faulted in, which costs the
    // widest product (stage 1's input gradient, 36 MiB) more than its arithmetic.
    shiftbench::memory::tune_allocator();
    let threads = rayon::current_num_threads();
    let paths = Isa::available();
    let peaks: Vec<String> = paths.iter().filter(|&&i| i != Isa::Scalar).map(|&i| format!("{i} {:.0}", fma_peak_gflops(i))).collect();
    println!("FMA peak, all {threads} threads at once (measured, GFLOP/s): {}", peaks.join(", "));
    // (name, rows = batch·Ho·Wo, depth = k·k·cin, cout)
    let layers = [
        ("stem 3x3/2 3->32 @16", 128 * 16 * 16, 27, 32),
        ("stage1 3x3 32->32 @16", 128 * 16 * 16, 288, 32),
        ("stage2 3x3/2 32->64 @8", 128 * 8 * 8, 288, 64),
        ("stage2 3x3 64->64 @8", 128 * 8 * 8, 576, 64),
        ("stage2 1x1/2 32->64 @8", 128 * 8 * 8, 32, 64),
        ("stage3 3x3/2 64->128 @4", 128 * 4 * 4, 576, 128),
        ("stage3 3x3 128->128 @4", 128 * 4 * 4, 1152, 128),
        ("stage3 1x1/2 64->128 @4", 128 * 4 * 4, 64, 128),
    ];
    let reps = 5;
    let mut totals = vec![0f64; 1 + paths.len()];
    let mut flops_total = 0f64;
    let shown = |v: &[f64]| v.iter().map(|g| format!("{g:>6.1}")).collect::<Vec<_>>().join(" ");
    println!("GFLOP/s per pass: gemm crate | {}", paths.iter().map(|i| format!("{i:>6}")).collect::<Vec<_>>().join(" "));
    for (name, rows, depth, cout) in layers {
        let cols: Vec<f32> = (0..rows * depth).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..depth * cout).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let wt: Vec<f32> = (0..cout * depth).map(|i| w[(i % depth) * cout + i / depth]).collect();
        let dy: Vec<f32> = (0..rows * cout).map(|i| ((i * 31) % 1000) as f32 / 1000.0 - 0.5).collect();
        let flops = 2.0 * (rows * depth * cout) as f64;
        // Each pass on the gemm crate (None) or a kernel path.
        type Pass<'a> = (&'static str, Box<dyn Fn(Option<Isa>) + 'a>);
        let passes: [Pass; 3] = [
            ("forward", Box::new(|isa| {
                std::hint::black_box(match isa {
                    None => gemm_matmul(rows, cout, depth, &cols, (depth, 1), &w, (cout, 1)),
                    Some(isa) => matmul(isa, rows, cout, depth, View::rows(&cols, depth), &w, cout),
                });
            })),
            ("input grad", Box::new(|isa| {
                std::hint::black_box(match isa {
                    None => gemm_matmul(rows, depth, cout, &dy, (cout, 1), &w, (1, cout)),
                    Some(isa) => matmul(isa, rows, depth, cout, View::rows(&dy, cout), &wt, depth),
                });
            })),
            ("weight grad", Box::new(|isa| {
                std::hint::black_box(match isa {
                    None => gemm_matmul(depth, cout, rows, &cols, (1, depth), &dy, (cout, 1)),
                    Some(isa) => matmul_chunked(isa, depth, cout, rows, View::transposed(&cols, depth), &dy, cout),
                });
            })),
        ];
        for (pass, f) in &passes {
            let mut row = vec![flops / best_time(reps, || f(None)) / 1e9];
            for &isa in &paths {
                // The scalar path calls libm's fmaf per multiply-add: time it once, briefly.
                let r = if isa == Isa::Scalar { 1 } else { reps };
                row.push(flops / best_time(r, || f(Some(isa))) / 1e9);
            }
            for (t, g) in totals.iter_mut().zip(&row) {
                *t += flops / (g * 1e9);
            }
            flops_total += flops;
            println!("  {name:<24} {pass:<11} {}", shown(&row));
        }
    }
    let overall: Vec<f64> = totals.iter().map(|t| flops_total / t / 1e9).collect();
    println!("  {:<36} {}", "all passes (time-weighted)", shown(&overall));
    for (isa, g) in paths.iter().zip(&overall[1..]) {
        println!("  {isa} / gemm crate, all passes: {:.2}", g / overall[0]);
    }
}

fn main() {
    // `-- kernels`: the per-pass figures only; `-- reference`: the reference model's training
    // and evaluation rates only (for interleaving with another build's binary); `-- frameworks`:
    // both models side by side with PyTorch, nothing else.
    let only = |what: &str| std::env::args().any(|a| a == what);
    if !only("reference") && !only("frameworks") {
        kernel_passes();
    }
    if only("kernels") {
        return;
    }
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
        if only("reference") {
            return;
        }
    }
    if only("frameworks") {
        return;
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
