//! Safe extraction of the archives pinned in `datasets.lock` (tar, tar.gz, zip).
//!
//! An archive is untrusted input even after its hash matched (the pin may be of a hostile file),
//! so every entry is checked before anything is written:
//! - entry paths must be relative and free of `..` (no absolute paths, no drive prefixes, no
//!   backslashes, which would be separators on Windows);
//! - symlinks may only point downwards from their own folder (relative, no `..`), and nothing is
//!   ever written *through* a symlink, so no chain of links can lead outside;
//! - hard links must name a regular file already extracted inside the destination;
//! - total bytes and entry count are capped before data is read (declared sizes count), and an
//!   entry that delivers more than it declared is refused (zip bombs);
//! - everything goes into a temporary sibling folder that is renamed into place only when the
//!   whole archive is extracted and matches the lock's `expect`, so a crash never leaves a
//!   half-extracted dataset that looks complete.

use crate::fetch::lock::{Expect, Format};
use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Caps on what one archive may extract to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for Limits {
    /// Generous for the pinned datasets (ImageNet-Sketch: ~8.4 GB in ~51,000 files), small
    /// enough to stop a bomb before it fills a disk.
    fn default() -> Self {
        Self { max_bytes: 64 << 30, max_entries: 2_000_000 }
    }
}

/// What an extraction produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
}

