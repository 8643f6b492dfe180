//! Class vocabularies: the label space a layout maps folder names into. The lists are data files
//! next to this module (`vocab/`, provenance in its README), compiled in.

use anyhow::{bail, Result};
use std::collections::HashMap;

const IMAGENET_1K: &str = include_str!("vocab/imagenet-1k.tsv");
const IMAGENET_R: &str = include_str!("vocab/imagenet-r.txt");
const IMAGENET_A: &str = include_str!("vocab/imagenet-a.txt");
const OBJECTNET_GENROB: &str = include_str!("vocab/objectnet-genrob.tsv");

/// The generative-robustness code's ObjectNet classes: (ObjectNet label, the one wnid it is
/// scored as), sorted by label (provenance in `vocab/README.md`).
pub fn objectnet_genrob() -> Vec<(&'static str, &'static str)> {
    OBJECTNET_GENROB.lines().filter(|l| !l.is_empty()).filter_map(|l| l.split_once('\t')).collect()
}

/// Labels by class id: label *i* is `ids[i]`. For ImageNet the ids are WordNet ids, sorted
/// (torchvision's index); for a suite's own classes they are the class names, in label order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    pub ids: Vec<String>,
    /// WordNet lemmas per class (`"tench, Tinca tinca"`), empty where the list has none.
    pub names: Vec<String>,
}

impl Vocabulary {
    /// The 1000 ILSVRC-2012 classes in torchvision's order.
    pub fn imagenet_1k() -> Self {
        let (ids, names) = IMAGENET_1K.lines().filter(|l| !l.is_empty()).map(|l| {
            let (w, n) = l.split_once('\t').unwrap_or((l, ""));
            (w.to_string(), n.to_string())
        }).unzip();
        Self { ids, names }
    }

    /// A vocabulary whose ids are `names` (a suite's classes, in label order).
    pub fn named(names: &[&str]) -> Self {
        let ids: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Self { names: ids.clone(), ids }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// id → label.
    pub fn index(&self) -> HashMap<&str, u32> {
        self.ids.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect()
    }
}

/// Which classes of the vocabulary a set must have a folder for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassSubset {
    /// All 1000 (ImageNet train and val, Sketch, V2).
    All,
    /// ImageNet-R's 200 classes.
    ImagenetR,
    /// ImageNet-A's 200 classes.
    ImagenetA,
}

impl ClassSubset {
    pub const ALL: [ClassSubset; 3] = [ClassSubset::All, ClassSubset::ImagenetR, ClassSubset::ImagenetA];

    pub fn name(self) -> &'static str {
        match self {
            ClassSubset::All => "all",
            ClassSubset::ImagenetR => "imagenet-r",
            ClassSubset::ImagenetA => "imagenet-a",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The subset's wnids, sorted; `None` for all of the vocabulary.
    pub fn wnids(self) -> Option<Vec<&'static str>> {
        match self {
            ClassSubset::All => None,
            ClassSubset::ImagenetR => Some(IMAGENET_R.lines().filter(|l| !l.is_empty()).collect()),
            ClassSubset::ImagenetA => Some(IMAGENET_A.lines().filter(|l| !l.is_empty()).collect()),
        }
    }

    /// Labels of the subset's classes in `vocab`, ascending (the logits a masked evaluation keeps).
    pub fn labels(self, vocab: &Vocabulary) -> Result<Vec<u32>> {
        let Some(wnids) = self.wnids() else { return Ok((0..vocab.len() as u32).collect()) };
        let index = vocab.index();
        let mut out = Vec::with_capacity(wnids.len());
        for w in wnids {
            match index.get(w) {
                Some(&l) => out.push(l),
                None => bail!("class subset `{}` names {w}, which is not in the vocabulary", self.name()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_unique(v: &[&str]) -> bool {
        v.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn imagenet_has_1000_sorted_wnids_each_with_a_name() {
        let v = Vocabulary::imagenet_1k();
        assert_eq!(v.len(), 1000);
        let w: Vec<&str> = v.ids.iter().map(String::as_str).collect();
        assert!(sorted_unique(&w), "torchvision's index is the sorted wnid order");
        assert!(w.iter().all(|w| w.len() == 9 && w.starts_with('n') && w[1..].bytes().all(|b| b.is_ascii_digit())));
        assert!(v.names.iter().all(|n| !n.is_empty()));
        assert_eq!((w[0], v.names[0].as_str()), ("n01440764", "tench, Tinca tinca"));
        assert_eq!(w[999], "n15075141");
    }

    #[test]
    fn the_genrob_objectnet_list_is_113_sorted_labels_with_distinct_imagenet_wnids() {
        let list = objectnet_genrob();
        assert_eq!(list.len(), 113);
        assert!(list.windows(2).all(|w| w[0].0 < w[1].0));
        let index = Vocabulary::imagenet_1k();
        let index = index.index();
        let wnids: std::collections::BTreeSet<&str> = list.iter().map(|(_, w)| *w).collect();
        assert_eq!(wnids.len(), 113);
        assert!(wnids.iter().all(|w| index.contains_key(w)));
        assert_eq!(list[0], ("Alarm clock", "n02708093"));
    }

    #[test]
    fn r_and_a_are_200_sorted_subsets_of_the_1000() {
        let v = Vocabulary::imagenet_1k();
        for s in [ClassSubset::ImagenetR, ClassSubset::ImagenetA] {
            let w = s.wnids().unwrap();
            assert_eq!(w.len(), 200, "{}", s.name());
            assert!(sorted_unique(&w), "{}", s.name());
            let labels = s.labels(&v).unwrap();
            assert!(labels.windows(2).all(|p| p[0] < p[1]));
        }
        // Spot checks against the published index lists (timm's imagenet_{r,a}_indices.txt).
        assert_eq!(&ClassSubset::ImagenetR.labels(&v).unwrap()[..3], &[1, 2, 4]);
        assert_eq!(&ClassSubset::ImagenetA.labels(&v).unwrap()[..3], &[6, 11, 13]);
        assert_eq!(ClassSubset::All.labels(&v).unwrap().len(), 1000);
    }
}
