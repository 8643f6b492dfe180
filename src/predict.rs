//! `shiftbench predict`: what a classifier says about image files — its top-5 classes and
//! optionally its logits — with the files decoded and preprocessed exactly as torchvision's eval
//! transform does on a PIL image ([`crate::data::image`]).
//!
//! The planning is pure and comes first: which files are images and in which order
//! ([`list_images`]), the top-k rule ([`top_k`]), the CSV ([`csv_text`]),
//! the `.npy` header ([`npy_header`]) and what a weights file holds ([`WeightsHeader`]). [`run`]
//! does the I/O: decoding and preprocessing on rayon's threads one batch ahead of the forward
//! pass, which goes through [`Classifier`], and outputs written atomically.
//!
//! **Listing rule.** A `PATH` that is a file is taken as given, whatever its name (the format is
//! found from its bytes, [`crate::data::image::decode`]). A folder contributes its images as every
//! image set reads a folder ([`crate::data::imageset::list_images`]): every file below it,
//! recursively, whose extension is one of [`IMAGE_EXTENSIONS`] in any letter case, hidden files
//! (`.DS_Store`, `._x.jpg`) left out, sorted by path **component by component, each name in byte
//! order**: `10.png` before `9.png`, `B.png` before `a.png`, and a folder's contents together
//! (`a/x.png` before `a.png`, since `a` sorts before `a.png`). Numbers are not compared as
//! numbers: the order is a property of the names, never of a locale. Symbolic links to files are
//! followed, links to folders are not (a link cycle cannot loop). `PATH`s are taken in the order
//! given; a file named twice is predicted twice.
//!
//! **Independence.** Each image's logits depend on that image only: evaluation-mode networks
//! treat batch mates independently and the CPU kernels sum in a fixed order whatever the thread
//! count, so the outputs are the same bytes for every `--batch-size` and `RAYON_NUM_THREADS`
//! (`tests/predict.rs` checks both).

use crate::data::image::decode::MAX_PIXELS;
use crate::data::image::{open_rgb, ImageTensor, Preprocess};
pub use crate::data::imageset::IMAGE_EXTENSIONS;
use crate::fsutil::AtomicFile;
use crate::model::{Classifier, NamedArch, OnnxClassifier, ResNet};
use anyhow::{anyhow, bail, ensure, Context, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Classes per CSV row.
pub const TOP_K: usize = 5;

/// The CSV's header line.
pub const CSV_COLUMNS: [&str; 1 + TOP_K] = ["path", "top1", "top2", "top3", "top4", "top5"];

/// Images per forward pass unless `--batch-size` says otherwise: a ResNet-50 batch of 16 at
/// 224 px needs about 1 GB of activations on the CPU; larger batches are not faster there.
pub const DEFAULT_BATCH: usize = 16;

/// The images `inputs` name, in prediction order (the listing rule in the module docs). A
/// missing path, an unreadable folder or a folder without images is an error naming it.
pub fn list_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("cannot read {}: give an image file or a folder of images", input.display()))?;
        if !meta.is_dir() {
            out.push(input.clone());
            continue;
        }
        let found = crate::data::imageset::list_images(input)?;
        ensure!(
            !found.is_empty(),
            "{} holds no images (files ending in .{}, in any case, in it or its subfolders)",
            input.display(),
            IMAGE_EXTENSIONS.join(", .")
        );
        out.extend(found);
    }
    Ok(out)
}

/// The `k` classes with the highest logits, best first. Equal logits rank the lower class index
/// first (as a stable sort of `-logits` would, and unlike `torch.topk`, which promises no
/// order); NaN ranks below every number. Fewer than `k` classes give them all.
pub fn top_k(logits: &[f32], k: usize) -> Vec<u32> {
    let ahead = |a: usize, b: usize| match (logits[a].is_nan(), logits[b].is_nan()) {
        (false, false) => logits[a] > logits[b] || (logits[a] == logits[b] && a < b),
        (nan_a, nan_b) => !nan_a && nan_b || nan_a && nan_b && a < b,
    };
    // O(classes · k): a short sorted list beats sorting 1000 logits per image.
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for i in 0..logits.len() {
        let at = best.iter().position(|&j| ahead(i, j)).unwrap_or(best.len());
        if at < k {
            best.insert(at, i);
            best.truncate(k);
        }
    }
    best.into_iter().map(|i| i as u32).collect()
}