/// Extracts `archive` into `dest` (which must not exist yet), checks `expect`, and renames the
/// result into place. On any error nothing is left under `dest` or its temporary sibling.
pub fn extract(archive: &Path, format: Format, dest: &Path, limits: &Limits, expect: Option<&Expect>) -> Result<Summary> {
    anyhow::ensure!(!dest.exists(), "{} already exists; remove it to extract again", dest.display());
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "extract".into());
    let tmp = parent.join(format!(".{name}.extracting-{}", std::process::id()));
    if tmp.exists() {
        // Left by an earlier, interrupted run of this process id: ours to clear.
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = (|| -> Result<Summary> {
        let mut sink = Sink { root: tmp.clone(), limits: limits.clone(), summary: Summary::default(), entries: 0 };
        let open = || File::open(archive).with_context(|| format!("cannot open {}", archive.display()));
        match format {
            Format::Tar => extract_tar(open()?, &mut sink)?,
            Format::TarGz => {
                let mut f = open()?;
                let mut magic = [0u8; 2];
                let n = f.read(&mut magic)?;
                if n < 2 || magic != [0x1f, 0x8b] {
                    bail!("{} is declared tar.gz but is not gzip-compressed; if it is a plain tar, set format = \"tar\" in the lock", archive.display());
                }
                extract_tar(flate2::read::GzDecoder::new(open()?), &mut sink)?
            }
            Format::Zip => extract_zip(open()?, &mut sink)?,
            Format::File => bail!("{} is a plain file, not an archive", archive.display()),
        }
        if let Some(e) = expect {
            check_expect(&tmp, e)?;
        }
        Ok(sink.summary)
    })();
    match result {
        Ok(summary) => {
            fs::rename(&tmp, dest).with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Checks an archive entry path and returns it as a relative path, or says why it is refused.
/// `.` components and empty components (`a//b`, a trailing `/`) are dropped.
pub fn safe_entry_path(raw: &str) -> Result<PathBuf, String> {
    if raw.starts_with('/') {
        return Err("is an absolute path".into());
    }
    if raw.contains('\\') {
        return Err("contains a backslash (a path separator on Windows)".into());
    }
    if raw.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let mut out = PathBuf::new();
    for (i, comp) in raw.split('/').enumerate() {
        match comp {
            "" | "." => continue,
            ".." => return Err("contains a `..` component".into()),
            c if i == 0 && c.len() == 2 && c.ends_with(':') => return Err("starts with a drive prefix".into()),
            c if cfg!(windows) && c.contains(':') => return Err("contains `:` (a drive or stream separator on Windows)".into()),
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    Ok(out)
}

/// Writes checked entries under `root`, counting against the limits.
struct Sink {
    root: PathBuf,
    limits: Limits,
    summary: Summary,
    entries: u64,
}

impl Sink {
    fn count_entry(&mut self, name: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            bail!("archive has more than {} entries (at `{name}`); refused as a possible archive bomb", self.limits.max_entries);
        }
        Ok(())
    }

    /// Resolves `rel` under the root, creating missing parent folders, and refuses a path
    /// whose parents include a symlink (writing through links could leave the destination).
    fn prepare(&self, name: &str, rel: &Path) -> Result<PathBuf> {
        let mut at = self.root.clone();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            at.push(c);
            let last = i + 1 == comps.len();
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => bail!("entry `{name}` goes through the symlink `{}`; refused", rel_display(&self.root, &at)),
                Ok(m) if !last && !m.is_dir() => bail!("entry `{name}` needs `{}` to be a folder, but it is a file", rel_display(&self.root, &at)),
                Ok(_) => {}
                Err(_) if !last => fs::create_dir(&at).with_context(|| format!("cannot create {}", at.display()))?,
                Err(_) => {}
            }
        }
        Ok(at)
    }

    fn dir(&mut self, name: &str, rel: &Path) -> Result<()> {
        self.count_entry(name)?;
        let at = self.prepare(name, rel)?;
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => bail!("entry `{name}` is a folder but a file of that name was already extracted"),
            Err(_) => fs::create_dir(&at).with_context(|| format!("cannot create {}", at.display())),
        }
    }

    fn file(&mut self, name: &str, rel: &Path, declared: u64, data: &mut dyn Read) -> Result<()> {
        self.count_entry(name)?;
        if declared > self.limits.max_bytes.saturating_sub(self.summary.bytes) {
            bail!(
                "entry `{name}` declares {declared} bytes, which with the {} bytes already extracted exceeds the limit of {} bytes; refused as a possible archive bomb",
                self.summary.bytes,
                self.limits.max_bytes
            );
        }
        let at = self.prepare(name, rel)?;
        // create_new never follows or replaces an existing entry (including a dangling link).
        let mut out = fs::OpenOptions::new().write(true).create_new(true).open(&at).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!("entry `{name}` appears twice in the archive; refused"),
            _ => anyhow::anyhow!("cannot create {}: {e}", at.display()),
        })?;
        // Read at most one byte more than declared: enough to catch an entry that lies.
        let copied = std::io::copy(&mut data.take(declared + 1), &mut out).with_context(|| format!("cannot extract `{name}`"))?;
        if copied != declared {
            bail!("entry `{name}` declares {declared} bytes but holds {}{copied}; refused", if copied > declared { "more than " } else { "" });
        }
        out.flush()?;
        self.summary.files += 1;
        self.summary.bytes += copied;
        Ok(())
    }

    fn symlink(&mut self, name: &str, rel: &Path, target: &str) -> Result<()> {
        self.count_entry(name)?;
        let downward = !target.starts_with('/')
            && !target.contains('\\')
            && !target.is_empty()
            && target.split('/').all(|c| c != ".." && !(cfg!(windows) && c.contains(':')));
        if !downward {
            bail!("entry `{name}` is a symlink to `{target}`, which points outside its folder (absolute and `..` targets are refused)");
        }
        let at = self.prepare(name, rel)?;
        make_symlink(target, &at).with_context(|| format!("cannot create symlink {}", at.display()))
    }

    fn hard_link(&mut self, name: &str, rel: &Path, target_raw: &str) -> Result<()> {
        self.count_entry(name)?;
        let target = safe_entry_path(target_raw)
            .map_err(|why| anyhow::anyhow!("entry `{name}` is a hard link to `{target_raw}`, which {why}; links out of the destination are refused"))?;
        let mut src = self.root.clone();
        for c in target.components() {
            src.push(c);
            if fs::symlink_metadata(&src).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!("entry `{name}` is a hard link through the symlink `{}`; refused", rel_display(&self.root, &src));
            }
        }
        if !fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
            bail!("entry `{name}` is a hard link to `{target_raw}`, which is not a file extracted earlier from this archive; refused");
        }
        let at = self.prepare(name, rel)?;
        fs::hard_link(&src, &at).with_context(|| format!("cannot create hard link {}", at.display()))?;
        self.summary.files += 1;
        Ok(())
    }
}

