//! The seams between classifiers and the stages that use them: evaluation needs logits for a
//! batch ([`Classifier`]); training also needs a training-mode forward pass, the parameters and
//! checkpoints ([`Trainable`]). The ResNets implement both; an outside classifier (another
//! architecture, an ONNX graph) only has to implement [`Classifier`] to be evaluated.

use super::{Param, ResNet};
use anyhow::Result;
use candle_core::{Device, Tensor};
use std::path::Path;

/// What a record says about the classifier behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifierInfo {
    /// Architecture, e.g. `resnet-w16-b1-s3` or `resnet50`.
    pub arch: String,
    /// Trainable parameters.
    pub parameters: u64,
}

/// Anything that maps a batch of images to class logits.
pub trait Classifier {
    /// Logits `(batch, classes)` for a normalised NHWC batch `(batch, size, size, 3)`, in
    /// evaluation mode. Each image's logits must not depend on the other images in the batch.
    fn logits(&mut self, batch: &Tensor) -> Result<Tensor>;
    fn num_classes(&self) -> usize;
    /// Side of the square input images, in pixels.
    fn input_size(&self) -> usize;
    fn info(&self) -> ClassifierInfo;
    /// The device its batches must be on.
    fn device(&self) -> &Device;
}

/// A classifier the harness can fit.
pub trait Trainable: Classifier {
    /// Logits in training mode: batch statistics normalise and running statistics update.
    fn forward_train(&mut self, batch: &Tensor) -> Result<Tensor>;
    fn params(&self) -> Vec<Param>;
    /// Writes the weights (and any running statistics) to a safetensors file, atomically.
    fn save(&self, path: &Path) -> Result<()>;
    fn load(&mut self, path: &Path) -> Result<()>;
}

impl Classifier for ResNet {
    fn logits(&mut self, batch: &Tensor) -> Result<Tensor> {
        self.forward(batch, false)
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn input_size(&self) -> usize {
        self.config.image_size
    }

    fn info(&self) -> ClassifierInfo {
        ClassifierInfo { arch: self.config.describe(), parameters: self.parameter_count() }
    }

    fn device(&self) -> &Device {
        self.fc_weight.device()
    }
}

impl Trainable for ResNet {
    fn forward_train(&mut self, batch: &Tensor) -> Result<Tensor> {
        self.forward(batch, true)
    }

    fn params(&self) -> Vec<Param> {
        ResNet::params(self)
    }

    fn save(&self, path: &Path) -> Result<()> {
        ResNet::save(self, path)
    }

    fn load(&mut self, path: &Path) -> Result<()> {
        ResNet::load(self, path)
    }
}
