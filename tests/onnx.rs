//! ONNX classifiers (`shiftbench::model::OnnxClassifier`) against PyTorch's logits for the same
//! weights, against our own candle ResNet reading the same weights from safetensors, and their
//! errors; that their logits depend neither on the batch, nor on the threads, nor on what tract
//! believes the CPU to be. Fixtures and how they were made: fixtures/onnx/make.py.
//!
//! The kernel choice is process-wide (tract probes the CPU once), so the comparisons of kernel
//! settings run this test binary again as child processes ([`child_logits`]).

use candle_core::{Device, Tensor};
use serde::Deserialize;
use shiftbench::data::image::Preprocess;
use shiftbench::model::onnx::Kernels;
use shiftbench::model::{ArchConfig, BlockKind, Classifier, OnnxClassifier, ResNet, Stem};
use std::path::{Path, PathBuf};
use std::process::Command;

/// max |ONNX − PyTorch| / max |PyTorch| allowed for the tiny ResNet (measured: see the test).
const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn onnx(name: &str) -> PathBuf {
    fixtures().join("onnx").join(name)
}

#[derive(Deserialize)]
struct Reference {
    preprocess: String,
    tiny_resnet_parameters: u64,
    images: Vec<RefImage>,
}

#[derive(Deserialize)]
struct RefImage {
    file: String,
    top5: Vec<u32>,
}

fn reference() -> Reference {
    serde_json::from_str(&std::fs::read_to_string(onnx("reference.json")).unwrap()).unwrap()
}

/// A float32 `.npy` (numpy's v1.0 layout, as make.py's np.save writes it): shape and data.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "{header}");
    let inner = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = inner[..inner.find(')').unwrap()].split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let data: Vec<f32> = bytes[10 + len..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

/// The reference images, preprocessed as make.py's torchvision transform did, as one NHWC batch.
fn images() -> Tensor {
    let r = reference();
    let p = Preprocess::parse(&r.preprocess).unwrap();
    let mut data = Vec::new();
    for img in &r.images {
        let t = shiftbench::predict::prepare_image(&Path::new(env!("CARGO_MANIFEST_DIR")).join(&img.file), &p).unwrap();
        assert_eq!((t.height, t.width), (224, 224));
        data.extend_from_slice(&t.data);
    }
    Tensor::from_vec(data, (r.images.len(), 224, 224, 3), &Device::Cpu).unwrap()
}

fn logits(model: &mut dyn Classifier, batch: &Tensor) -> Vec<f32> {
    model.logits(batch).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// max |a − b| / max |b|.
fn relative(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    ours.iter().zip(theirs).fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs())) / scale
}

fn top1(logits: &[f32], classes: usize) -> Vec<u32> {
    logits.chunks_exact(classes).map(|row| shiftbench::predict::top_k(row, 1)[0]).collect()
}

fn tiny_resnet_config() -> ArchConfig {
    ArchConfig { stem: Stem::Imagenet, block: BlockKind::Basic, layers: vec![1, 1, 1, 1], width: 8, num_classes: 1000, image_size: 224 }
}

#[test]
fn the_tiny_resnet_gives_pytorchs_logits_through_onnx_and_through_our_resnet() {
    let r = reference();
    let batch = images();
    let (shape, torch) = read_npy(&onnx("logits-tiny-resnet.npy"));
    assert_eq!(shape, [r.images.len(), 1000]);

    let mut tract = OnnxClassifier::load(&onnx("tiny-resnet.onnx"), Some(224)).unwrap();
    assert_eq!((tract.num_classes(), tract.input_size()), (1000, 224));
    let info = tract.info();
    // The exporter folds every BN into its convolution: 360 values fewer than PyTorch counts.
    assert_eq!((info.arch.as_str(), info.parameters), ("onnx:tiny-resnet.onnx", 142_952));
    let via_onnx = logits(&mut tract, &batch);

    let config = tiny_resnet_config();
    assert_eq!(config.describe(), "resnet-imagenet-basic-w8-l1.1.1.1");
    let mut ours = ResNet::new(config, 0, &Device::Cpu).unwrap();
    ours.load(&onnx("tiny-resnet.safetensors")).unwrap();
    assert_eq!(ours.info().parameters, r.tiny_resnet_parameters);
    let via_candle = logits(&mut ours, &batch);

    let (onnx_torch, candle_torch, onnx_candle) = (relative(&via_onnx, &torch), relative(&via_candle, &torch), relative(&via_onnx, &via_candle));
    println!("max |Δ| / max |PyTorch logit|: ONNX (tract) {onnx_torch:.2e}, candle ResNet {candle_torch:.2e}, ONNX vs candle {onnx_candle:.2e}");
    assert!(onnx_torch < TOLERANCE && candle_torch < TOLERANCE && onnx_candle < TOLERANCE, "{onnx_torch:e} {candle_torch:e} {onnx_candle:e}");
    let expected: Vec<u32> = r.images.iter().map(|i| i.top5[0]).collect();
    assert_eq!(top1(&torch, 1000), expected);
    assert_eq!(top1(&via_onnx, 1000), expected, "ONNX top-1");
    assert_eq!(top1(&via_candle, 1000), expected, "candle top-1");
}

