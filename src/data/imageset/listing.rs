//! The images under a folder, in one order everywhere: sorted by path, component by component
//! (so `a/b.png` < `a0/c.png`; byte order within a name, as Python's `sorted` on `str`).

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// File name endings read as images (case-insensitive), as torchvision's `ImageFolder` would
/// find them among the formats `data::image` decodes. Anything else (READMEs, `.txt` label
/// lists) is not an image and is skipped; a missing image is caught by the counts instead.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One listed image: its path relative to the listed folder and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageFile {
    pub rel: PathBuf,
    pub bytes: u64,
}

/// Whether a file name is an image the sets read. Hidden files (`.DS_Store`, macOS `._x.jpg`
/// resource forks that archives carry) are not.
pub fn is_image_name(name: &str) -> bool {
    !name.starts_with('.') && name.rsplit_once('.').is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// Every image under `dir`, recursively, sorted by relative path. Symlinked files are followed
/// (extraction only makes links that point downwards); symlinked folders are not, so a loop
/// cannot make the listing endless.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list_image_files(dir)?.into_iter().map(|f| dir.join(f.rel)).collect())
}

/// [`list_images`] with relative paths and sizes (what a set's fingerprint hashes).
pub fn list_image_files(dir: &Path) -> Result<Vec<ImageFile>> {
    anyhow::ensure!(dir.is_dir(), "{} is not a folder; check the image set's source and root", dir.display());
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let at = dir.join(&rel);
        for entry in fs::read_dir(&at).with_context(|| format!("cannot list {}", at.display()))? {
            let entry = entry.with_context(|| format!("cannot list {}", at.display()))?;
            let name = entry.file_name();
            let child = rel.join(&name);
            let kind = entry.file_type().with_context(|| format!("cannot read {}", entry.path().display()))?;
            if kind.is_dir() {
                stack.push(child);
                continue;
            }
            let Some(name) = name.to_str() else { continue };
            if !is_image_name(name) {
                continue;
            }
            let meta = fs::metadata(entry.path()).with_context(|| format!("cannot read {}", entry.path().display()))?;
            if meta.is_file() {
                out.push(ImageFile { rel: child, bytes: meta.len() });
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_by_extension_case_insensitively_never_hidden_files() {
        for ok in ["a.jpg", "b.JPEG", "c.Png", "ILSVRC2012_val_00000001.JPEG"] {
            assert!(is_image_name(ok), "{ok}");
        }
        for no in ["README.txt", "._a.jpg", ".DS_Store", "jpg", "a.webp", "labels.csv"] {
            assert!(!is_image_name(no), "{no}");
        }
    }

    #[test]
    fn listing_is_recursive_and_sorted_by_components() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a0/c.png", "a/b.png", "a/sub/z.jpg", "top.jpg", "a/notes.txt"] {
            let f = dir.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(&f, b"x").unwrap();
        }
        let rel: Vec<String> = list_image_files(dir.path()).unwrap().into_iter().map(|f| f.rel.display().to_string()).collect();
        assert_eq!(rel, ["a/b.png", "a/sub/z.jpg", "a0/c.png", "top.jpg"]);
    }
}
