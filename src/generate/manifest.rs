//! The manifest of a generated set: one CSV row per image, enough to verify and regenerate it.

use anyhow::{Context, Result};
use std::path::Path;

/// One generated image.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestRow {
    /// Relative to the set folder, `/`-separated.
    pub path: String,
    pub label: u32,
    pub class_name: String,
    pub prompt: String,
    pub template_id: usize,
    pub seed: u64,
    pub generator: String,
    /// Hex sha256 of the PNG bytes.
    pub sha256: String,
    /// Sampling settings of a diffusion generator; procedural rows have none (and their
    /// manifests keep the eight base columns).
    #[serde(skip)]
    pub diffusion: Option<DiffusionColumns>,
    /// What an image-conditioned procedural image was made from; text-to-image rows have none
    /// (and their manifests keep the eight base columns).
    #[serde(skip)]
    pub conditioning: Option<ConditioningColumns>,
}

/// The extra manifest columns of an image-conditioned procedural image.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConditioningColumns {
    /// `image` or `text+image` (the suite's `conditioning`).
    pub conditioning: String,
    /// text+image: how much of the picture the prompt repaints; empty for image.
    pub strength: Option<f64>,
    /// The real image it was made from, `domain/<name>/<index>` (as Stable Diffusion's img2img rows).
    pub source_image: String,
}

/// The extra manifest columns of a `stable-diffusion` image.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiffusionColumns {
    /// sha256 over the model's weight, tokenizer and config files.
    pub weights_sha256: String,
    pub scheduler: String,
    pub steps: usize,
    pub guidance: f64,
    /// Generation resolution in pixels (the stored PNG is resized to the suite's image size).
    pub gen_size: u32,
    /// img2img strength; empty for text-to-image.
    pub strength: Option<f64>,
    /// img2img source, `domain/<name>/<index>`; empty for text-to-image.
    pub source_image: Option<String>,
}

const BASE_HEADER: [&str; 8] = ["path", "label", "class_name", "prompt", "template_id", "seed", "generator", "sha256"];
const DIFFUSION_HEADER: [&str; 7] = ["weights_sha256", "scheduler", "steps", "guidance", "gen_size", "strength", "source_image"];
const CONDITIONING_HEADER: [&str; 3] = ["conditioning", "strength", "source_image"];

/// A row as stored: the base columns plus the optional diffusion ones.
#[derive(serde::Deserialize)]
struct StoredRow {
    path: String,
    label: u32,
    class_name: String,
    prompt: String,
    template_id: usize,
    seed: u64,
    generator: String,
    sha256: String,
    weights_sha256: Option<String>,
    scheduler: Option<String>,
    steps: Option<usize>,
    guidance: Option<f64>,
    gen_size: Option<u32>,
    strength: Option<f64>,
    source_image: Option<String>,
    conditioning: Option<String>,
}

/// The manifest's file name inside a set folder.
pub const MANIFEST_FILE: &str = "manifest.csv";

/// Serialises rows (header first) to CSV bytes.
pub fn to_csv(rows: &[ManifestRow]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let diffusion = rows.iter().any(|r| r.diffusion.is_some());
    anyhow::ensure!(!diffusion || rows.iter().all(|r| r.diffusion.is_some()), "a manifest cannot mix procedural and diffusion rows");
    let conditioned = rows.iter().any(|r| r.conditioning.is_some());
    anyhow::ensure!(!conditioned || rows.iter().all(|r| r.conditioning.is_some() && r.diffusion.is_none()), "a manifest cannot mix image-conditioned procedural rows with other rows");
    if diffusion {
        writer.write_record(BASE_HEADER.iter().chain(DIFFUSION_HEADER.iter()))?;
    } else if conditioned {
        writer.write_record(BASE_HEADER.iter().chain(CONDITIONING_HEADER.iter()))?;
    } else if rows.is_empty() {
        // serde writes the header with the first row; an empty manifest still gets one.
        writer.write_record(BASE_HEADER)?;
    }
    for row in rows {
        let base = || [row.path.clone(), row.label.to_string(), row.class_name.clone(), row.prompt.clone(), row.template_id.to_string(), row.seed.to_string(), row.generator.clone(), row.sha256.clone()];
        if let Some(c) = &row.conditioning {
            let extra = [c.conditioning.clone(), c.strength.map(|s| s.to_string()).unwrap_or_default(), c.source_image.clone()];
            writer.write_record(base().iter().chain(extra.iter()))?;
            continue;
        }
        match &row.diffusion {
            None => writer.serialize(row).context("cannot serialise a manifest row")?,
            Some(d) => {
                let opt = |v: Option<String>| v.unwrap_or_default();
                writer.write_record([
                    row.path.clone(),
                    row.label.to_string(),
                    row.class_name.clone(),
                    row.prompt.clone(),
                    row.template_id.to_string(),
                    row.seed.to_string(),
                    row.generator.clone(),
                    row.sha256.clone(),
                    d.weights_sha256.clone(),
                    d.scheduler.clone(),
                    d.steps.to_string(),
                    d.guidance.to_string(),
                    d.gen_size.to_string(),
                    opt(d.strength.map(|s| s.to_string())),
                    opt(d.source_image.clone()),
                ])?
            }
        }
    }
    writer.into_inner().context("cannot finish the manifest CSV")
}