#[test]
fn a_fixed_batch_of_one_and_a_symbolic_size_both_run() {
    let batch = images();
    let (_, torch) = read_npy(&onnx("logits-tiny-convnet.npy"));
    for (file, size) in [("tiny-convnet-b1.onnx", None), ("tiny-convnet-b1.onnx", Some(224)), ("tiny-convnet-dyn.onnx", Some(224))] {
        let mut m = OnnxClassifier::load(&onnx(file), size).unwrap();
        assert_eq!((m.num_classes(), m.input_size(), m.info().parameters), (10, 224, 162));
        let rel = relative(&logits(&mut m, &batch), &torch);
        println!("{file}: max |Δ| / max |PyTorch logit| {rel:.2e}");
        assert!(rel < TOLERANCE, "{file}: {rel:e}");
    }
    let e = format!("{:#}", OnnxClassifier::load(&onnx("tiny-convnet-dyn.onnx"), None).err().unwrap());
    assert!(e.contains("tiny-convnet-dyn.onnx") && e.contains("symbolic"), "{e}");
    let e = format!("{:#}", OnnxClassifier::load(&onnx("tiny-convnet-b1.onnx"), Some(160)).err().unwrap());
    assert!(e.contains("takes 224×224 images, not the 160×160") && e.contains("--preprocess imagenet:resize=256,crop=224"), "{e}");
}

#[test]
fn logits_do_not_depend_on_batch_mates_or_thread_count() {
    let batch = images();
    let mut m = OnnxClassifier::load(&onnx("tiny-resnet.onnx"), Some(224)).unwrap();
    let all = logits(&mut m, &batch);
    let n = batch.dims()[0];
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut split = Vec::new();
        for (start, len) in [(0, 1), (1, 4), (5, n - 5)] {
            split.extend(pool.install(|| logits(&mut m, &batch.narrow(0, start, len).unwrap())));
        }
        assert!(split == all, "{threads} threads, batches of 1, 4, {}", n - 5);
    }
}