/// The predictions CSV: [`CSV_COLUMNS`], then one row per image with its path and top classes
/// (empty fields when the model has fewer than [`TOP_K`] classes); `\n` line ends.
pub fn csv_text(rows: &[(String, Vec<u32>)]) -> Result<String> {
    let mut w = crate::csvfmt::writer();
    w.write_record(CSV_COLUMNS)?;
    for (path, top) in rows {
        let mut fields = vec![path.clone()];
        fields.extend((0..TOP_K).map(|i| top.get(i).map(|c| c.to_string()).unwrap_or_default()));
        w.write_record(&fields)?;
    }
    crate::csvfmt::finish(w)
}

/// The header of a `.npy` file (format version 1.0) of little-endian `float32` in C order and
/// shape `(rows, cols)`, space-padded to a multiple of 64 bytes as numpy writes it, and to at
/// least `min_len` bytes so that a header written before the row count was known can be
/// rewritten in place.
pub fn npy_header(rows: usize, cols: usize, min_len: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let len = (10 + dict.len() + 1).next_multiple_of(64).max(min_len);
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((len - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(len - 1, b' ');
    out.push(b'\n');
    out
}

/// Tensor names and shapes from a safetensors header: enough to size the classifier and to
/// say which architecture a file holds before any weight is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsHeader {
    pub shapes: BTreeMap<String, Vec<usize>>,
}

impl WeightsHeader {
    /// Parses a safetensors header (the JSON after the 8-byte length).
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let map = value.as_object().ok_or("the header is not a JSON object")?;
        let mut shapes = BTreeMap::new();
        for (name, info) in map.iter().filter(|(n, _)| *n != "__metadata__") {
            let shape = info.get("shape").and_then(|s| s.as_array()).ok_or_else(|| format!("tensor `{name}` has no shape"))?;
            let shape = shape.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>().ok_or_else(|| format!("tensor `{name}` has a malformed shape"))?;
            shapes.insert(name.clone(), shape);
        }
        Ok(Self { shapes })
    }

    /// Classes of the classifier: `fc.weight` is `(classes, features)` in torchvision and timm.
    pub fn classes(&self) -> Option<usize> {
        match self.shapes.get("fc.weight").map(Vec::as_slice) {
            Some(&[classes, _]) if classes > 0 => Some(classes),
            _ => None,
        }
    }

    /// The torchvision architecture whose tensor names (blocks per stage, bottleneck or not) and
    /// stem width the file has, if any.
    pub fn named_arch(&self) -> Option<NamedArch> {
        if self.shapes.get("conv1.weight").map(Vec::as_slice) != Some(&[64, 3, 7, 7]) {
            return None;
        }
        let bottleneck = self.shapes.contains_key("layer1.0.conv3.weight");
        let blocks: Vec<usize> = (1..=4).map(|s| (0..).take_while(|b| self.shapes.contains_key(&format!("layer{s}.{b}.conv1.weight"))).count()).collect();
        NamedArch::ALL.into_iter().find(|a| (a.block() == crate::model::BlockKind::Bottleneck) == bottleneck && a.layers() == blocks)
    }
}

/// Reads only the header of the safetensors file at `path`.
pub fn read_weights_header(path: &Path) -> Result<WeightsHeader> {
    let not_safetensors = |why: String| {
        anyhow!(
            "{} is not a safetensors file ({why}); predict reads torchvision/timm-named ResNet weights in safetensors format: convert a PyTorch checkpoint with `python -c \"import torch, safetensors.torch as s; s.save_file(torch.load('model.pth'), 'model.safetensors')\"`",
            path.display()
        )
    };
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read weights {}", path.display()))?;
    let size = file.metadata().with_context(|| format!("cannot read weights {}", path.display()))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| not_safetensors(format!("it has only {size} bytes")))?;
    let len = u64::from_le_bytes(len);
    // safetensors itself refuses headers over 100 MB.
    if len > 100_000_000 || len > size - 8 {
        return Err(not_safetensors(format!("its first 8 bytes announce a {len}-byte header")));
    }
    let mut json = vec![0; len as usize];
    file.read_exact(&mut json).with_context(|| format!("cannot read weights {}", path.display()))?;
    WeightsHeader::parse(&json).map_err(not_safetensors)
}

