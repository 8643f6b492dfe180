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
}

/// The manifest's file name inside a set folder.
pub const MANIFEST_FILE: &str = "manifest.csv";

/// Serialises rows (header first) to CSV bytes.
pub fn to_csv(rows: &[ManifestRow]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // serde writes the header with the first row; an empty manifest still gets one.
        writer.write_record(["path", "label", "class_name", "prompt", "template_id", "seed", "generator", "sha256"])?;
    }
    for row in rows {
        writer.serialize(row).context("cannot serialise a manifest row")?;
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
            row.with_context(|| format!("{} row {} is malformed; delete the manifest to regenerate the set", path.display(), i + 1))
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
        };
        let bytes = to_csv(std::slice::from_ref(&row)).unwrap();
        assert!(bytes.starts_with(b"path,label,class_name,prompt,template_id,seed,generator,sha256\n"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(&p).unwrap(), vec![row]);
        assert!(to_csv(&[]).unwrap().starts_with(b"path,label"));
    }
}
