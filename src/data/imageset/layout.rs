//! Layouts: how a folder's paths say which class an image is. Pure functions from a listing
//! (paths relative to the set's image folder) to labels; reading files is the caller's job.
//!
//! Each labeller also checks completeness against the classes it must see: a missing class
//! folder is an error naming it, never a smaller denominator.

use super::listing::ImageFile;
use super::vocab::Vocabulary;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

/// A named folder layout (`layout = "..."` in a suite's `[[domains]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `<id>/...`: ImageNet train, Sketch (`sketch/<wnid>/`), R, A. The folder is the class id.
    WnidFolders,
    /// `<0..N-1>/...`: ImageNetV2. The folder name is the class index, read as an integer.
    ClassIndexFolders,
    /// ImageNet val: flat files plus a label file, or wnid folders.
    ImagenetVal,
    /// `images/<folder>/...` with the archive's own `mappings/` (ObjectNet 1.0).
    Objectnet,
}

impl Layout {
    pub const ALL: [Layout; 4] = [Layout::WnidFolders, Layout::ClassIndexFolders, Layout::ImagenetVal, Layout::Objectnet];

    pub fn name(self) -> &'static str {
        match self {
            Layout::WnidFolders => "wnid-folders",
            Layout::ClassIndexFolders => "class-index-folders",
            Layout::ImagenetVal => "imagenet-val",
            Layout::Objectnet => "objectnet",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The first path component (the class folder) of a listed file, or `None` for a file at the top.
fn class_folder(rel: &Path) -> Option<&str> {
    let mut comps = rel.components();
    let first = comps.next()?;
    comps.next()?;
    match first {
        Component::Normal(s) => s.to_str(),
        _ => None,
    }
}

/// Names up to five items and how many more there are.
pub(crate) fn some(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// `wnid-folders`: label = the folder's id in `vocab`. Every id in `required` (labels) must
/// have a folder, and no folder may name a class outside it.
pub fn wnid_folders(files: &[ImageFile], vocab: &Vocabulary, required: &[u32]) -> Result<Vec<u32>> {
    let index = vocab.index();
    let allowed: BTreeSet<u32> = required.iter().copied().collect();
    let mut labels = Vec::with_capacity(files.len());
    let mut seen = BTreeSet::new();
    for f in files {
        let Some(folder) = class_folder(&f.rel) else {
            bail!("image `{}` is not in a class folder; in layout wnid-folders every image is under `<class id>/`", f.rel.display());
        };
        let label = match index.get(folder) {
            Some(&l) if allowed.contains(&l) => l,
            Some(_) => bail!("folder `{folder}` is a class outside this set's {} classes; remove it or choose the set's `classes`", allowed.len()),
            None => bail!("folder `{folder}` is not a class id of the vocabulary (ids such as `{}`); is this the right layout and root?", vocab.ids.first().map(String::as_str).unwrap_or("")),
        };
        seen.insert(label);
        labels.push(label);
    }
    let missing: Vec<String> = required.iter().filter(|l| !seen.contains(l)).map(|&l| vocab.ids[l as usize].clone()).collect();
    if !missing.is_empty() {
        bail!("{} of {} class folders are missing or hold no image: {}; the set is incomplete", missing.len(), required.len(), some(&missing));
    }
    Ok(labels)
}

/// `class-index-folders`: the folder name is the label as a decimal integer in `0..classes`.
/// Parsed, never string-sorted: ImageNetV2's `10` is class 10, not the third folder.
pub fn class_index_folders(files: &[ImageFile], classes: usize) -> Result<Vec<u32>> {
    let mut labels = Vec::with_capacity(files.len());
    let mut seen = vec![false; classes];
    for f in files {
        let Some(folder) = class_folder(&f.rel) else {
            bail!("image `{}` is not in a class folder; in layout class-index-folders every image is under `<class index>/`", f.rel.display());
        };
        // Canonical decimal only: `07` next to `7` would be two folders for one class.
        let canonical = !folder.is_empty() && folder.bytes().all(|b| b.is_ascii_digit()) && (folder == "0" || !folder.starts_with('0'));
        let index = folder.parse::<usize>().ok().filter(|_| canonical);
        let Some(index) = index else {
            bail!("folder `{folder}` is not a class index (a whole number without leading zeros); layout class-index-folders needs folders 0..{}", classes.saturating_sub(1));
        };
        if index >= classes {
            bail!("folder `{folder}` is out of range: the vocabulary has {classes} classes (0..{})", classes.saturating_sub(1));
        }
        seen[index] = true;
        labels.push(index as u32);
    }
    let missing: Vec<String> = seen.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| format!("`{i}`")).collect();
    if !missing.is_empty() {
        bail!("{} of {classes} class folders are missing or hold no image: {}; the set is incomplete", missing.len(), some(&missing));
    }
    Ok(labels)
}

/// A validation label file, parsed: image stem (`ILSVRC2012_val_00000001`) → class id.
pub type ValLabels = BTreeMap<String, String>;

/// Parses a `LOC_val_solution.csv`-style file (`ImageId,PredictionString`, the first token of
/// the prediction string is the wnid) or the devkit's `ILSVRC2012_validation_ground_truth.txt`
/// (line *k* is the 1-based ILSVRC2012_ID of image *k*), which needs `id_to_wnid` (line *j* the
/// wnid of ILSVRC2012_ID *j*; the devkit keeps it in `data/meta.mat`, see the README).
pub fn parse_val_labels(text: &str, id_to_wnid: Option<&str>, what: &str) -> Result<ValLabels> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else { bail!("{what} is empty") };
    let mut out = ValLabels::new();
    if first.trim().starts_with("ImageId") {
        for (n, line) in lines {
            let (id, pred) = line.split_once(',').ok_or_else(|| anyhow::anyhow!("{what} line {}: expected `ImageId,PredictionString`", n + 1))?;
            let wnid = pred.split_whitespace().next().ok_or_else(|| anyhow::anyhow!("{what} line {}: no class for `{id}`", n + 1))?;
            if out.insert(id.trim().to_string(), wnid.to_string()).is_some() {
                bail!("{what} line {}: `{id}` is listed twice", n + 1);
            }
        }
        return Ok(out);
    }
    let Some(map) = id_to_wnid else {
        bail!("{what} holds ILSVRC2012 ids (the devkit's ground truth); give `id_map`, a file with the wnid of ILSVRC2012_ID 1, 2, ... one per line (see the README), or use a LOC_val_solution.csv file");
    };
    let wnids: Vec<&str> = map.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    for (k, (n, line)) in std::iter::once((0, first)).chain(lines).enumerate() {
        let id: usize = line.trim().parse().map_err(|_| anyhow::anyhow!("{what} line {}: `{}` is not an ILSVRC2012 id", n + 1, line.trim()))?;
        let Some(wnid) = id.checked_sub(1).and_then(|i| wnids.get(i)) else {
            bail!("{what} line {}: id {id} is outside the id map's 1..{}", n + 1, wnids.len());
        };
        out.insert(format!("ILSVRC2012_val_{:08}", k + 1), wnid.to_string());
    }
    Ok(out)
}

/// `imagenet-val` with a label file: flat images whose stem is in `labels`. Every listed image
/// needs a label and every label an image.
pub fn imagenet_val_flat(files: &[ImageFile], labels: &ValLabels, vocab: &Vocabulary) -> Result<Vec<u32>> {
    let index = vocab.index();
    let mut out = Vec::with_capacity(files.len());
    let mut found = BTreeSet::new();
    for f in files {
        let stem = f.rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(id) = labels.get(stem) else {
            bail!("image `{}` has no entry in the label file; is it the label file of this set?", f.rel.display());
        };
        let Some(&l) = index.get(id.as_str()) else { bail!("the label file gives `{stem}` the class `{id}`, which is not in the vocabulary") };
        found.insert(stem);
        out.push(l);
    }
    let missing: Vec<String> = labels.keys().filter(|k| !found.contains(k.as_str())).cloned().collect();
    if !missing.is_empty() {
        bail!("{} of the label file's {} images are missing: {}; the set is incomplete", missing.len(), labels.len(), some(&missing));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn files(paths: &[&str]) -> Vec<ImageFile> {
        let mut v: Vec<ImageFile> = paths.iter().map(|p| ImageFile { rel: PathBuf::from(p), bytes: 1 }).collect();
        v.sort();
        v
    }

    #[test]
    fn class_index_folders_are_integers_not_strings() {
        let f = files(&["10/a.png", "2/b.png", "9/c.png", "0/d.png", "1/e.png", "3/f.png", "4/g.png", "5/h.png", "6/i.png", "7/j.png", "8/k.png"]);
        // Sorted by path: 0, 1, 10, 2, ... — labels follow the number, not the position.
        assert_eq!(class_index_folders(&f, 11).unwrap(), vec![0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(class_index_folders(&f, 10).unwrap_err().to_string().contains("`10` is out of range"));
        let e = class_index_folders(&files(&["0/a.png", "x/b.png"]), 2).unwrap_err().to_string();
        assert!(e.contains("`x` is not a class index"), "{e}");
        let e = class_index_folders(&files(&["0/a.png", "01/b.png"]), 2).unwrap_err().to_string();
        assert!(e.contains("`01` is not a class index"), "{e}");
        let e = class_index_folders(&files(&["0/a.png", "2/b.png"]), 3).unwrap_err().to_string();
        assert!(e.contains("1 of 3 class folders are missing") && e.contains("`1`"), "{e}");
    }

    #[test]
    fn wnid_folders_label_by_vocabulary_and_name_missing_classes() {
        let v = Vocabulary::named(&["cat", "dog", "eel"]);
        let f = files(&["dog/1.jpg", "cat/2.png", "cat/sub/3.png"]);
        assert_eq!(wnid_folders(&f, &v, &[0, 1]).unwrap(), vec![0, 0, 1]);
        let e = wnid_folders(&f, &v, &[0, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("1 of 3 class folders are missing") && e.contains("eel"), "{e}");
        assert!(wnid_folders(&f, &v, &[0]).unwrap_err().to_string().contains("`dog` is a class outside"));
        assert!(wnid_folders(&files(&["cow/1.png"]), &v, &[0]).unwrap_err().to_string().contains("`cow` is not a class id"));
        assert!(wnid_folders(&files(&["1.png"]), &v, &[0]).unwrap_err().to_string().contains("not in a class folder"));
    }

    #[test]
    fn val_label_files_of_both_kinds() {
        let loc = "ImageId,PredictionString\nILSVRC2012_val_00000002,dog 1 2 3 4 dog 5 6 7 8\nILSVRC2012_val_00000001,cat 0 0 9 9\n";
        let l = parse_val_labels(loc, None, "LOC").unwrap();
        assert_eq!(l["ILSVRC2012_val_00000002"], "dog");
        let truth = "2\n1\n";
        let map = "cat\ndog\n";
        let g = parse_val_labels(truth, Some(map), "gt").unwrap();
        assert_eq!((g["ILSVRC2012_val_00000001"].as_str(), g["ILSVRC2012_val_00000002"].as_str()), ("dog", "cat"));
        assert!(parse_val_labels(truth, None, "gt").unwrap_err().to_string().contains("id_map"));
        assert!(parse_val_labels("3\n", Some(map), "gt").unwrap_err().to_string().contains("outside the id map"));
        let v = Vocabulary::named(&["cat", "dog"]);
        let f = files(&["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]);
        assert_eq!(imagenet_val_flat(&f, &l, &v).unwrap(), vec![0, 1]);
        let e = imagenet_val_flat(&f[..1], &l, &v).unwrap_err().to_string();
        assert!(e.contains("1 of the label file's 2 images are missing: ILSVRC2012_val_00000002"), "{e}");
    }
}
