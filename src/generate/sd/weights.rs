//! Where Stable Diffusion weights come from, what they hash to, and how candle reads them.
//!
//! A weights *source* is a directory in the diffusers layout, a snapshot in an existing Hugging
//! Face cache (never downloaded), or a `datasets.lock` artifact (an archive of that layout,
//! fetched and verified by `shiftbench fetch`). All three end as one directory read the same way.

use super::preset::Preset;
use crate::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::Init;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Environment variable naming the weights (same syntax as the suite's `weights` key).
pub const WEIGHTS_ENV: &str = "SHIFTBENCH_SD_WEIGHTS";

/// One weights file the pipeline reads, relative to the model root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightFiles {
    pub root: PathBuf,
    pub unet: PathBuf,
    pub vae: PathBuf,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub text_encoder_2: Option<PathBuf>,
    pub tokenizer_2: Option<PathBuf>,
}

impl WeightFiles {
    /// Every file whose bytes determine the images, relative to the root, sorted.
    pub fn hashed_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [&self.unet, &self.vae, &self.text_encoder, &self.tokenizer]
            .into_iter()
            .chain(self.text_encoder_2.iter())
            .chain(self.tokenizer_2.iter())
            .cloned()
            .collect();
        files.extend(merges_beside(&self.tokenizer));
        files.extend(self.tokenizer_2.as_deref().and_then(merges_beside));
        for config in ["unet/config.json", "vae/config.json", "text_encoder/config.json", "text_encoder_2/config.json", "scheduler/scheduler_config.json", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"] {
            if self.root.join(config).is_file() {
                files.push(PathBuf::from(config));
            }
        }
        files.sort();
        files.dedup();
        files
    }
}

/// `merges.txt` when `tokenizer` is a slow-tokenizer `vocab.json` (it is read from beside it).
fn merges_beside(tokenizer: &Path) -> Option<PathBuf> {
    (tokenizer.file_name()? == super::tokenizer::VOCAB_FILE).then(|| tokenizer.with_file_name(super::tokenizer::MERGES_FILE))
}

/// The files a model directory must hold for `preset`, or an error listing every missing one.
pub fn locate_files(root: &Path, preset: Preset) -> Result<WeightFiles> {
    let mut missing = Vec::new();
    let mut pick = |candidates: &[&str]| -> PathBuf {
        match candidates.iter().find(|c| root.join(c).is_file()) {
            Some(c) => PathBuf::from(c),
            None => {
                missing.push(candidates[0].to_string());
                PathBuf::from(candidates[0])
            }
        }
    };
    let unet = pick(&["unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"]);
    let vae = pick(&["vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"]);
    let text_encoder = pick(&["text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"]);
    let tokenizer = pick(&["tokenizer/tokenizer.json", "tokenizer.json", "tokenizer/vocab.json"]);
    let (text_encoder_2, tokenizer_2) = if preset.dual_text_encoder() {
        (
            Some(pick(&["text_encoder_2/model.safetensors", "text_encoder_2/model.fp16.safetensors"])),
            Some(pick(&["tokenizer_2/tokenizer.json", "tokenizer_2/vocab.json"])),
        )
    } else {
        (None, None)
    };
    for vocab in std::iter::once(&tokenizer).chain(tokenizer_2.iter()) {
        if let Some(merges) = merges_beside(vocab).filter(|m| !root.join(m).is_file()) {
            missing.push(merges.display().to_string());
        }
    }
    if !missing.is_empty() {
        bail!(
            "Stable Diffusion weights for preset `{}` are incomplete in {}: missing {} (a tokenizer is \
             tokenizer.json or vocab.json + merges.txt). \
             Provide a diffusers-layout folder of {} with --weights DIR, the {WEIGHTS_ENV} environment \
             variable, or the generator's `weights` key (a folder, `hf:ORG/NAME` for a Hugging Face cache \
             snapshot, or `artifact:NAME` for a datasets.lock archive)",
            preset.name(),
            root.display(),
            missing.join(", "),
            preset.hf_repo()
        );
    }
    Ok(WeightFiles { root: root.to_path_buf(), unet, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2 })
}

/// How a user named the weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsSource {
    Dir(PathBuf),
    /// `hf:ORG/NAME[@REVISION]`: a snapshot already in the Hugging Face cache.
    HfCache { repo: String, revision: Option<String> },
    /// `artifact:NAME`: an archive pinned in datasets.lock.
    Artifact(String),
}

