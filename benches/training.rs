//! Training and evaluation throughput of the `shapes` reference model on this machine.
//!
//! Run with `cargo bench --bench training`. Prints images/s for a training step and for
//! evaluation, each with the CPU im2col op and with the candle-primitives column path it
//! replaced, so every figure is a ratio against a reference measured in the same run.

use candle_core::{Device, Tensor, Var};
use shiftbench::data::procedural::{render_domain, DomainStyle};
use shiftbench::model::im2col::{Geometry, Im2Col};
use shiftbench::model::{ResNet, ResNetConfig};
use shiftbench::suite::{Augment, Schedule};
use shiftbench::train::{predict, train_with, Mix, TrainConfig, TrainData, TrainOptions};
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let device = Device::Cpu;
    let classes: Vec<usize> = (0..10).collect();
    let images = render_domain(0, "bench", DomainStyle::Photo, &classes, 1024, 32, &indicatif::ProgressBar::hidden());
    let config = TrainConfig {
        epochs: 1, batch_size: 64, lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 5e-4,
        label_smoothing: 0.1, schedule: Schedule::Triangular, peak_epoch: 0.5, milestones: vec![], gamma: 0.1,
        clip_grad_norm: None, augment: Augment::None, mix: Mix::Concat, seed: 0,
    };
    // Images/s of one epoch with `threads` batch builders (0: batches built on the training thread).
    let train_rate = |model_config: &ResNetConfig, config: &TrainConfig, threads: usize| {
        let mut model = ResNet::new(model_config.clone(), 0, &device).unwrap();
        let opts = TrainOptions { loader_threads: threads, ..TrainOptions::default() };
        let t = Instant::now();
        train_with(&mut model, TrainData::plain(&images), config, &opts, &device, |_, _, _| {}).unwrap();
        (images.len() as f64 / t.elapsed().as_secs_f64(), model)
    };
    for width in [8usize, 16] {
        let model_config = ResNetConfig { width, blocks: 1, stages: 3, num_classes: 10, image_size: 32 };
        let mut train_rates = Vec::new();
        let mut eval_rates = Vec::new();
        for _ in 0..3 {
            let (rate, mut model) = train_rate(&model_config, &config, 1);
            train_rates.push(rate);
            let t = Instant::now();
            predict(&mut model, &images, &device).unwrap();
            eval_rates.push(images.len() as f64 / t.elapsed().as_secs_f64());
        }
        println!(
            "resnet-w{width}: training {:.0} images/s, evaluation {:.0} images/s (median of 3, 1024 images at 32 px, batch 64)",
            median(train_rates), median(eval_rates)
        );
    }

    // Prefetching: batch assembly (decode, augment, normalise) on worker threads while the model
    // steps, against building each batch on the training thread.
    let model_config = ResNetConfig { width: 16, blocks: 1, stages: 3, num_classes: 10, image_size: 32 };
    for augment in [Augment::None, Augment::Standard, Augment::Augmix] {
        let config = TrainConfig { augment, ..config.clone() };
        let rates: Vec<(usize, f64)> = [0usize, 1, 2]
            .into_iter()
            .map(|threads| (threads, median((0..3).map(|_| train_rate(&model_config, &config, threads).0).collect())))
            .collect();
        let base = rates[0].1;
        let shown: Vec<String> = rates.iter().map(|(t, r)| format!("{t} builders {r:.0} images/s ({:.2}×)", r / base)).collect();
        println!("resnet-w16 training, augment {augment:?}: {}", shown.join(", "));
    }

    // The column matrix alone, forward + backward, against the candle-primitives reference.
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 16, 16, 16), &device).unwrap()).unwrap();
    let geometry = Geometry { batch: 64, height: 16, width: 16, channels: 16, kernel: 3, stride: 1 };
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