#[test]
fn bad_files_are_one_error_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("model.onnx");
    std::fs::write(&garbage, b"PK\x03\x04 this is a zip (torch.save), not a protobuf").unwrap();
    let cases = [
        (garbage.clone(), vec!["model.onnx is not an ONNX model", "torch.onnx.export"]),
        (dir.path().join("missing.onnx"), vec!["cannot read ONNX model", "missing.onnx"]),
        (onnx("bad-op.onnx"), vec!["bad-op.onnx", "operator Det (node `determinant`)", "tract does not implement", "README section \"ONNX models\""]),
        (onnx("bad-rank.onnx"), vec!["bad-rank.onnx", "input `input` has rank 2 (?, 192), not (batch, 3, height, width)"]),
        (onnx("bad-output.onnx"), vec!["bad-output.onnx", "output `logits` has rank 4, not (batch, classes)"]),
        (onnx("bad-dtype.onnx"), vec!["bad-dtype.onnx", "input `input` is uint8, not float32"]),
    ];
    for (path, says) in cases {
        let e = format!("{:#}", OnnxClassifier::load(&path, None).err().unwrap());
        println!("{e}");
        for s in says {
            assert!(e.contains(s), "{}: {e:?} lacks {s:?}", path.display());
        }
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

// --- kernels: child processes ---------------------------------------------------------------------

/// Logits of `model` on the reference images, computed by a child process with `kernels` and
/// the extra environment `env`; with the seconds its forward pass took.
fn child_logits(model: &Path, kernels: Kernels, env: &[(&str, &str)]) -> (Vec<f32>, f64) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "child", "--nocapture", "--test-threads", "1"]);
    cmd.env("SHIFTBENCH_ONNX_CHILD", format!("{}\n{kernels:?}\n{}", model.display(), out.path().display()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = cmd.output().unwrap();
    assert!(run.status.success(), "child: {}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(out.path()).unwrap();
    let (secs, data) = bytes.split_at(8);
    (data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(), f64::from_le_bytes(secs.try_into().unwrap()))
}

/// Not a test: what [`child_logits`] runs (SHIFTBENCH_ONNX_CHILD = model, kernels, output file).
#[test]
#[ignore]
fn child() {
    let Ok(spec) = std::env::var("SHIFTBENCH_ONNX_CHILD") else { return };
    let [model, kernels, out] = spec.lines().collect::<Vec<_>>()[..] else { panic!("{spec}") };
    let kernels = if kernels == "Native" { Kernels::Native } else { Kernels::Portable };
    let mut m = OnnxClassifier::load_with(Path::new(model), Some(224), kernels).unwrap();
    let batch = images();
    logits(&mut m, &batch.narrow(0, 0, 1).unwrap()); // warm-up: first-run allocations
    let start = std::time::Instant::now();
    let values = logits(&mut m, &batch);
    let mut bytes = start.elapsed().as_secs_f64().to_le_bytes().to_vec();
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(out, bytes).unwrap();
}

/// tract's cost models read the CPU vendor and cache sizes (here overridden through its knobs,
/// as if on another CPU); with the portable kernels the bits must not move.
#[test]
fn portable_logits_do_not_depend_on_the_cpu_tract_believes_it_has() {
    let model = onnx("tiny-resnet.onnx");
    let (reference, _) = child_logits(&model, Kernels::Portable, &[]);
    for env in [&[("TRACT_X86_KIND", "amd")][..], &[("TRACT_X86_KIND", "other"), ("TRACT_LLC_BYTES", "1M")], &[("TRACT_X86_KIND", "intel"), ("TRACT_LLC_BYTES", "256M")]] {
        let (other, _) = child_logits(&model, Kernels::Portable, env);
        assert!(other == reference, "{env:?}");
    }
}

/// The measurement behind the README's kernel paragraph: portable against native kernels.
/// `cargo test --release --test onnx -- --ignored --nocapture kernels` (SHIFTBENCH_ONNX_ZOO
/// adds the folder of benches/onnx/export_zoo.py's models).
#[test]
#[ignore]
fn kernels_portable_against_native() {
    let mut models = vec![onnx("tiny-resnet.onnx")];
    if let Some(zoo) = std::env::var_os("SHIFTBENCH_ONNX_ZOO") {
        models.extend(zoo_models(Path::new(&zoo)).into_iter().map(|(_, p)| p));
    }
    for model in models {
        let (portable, tp) = child_logits(&model, Kernels::Portable, &[]);
        let (native, tn) = child_logits(&model, Kernels::Native, &[]);
        let same = portable.iter().zip(&native).filter(|(a, b)| a == b).count();
        println!(
            "{}: portable {tp:.2} s, native {tn:.2} s ({:.1}× slower), max |Δ| / max |logit| {:.2e}, identical logits {same}/{}, same top-1: {}",
            model.file_name().unwrap().to_string_lossy(),
            tp / tn,
            relative(&portable, &native),
            portable.len(),
            top1(&portable, 1000) == top1(&native, 1000)
        );
    }
}

fn zoo_models(zoo: &Path) -> Vec<(String, PathBuf)> {
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(zoo.join("manifest.json")).unwrap()).unwrap();
    manifest["models"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap().to_string(), zoo.join(m["file"].as_str().unwrap()))).collect()
}

/// The README's coverage table: every model of benches/onnx/export_zoo.py's folder
/// (SHIFTBENCH_ONNX_ZOO) through tract against onnxruntime's logits.
#[test]
#[ignore]
fn zoo() {
    let zoo = PathBuf::from(std::env::var_os("SHIFTBENCH_ONNX_ZOO").expect("set SHIFTBENCH_ONNX_ZOO to the folder benches/onnx/export_zoo.py wrote"));
    let batch = images();
    println!("| model | loads | max abs Δlogit vs onnxruntime | max abs logit | same top-1 | load s | s/image |");
    for (name, path) in zoo_models(&zoo) {
        let start = std::time::Instant::now();
        let loaded = OnnxClassifier::load(&path, Some(224));
        let load_s = start.elapsed().as_secs_f64();
        let mut m = match loaded {
            Ok(m) => m,
            Err(e) => {
                println!("| {name} | no: {e:#} | | | | | |");
                continue;
            }
        };
        let start = std::time::Instant::now();
        let ours = logits(&mut m, &batch);
        let per_image = start.elapsed().as_secs_f64() / batch.dims()[0] as f64;
        let (_, ort) = read_npy(&zoo.join(format!("{name}.ort.npy")));
        let max_abs = ours.iter().zip(&ort).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        let scale = ort.iter().fold(0f32, |a, v| a.max(v.abs()));
        println!("| {name} | yes | {max_abs:.2e} | {scale:.2} | {} | {load_s:.1} | {per_image:.2} |", top1(&ours, 1000) == top1(&ort, 1000));
    }
}