impl WeightsSource {
    pub fn parse(text: &str) -> WeightsSource {
        if let Some(rest) = text.strip_prefix("hf:") {
            let (repo, revision) = match rest.split_once('@') {
                Some((r, rev)) => (r.to_string(), Some(rev.to_string())),
                None => (rest.to_string(), None),
            };
            WeightsSource::HfCache { repo, revision }
        } else if let Some(name) = text.strip_prefix("artifact:") {
            WeightsSource::Artifact(name.to_string())
        } else {
            WeightsSource::Dir(PathBuf::from(text))
        }
    }
}

/// The Hugging Face hub cache folder ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    dirs::home_dir().map(|h| h.join(".cache/huggingface/hub"))
}

/// The snapshot folder of `repo` in the cache: the named revision (branch, tag or commit), else
/// `main`, else the only snapshot present.
pub fn hf_snapshot(cache: &Path, repo: &str, revision: Option<&str>) -> Result<PathBuf> {
    let model = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !model.is_dir() {
        bail!(
            "{repo} is not in the Hugging Face cache {} (looked for {}); download it there with \
             `huggingface-cli download {repo}` or point --weights / {WEIGHTS_ENV} at a diffusers-layout folder",
            cache.display(),
            model.display()
        );
    }
    let snapshots = model.join("snapshots");
    let wanted = revision.unwrap_or("main");
    let commit = std::fs::read_to_string(model.join("refs").join(wanted)).ok().map(|s| s.trim().to_string());
    let by_name = commit.map(|c| snapshots.join(c)).filter(|p| p.is_dir()).or_else(|| Some(snapshots.join(wanted)).filter(|p| p.is_dir()));
    if let Some(p) = by_name {
        return Ok(p);
    }
    let all: Vec<PathBuf> = std::fs::read_dir(&snapshots).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    match (revision, all.as_slice()) {
        (None, [only]) => Ok(only.clone()),
        _ => bail!(
            "{repo} in {} has no snapshot for revision `{wanted}` ({} snapshots); name one with hf:{repo}@REVISION",
            model.display(),
            all.len()
        ),
    }
}

/// Resolves a source to a model folder without any network access. `lock` and `artifacts` are
/// needed only for `artifact:` sources.
pub fn resolve_root(source: &WeightsSource, lock_path: &Path, artifacts: Option<&crate::fetch::FetchOptions>) -> Result<PathBuf> {
    match source {
        WeightsSource::Dir(d) => {
            if !d.is_dir() {
                bail!(
                    "Stable Diffusion weights folder {} does not exist; pass a diffusers-layout folder with --weights DIR or {WEIGHTS_ENV}",
                    d.display()
                );
            }
            Ok(d.clone())
        }
        WeightsSource::HfCache { repo, revision } => {
            let cache = hf_cache_dir().context("cannot find the home folder for the Hugging Face cache; set HF_HUB_CACHE")?;
            hf_snapshot(&cache, repo, revision.as_deref())
        }
        WeightsSource::Artifact(name) => {
            let lock = crate::fetch::lock::Lock::load(lock_path)?;
            let artifact = lock.get(name)?;
            let mut opts = match artifacts {
                Some(o) => o.clone(),
                None => crate::fetch::FetchOptions::new(crate::fetch::default_cache_dir()?),
            };
            // Planning never downloads: a missing archive is an error telling the user to fetch it.
            opts.offline = true;
            let fetched = crate::fetch::fetch(artifact, &opts).map_err(|e| anyhow::anyhow!("{e}; run `shiftbench fetch {name}` first"))?;
            let dir = fetched.extracted.unwrap_or(fetched.path);
            // An archive holding one top folder (e.g. `sd-turbo/unet/...`) is read from inside it.
            let inner: Vec<PathBuf> = std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
            match inner.as_slice() {
                [one] if !dir.join("unet").exists() && one.join("unet").is_dir() => Ok(one.clone()),
                _ => Ok(dir),
            }
        }
    }
}

/// sha256 over the model's files: `relative path NUL file sha256 LF` for each, sorted by path.
/// Per-file digests are cached by (absolute path, size, mtime) under the shiftbench cache, so a
/// multi-gigabyte checkpoint is read once, not on every run.
pub fn weights_hash(files: &WeightFiles) -> Result<String> {
    use sha2::{Digest, Sha256};
    let cache_file = crate::fetch::default_cache_dir().ok().map(|d| d.join("sd-weight-hashes.json"));
    let mut cache: BTreeMap<String, String> = cache_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut changed = false;
    let mut outer = Sha256::new();
    for rel in files.hashed_files() {
        let path = files.root.join(&rel);
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot read weights file {}", path.display()))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
        let abs = std::fs::canonicalize(&path).unwrap_or(path.clone());
        let key = format!("{}|{}|{}", abs.display(), meta.len(), mtime);
        let digest = match cache.get(&key) {
            Some(d) => d.clone(),
            None => {
                let (sha, _, _) = crate::fetch::hash_file(&path).with_context(|| format!("cannot hash weights file {}", path.display()))?;
                cache.insert(key, sha.clone());
                changed = true;
                sha
            }
        };
        outer.update(rel.to_string_lossy().replace('\\', "/").as_bytes());
        outer.update([0]);
        outer.update(digest.as_bytes());
        outer.update([b'\n']);
    }
    if changed {
        if let Some(p) = cache_file {
            // A cache that cannot be written only costs a re-hash next time.
            let _ = write_atomic(&p, &serde_json::to_vec_pretty(&cache)?);
        }
    }
    Ok(hex::encode(outer.finalize()))
}

