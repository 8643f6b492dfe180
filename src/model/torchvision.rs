//! Checkpoints in torchvision's ResNet layout, for every architecture we build.
//!
//! One format serves both our own checkpoints and weights trained in PyTorch: tensor names are
//! torchvision's (`conv1.weight`, `layer2.0.downsample.1.running_var`, `fc.weight`, ...),
//! convolution weights are OIHW and `fc.weight` is `(out, in)`. Internally a convolution weight
//! is `(k·k·cin, cout)` with rows in (dy, dx, cin) order and the classifier is `(in, out)`; the
//! conversion happens here and nowhere else. The suite model's stem maps to `conv1`/`bn1`, its
//! stages to `layer{s+1}`, its shortcuts to `downsample`.

use super::conv::ConvBn;
use super::ResNet;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Internal `(k·k·cin, cout)` → PyTorch `(cout, cin, k, k)`.
fn to_oihw(w: &Tensor, kernel: usize) -> Result<Tensor> {
    let (rows, cout) = w.dims2()?;
    let cin = rows / (kernel * kernel);
    Ok(w.reshape((kernel, kernel, cin, cout))?.permute((3, 2, 0, 1))?.contiguous()?)
}

/// PyTorch `(cout, cin, k, k)` → internal `(k·k·cin, cout)`.
fn from_oihw(w: &Tensor) -> Result<Tensor> {
    let (cout, cin, kh, kw) = w.dims4()?;
    Ok(w.permute((2, 3, 1, 0))?.contiguous()?.reshape((kh * kw * cin, cout))?)
}

fn oihw_shape(c: &ConvBn) -> Result<Vec<usize>> {
    let (rows, cout) = c.weight.as_tensor().dims2()?;
    Ok(vec![cout, rows / (c.kernel * c.kernel), c.kernel, c.kernel])
}

impl ResNet {
    /// Every tensor of a checkpoint (parameters, BN running statistics and batch counters) by
    /// torchvision name, in torchvision layout.
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let device = self.fc_weight.device();
        let mut m = BTreeMap::new();
        for (names, c) in self.layers() {
            m.insert(format!("{}.weight", names.conv), to_oihw(c.weight.as_tensor(), c.kernel)?);
            m.insert(format!("{}.weight", names.bn), c.gamma.as_tensor().clone());
            m.insert(format!("{}.bias", names.bn), c.beta.as_tensor().clone());
            m.insert(format!("{}.running_mean", names.bn), c.running_mean.clone());
            m.insert(format!("{}.running_var", names.bn), c.running_var.clone());
            m.insert(format!("{}.num_batches_tracked", names.bn), Tensor::new(c.batches_tracked, device)?);
        }
        m.insert("fc.weight".into(), self.fc_weight.as_tensor().t()?.contiguous()?);
        m.insert("fc.bias".into(), self.fc_bias.as_tensor().clone());
        Ok(m)
    }

    /// Writes a safetensors checkpoint in torchvision layout, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_safetensors(path, &self.state()?)
    }

    /// Loads a checkpoint in torchvision layout (ours, or one exported from PyTorch) into this
    /// network. Every tensor the network needs must be present with its exact shape and no
    /// other tensors may be: a file of another architecture is refused, naming the first
    /// tensor that does not fit. Nothing is changed unless the whole file fits.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        // A device or FIFO named as the checkpoint would be read until memory runs out.
        anyhow::ensure!(
            std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            "cannot read checkpoint {}: not an existing regular file; pass a .safetensors file",
            path.display()
        );
        let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        let device = self.fc_weight.device().clone();
        let tensors = candle_core::safetensors::load_buffer(&bytes, &device)
            .with_context(|| format!("checkpoint {} is not a readable safetensors file", path.display()))?;
        let mut file = Checkpoint { path, arch: self.config.describe(), tensors, used: BTreeSet::new() };

        struct Loaded {
            weight: Tensor,
            gamma: Tensor,
            beta: Tensor,
            mean: Tensor,
            var: Tensor,
            batches: Option<i64>,
        }
        let mut loaded = Vec::new();
        for (names, c) in self.layers() {
            let cout = c.gamma.as_tensor().dim(0)?;
            loaded.push(Loaded {
                weight: from_oihw(&file.take(&format!("{}.weight", names.conv), &oihw_shape(c)?)?)?,
                gamma: file.take(&format!("{}.weight", names.bn), &[cout])?,
                beta: file.take(&format!("{}.bias", names.bn), &[cout])?,
                mean: file.take(&format!("{}.running_mean", names.bn), &[cout])?,
                var: file.take(&format!("{}.running_var", names.bn), &[cout])?,
                batches: file.counter(&format!("{}.num_batches_tracked", names.bn)),
            });
        }
        let (features, classes) = self.fc_weight.as_tensor().dims2()?;
        let fc_weight = file.take("fc.weight", &[classes, features])?.t()?.contiguous()?;
        let fc_bias = file.take("fc.bias", &[classes])?;
        file.no_leftovers()?;

        for (c, l) in self.layers_mut().into_iter().zip(loaded) {
            c.weight.set(&l.weight)?;
            c.gamma.set(&l.gamma)?;
            c.beta.set(&l.beta)?;
            c.running_mean = l.mean;
            c.running_var = l.var;
            c.batches_tracked = l.batches.unwrap_or(0);
        }
        self.fc_weight.set(&fc_weight)?;
        self.fc_bias.set(&fc_bias)?;
        Ok(())
    }
}

