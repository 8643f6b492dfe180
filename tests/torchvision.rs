//! Our ResNets against PyTorch: checkpoints exported from torchvision load through the normal
//! checkpoint code and give PyTorch's eval-mode logits. The fixtures and the script that makes
//! them are in fixtures/torchvision/.

use candle_core::{Device, Tensor};
use shiftbench::model::{ArchConfig, BlockKind, NamedArch, ResNet, Stem};
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torchvision")
}

fn tensor(path: &Path, name: &str) -> Tensor {
    let mut all = candle_core::safetensors::load(path, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    all.remove(name).unwrap_or_else(|| panic!("{} has no `{name}`", path.display()))
}

/// Loads `dir/NAME.safetensors` into a network of shape `config`, runs the eval forward on
/// `dir/input.safetensors` and returns max |ours − PyTorch| / max |PyTorch| over the logits.
fn relative_difference(dir: &Path, name: &str, config: ArchConfig) -> f64 {
    let dev = Device::Cpu;
    let mut model = ResNet::new(config, 0, &dev).unwrap();
    model.load(&dir.join(format!("{name}.safetensors"))).unwrap_or_else(|e| panic!("{e:#}"));
    // PyTorch is NCHW, we are NHWC.
    let x = tensor(&dir.join("input.safetensors"), "input").permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
    let ours: Vec<f32> = model.forward(&x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let theirs: Vec<f32> = tensor(&dir.join(format!("{name}.logits.safetensors")), "logits").flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let worst = ours.iter().zip(&theirs).fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
    assert!(scale > 0.0, "{name}: all-zero reference logits");
    let rel = worst / scale;
    println!("{name}: max |ours - pytorch| / max |pytorch| = {rel:.3e} (max |pytorch| = {scale:.3})");
    rel
}

fn narrow(block: BlockKind, layers: Vec<usize>, width: usize) -> ArchConfig {
    ArchConfig { stem: Stem::Imagenet, block, layers, width, num_classes: 10, image_size: 64 }
}

#[test]
fn narrow_resnet18_matches_pytorch_logits() {
    let rel = relative_difference(&fixtures(), "resnet18-w8", narrow(BlockKind::Basic, vec![2, 2, 2, 2], 8));
    assert!(rel < TOLERANCE, "relative difference {rel:e}");
}

#[test]
fn narrow_resnet50_matches_pytorch_logits() {
    let rel = relative_difference(&fixtures(), "resnet50-w4", narrow(BlockKind::Bottleneck, vec![3, 4, 6, 3], 4));
    assert!(rel < TOLERANCE, "relative difference {rel:e}");
}

#[test]
fn a_torchvision_file_of_another_shape_is_refused_by_name() {
    let file = fixtures().join("resnet18-w8.safetensors");
    let mut wider = ResNet::new(narrow(BlockKind::Basic, vec![2, 2, 2, 2], 16), 0, &Device::Cpu).unwrap();
    let e = format!("{:#}", wider.load(&file).unwrap_err());
    assert!(e.contains("resnet18-w8.safetensors: tensor `conv1.weight` has shape [8, 3, 7, 7], expected [16, 3, 7, 7]"), "{e}");
    let mut bottleneck = ResNet::new(narrow(BlockKind::Bottleneck, vec![2, 2, 2, 2], 8), 0, &Device::Cpu).unwrap();
    let e = format!("{:#}", bottleneck.load(&file).unwrap_err());
    assert!(e.contains("resnet18-w8.safetensors") && e.contains("`layer1.0.conv1.weight` has shape [8, 8, 3, 3], expected [8, 8, 1, 1]"), "{e}");
}

/// Full-width ResNet-18 and ResNet-50 (45 and 100 MB, too large to commit), made on the spot by
/// the fixture script, and one of our checkpoints read by PyTorch. Opt-in: set SHIFTBENCH_TORCH_PYTHON to a python with torch, torchvision
/// and safetensors.
#[test]
fn full_width_resnets_match_pytorch_when_torch_is_available() {
    let Some(python) = std::env::var_os("SHIFTBENCH_TORCH_PYTHON") else {
        println!("skipped: set SHIFTBENCH_TORCH_PYTHON to a python with torch, torchvision and safetensors to run it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(&python)
        .arg(fixtures().join("make_fixture.py"))
        .arg("--out")
        .arg(dir.path())
        .args(["--model", "resnet18", "--model", "resnet50"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&python).display()));
    assert!(status.success(), "make_fixture.py failed: {status}");
    for arch in [NamedArch::Resnet18, NamedArch::Resnet50] {
        let rel = relative_difference(dir.path(), arch.name(), arch.config(1000, 64));
        assert!(rel < TOLERANCE, "{}: relative difference {rel:e}", arch.name());
    }

    // The other direction: a checkpoint we wrote, after a training step moved its batch-norm
    // statistics, loads strictly into torchvision's module and gives our logits there.
    let config = narrow(BlockKind::Basic, vec![2, 2, 2, 2], 8);
    let mut ours = ResNet::new(config.clone(), 3, &Device::Cpu).unwrap();
    let x = tensor(&dir.path().join("input.safetensors"), "input").permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
    ours.forward(&x, true).unwrap();
    ours.save(&dir.path().join("ours.safetensors")).unwrap();
    let status = std::process::Command::new(&python)
        .arg(fixtures().join("make_fixture.py"))
        .arg("--out")
        .arg(dir.path())
        .args(["--model", "resnet18-w8", "--load"])
        .arg(dir.path().join("ours.safetensors"))
        .status()
        .unwrap();
    assert!(status.success(), "PyTorch could not load our checkpoint: {status}");
    let rel = relative_difference(dir.path(), "ours", config);
    assert!(rel < TOLERANCE, "our checkpoint in PyTorch: relative difference {rel:e}");
}
