//! A labelled set of image files: listed and labelled once when opened (paths, sizes and labels
//! only, a few MB for ImageNet train), decoded one image at a time when read.

use super::layout::{self, Layout};
use super::listing::{list_image_files, ImageFile};
use super::objectnet::{self, ObjectnetClasses};
use super::vocab::Vocabulary;
use crate::data::image::{open_rgb, Preprocess};
use crate::data::{ImageSource, RgbImage};
use crate::fetch::lock::Expect;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// How to open a set: where it is, how its paths are labelled, what it must contain.
#[derive(Clone, Debug)]
pub struct SetSpec {
    pub layout: Layout,
    /// The folder holding the layout: the class folders, the flat val images, or ObjectNet's
    /// `objectnet-1.0` (with `images/` and `mappings/`).
    pub root: PathBuf,
    /// The labels that must each have a class folder (wnid layouts; all of the vocabulary when
    /// `None`). ImageNet-R and -A: [`super::ClassSubset`]'s 200.
    pub required: Option<Vec<u32>>,
    /// `imagenet-val`: the label file (`LOC_val_solution.csv` or the devkit ground truth);
    /// without it the val folder must hold wnid folders.
    pub val_labels: Option<PathBuf>,
    /// `imagenet-val` with the devkit ground truth: ILSVRC2012_ID → wnid, one wnid per line.
    pub id_map: Option<PathBuf>,
    /// Counts the labelled images must have (the lock's or the suite's `expect`).
    pub expect: Option<Expect>,
    /// The sha256 of the artifact the folder was extracted from, for the fingerprint.
    pub artifact_sha256: Option<String>,
}

impl SetSpec {
    pub fn new(layout: Layout, root: impl Into<PathBuf>) -> Self {
        Self { layout, root: root.into(), required: None, val_labels: None, id_map: None, expect: None, artifact_sha256: None }
    }
}

/// A labelled, file-backed image set; an [`ImageSource`] that decodes on demand.
#[derive(Clone, Debug)]
pub struct FileImageSet {
    /// The folder the listed paths are relative to.
    images: PathBuf,
    files: Vec<ImageFile>,
    labels: Vec<u32>,
    preprocess: Preprocess,
    fingerprint: String,
    objectnet: Option<ObjectnetClasses>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}; is the set's root right and the archive complete?", path.display()))
}

impl FileImageSet {
    /// Lists and labels the set and checks its counts. `vocab` is the label space (ImageNet's
    /// 1000 for the ImageNet layouts; `class-index-folders` uses its size only).
    pub fn open(spec: &SetSpec, vocab: &Vocabulary, preprocess: Preprocess) -> Result<Self> {
        let all: Vec<u32> = (0..vocab.len() as u32).collect();
        let required = spec.required.as_deref().unwrap_or(&all);
        let (images, files, labels, objectnet) = match spec.layout {
            Layout::WnidFolders => {
                let files = list_image_files(&spec.root)?;
                let labels = layout::wnid_folders(&files, vocab, required)?;
                (spec.root.clone(), files, labels, None)
            }
            Layout::ClassIndexFolders => {
                let files = list_image_files(&spec.root)?;
                let labels = layout::class_index_folders(&files, vocab.len())?;
                (spec.root.clone(), files, labels, None)
            }
            Layout::ImagenetVal => {
                let files = list_image_files(&spec.root)?;
                let labels = match &spec.val_labels {
                    Some(p) => {
                        let map = spec.id_map.as_deref().map(read).transpose()?;
                        let parsed = layout::parse_val_labels(&read(p)?, map.as_deref(), &p.display().to_string())?;
                        layout::imagenet_val_flat(&files, &parsed, vocab)?
                    }
                    None => layout::wnid_folders(&files, vocab, required)
                        .context("without `labels` (a label file), layout imagenet-val reads wnid folders")?,
                };
                (spec.root.clone(), files, labels, None)
            }
            Layout::Objectnet => {
                let texts: Vec<String> = objectnet::MAPPING_FILES.iter().map(|f| read(&spec.root.join(f))).collect::<Result<_>>()?;
                let classes = objectnet::parse_mappings(&texts[0], &texts[1], &texts[2], &texts[3])?;
                let images = spec.root.join("images");
                let (files, labels) = objectnet::label(list_image_files(&images)?, &classes)?;
                (images, files, labels, Some(classes))
            }
        };
        if let Some(e) = &spec.expect {
            check_counts(&labels, e)?;
        }
        let fingerprint = fingerprint(&files, &labels, spec.artifact_sha256.as_deref());
        Ok(Self { images, files, labels, preprocess, fingerprint, objectnet })
    }