/// The tensors of one checkpoint file and which of them have been claimed.
struct Checkpoint<'a> {
    path: &'a Path,
    arch: String,
    tensors: HashMap<String, Tensor>,
    used: BTreeSet<String>,
}

impl Checkpoint<'_> {
    /// The tensor `name` as f32, which must have exactly `shape` (torchvision layout).
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let Some(t) = self.tensors.get(name) else {
            anyhow::bail!(
                "checkpoint {} has no tensor `{name}` (expected shape {shape:?} for {}); is it a checkpoint of another architecture?",
                self.path.display(), self.arch
            )
        };
        anyhow::ensure!(
            t.dims() == shape,
            "checkpoint {}: tensor `{name}` has shape {:?}, expected {shape:?} for {}",
            self.path.display(), t.dims(), self.arch
        );
        self.used.insert(name.to_string());
        Ok(t.to_dtype(DType::F32)?)
    }

    /// A BN batch counter: optional, informational only, so an odd one is ignored.
    fn counter(&mut self, name: &str) -> Option<i64> {
        let t = self.tensors.get(name)?;
        self.used.insert(name.to_string());
        t.to_dtype(DType::I64).ok()?.flatten_all().ok()?.to_vec1::<i64>().ok()?.first().copied()
    }

    fn no_leftovers(&self) -> Result<()> {
        let mut extra: Vec<&String> = self.tensors.keys().filter(|k| !self.used.contains(*k)).collect();
        if extra.is_empty() {
            return Ok(());
        }
        extra.sort();
        let shown: Vec<String> = extra.iter().take(5).map(|n| format!("`{n}`")).collect();
        let more = if extra.len() > 5 { format!(" and {} more", extra.len() - 5) } else { String::new() };
        anyhow::bail!(
            "checkpoint {} has tensors that {} does not: {}{more}; is it a checkpoint of another architecture?",
            self.path.display(), self.arch, shown.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArchConfig, BlockKind, NamedArch, ResNetConfig, Stem};
    use candle_core::Device;

    fn logits(m: &mut ResNet, x: &Tensor) -> Vec<f32> {
        m.forward(x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn round_trip_for_every_stem_and_block() {
        let dev = Device::Cpu;
        let small: ArchConfig = ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 3, image_size: 16 }.into();
        let bottleneck = ArchConfig { stem: Stem::Imagenet, block: BlockKind::Bottleneck, layers: vec![1, 2], width: 2, num_classes: 3, image_size: 16 };
        let cifar = ArchConfig { stem: Stem::Cifar, ..NamedArch::Resnet18.config(3, 16).scaled(0.0625, 0.5) };
        let x = Tensor::arange(0f32, (2 * 16 * 16 * 3) as f32, &dev).unwrap().reshape((2, 16, 16, 3)).unwrap().cos().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for cfg in [small, bottleneck, cifar] {
            let mut a = ResNet::new(cfg.clone(), 5, &dev).unwrap();
            a.forward(&x, true).unwrap(); // moves running statistics away from their init
            let path = dir.path().join(format!("{}.safetensors", cfg.describe()));
            a.save(&path).unwrap();
            let mut b = ResNet::new(cfg.clone(), 99, &dev).unwrap();
            assert_ne!(logits(&mut a, &x), logits(&mut b, &x));
            b.load(&path).unwrap();
            assert_eq!(logits(&mut a, &x), logits(&mut b, &x), "{}", cfg.describe());
            let state = b.state().unwrap();
            assert_eq!(state["bn1.num_batches_tracked"].to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap(), 1.0);
        }
    }

    #[test]
    fn layout_is_torchvision_oihw_and_out_in() {
        let dev = Device::Cpu;
        let m = ResNet::new(ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 3, image_size: 16 }, 1, &dev).unwrap();
        let state = m.state().unwrap();
        assert_eq!(state["conv1.weight"].dims(), &[4, 3, 3, 3]);
        assert_eq!(state["layer2.0.downsample.0.weight"].dims(), &[8, 4, 1, 1]);
        assert_eq!(state["fc.weight"].dims(), &[3, 8]);
        // Internal row (dy, dx, cin) = (1, 2, 0), column cout = 3 is OIHW [3, 0, 1, 2].
        let internal = m.params()[0].var.as_tensor().to_vec2::<f32>().unwrap();
        let v = state["conv1.weight"].get(3).unwrap().get(0).unwrap().get(1).unwrap().get(2).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(v, internal[(3 + 2) * 3][3]);
    }

    #[test]
    fn missing_misshaped_and_foreign_tensors_are_named() {
        let dev = Device::Cpu;
        let dir = tempfile::tempdir().unwrap();
        let cfg = ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 3, image_size: 16 };
        let m = ResNet::new(cfg.clone(), 1, &dev).unwrap();
        let write = |name: &str, edit: &dyn Fn(&mut BTreeMap<String, Tensor>)| {
            let mut state = m.state().unwrap();
            edit(&mut state);
            let path = dir.path().join(name);
            std::fs::write(&path, safetensors::serialize(state.iter(), None).unwrap()).unwrap();
            path
        };
        let mut target = ResNet::new(cfg, 2, &dev).unwrap();
        let before = logits(&mut target, &Tensor::ones((1, 16, 16, 3), DType::F32, &dev).unwrap());

        let missing = write("missing.safetensors", &|s| {
            s.remove("layer1.0.bn2.running_var");
        });
        let e = format!("{:#}", target.load(&missing).unwrap_err());
        assert!(e.contains("missing.safetensors") && e.contains("`layer1.0.bn2.running_var`") && e.contains("[4]"), "{e}");

        let misshaped = write("misshaped.safetensors", &|s| {
            s.insert("fc.weight".into(), Tensor::zeros((8, 3), DType::F32, &Device::Cpu).unwrap());
        });
        let e = format!("{:#}", target.load(&misshaped).unwrap_err());
        assert!(e.contains("misshaped.safetensors: tensor `fc.weight` has shape [8, 3], expected [3, 8]"), "{e}");

        let foreign = write("foreign.safetensors", &|s| {
            s.insert("layer9.0.conv1.weight".into(), Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap());
        });
        let e = format!("{:#}", target.load(&foreign).unwrap_err());
        assert!(e.contains("foreign.safetensors") && e.contains("`layer9.0.conv1.weight`"), "{e}");

        std::fs::write(dir.path().join("junk.safetensors"), b"not a checkpoint").unwrap();
        let e = format!("{:#}", target.load(&dir.path().join("junk.safetensors")).unwrap_err());
        assert!(e.contains("junk.safetensors is not a readable safetensors file"), "{e}");

        // A refused file changes nothing.
        let after = logits(&mut target, &Tensor::ones((1, 16, 16, 3), DType::F32, &dev).unwrap());
        assert_eq!(before, after);
    }
}
