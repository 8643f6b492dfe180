//! ObjectNet 1.0: which of its 313 folders overlap ImageNet and which ImageNet classes each
//! maps to, read from the archive's own `mappings/` (never shipped here: its licence is the
//! dataset's). Pure: the caller reads the four files.
//!
//! The chain, as the ObjectNet authors' and the imagenet-testbed code follow it:
//! folder → ObjectNet label (`folder_to_objectnet_label.json`) → ImageNet class names joined by
//! `"; "` (`objectnet_to_imagenet_1k.json`, the 113 overlapping labels) → ImageNet 2012 ids (line
//! numbers of `imagenet_to_label_2012_v2`, from 0) → torchvision index
//! (`pytorch_to_imagenet_2012_id.json`, torchvision index → 2012 id, inverted).

use super::layout::some;
use super::listing::ImageFile;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Component;

/// The mapping files, relative to the `objectnet-1.0` folder.
pub const MAPPING_FILES: [&str; 4] = [
    "mappings/folder_to_objectnet_label.json",
    "mappings/objectnet_to_imagenet_1k.json",
    "mappings/pytorch_to_imagenet_2012_id.json",
    "mappings/imagenet_to_label_2012_v2",
];

/// ObjectNet's classes that overlap ImageNet. Label *k* is `names[k]` (sorted by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectnetClasses {
    pub names: Vec<String>,
    /// Torchvision indices each class maps to, ascending: a prediction of any of them is correct
    /// (the testbed protocol).
    pub imagenet: Vec<Vec<u32>>,
    /// Image folder → label, for the overlapping folders only.
    pub folders: BTreeMap<String, u32>,
}

fn json<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T> {
    serde_json::from_str(text).with_context(|| format!("{file} is not the JSON object ObjectNet ships; re-extract the archive"))
}

/// Builds the overlap from the texts of [`MAPPING_FILES`], in that order.
pub fn parse_mappings(folder_to_label: &str, objectnet_to_imagenet: &str, pytorch_to_2012: &str, names_2012: &str) -> Result<ObjectnetClasses> {
    let folders: BTreeMap<String, String> = json(folder_to_label, MAPPING_FILES[0])?;
    let overlap: BTreeMap<String, String> = json(objectnet_to_imagenet, MAPPING_FILES[1])?;
    let torch: BTreeMap<String, u32> = json(pytorch_to_2012, MAPPING_FILES[2])?;
    let id_to_torch: HashMap<u32, u32> = torch
        .iter()
        .map(|(k, &v)| k.parse::<u32>().map(|k| (v, k)).with_context(|| format!("{}: key `{k}` is not a torchvision index", MAPPING_FILES[2])))
        .collect::<Result<_>>()?;
    let name_to_torch: HashMap<&str, u32> = names_2012
        .lines()
        .enumerate()
        .filter_map(|(i, n)| id_to_torch.get(&(i as u32)).map(|&t| (n.trim(), t)))
        .collect();
    let mut names = Vec::new();
    let mut imagenet = Vec::new();
    for (label, classes) in &overlap {
        let mut ids = Vec::new();
        for c in classes.split("; ") {
            let Some(&t) = name_to_torch.get(c.trim()) else {
                bail!("{}: `{label}` maps to `{c}`, which is not a class name in {}", MAPPING_FILES[1], MAPPING_FILES[3]);
            };
            ids.push(t);
        }
        ids.sort_unstable();
        ids.dedup();
        names.push(label.clone());
        imagenet.push(ids);
    }
    let by_name: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let folders = folders.into_iter().filter_map(|(folder, label)| by_name.get(label.as_str()).map(|&l| (folder, l))).collect::<BTreeMap<_, _>>();
    let mapped: std::collections::BTreeSet<u32> = folders.values().copied().collect();
    if let Some((i, n)) = names.iter().enumerate().find(|(i, _)| !mapped.contains(&(*i as u32))) {
        bail!("{}: no folder has the ObjectNet label `{n}` (class {i}) of {}", MAPPING_FILES[0], MAPPING_FILES[1]);
    }
    Ok(ObjectnetClasses { names, imagenet, folders })
}

/// Keeps the images (listed under `images/`) of the overlapping folders and labels them; every
/// overlapping folder must hold images.
pub fn label(files: Vec<ImageFile>, classes: &ObjectnetClasses) -> Result<(Vec<ImageFile>, Vec<u32>)> {
    let mut kept = Vec::new();
    let mut labels = Vec::new();
    let mut seen = vec![false; classes.names.len()];
    for f in files {
        let mut comps = f.rel.components();
        let (Some(Component::Normal(folder)), Some(_)) = (comps.next(), comps.next()) else { continue };
        let Some(&l) = folder.to_str().and_then(|s| classes.folders.get(s)) else { continue };
        seen[l as usize] = true;
        kept.push(f);
        labels.push(l);
    }
    let missing: Vec<String> = classes.folders.iter().filter(|(_, &l)| !seen[l as usize]).map(|(f, _)| format!("images/{f}")).collect();
    if !missing.is_empty() {
        bail!("{} of the {} overlapping ObjectNet folders are missing or hold no image: {}; the set is incomplete", missing.len(), classes.folders.len(), some(&missing));
    }
    Ok((kept, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_through_names_and_ids_to_torchvision_indices() {
        let folders = r#"{"alarm_clock": "Alarm clock", "banana": "Banana", "bench": "Bench"}"#;
        let overlap = r#"{"Alarm clock": "analog clock; digital clock", "Banana": "banana"}"#;
        // 2012 ids are not torchvision indices: 2012 id 0 is torchvision 2, and so on.
        let torch = r#"{"0": 1, "1": 2, "2": 0}"#;
        let names = "banana\nanalog clock\ndigital clock\n";
        let c = parse_mappings(folders, overlap, torch, names).unwrap();
        assert_eq!(c.names, ["Alarm clock", "Banana"]);
        assert_eq!(c.imagenet, vec![vec![0, 1], vec![2]]);
        assert_eq!(c.folders.len(), 2, "`bench` does not overlap ImageNet");
        let bad = parse_mappings(folders, r#"{"Banana": "plantain"}"#, torch, names).unwrap_err().to_string();
        assert!(bad.contains("`plantain`"), "{bad}");
    }
}
