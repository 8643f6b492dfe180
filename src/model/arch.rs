//! Shapes of the residual networks the harness can build: the small suite model and the
//! torchvision ResNet family, with width and depth multipliers.

use serde::{Deserialize, Serialize};

/// How the network turns an image into the first stage's feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// torchvision's: 7×7/2 convolution, BN, ReLU, 3×3/2 max pooling with padding 1 (¼ side).
    Imagenet,
    /// For 32 px images: 3×3/1 convolution, BN, ReLU, no pooling (full side).
    Cifar,
    /// The suite model's: 3×3/2 convolution, BN, ReLU (½ side).
    Small,
}

/// The residual block of every stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic,
    /// 1×1 reduce, 3×3 (carrying the stride, torchvision v1.5), 1×1 expand ×4 (ResNet-50).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of stage width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Shape of the suite's small residual network (a [`Stem::Small`] stem and the same number of
/// basic blocks in every stage). Its description and job keys predate [`ArchConfig`] and
/// must not change, so it stays a type of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Channels of the first stage; stage `s` has `width · 2^s`.
    pub width: usize,
    /// Residual blocks per stage.
    pub blocks: usize,
    /// Stages; each after the first halves the resolution.
    pub stages: usize,
    pub num_classes: usize,
    /// The stem is a stride-2 3×3 convolution: at 32 px the first stage runs at 16×16, which
    /// is what makes CPU training of the default suite take minutes instead of an hour.
    pub image_size: usize,
}

impl ResNetConfig {
    pub fn describe(&self) -> String {
        ArchConfig::from(self.clone()).describe()
    }
}

/// Any residual network of the family: stem, block kind, blocks per stage, first-stage width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchConfig {
    pub stem: Stem,
    pub block: BlockKind,
    /// Residual blocks per stage; every stage after the first halves the resolution and
    /// doubles the width.
    pub layers: Vec<usize>,
    /// Channels of the first stage before block expansion (64 in torchvision).
    pub width: usize,
    pub num_classes: usize,
    pub image_size: usize,
}

impl From<ResNetConfig> for ArchConfig {
    fn from(c: ResNetConfig) -> Self {
        ArchConfig {
            stem: Stem::Small,
            block: BlockKind::Basic,
            layers: vec![c.blocks; c.stages],
            width: c.width,
            num_classes: c.num_classes,
            image_size: c.image_size,
        }
    }
}

/// The torchvision architectures by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamedArch {
    Resnet18,
    Resnet34,
    Resnet50,
}

impl NamedArch {
    pub const ALL: [NamedArch; 3] = [NamedArch::Resnet18, NamedArch::Resnet34, NamedArch::Resnet50];

    /// The architecture called `name` (`resnet18`, ...), as [`NamedArch::name`] spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            NamedArch::Resnet18 => "resnet18",
            NamedArch::Resnet34 => "resnet34",
            NamedArch::Resnet50 => "resnet50",
        }
    }

    pub fn block(self) -> BlockKind {
        match self {
            NamedArch::Resnet18 | NamedArch::Resnet34 => BlockKind::Basic,
            NamedArch::Resnet50 => BlockKind::Bottleneck,
        }
    }

    pub fn layers(self) -> Vec<usize> {
        match self {
            NamedArch::Resnet18 => vec![2, 2, 2, 2],
            NamedArch::Resnet34 | NamedArch::Resnet50 => vec![3, 4, 6, 3],
        }
    }

    /// torchvision's network: ImageNet stem, first-stage width 64.
    pub fn config(self, num_classes: usize, image_size: usize) -> ArchConfig {
        ArchConfig { stem: Stem::Imagenet, block: self.block(), layers: self.layers(), width: 64, num_classes, image_size }
    }
}

impl ArchConfig {
    /// The same network with every stage `width_multiplier` times as wide and
    /// `depth_multiplier` times as deep (rounded, at least one channel and one block).
    pub fn scaled(mut self, width_multiplier: f64, depth_multiplier: f64) -> Self {
        self.width = ((self.width as f64 * width_multiplier).round() as usize).max(1);
        for n in &mut self.layers {
            *n = ((*n as f64 * depth_multiplier).round() as usize).max(1);
        }
        self
    }

    /// The suite model this is, when it is one: its description and job key keep their
    /// original form so earlier results stay valid.
    pub fn as_small(&self) -> Option<ResNetConfig> {
        let uniform = self.layers.first().filter(|&&b| self.layers.iter().all(|&n| n == b))?;
        (self.stem == Stem::Small && self.block == BlockKind::Basic).then(|| ResNetConfig {
            width: self.width,
            blocks: *uniform,
            stages: self.layers.len(),
            num_classes: self.num_classes,
            image_size: self.image_size,
        })
    }

    /// The torchvision architecture this is, when it is one exactly.
    pub fn as_named(&self) -> Option<NamedArch> {
        NamedArch::ALL
            .into_iter()
            .find(|a| a.config(self.num_classes, self.image_size) == *self)
    }

    /// A short label without commas or spaces (it is a CSV field), e.g. `resnet-w16-b1-s3`,
    /// `resnet50`, `resnet-imagenet-basic-w32-l2.2.2.2`.
    pub fn describe(&self) -> String {
        if let Some(s) = self.as_small() {
            return format!("resnet-w{}-b{}-s{}", s.width, s.blocks, s.stages);
        }
        if let Some(a) = self.as_named() {
            return a.name().to_string();
        }
        let layers: Vec<String> = self.layers.iter().map(|n| n.to_string()).collect();
        format!("resnet-{}-{}-w{}-l{}", self.stem_name(), self.block_name(), self.width, layers.join("."))
    }