/// Reads one safetensors file for candle, naming the file and tensor in every error, and
/// optionally replacing tensors (see [`posterior_mean_overrides`]).
pub struct CheckedSafetensors {
    file: PathBuf,
    inner: candle_core::safetensors::MmapedSafetensors,
    overrides: HashMap<String, Tensor>,
}

impl CheckedSafetensors {
    pub fn open(file: &Path) -> Result<Self> {
        // SAFETY: the file is memory-mapped read-only; like every safetensors reader we rely on
        // nobody truncating it while the models load.
        let inner = unsafe { candle_core::safetensors::MmapedSafetensors::new(file) }
            .map_err(|e| anyhow::anyhow!("{} is not a readable safetensors file: {e}", file.display()))?;
        Ok(Self { file: file.to_path_buf(), inner, overrides: HashMap::new() })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.inner.get(name).ok().map(|v| v.shape().to_vec())
    }

    pub fn load_f32(&self, name: &str) -> Result<Tensor> {
        self.inner
            .load(name, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| anyhow::anyhow!("{}: cannot read tensor `{name}`: {e}", self.file.display()))
    }

    pub fn set_overrides(&mut self, overrides: HashMap<String, Tensor>) {
        self.overrides = overrides;
    }
}

impl SimpleBackend for CheckedSafetensors {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if let Some(t) = self.overrides.get(name) {
            return t.to_dtype(dtype)?.to_device(dev);
        }
        let view = self.inner.get(name).map_err(|_| {
            candle_core::Error::Msg(format!("{} has no tensor `{name}` (expected shape {s:?}); the file does not match the model config", self.file.display()))
        })?;
        if view.shape() != s.dims() {
            return Err(candle_core::Error::Msg(format!(
                "tensor `{name}` in {} has shape {:?}, the model config expects {:?}; the weights and config.json disagree",
                self.file.display(),
                view.shape(),
                s.dims()
            )));
        }
        self.inner.load(name, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if let Some(t) = self.overrides.get(name) {
            return t.to_dtype(dtype)?.to_device(dev);
        }
        self.inner
            .load(name, dev)
            .map_err(|_| candle_core::Error::Msg(format!("{} has no tensor `{name}`", self.file.display())))?
            .to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.overrides.contains_key(name) || self.inner.get(name).is_ok()
    }
}

/// Replacement tensors that make candle's VAE posterior a point mass at its mean.
///
/// candle's `DiagonalGaussianDistribution::sample` draws from the device RNG, which cannot be
/// seeded on CPU, and keeps mean and std private. img2img therefore encodes to the mean (as
/// diffusers' `latent_dist.mode()`): the last 1×1 conv (`quant_conv`, or the encoder's `conv_out`
/// without one) gets zero weights and a bias of -250 on its log-variance half, so std = exp(-125)
/// underflows to exactly 0 in every float type and `sample()` returns the mean bit for bit.
pub fn posterior_mean_overrides(weight: Tensor, bias: Tensor, prefix: &str) -> Result<HashMap<String, Tensor>> {
    let out = weight.dim(0)?;
    let half = out / 2;
    let w = weight.to_dtype(DType::F32)?;
    let b = bias.to_dtype(DType::F32)?;
    let zero_w = Tensor::zeros(w.narrow(0, half, out - half)?.shape(), DType::F32, w.device())?;
    let new_w = Tensor::cat(&[&w.narrow(0, 0, half)?, &zero_w], 0)?;
    let low_b = Tensor::full(-250f32, out - half, b.device())?;
    let new_b = Tensor::cat(&[&b.narrow(0, 0, half)?, &low_b], 0)?;
    Ok(HashMap::from([(format!("{prefix}.weight"), new_w), (format!("{prefix}.bias"), new_b)]))
}

/// How a [`RandomWeights`] backend fills tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomFill {
    /// From our counter-based stream, keyed by (seed, tensor name): reproducible anywhere.
    Seeded(u64),
    /// candle's device RNG: fast on a GPU, for timing only.
    Device,
}