/// The network `arch_name` names (a torchvision name or a harness description,
/// [`crate::model::ArchConfig::from_description`]) with the weights of `weights` (classes from
/// its `fc.weight`), for inputs of `image_size` pixels. A file of another architecture is one
/// error naming the first tensor that does not fit and the `--arch` to use.
pub fn load_resnet(arch_name: &str, weights: &Path, image_size: usize) -> Result<ResNet> {
    let header = read_weights_header(weights)?;
    let classes = header.classes().with_context(|| {
        format!(
            "weights {} have no 2-dimensional tensor `fc.weight` (classes × features) to take the number of classes from; predict reads ResNet weights with torchvision/timm tensor names (conv1.weight, layer1.0.conv1.weight, ..., fc.weight)",
            weights.display()
        )
    })?;
    // A forged header must not make the network allocate more than the file could hold (the
    // classifier alone is classes × features values of at least 2 bytes each).
    let features = header.shapes["fc.weight"][1];
    let size = std::fs::metadata(weights).map(|m| m.len()).unwrap_or(0);
    ensure!(
        classes.checked_mul(features).and_then(|n| n.checked_mul(2)).is_some_and(|n| n as u64 <= size),
        "weights {} declare fc.weight of shape [{classes}, {features}], more than the {size}-byte file holds; the file is corrupt: export it again",
        weights.display()
    );
    let config = crate::model::ArchConfig::from_description(arch_name, classes, image_size).with_context(|| {
        format!("unknown architecture `{arch_name}`: use one of {} or a description such as resnet-imagenet-basic-w8-l1.1.1.1 (stem, block, width, blocks per stage)", NamedArch::ALL.map(|a| a.name()).join(", "))
    })?;
    let mut model = ResNet::new(config, 0, &candle_core::Device::Cpu)?;
    model.load(weights).map_err(|e| {
        let fix = match header.named_arch() {
            Some(other) if other.name() != arch_name => format!("the file holds {} weights: use --arch {}", other.name(), other.name()),
            Some(_) => format!("the file is not a complete torchvision {arch_name} state_dict: export it again with safetensors.torch.save_file(model.state_dict(), FILE)"),
            None => format!(
                "its tensors are not those of a torchvision {}: use weights of one of those architectures",
                NamedArch::ALL.map(|a| a.name()).join(", ")
            ),
        };
        anyhow!("--weights do not fit --arch {arch_name}: {e:#}; {fix}")
    })?;
    Ok(model)
}

/// The network input for one file: decoded as `PIL.Image.open(path).convert("RGB")` and
/// transformed by `preprocess`. Errors name the file.
pub fn prepare_image(path: &Path, preprocess: &Preprocess) -> Result<ImageTensor> {
    let image = open_rgb(path)?;
    // A valid 1×60000 PNG of a few bytes would become 256×15,360,000 pixels (12 GB) after
    // `Resize(256)`: refuse what the decoder's own pixel limit would refuse.
    let (short, long) = (image.width.min(image.height) as u64, image.width.max(image.height) as u64);
    let resized = preprocess.resize as u64 * (preprocess.resize as u64 * long / short.max(1));
    ensure!(
        resized <= MAX_PIXELS,
        "{} is {}×{} pixels, which resizing to a short side of {} would make {resized} pixels, over the {MAX_PIXELS}-pixel limit; crop or remove the image",
        path.display(), image.width, image.height, preprocess.resize
    );
    preprocess.apply(&image).with_context(|| format!("cannot preprocess {}", path.display()))
}

/// Where a classifier comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A torchvision ResNet and its safetensors weights.
    /// `arch`: a torchvision name or a harness description
    /// ([`crate::model::ArchConfig::from_description`]).
    Torchvision { arch: String, weights: PathBuf },
    /// An ONNX graph (any architecture), run by tract.
    Onnx(PathBuf),
}

/// The classifier `source` names, for inputs of `image_size` pixels (`predict`'s crop, a
/// suite's `image_size` for `compare`).
pub fn load_model(source: &ModelSource, image_size: usize) -> Result<Box<dyn Classifier + Send>> {
    Ok(match source {
        ModelSource::Torchvision { arch, weights } => Box::new(load_resnet(arch, weights, image_size)?),
        ModelSource::Onnx(path) => Box::new(OnnxClassifier::load(path, Some(image_size))?),
    })
}

/// What `shiftbench predict` is asked to do.
#[derive(Clone, Debug)]
pub struct PredictRequest {
    pub model: ModelSource,
    pub preprocess: Preprocess,
    /// Image files and folders, in order.
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub logits: Option<PathBuf>,
    pub skip_unreadable: bool,
    pub batch_size: usize,
}