fn rel_display(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

#[cfg(unix)]
fn make_symlink(target: &str, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_symlink(target: &str, _at: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(format!("symlinks (to `{target}`) are only extracted on Unix")))
}

fn utf8_name(raw: &[u8]) -> Result<&str> {
    std::str::from_utf8(raw).map_err(|_| anyhow::anyhow!("an entry name is not valid UTF-8 ({}); refused", String::from_utf8_lossy(raw)))
}

fn checked(name: &str) -> Result<PathBuf> {
    safe_entry_path(name).map_err(|why| anyhow::anyhow!("entry `{name}` {why}; refused (entries must stay inside the destination)"))
}

fn extract_tar(reader: impl Read, sink: &mut Sink) -> Result<()> {
    use tar::EntryType;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("cannot read the tar archive")? {
        let mut entry = entry.context("cannot read a tar entry (truncated or corrupt archive?)")?;
        let kind = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let name = utf8_name(&raw)?.to_string();
        match kind {
            // Metadata records, not files (long names and pax headers are merged by `tar`).
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => continue,
            _ => {}
        }
        let rel = checked(&name)?;
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                sink.file(&name, &rel, size, &mut entry)?;
            }
            EntryType::Directory => sink.dir(&name, &rel)?,
            EntryType::Symlink | EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                let target = utf8_name(&target)?;
                if kind == EntryType::Symlink {
                    sink.symlink(&name, &rel, target)?;
                } else {
                    sink.hard_link(&name, &rel, target)?;
                }
            }
            other => bail!("entry `{name}` is of an unsupported type ({other:?}: devices, fifos and sparse files are refused)"),
        }
    }
    Ok(())
}

fn extract_zip(file: File, sink: &mut Sink) -> Result<()> {
    let mut zip = zip::ZipArchive::new(file).context("cannot read the zip archive (truncated or corrupt?)")?;
    if zip.len() as u64 > sink.limits.max_entries {
        bail!("zip archive lists {} entries, more than the limit of {}; refused as a possible archive bomb", zip.len(), sink.limits.max_entries);
    }
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).with_context(|| format!("cannot read zip entry {i}"))?;
        let name = utf8_name(f.name_raw())?.to_string();
        let rel = checked(&name)?;
        if f.is_dir() {
            sink.dir(&name, &rel)?;
        } else if f.is_symlink() {
            let mut target = String::new();
            (&mut f).take(4096).read_to_string(&mut target).with_context(|| format!("cannot read the target of symlink `{name}`"))?;
            sink.symlink(&name, &rel, &target)?;
        } else {
            let size = f.size();
            sink.file(&name, &rel, size, &mut f)?;
        }
    }
    Ok(())
}

/// Checks an extraction against the lock's `expect`: class folders under `root`, files in them.
pub fn check_expect(dir: &Path, e: &Expect) -> Result<()> {
    let base = match &e.root {
        Some(r) => dir.join(r),
        None => dir.to_path_buf(),
    };
    if !base.is_dir() {
        let top: Vec<String> = fs::read_dir(dir).map(|rd| rd.flatten().map(|d| d.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
        bail!("the archive has no folder `{}` (expect.root); its top level holds: {}", e.root.as_deref().unwrap_or("."), top.join(", "));
    }
    let mut classes = Vec::new();
    for d in fs::read_dir(&base).with_context(|| format!("cannot list {}", base.display()))? {
        let d = d?;
        if d.file_type()?.is_dir() {
            classes.push((d.file_name().to_string_lossy().into_owned(), count_files(&d.path())?));
        }
    }
    classes.sort();
    let at = e.root.as_deref().map(|r| format!(" under `{r}`")).unwrap_or_default();
    if let Some(want) = e.classes {
        if classes.len() as u64 != want {
            bail!("expected {want} class folders{at}, found {}: the archive is incomplete or not the one pinned", classes.len());
        }
    }
    let total: u64 = classes.iter().map(|(_, n)| n).sum();
    if let Some(want) = e.files {
        if total != want {
            bail!("expected {want} files in the class folders{at}, found {total}: the archive is incomplete or not the one pinned");
        }
    }
    if let Some(want) = e.per_class {
        let wrong: Vec<String> = classes.iter().filter(|(_, n)| *n != want).map(|(c, n)| format!("`{c}` has {n}")).collect();
        if !wrong.is_empty() {
            bail!("expected {want} files in every class folder{at}; {} of {} differ: {}", wrong.len(), classes.len(), wrong.iter().take(5).cloned().collect::<Vec<_>>().join(", "));
        }
    }
    Ok(())
}

/// Regular files under `dir`, recursively (symlinks are not followed).
fn count_files(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for d in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let d = d?;
        let t = d.file_type()?;
        if t.is_dir() {
            n += count_files(&d.path())?;
        } else if t.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_normalised_or_refused() {
        assert_eq!(safe_entry_path("./a//b/./c.jpg").unwrap(), PathBuf::from("a/b/c.jpg"));
        assert_eq!(safe_entry_path("dir/").unwrap(), PathBuf::from("dir"));
        for (bad, why) in [
            ("/etc/passwd", "absolute"),
            ("a/../../x", "`..`"),
            ("..", "`..`"),
            ("a\\..\\x", "backslash"),
            ("C:/x", "drive"),
            ("./", "empty"),
        ] {
            let err = safe_entry_path(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
