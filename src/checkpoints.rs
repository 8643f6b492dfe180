//! Finished checkpoints of a results folder, which verify themselves before they are evaluated.
//!
//! A checkpoint `work/checkpoints/<job hash>.safetensors` has a sidecar `<job hash>.json` with
//! the job's key, its final loss and the sha256 of the checkpoint's bytes. The hash lives in the
//! sidecar, not in the safetensors metadata, because a file cannot carry the hash of its own
//! bytes, and because the checkpoint then stays exactly the torchvision-layout file PyTorch
//! loads. Records evaluated from a checkpoint carry the same sha256.
//!
//! Before a checkpoint is used its bytes are hashed against the sidecar, the sidecar's key
//! against the job's (another job's checkpoint and sidecar copied over both differ there), and
//! every float tensor must be finite and the file must load into the job's model. One that
//! fails is moved to `work/stale-checkpoints/` (never deleted) and its job retrained.

use crate::model::Trainable;
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The sidecar of a finished checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub final_loss: f64,
    /// The training job's key ([`crate::keys::train_job`]).
    pub key: serde_json::Value,
    /// sha256 of the checkpoint file's bytes. Absent in sidecars of harnesses before it, whose
    /// checkpoints therefore cannot be verified and are retrained.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A checkpoint that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub final_loss: f64,
    pub sha256: String,
}

/// The sidecar path of a checkpoint.
pub fn sidecar_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("json")
}

/// Saves `model` as the finished checkpoint at `path` with its sidecar; returns its sha256.
/// The checkpoint goes first, so a kill between the two leaves a checkpoint without sidecar,
/// which is retrained, never trusted.
pub fn save(model: &impl Trainable, path: &Path, key: &serde_json::Value, final_loss: f64) -> Result<String> {
    model.save(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read back checkpoint {}", path.display()))?;
    let sha256 = crate::fsutil::sha256_hex(&bytes);
    let sidecar = Sidecar { final_loss, key: key.clone(), sha256: Some(sha256.clone()) };
    crate::fsutil::write_atomic(&sidecar_path(path), serde_json::to_string(&sidecar)?.as_bytes())?;
    Ok(sha256)
}

/// Opens the finished checkpoint at `path` of the job keyed `key` into `model`. `None` when
/// there is none, or when it failed a check: then it and its sidecar were moved to `stale`
/// and a line says why, so the caller retrains.
pub fn open(path: &Path, key: &serde_json::Value, model: &mut impl Trainable, stale: &Path) -> Result<Option<Verified>> {
    let side = sidecar_path(path);
    if !path.exists() && !side.exists() {
        return Ok(None);
    }
    match verify(path, key, model) {
        Ok(v) => Ok(Some(v)),
        Err(defect) => {
            let mut moved = Vec::new();
            for p in [path, side.as_path()].into_iter().filter(|p| p.exists()) {
                moved.push(crate::fsutil::move_aside(p, stale)?);
            }
            let list = moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ");
            crate::progress::warn(format!("checkpoint {} {defect}: moved to {list}; retraining its job", path.display()));
            Ok(None)
        }
    }
}

/// Why the checkpoint at `path` cannot be used for the job keyed `key`, or what it holds.
fn verify(path: &Path, key: &serde_json::Value, model: &mut impl Trainable) -> std::result::Result<Verified, String> {
    let side = sidecar_path(path);
    let side_bytes = std::fs::read(&side).map_err(|_| format!("has no readable sidecar {}", side.display()))?;
    let sidecar: Sidecar = serde_json::from_slice(&side_bytes).map_err(|e| format!("has a corrupt sidecar {} ({e})", side.display()))?;
    if &sidecar.key != key {
        return Err("belongs to another training job (its sidecar's key differs)".to_string());
    }
    let Some(expected) = sidecar.sha256 else {
        return Err("has no recorded sha256 (written by an older harness), so it cannot be verified".to_string());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
    let actual = check_weights(&bytes, &expected)?;
    model.load(path).map_err(|e| format!("does not load into the job's model ({e:#})"))?;
    if !sidecar.final_loss.is_finite() {
        return Err(format!("has a non-finite final loss {}", sidecar.final_loss));
    }
    Ok(Verified { final_loss: sidecar.final_loss, sha256: actual })
}

/// The checks every saved weights file passes before it is used, whatever model it holds
/// (classifier checkpoints here, diffusion weights in `generate::diffusion`): its bytes hash to
/// the sha256 recorded when it was saved, and every float tensor is finite. Returns the hash,
/// or why the file cannot be used.
pub fn check_weights(bytes: &[u8], recorded_sha256: &str) -> std::result::Result<String, String> {
    let actual = crate::fsutil::sha256_hex(bytes);
    if actual != recorded_sha256 {
        return Err(format!("has sha256 {actual}, not the {recorded_sha256} it was saved with"));
    }
    if let Some(name) = non_finite_tensor(bytes).map_err(|e| format!("does not load ({e:#})"))? {
        return Err(format!("holds non-finite weights (tensor `{name}`)"));
    }
    Ok(actual)
}

/// The name of a float tensor of a safetensors file that holds a NaN or an infinity, if any.
/// An error when the bytes are not a safetensors file.
pub fn non_finite_tensor(bytes: &[u8]) -> Result<Option<String>> {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        if t.dtype().is_float() {
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            if values.iter().any(|v| !v.is_finite()) {
                return Ok(Some(name.clone()));
            }
        }
    }
    Ok(None)
}
