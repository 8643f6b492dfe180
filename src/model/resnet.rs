//! Trainable residual networks over NHWC tensors: the suite's small model and the torchvision
//! ResNet family (basic and bottleneck blocks, three stems).

use super::arch::{ArchConfig, BlockKind, Stem};
use super::conv::{ConvBn, Initializer};
use super::fused;
use super::pool::max_pool_nhwc;
use super::Param;
use crate::rng::Stream;
use anyhow::Result;
use candle_core::{Device, Tensor, Var};

/// One residual block: its convolutions in order (two for basic, three for bottleneck; ReLU
/// after each but the last) and the projection shortcut when the shape changes.
pub(crate) struct Block {
    pub(crate) convs: Vec<ConvBn>,
    pub(crate) downsample: Option<ConvBn>,
}

/// A ResNet: stem, stages of residual blocks, global average pooling, a linear classifier.
pub struct ResNet {
    pub config: ArchConfig,
    pub(crate) stem: ConvBn,
    pub(crate) stages: Vec<Vec<Block>>,
    pub(crate) fc_weight: Var, // (features, classes)
    pub(crate) fc_bias: Var,
}

/// torchvision's names of a convolution and of the batch norm that follows it.
pub(crate) struct LayerNames {
    pub(crate) conv: String,
    pub(crate) bn: String,
}

impl ResNet {
    /// A freshly initialised network: Kaiming-normal convolutions (fan-in, ReLU gain) and a
    /// uniform `±1/√fan_in` classifier, all drawn from our own seeded stream because candle's
    /// CPU RNG cannot be seeded. Draw order: stem, then each block's convolutions and shortcut,
    /// then the classifier — for the suite model exactly the order it has always had.
    pub fn new(config: impl Into<ArchConfig>, seed: u64, device: &Device) -> Result<Self> {
        let config: ArchConfig = config.into();
        anyhow::ensure!(
            config.width > 0 && config.num_classes > 0 && !config.layers.is_empty() && config.layers.iter().all(|&n| n > 0),
            "a ResNet needs a positive width, at least one class and at least one block in every stage; got {config:?}"
        );
        let mut init = Initializer { stream: Stream::new(seed, "init/resnet", 0), device: device.clone() };
        let (stem_kernel, stem_stride) = match config.stem {
            Stem::Imagenet => (7, 2),
            Stem::Cifar => (3, 1),
            Stem::Small => (3, 2),
        };
        let stem = init.conv_bn(3, config.width, stem_kernel, stem_stride)?;
        let expansion = config.block.expansion();
        let mut cin = config.width;
        let mut stages = Vec::with_capacity(config.layers.len());
        for (s, &count) in config.layers.iter().enumerate() {
            let planes = config.width << s;
            let cout = planes * expansion;
            let mut blocks = Vec::with_capacity(count);
            for b in 0..count {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let convs = match config.block {
                    BlockKind::Basic => vec![init.conv_bn(cin, planes, 3, stride)?, init.conv_bn(planes, planes, 3, 1)?],
                    // torchvision v1.5: the stride sits on the 3×3 convolution, not the first 1×1.
                    BlockKind::Bottleneck => vec![
                        init.conv_bn(cin, planes, 1, 1)?,
                        init.conv_bn(planes, planes, 3, stride)?,
                        init.conv_bn(planes, cout, 1, 1)?,
                    ],
                };
                let downsample = if stride != 1 || cin != cout { Some(init.conv_bn(cin, cout, 1, stride)?) } else { None };
                blocks.push(Block { convs, downsample });
                cin = cout;
            }
            stages.push(blocks);
        }
        let bound = 1.0 / (cin as f64).sqrt();
        let fc_weight = init.uniform(&[cin, config.num_classes], bound)?;
        let fc_bias = init.uniform(&[config.num_classes], bound)?;
        Ok(Self { config, stem, stages, fc_weight, fc_bias })
    }

    /// Every convolution with its batch norm, in parameter order, with torchvision's names.
    pub(crate) fn layers(&self) -> Vec<(LayerNames, &ConvBn)> {
        let mut out = vec![(LayerNames { conv: "conv1".into(), bn: "bn1".into() }, &self.stem)];
        for (s, blocks) in self.stages.iter().enumerate() {
            for (i, block) in blocks.iter().enumerate() {
                let prefix = format!("layer{}.{i}", s + 1);
                for (j, c) in block.convs.iter().enumerate() {
                    out.push((LayerNames { conv: format!("{prefix}.conv{}", j + 1), bn: format!("{prefix}.bn{}", j + 1) }, c));
                }
                if let Some(d) = &block.downsample {
                    out.push((LayerNames { conv: format!("{prefix}.downsample.0"), bn: format!("{prefix}.downsample.1") }, d));
                }
            }
        }
        out
    }