    /// sha256 over the sorted relative paths, sizes and labels (and the artifact's sha256): what
    /// the evaluation cache key holds, so an edited folder is a new set.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn path(&self, i: usize) -> PathBuf {
        self.images.join(&self.files[i].rel)
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The set with image *i* relabelled `labels[i]`, or left out where that is `None` (a
    /// scoring rule's label space, [`crate::eval::Scoring::relabel`]). The fingerprint stays
    /// that of the listed set: the rule that relabels is part of the evaluation's key.
    pub fn relabeled(mut self, labels: &[Option<u32>]) -> Result<Self> {
        anyhow::ensure!(labels.len() == self.files.len(), "{} labels for {} images", labels.len(), self.files.len());
        let keep: Vec<(ImageFile, u32)> = self.files.drain(..).zip(labels).filter_map(|(f, l)| l.map(|l| (f, l))).collect();
        anyhow::ensure!(!keep.is_empty(), "no image of the set is of a class the scoring rule scores");
        (self.files, self.labels) = keep.into_iter().unzip();
        Ok(self)
    }

    /// The set read with another eval transform (a compared classifier's own).
    pub fn with_preprocess(mut self, preprocess: Preprocess) -> Self {
        self.preprocess = preprocess;
        self
    }

    /// ObjectNet's overlap (label → ImageNet classes), for the `objectnet` layout.
    pub fn objectnet_classes(&self) -> Option<&ObjectnetClasses> {
        self.objectnet.as_ref()
    }
}

/// The labelled images against an `expect`: classes present, images, images per class.
pub fn check_counts(labels: &[u32], e: &Expect) -> Result<()> {
    let mut per: std::collections::BTreeMap<u32, u64> = Default::default();
    for &l in labels {
        *per.entry(l).or_default() += 1;
    }
    if let Some(want) = e.classes {
        if per.len() as u64 != want {
            bail!("expected {want} classes, found {}: the set is incomplete or not the one expected", per.len());
        }
    }
    if let Some(want) = e.files {
        let n = labels.len() as u64;
        if n != want {
            let what = if n < want { format!("{} images are missing", want - n) } else { format!("{} images more than expected", n - want) };
            bail!("expected {want} images, found {n} ({what}): the set is incomplete or not the one expected");
        }
    }
    if let Some(want) = e.per_class {
        let wrong: Vec<String> = per.iter().filter(|(_, &n)| n != want).map(|(l, n)| format!("class {l} has {n}")).collect();
        if !wrong.is_empty() {
            bail!("expected {want} images in every class; {} classes differ: {}", wrong.len(), layout::some(&wrong));
        }
    }
    Ok(())
}

fn fingerprint(files: &[ImageFile], labels: &[u32], artifact: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    if let Some(a) = artifact {
        h.update(format!("artifact {a}\n"));
    }
    for (f, l) in files.iter().zip(labels) {
        // Paths are stored with `/` on every platform so a key does not depend on the OS.
        let rel: Vec<String> = f.rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        h.update(format!("{}\t{}\t{l}\n", rel.join("/"), f.bytes));
    }
    hex::encode(h.finalize())
}

impl ImageSource for FileImageSet {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }

    /// Decoded as Pillow does and transformed by the set's preprocessing, up to the 8-bit crop.
    fn image(&self, i: usize, size: u32) -> Result<RgbImage> {
        anyhow::ensure!(i < self.len(), "image {i} of a set of {}", self.len());
        anyhow::ensure!(
            self.preprocess.crop == size,
            "preprocessing `{}` crops {}×{} but the classifier takes {size}×{size}; set the domain's `preprocess` crop to {size}",
            self.preprocess.name,
            self.preprocess.crop,
            self.preprocess.crop
        );
        let path = self.path(i);
        let img = open_rgb(&path)?;
        self.preprocess.crop_u8(&img).with_context(|| format!("preprocessing {}", path.display()))
    }
}