/// Reads a manifest written by [`to_csv`].
pub fn read(path: &Path) -> Result<Vec<ManifestRow>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot open manifest {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            let bad = || format!("{} row {} is malformed; delete the manifest to regenerate the set", path.display(), i + 1);
            let r: StoredRow = row.with_context(bad)?;
            let source_image = r.source_image.filter(|s| !s.is_empty());
            let diffusion = match (r.weights_sha256, r.scheduler, r.steps, r.guidance, r.gen_size) {
                (Some(weights_sha256), Some(scheduler), Some(steps), Some(guidance), Some(gen_size)) => Some(DiffusionColumns {
                    weights_sha256,
                    scheduler,
                    steps,
                    guidance,
                    gen_size,
                    strength: r.strength,
                    source_image: source_image.clone(),
                }),
                (None, None, None, None, None) => None,
                _ => anyhow::bail!("{}", bad()),
            };
            let conditioning = match (r.conditioning.filter(|c| !c.is_empty()), diffusion.is_some()) {
                (None, _) => None,
                (Some(conditioning), false) => {
                    Some(ConditioningColumns { conditioning, strength: r.strength, source_image: source_image.with_context(bad)? })
                }
                (Some(_), true) => anyhow::bail!("{}", bad()),
            };
            Ok(ManifestRow {
                path: r.path,
                label: r.label,
                class_name: r.class_name,
                prompt: r.prompt,
                template_id: r.template_id,
                seed: r.seed,
                generator: r.generator,
                sha256: r.sha256,
                diffusion,
                conditioning,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_quotes_and_commas() {
        let row = ManifestRow {
            path: "images/car/000001.png".into(),
            label: 2,
            class_name: "car".into(),
            prompt: "a photo of a \"car\", red.".into(),
            template_id: 39,
            seed: u64::MAX,
            generator: "procedural-v1/photo-of".into(),
            sha256: "ab".repeat(32),
            diffusion: None,
            conditioning: None,
        };
        let bytes = to_csv(std::slice::from_ref(&row)).unwrap();
        assert!(bytes.starts_with(b"path,label,class_name,prompt,template_id,seed,generator,sha256\n"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(&p).unwrap(), vec![row.clone()]);
        assert!(to_csv(&[]).unwrap().starts_with(b"path,label"));

        let sd = ManifestRow {
            diffusion: Some(DiffusionColumns {
                weights_sha256: "cd".repeat(32),
                scheduler: "ddim".into(),
                steps: 50,
                guidance: 7.5,
                gen_size: 512,
                strength: Some(0.75),
                source_image: Some("domain/train/1".into()),
            }),
            ..row.clone()
        };
        let t2i = ManifestRow { diffusion: Some(DiffusionColumns { strength: None, source_image: None, ..sd.diffusion.clone().unwrap() }), ..row.clone() };
        let bytes = to_csv(&[sd.clone(), t2i.clone()]).unwrap();
        assert!(bytes.starts_with(b"path,label,class_name,prompt,template_id,seed,generator,sha256,weights_sha256,scheduler,steps,guidance,gen_size,strength,source_image\n"));
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(&p).unwrap(), vec![sd.clone(), t2i]);
        assert!(to_csv(&[sd, row.clone()]).is_err(), "mixed manifests are refused");

        let img2img = ManifestRow {
            conditioning: Some(ConditioningColumns { conditioning: "text+image".into(), strength: Some(0.5), source_image: "domain/train/7".into() }),
            ..row.clone()
        };
        let variation = ManifestRow {
            conditioning: Some(ConditioningColumns { conditioning: "image".into(), strength: None, source_image: "domain/train/8".into() }),
            prompt: String::new(),
            ..row.clone()
        };
        let bytes = to_csv(&[img2img.clone(), variation.clone()]).unwrap();
        assert!(bytes.starts_with(b"path,label,class_name,prompt,template_id,seed,generator,sha256,conditioning,strength,source_image\n"));
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(&p).unwrap(), vec![img2img.clone(), variation]);
        assert!(to_csv(&[img2img, row]).is_err(), "conditioned and text rows do not share a manifest");
    }
}