/// What a prediction run did.
#[derive(Clone, Debug)]
pub struct PredictSummary {
    /// Images predicted (rows of the CSV and the `.npy`).
    pub images: usize,
    pub classes: usize,
    /// One message per image left out by `skip_unreadable`, naming the file and why.
    pub skipped: Vec<String>,
}

/// Runs `req`: lists the images, loads the classifier, predicts batch by batch (the next batch
/// is decoded while this one runs through the network, so memory holds two batches of inputs)
/// and writes the CSV and the logits, each atomically and only when every image is done.
pub fn run(req: &PredictRequest) -> Result<PredictSummary> {
    ensure!(req.batch_size > 0, "--batch-size must be at least 1");
    ensure!(req.logits.as_ref() != Some(&req.out), "--out and --logits name the same file {}: give the logits a .npy file of their own", req.out.display());
    let paths = list_images(&req.inputs)?;
    let mut model = load_model(&req.model, req.preprocess.crop as usize)?;
    let classes = model.num_classes();
    let reserved = npy_header(paths.len(), classes, 0);
    let mut npy = match &req.logits {
        Some(p) => {
            let mut f = AtomicFile::create(p)?;
            f.write_all(&reserved).with_context(|| format!("cannot write {}", p.display()))?;
            Some((p, f))
        }
        None => None,
    };
    let pb = crate::progress::bar(paths.len() as u64, "predict");
    let decode = |batch: &[PathBuf]| -> Vec<Result<ImageTensor>> { batch.par_iter().map(|p| prepare_image(p, &req.preprocess)).collect() };
    let batches: Vec<&[PathBuf]> = paths.chunks(req.batch_size).collect();
    let mut rows = Vec::with_capacity(paths.len());
    let mut skipped = Vec::new();
    let mut decoded = batches.first().map(|b| decode(b));
    for (i, batch) in batches.iter().enumerate() {
        let inputs = decoded.take().expect("each batch is decoded before it is predicted");
        let mut ok = Vec::with_capacity(inputs.len());
        for (path, input) in batch.iter().zip(inputs) {
            match input {
                Ok(t) => ok.push((path, t)),
                Err(e) if req.skip_unreadable => skipped.push(format!("{e:#}")),
                Err(e) => bail!("{e:#}; pass --skip-unreadable to leave unreadable images out"),
            }
        }
        let (logits, next) = rayon::join(|| forward(model.as_mut(), &ok), || batches.get(i + 1).map(|b| decode(b)));
        decoded = next;
        let logits = logits?;
        for ((path, _), row) in ok.iter().zip(logits.chunks_exact(classes)) {
            rows.push((path.to_string_lossy().into_owned(), top_k(row, TOP_K)));
            if let Some((p, f)) = &mut npy {
                let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
                f.write_all(&bytes).with_context(|| format!("cannot write {}", p.display()))?;
            }
        }
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    ensure!(!rows.is_empty(), "none of the {} images could be read:\n  {}", paths.len(), skipped.join("\n  "));
    if let Some((p, mut f)) = npy {
        if rows.len() != paths.len() {
            f.seek(SeekFrom::Start(0)).and_then(|_| f.write_all(&npy_header(rows.len(), classes, reserved.len()))).with_context(|| format!("cannot write {}", p.display()))?;
        }
        f.commit()?;
    }
    crate::fsutil::write_atomic(&req.out, csv_text(&rows)?.as_bytes())?;
    Ok(PredictSummary { images: rows.len(), classes, skipped })
}

/// Logits `(images, classes)`, row-major, for one batch of prepared inputs.
fn forward(model: &mut (dyn Classifier + Send), inputs: &[(&PathBuf, ImageTensor)]) -> Result<Vec<f32>> {
    let Some((_, first)) = inputs.first() else { return Ok(Vec::new()) };
    let (h, w) = (first.height as usize, first.width as usize);
    let mut data = Vec::with_capacity(inputs.len() * h * w * 3);
    for (_, t) in inputs {
        data.extend_from_slice(&t.data);
    }
    let x = candle_core::Tensor::from_vec(data, (inputs.len(), h, w, 3), model.device())?;
    Ok(model.logits(&x)?.flatten_all()?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_ranks_by_logit_then_lower_index_and_nan_last() {
        assert_eq!(top_k(&[0.1, 0.5, 0.3, 0.5, -1.0, 0.2, 0.0], 5), [1, 3, 2, 5, 0]);
        assert_eq!(top_k(&[f32::NAN, 1.0, f32::NAN, -0.0, 0.0], 5), [1, 3, 4, 0, 2]);
        assert_eq!(top_k(&[2.0, 1.0], 5), [0, 1]);
        assert_eq!(top_k(&[], 5), Vec::<u32>::new());
        let many: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        let mut sorted: Vec<u32> = (0..1000).collect();
        sorted.sort_by(|&a, &b| many[b as usize].total_cmp(&many[a as usize]).then(a.cmp(&b)));
        assert_eq!(top_k(&many, 5), sorted[..5]);
    }

    #[test]
    fn csv_has_the_exact_header_and_pads_short_rows() {
        let rows = vec![("a/1.png".to_string(), vec![3, 1, 4, 1, 5]), ("b,c.jpg".to_string(), vec![2, 0])];
        assert_eq!(csv_text(&rows).unwrap(), "path,top1,top2,top3,top4,top5\na/1.png,3,1,4,1,5\n\"b,c.jpg\",2,0,,,\n");
    }

    #[test]
    fn npy_header_is_numpys_v1_layout_and_rewritable_in_place() {
        // Byte for byte what numpy 2.4's np.save wrote for the reference logits (12 × 1000).
        let numpy = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/predict/logits.npy")).unwrap();
        assert_eq!(npy_header(12, 1000, 0), numpy[..128]);
        let h = npy_header(3, 1000, 0);
        assert_eq!(h.len(), 128);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1000), }") && text.ends_with(" \n"), "{text:?}");
        let big = npy_header(123_456_789_012, 1000, 0);
        assert_eq!(npy_header(5, 1000, big.len()).len(), big.len());
        assert_eq!(npy_header(0, 7, 0).len() % 64, 0);
    }

    #[test]
    fn folders_list_their_images_recursively_component_by_component() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["9.png", "10.png", "B.PNG", "a.jpeg", "a/x.jpg", "a/notes.txt", "a.png", "b/.DS_Store", "b/c/d.JpG"] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), b"").unwrap();
        }
        let listed = list_images(&[d.to_owned(), d.join("notes-as-given.txt")]);
        assert!(format!("{:#}", listed.unwrap_err()).contains("notes-as-given.txt"));
        std::fs::write(d.join("given.txt"), b"").unwrap();
        let listed = list_images(&[d.join("given.txt"), d.to_owned()]).unwrap();
        let rel: Vec<String> = listed.iter().map(|p| p.strip_prefix(d).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(rel, ["given.txt", "10.png", "9.png", "B.PNG", "a/x.jpg", "a.jpeg", "a.png", "b/c/d.JpG"]);
        std::fs::create_dir(d.join("empty")).unwrap();
        let e = format!("{:#}", list_images(&[d.join("empty")]).unwrap_err());
        assert!(e.contains("empty") && e.contains("no images") && e.contains(".png, .jpg, .jpeg"), "{e}");
    }

    #[test]
    fn an_image_that_resizing_would_blow_up_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strip.png");
        std::fs::write(&path, crate::data::RgbImage::new(1, 60_000).to_png()).unwrap();
        let e = format!("{:#}", prepare_image(&path, &Preprocess::imagenet()).unwrap_err());
        assert!(e.contains("strip.png is 1×60000 pixels") && e.contains("limit"), "{e}");
    }

    #[test]
    fn weights_header_gives_classes_and_the_architecture() {
        let mut shapes = BTreeMap::new();
        shapes.insert("conv1.weight".to_string(), vec![64, 3, 7, 7]);
        for (s, n) in [(1, 2), (2, 2), (3, 2), (4, 2)] {
            for b in 0..n {
                shapes.insert(format!("layer{s}.{b}.conv1.weight"), vec![1]);
            }
        }
        shapes.insert("fc.weight".to_string(), vec![1000, 512]);
        let h = WeightsHeader { shapes };
        assert_eq!((h.classes(), h.named_arch()), (Some(1000), Some(NamedArch::Resnet18)));
        let mut bottleneck = h.clone();
        bottleneck.shapes.insert("layer1.0.conv3.weight".into(), vec![1]);
        assert_eq!(bottleneck.named_arch(), None);
        let json = br#"{"__metadata__": {"format": "pt"}, "fc.weight": {"dtype": "F32", "shape": [10, 512], "data_offsets": [0, 20480]}}"#;
        assert_eq!(WeightsHeader::parse(json).unwrap().classes(), Some(10));
        assert!(WeightsHeader::parse(b"[1, 2]").is_err());
    }
}