/// A candle backend that invents every tensor the model asks for (names and shapes come from the
/// model's own constructor), and remembers them so they can be written as safetensors.
pub struct RandomWeights {
    fill: RandomFill,
    made: Mutex<BTreeMap<String, Tensor>>,
}

impl RandomWeights {
    pub fn new(fill: RandomFill) -> Self {
        Self { fill, made: Mutex::new(BTreeMap::new()) }
    }

    /// Everything created so far, by name.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.made.lock().expect("random weights lock").clone()
    }

    /// (mean, std) for a tensor: norm scales near 1, biases small, matrices scaled by fan-in so
    /// activations neither vanish nor explode through a deep random network.
    fn moments(name: &str, dims: &[usize]) -> (f64, f64) {
        let leaf = name.rsplit('.').nth(1).unwrap_or("");
        if name.ends_with("bias") {
            (0.0, 0.02)
        } else if leaf.contains("norm") {
            (1.0, 0.02)
        } else if dims.len() >= 2 {
            let fan_in: usize = dims[1..].iter().product();
            (0.0, 1.0 / (fan_in.max(1) as f64).sqrt())
        } else {
            (0.0, 0.02)
        }
    }

    fn make(&self, s: &Shape, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let (mean, std) = Self::moments(name, s.dims());
        match self.fill {
            RandomFill::Seeded(seed) => {
                let mut stream = crate::rng::Stream::new(seed, &format!("sd-random/{name}"), 0);
                let values: Vec<f32> = (0..s.elem_count()).map(|_| (mean + std * stream.normal()) as f32).collect();
                Tensor::from_vec(values, s.clone(), &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)
            }
            RandomFill::Device => Tensor::randn(mean as f32, std as f32, s.clone(), dev)?.to_dtype(dtype),
        }
    }
}

impl SimpleBackend for RandomWeights {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut made = self.made.lock().expect("random weights lock");
        if let Some(t) = made.get(name) {
            if t.shape() == &s {
                return t.to_dtype(dtype)?.to_device(dev);
            }
        }
        let t = self.make(&s, name, dtype, dev)?;
        made.insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match self.made.lock().expect("random weights lock").get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => Err(candle_core::Error::Msg(format!("random weights: `{name}` has no shape yet"))),
        }
    }

    /// Answers yes so loaders that probe for the modern diffusers names (`to_q`) pick them.
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Writes tensors as one safetensors file (f32, names sorted), atomically.
pub fn save_safetensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let map: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<_>>()?;
    crate::fsutil::write_safetensors(path, &map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(WeightsSource::parse("/m/sd"), WeightsSource::Dir("/m/sd".into()));
        assert_eq!(WeightsSource::parse("hf:stabilityai/sd-turbo"), WeightsSource::HfCache { repo: "stabilityai/sd-turbo".into(), revision: None });
        assert_eq!(WeightsSource::parse("hf:a/b@v1"), WeightsSource::HfCache { repo: "a/b".into(), revision: Some("v1".into()) });
        assert_eq!(WeightsSource::parse("artifact:sd-turbo"), WeightsSource::Artifact("sd-turbo".into()));
    }

    #[test]
    fn hf_cache_snapshots_resolve_by_ref_commit_or_uniqueness() {
        let cache = tempfile::tempdir().unwrap();
        let model = cache.path().join("models--stabilityai--sd-turbo");
        std::fs::create_dir_all(model.join("snapshots/abc123/unet")).unwrap();
        // One snapshot, no refs: it is used.
        assert_eq!(hf_snapshot(cache.path(), "stabilityai/sd-turbo", None).unwrap(), model.join("snapshots/abc123"));
        // A second snapshot makes `main` ambiguous until refs/main names one.
        std::fs::create_dir_all(model.join("snapshots/def456")).unwrap();
        let e = hf_snapshot(cache.path(), "stabilityai/sd-turbo", None).unwrap_err().to_string();
        assert!(e.contains("hf:stabilityai/sd-turbo@REVISION"), "{e}");
        std::fs::create_dir_all(model.join("refs")).unwrap();
        std::fs::write(model.join("refs/main"), "def456\n").unwrap();
        assert_eq!(hf_snapshot(cache.path(), "stabilityai/sd-turbo", None).unwrap(), model.join("snapshots/def456"));
        assert_eq!(hf_snapshot(cache.path(), "stabilityai/sd-turbo", Some("abc123")).unwrap(), model.join("snapshots/abc123"));
        let e = hf_snapshot(cache.path(), "runwayml/stable-diffusion-v1-5", None).unwrap_err().to_string();
        assert!(e.contains("models--runwayml--stable-diffusion-v1-5") && e.contains("--weights"), "{e}");
    }
}