    /// The network an architecture name stands for: a torchvision name (`resnet50`) or any
    /// description [`ArchConfig::describe`] writes (`resnet-w16-b1-s3`,
    /// `resnet-imagenet-basic-w8-l1.1.1.1`), for `num_classes` classes at `image_size` pixels.
    pub fn from_description(name: &str, num_classes: usize, image_size: usize) -> Option<Self> {
        if let Some(a) = NamedArch::from_name(name) {
            return Some(a.config(num_classes, image_size));
        }
        let parts: Vec<&str> = name.strip_prefix("resnet-")?.split('-').collect();
        let number = |p: &str, prefix: char| p.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0);
        let config = match parts.as_slice() {
            [w, b, st] => ArchConfig::from(ResNetConfig { width: number(w, 'w')?, blocks: number(b, 'b')?, stages: number(st, 's')?, num_classes, image_size }),
            [stem, block, w, l] => ArchConfig {
                stem: match *stem {
                    "imagenet" => Stem::Imagenet,
                    "cifar" => Stem::Cifar,
                    "small" => Stem::Small,
                    _ => return None,
                },
                block: match *block {
                    "basic" => BlockKind::Basic,
                    "bottleneck" => BlockKind::Bottleneck,
                    _ => return None,
                },
                width: number(w, 'w')?,
                layers: l.strip_prefix('l')?.split('.').map(|n| n.parse::<usize>().ok().filter(|&n| n > 0)).collect::<Option<Vec<_>>>()?,
                num_classes,
                image_size,
            },
            _ => return None,
        };
        (config.layers.len() <= 6 && config.width <= 4096).then_some(config)
    }

    fn stem_name(&self) -> &'static str {
        match self.stem {
            Stem::Imagenet => "imagenet",
            Stem::Cifar => "cifar",
            Stem::Small => "small",
        }
    }

    fn block_name(&self) -> &'static str {
        match self.block {
            BlockKind::Basic => "basic",
            BlockKind::Bottleneck => "bottleneck",
        }
    }

    /// What identifies the network in a training job's key. The suite model keeps the form it
    /// had before other architectures existed, so its trained checkpoints stay addressable.
    pub fn key(&self) -> serde_json::Value {
        match self.as_small() {
            Some(s) => serde_json::json!({"width": s.width, "blocks": s.blocks, "stages": s.stages, "classes": s.num_classes}),
            None => serde_json::json!({
                "stem": self.stem, "block": self.block, "layers": self.layers, "width": self.width, "classes": self.num_classes,
            }),
        }
    }

    /// Relative training cost per image, for scheduling only (width² × mean blocks per stage:
    /// for the suite model, `width² · blocks` as before).
    pub fn cost_factor(&self) -> u64 {
        let total: usize = self.layers.iter().sum();
        let expand = self.block.expansion();
        (self.width * self.width * expand * expand * total / self.layers.len().max(1)) as u64
    }

    /// Channels of the feature vector the classifier sees.
    pub fn feature_channels(&self) -> usize {
        (self.width << (self.layers.len() - 1)) * self.block.expansion()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_model_keeps_its_description_and_key() {
        let c = ResNetConfig { width: 16, blocks: 1, stages: 3, num_classes: 10, image_size: 32 };
        assert_eq!(c.describe(), "resnet-w16-b1-s3");
        let a = ArchConfig::from(c);
        assert_eq!(a.key().to_string(), r#"{"blocks":1,"classes":10,"stages":3,"width":16}"#);
        assert_eq!(a.cost_factor(), 256);
    }

    #[test]
    fn named_architectures_and_multipliers() {
        let r50 = NamedArch::Resnet50.config(1000, 224);
        assert_eq!(r50.describe(), "resnet50");
        assert_eq!(r50.feature_channels(), 2048);
        assert_eq!(NamedArch::Resnet18.config(10, 64).feature_channels(), 512);
        let half = NamedArch::Resnet34.config(10, 64).scaled(0.5, 0.5);
        assert_eq!((half.width, half.layers.clone()), (32, vec![2, 2, 3, 2]));
        assert_eq!(half.describe(), "resnet-imagenet-basic-w32-l2.2.3.2");
        let cifar = ArchConfig { stem: Stem::Cifar, ..NamedArch::Resnet18.config(10, 32) };
        assert_eq!(cifar.describe(), "resnet-cifar-basic-w64-l2.2.2.2");
        assert!(cifar.key().get("stem").is_some());
    }

    #[test]
    fn descriptions_name_their_architecture_back() {
        let small = ArchConfig::from(ResNetConfig { width: 16, blocks: 1, stages: 3, num_classes: 10, image_size: 32 });
        let tiny = ArchConfig { stem: Stem::Imagenet, block: BlockKind::Basic, layers: vec![1, 1, 1, 1], width: 8, num_classes: 1000, image_size: 64 };
        for config in [small, tiny, NamedArch::Resnet50.config(1000, 224), NamedArch::Resnet34.config(7, 64).scaled(0.5, 0.5)] {
            let name = config.describe();
            assert_eq!(ArchConfig::from_description(&name, config.num_classes, config.image_size), Some(config), "{name}");
        }
        for bad in ["resnet", "resnet-w0-b1-s3", "resnet-imagenet-basic-w8-l1..1", "resnet-huge-basic-w8-l1", "vit-b16"] {
            assert_eq!(ArchConfig::from_description(bad, 10, 32), None, "{bad}");
        }
    }
}