    /// The same convolutions as [`ResNet::layers`], in the same order, mutably.
    pub(crate) fn layers_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut out = vec![&mut self.stem];
        for block in self.stages.iter_mut().flatten() {
            out.extend(block.convs.iter_mut());
            out.extend(block.downsample.as_mut());
        }
        out
    }

    /// Trainable parameters in a fixed order (the optimiser's), named as in torchvision.
    pub fn params(&self) -> Vec<Param> {
        let mut out = Vec::new();
        for (names, c) in self.layers() {
            out.push(Param { name: format!("{}.weight", names.conv), var: c.weight.clone(), decay: true });
            out.push(Param { name: format!("{}.weight", names.bn), var: c.gamma.clone(), decay: false });
            out.push(Param { name: format!("{}.bias", names.bn), var: c.beta.clone(), decay: false });
        }
        out.push(Param { name: "fc.weight".into(), var: self.fc_weight.clone(), decay: true });
        out.push(Param { name: "fc.bias".into(), var: self.fc_bias.clone(), decay: false });
        out
    }

    pub fn parameter_count(&self) -> u64 {
        self.params().iter().map(|p| p.var.elem_count() as u64).sum()
    }

    /// Logits `(batch, classes)` for normalised NHWC input `(batch, size, size, 3)`.
    /// In training mode batch statistics normalise and the running statistics are updated.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        if x.device().is_cpu() {
            self.forward_fused(x, train)
        } else {
            self.forward_primitives(x, train)
        }
    }

    /// The CPU path: activations stay `(B·H·W, C)` matrices and every stage is one fused op,
    /// because each extra graph node costs candle's backward a zero-fill and an addition.
    fn forward_fused(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (batch, height, width, channels) = x.dims4()?;
        let (mut h, mut images) = self.stem.forward_fused(&x.reshape((batch * height * width, channels))?, (batch, height, width), train, true)?;
        if self.config.stem == Stem::Imagenet {
            let c = h.dim(1)?;
            let pooled = max_pool_nhwc(&h.reshape((images.0, images.1, images.2, c))?, 3, 2, 1)?;
            let (b, ph, pw, c) = pooled.dims4()?;
            h = pooled.reshape((b * ph * pw, c))?;
            images = (b, ph, pw);
        }
        for block in self.stages.iter_mut().flatten() {
            let identity = match &mut block.downsample {
                Some(d) => d.forward_fused(&h, images, train, false)?.0,
                None => h.clone(),
            };
            let last = block.convs.len() - 1;
            let (mut y, mut at) = (h, images);
            for (j, c) in block.convs.iter_mut().enumerate() {
                (y, at) = c.forward_fused(&y, at, train, j < last)?;
            }
            h = y.apply_op2(&identity, fused::AddRelu)?;
            images = at;
        }
        Ok(h.apply_op3(self.fc_weight.as_tensor(), self.fc_bias.as_tensor(), fused::Head { images })?)
    }

    /// The device-independent path from candle primitives (and the fused path's reference).
    pub(crate) fn forward_primitives(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward_primitives(x, train)?.relu()?;
        if self.config.stem == Stem::Imagenet {
            h = max_pool_nhwc(&h, 3, 2, 1)?;
        }
        for block in self.stages.iter_mut().flatten() {
            let identity = match &mut block.downsample {
                Some(d) => d.forward_primitives(&h, train)?,
                None => h.clone(),
            };
            let last = block.convs.len() - 1;
            let mut y = h;
            for (j, c) in block.convs.iter_mut().enumerate() {
                y = c.forward_primitives(&y, train)?;
                if j < last {
                    y = y.relu()?;
                }
            }
            h = (y + identity)?.relu()?;
        }
        let pooled = h.mean(1)?.mean(1)?; // (B, C)
        Ok(pooled.matmul(self.fc_weight.as_tensor())?.broadcast_add(self.fc_bias.as_tensor())?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fused_cpu_path_matches_primitive_path_in_logits_gradients_and_statistics() {
        let dev = Device::Cpu;
        let configs = [
            ArchConfig::from(crate::model::ResNetConfig { width: 4, blocks: 2, stages: 2, num_classes: 3, image_size: 16 }),
            ArchConfig { stem: Stem::Imagenet, block: BlockKind::Bottleneck, ..crate::model::NamedArch::Resnet50.config(3, 16).scaled(0.0625, 0.34) },
            ArchConfig { stem: Stem::Cifar, ..crate::model::NamedArch::Resnet18.config(3, 16).scaled(0.0625, 0.5) },
        ];
        let rel = |a: &Tensor, b: &Tensor| {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        };
        for config in configs {
            let mut fused = ResNet::new(config.clone(), 3, &dev).unwrap();
            let mut reference = ResNet::new(config.clone(), 3, &dev).unwrap();
            let mut s = Stream::new(5, "test/fused-model", 0);
            let x: Vec<f32> = (0..8 * 32 * 32 * 3).map(|_| s.normal() as f32).collect();
            let x = Tensor::from_vec(x, (8, 32, 32, 3), &dev).unwrap();
            let lf = fused.forward(&x, true).unwrap();
            let lr = reference.forward_primitives(&x, true).unwrap();
            assert!(rel(&lf, &lr) < 1e-4, "{config:?}: training logits differ by {}", rel(&lf, &lr));
            let gf = lf.sum_all().unwrap().backward().unwrap();
            let gr = lr.sum_all().unwrap().backward().unwrap();
            for (pf, pr) in fused.params().iter().zip(reference.params()) {
                let d = rel(gf.get(pf.var.as_tensor()).unwrap(), gr.get(pr.var.as_tensor()).unwrap());
                assert!(d < 1e-3, "{config:?}: gradient of {} differs by {d}", pf.name);
            }
            let ef = fused.forward(&x, false).unwrap();
            let er = reference.forward_primitives(&x, false).unwrap();
            assert!(rel(&ef, &er) < 1e-4, "{config:?}: evaluation logits differ by {}", rel(&ef, &er));
        }
    }

    use super::*;
    use crate::model::arch::{NamedArch, ResNetConfig};
    use candle_core::DType;

    #[test]
    fn same_seed_same_weights_and_different_seed_different_weights() {
        let cfg = ResNetConfig { width: 4, blocks: 1, stages: 2, num_classes: 3, image_size: 16 };
        let dev = Device::Cpu;
        let w = |seed| ResNet::new(cfg.clone(), seed, &dev).unwrap().params()[0].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(w(5), w(5));
        assert_ne!(w(5), w(6));
    }

    /// The suite model's first draws are its stem, then the first block's conv1: a change of
    /// draw order or stream purpose would move them (and every trained result with them).
    #[test]
    fn suite_model_init_draws_are_unchanged() {
        let cfg = ResNetConfig { width: 2, blocks: 1, stages: 2, num_classes: 3, image_size: 16 };
        let m = ResNet::new(cfg, 7, &Device::Cpu).unwrap();
        let mut s = Stream::new(7, "init/resnet", 0);
        let std_stem = (2.0f64 / 27.0).sqrt();
        let stem: Vec<f32> = (0..27 * 2).map(|_| (s.normal() * std_stem) as f32).collect();
        let std_conv = (2.0f64 / 18.0).sqrt();
        let conv1: Vec<f32> = (0..18 * 2).map(|_| (s.normal() * std_conv) as f32).collect();
        let p = m.params();
        assert_eq!(p[0].name, "conv1.weight");
        assert_eq!(p[0].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap(), stem);
        assert_eq!(p[3].name, "layer1.0.conv1.weight");
        assert_eq!(p[3].var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap(), conv1);
    }

    #[test]
    fn torchvision_shapes_and_parameter_counts() {
        let dev = Device::Cpu;
        // torchvision's parameter counts (weights + BN affine + fc) for 1000 classes.
        for (arch, count) in [(NamedArch::Resnet18, 11_689_512u64), (NamedArch::Resnet50, 25_557_032)] {
            let m = ResNet::new(arch.config(1000, 64), 0, &dev).unwrap();
            assert_eq!(m.parameter_count(), count, "{arch:?}");
        }
        let mut m = ResNet::new(NamedArch::Resnet50.config(5, 32).scaled(0.125, 0.34), 1, &dev).unwrap();
        let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
        for n in ["conv1.weight", "bn1.bias", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer4.0.downsample.1.weight", "fc.bias"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let x = Tensor::ones((2, 32, 32, 3), DType::F32, &dev).unwrap();
        assert_eq!(m.forward(&x, true).unwrap().dims(), &[2, 5]);
        assert_eq!(m.forward(&x, false).unwrap().dims(), &[2, 5]);
    }

    #[test]
    fn every_stem_trains_a_step_with_finite_gradients_reaching_the_stem() {
        let dev = Device::Cpu;
        for stem in [Stem::Imagenet, Stem::Cifar, Stem::Small] {
            let cfg = ArchConfig { stem, block: BlockKind::Basic, layers: vec![1, 1], width: 4, num_classes: 3, image_size: 16 };
            let mut m = ResNet::new(cfg, 2, &dev).unwrap();
            let x = Tensor::arange(0f32, (2 * 16 * 16 * 3) as f32, &dev).unwrap().reshape((2, 16, 16, 3)).unwrap().sin().unwrap();
            let loss = m.forward(&x, true).unwrap().sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let stem_grad = grads.get(m.params()[0].var.as_tensor()).expect("stem gradient");
            let norm = stem_grad.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{stem:?}: {norm}");
        }
    }
}
