//! Atomic file writes: a reader never sees a half-written record, CSV, image or checkpoint.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` via a temporary sibling file and a rename, creating parent folders.
/// A crash leaves either the old file or the new one, never a truncated mix. A file that is
/// replaced keeps its permissions (a read-only lock file stays read-only).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", file.tmp.display()))?;
    file.commit()
}

/// A file written in pieces (an output too large to assemble in memory) that appears at its
/// path only when complete: the bytes go to a temporary sibling, [`AtomicFile::commit`] flushes
/// and renames it into place, and dropping it uncommitted (an error on the way) removes it.
/// [`write_atomic`] is the one-piece case.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts `path`'s temporary sibling, creating parent folders.
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self { path: path.to_owned(), tmp, file: Some(BufWriter::new(file)) })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("an AtomicFile is committed once");
        let file = file.into_inner().map_err(|e| e.into_error()).with_context(|| format!("cannot write {}", self.tmp.display()))?;
        file.sync_all().with_context(|| format!("cannot flush {}", self.tmp.display()))?;
        drop(file);
        // Rewriting a file keeps its mode (a read-only lock file stays read-only).
        if let Ok(old) = std::fs::metadata(&self.path) {
            std::fs::set_permissions(&self.tmp, old.permissions()).with_context(|| format!("cannot set the permissions of {}", self.tmp.display()))?;
        }
        std::fs::rename(&self.tmp, &self.path).with_context(|| format!("cannot move {} into place", self.path.display()))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file.as_mut().expect("not committed").seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Still holding the file means `commit` never ran or failed before the rename.
        if self.file.take().is_some() || self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Whether `name` is a temporary file of [`write_atomic`]: `.<name>.<pid>.tmp`.
pub fn is_temp_file_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    rest.rsplit_once('.').is_some_and(|(file, pid)| !file.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes every temporary file of [`write_atomic`] under `dir` (any depth; links are not
/// followed). Only for a folder no live process writes to, e.g. one whose lock is held: a kill
/// in the middle of a write leaves such files behind, and nothing else ever removes them.
pub fn remove_temp_files(dir: &Path) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", d.display()))?;
            let kind = entry.file_type().with_context(|| format!("cannot inspect {}", entry.path().display()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && is_temp_file_name(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove leftover {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Writes named tensors as one safetensors file, atomically (see [`write_atomic`]). safetensors
/// orders tensors itself, so the bytes do not depend on the map's iteration order.
pub fn write_safetensors<'a>(path: &Path, tensors: impl IntoIterator<Item = (&'a String, &'a candle_core::Tensor)>) -> Result<()> {
    let bytes = safetensors::serialize(tensors, None).with_context(|| format!("cannot encode {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Moves `path` into the folder `dest_dir` (created if needed) under its own name, or with a
/// `.1`, `.2`, ... suffix when that is taken, so nothing moved aside before is overwritten.
/// Returns where it went.
pub fn move_aside(path: &Path, dest_dir: &Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dest_dir).with_context(|| format!("cannot create folder {}", dest_dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut dest = dest_dir.join(&name);
    let mut k = 1;
    while dest.exists() {
        dest = dest_dir.join(format!("{name}.{k}"));
        k += 1;
    }
    std::fs::rename(path, &dest).with_context(|| format!("cannot move {} to {}", path.display(), dest.display()))?;
    Ok(dest)
}

/// The longest name a suite, lock or record value may give a file or folder.
pub const MAX_NAME_BYTES: usize = 100;

/// Whether `name` is made of the characters a file name from a suite, lock or record may have:
/// non-empty, letters, digits and `-_+.` only, not starting with `.` (so never `..` nor hidden).
pub fn has_name_characters(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
}

/// `name` if it is safe as one path component derived from a suite, lock or record value:
/// letters, digits and `-_+.` only, not starting with `.` (so never `..` nor hidden), at most
/// [`MAX_NAME_BYTES`]. Anything else is refused rather than cleaned up, so two different values
/// can never land in the same file.
pub fn checked_name<'a>(name: &'a str, what: &str) -> Result<&'a str> {
    anyhow::ensure!(name.len() <= MAX_NAME_BYTES && has_name_characters(name), "{what} {name:?} cannot name a file: use 1 to {MAX_NAME_BYTES} letters, digits and `-_+.`, not starting with `.`");
    Ok(name)
}

/// The most bytes a configuration or table file the user names may have (suites, locks, fits,
/// accuracy tables): 64 MiB is far beyond any real one, and reading stops there instead of
/// filling memory when the path is `/dev/zero` or a pipe that never ends.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Reads a UTF-8 text file the user named. Refuses anything that is not a regular file
/// (a folder, a device, a FIFO) and files over [`MAX_TEXT_FILE_BYTES`], with an `io::Error`
/// whose message says which, so each caller's "cannot read X: {e}; do Y" stays one clear line.
pub fn read_text_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    File::open(path)?.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(Error::new(ErrorKind::InvalidData, format!("larger than {} MiB", MAX_TEXT_FILE_BYTES >> 20)));
    }
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text, an accepted name is one plain component that stays in its folder.
        #[test]
        fn accepted_names_are_single_components_inside_the_folder(name in "\\PC{0,120}") {
            if let Ok(n) = checked_name(&name, "test") {
                let joined = Path::new("/base").join(n);
                prop_assert_eq!(joined.parent(), Some(Path::new("/base")));
                prop_assert!(n != ".." && !n.contains('/') && !n.contains('\\') && n.len() <= MAX_NAME_BYTES);
            }
        }
    }

    /// The fuzz test found `shiftbench run /dev/zero` reading until the OOM killer stopped it.
    #[test]
    fn text_files_are_regular_bounded_and_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let refusal = |p: &Path| read_text_file(p).unwrap_err().to_string();
        assert_eq!(refusal(Path::new("/dev/zero")), "not a regular file");
        assert_eq!(refusal(dir.path()), "not a regular file");
        let big = dir.path().join("big.toml");
        File::create(&big).unwrap().set_len(MAX_TEXT_FILE_BYTES + 1).unwrap();
        assert_eq!(refusal(&big), "larger than 64 MiB");
        let binary = dir.path().join("binary.toml");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        assert_eq!(refusal(&binary), "not UTF-8 text");
        let text = dir.path().join("suite.toml");
        std::fs::write(&text, "[suite]\n").unwrap();
        assert_eq!(read_text_file(&text).unwrap(), "[suite]\n");
    }

    #[test]
    fn traversal_absolute_and_hidden_names_are_refused() {
        for bad in ["", "..", "../x", "/etc/passwd", "a/b", ".hidden", "a\\b", "sh\u{0}ift", &"x".repeat(101)] {
            assert!(checked_name(bad, "shift").is_err(), "{bad:?}");
        }
        for good in ["v2", "imagenet-r", "real+generated", "gen-val.1"] {
            assert_eq!(checked_name(good, "shift").unwrap(), good);
        }
    }

    #[test]
    fn temp_file_names_are_exactly_those_write_atomic_makes() {
        for yes in [".val.json.123.tmp", ".sketch.png.9.tmp", ".leaderboard.csv.4242.tmp"] {
            assert!(is_temp_file_name(yes), "{yes}");
        }
        for no in ["val.json", ".val.json", "x.123.tmp", ".x.tmp", ".x.12a.tmp", "..1.tmp", ".partial.json"] {
            assert!(!is_temp_file_name(no), "{no}");
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn an_uncommitted_atomic_file_leaves_nothing_and_seeking_rewrites_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"xxxx tail").unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(b"head").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"head tail");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
