//! Classifiers: residual networks on candle, from the suite's small model to torchvision's
//! ResNet-18/34/50, with seeded initialisation and torchvision-compatible checkpoints.
//!
//! Tensors are channel-last (NHWC). Convolutions are im2col + matrix products ([`conv`],
//! [`im2col`]); on the CPU the products are our own fixed-order [`kernels`], so results do not
//! depend on the CPU model. Max pooling is our own op with a correct overlapping-window gradient
//! ([`pool`]), shapes live in [`arch`], the networks in [`resnet`], checkpoints in
//! [`torchvision`].

pub mod arch;
mod classifier;
mod conv;
pub mod fused;
pub mod im2col;
pub mod kernels;
pub mod onnx;
pub mod pool;
pub mod resnet;
pub mod torchvision;

pub use arch::{ArchConfig, BlockKind, NamedArch, ResNetConfig, Stem};
pub use classifier::{Classifier, ClassifierInfo, Trainable};
pub use conv::{conv_nhwc, im2col_reference};
pub use onnx::OnnxClassifier;
pub use resnet::ResNet;

use anyhow::Result;
use candle_core::{Tensor, Var, D};

/// One trainable tensor and whether weight decay applies to it (not to BN scales or biases).
pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

/// ImageNet-style normalisation constants (per RGB channel), applied to `[0, 1]` pixels.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Appends RGB8 `pixels` as normalised floats (`(p / 255 - mean) / std` per channel), the
/// input every classifier here takes.
pub fn normalise_into(pixels: &[u8], out: &mut Vec<f32>) {
    out.extend(pixels.iter().enumerate().map(|(j, &p)| (p as f32 / 255.0 - MEAN[j % 3]) / STD[j % 3]));
}

/// Index of the largest logit per row.
pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}
