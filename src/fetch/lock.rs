//! `datasets.lock`: every external artifact shiftbench reads, pinned by URL, size and sha256.
//!
//! Parsing is as strict as for suites: unknown keys, wrong types and inconsistent entries are
//! one error naming the file, line, column and key. An artifact is either *pinned* (`sha256` and
//! `bytes`) or explicitly *unpinned* (`unpinned = "why"`, for hosts that publish no hash); an
//! unpinned artifact is never used until `shiftbench lock pin NAME` records its hash, so the
//! state is always visible and never silently trusted.

use crate::config_error::{error_at, parse_toml, ConfigError};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The lock file `run`, `check`, `fetch` and `generate` read, relative to the working folder.
pub const LOCK_FILE: &str = "datasets.lock";

/// Version of the lock format this harness reads.
pub const LOCK_VERSION: u32 = 1;

/// The lock file exactly as written (positions kept for error messages and for `lock pin`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    version: Spanned<u32>,
    #[serde(default, rename = "artifact")]
    artifacts: Vec<ArtifactSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactSpec {
    name: Spanned<String>,
    /// File name in the cache and in local mirrors; defaults to the last segment of the first URL.
    file: Option<Spanned<String>>,
    #[serde(default)]
    urls: Vec<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    bytes: Option<Spanned<u64>>,
    /// Why no sha256 is pinned yet (e.g. the host publishes none).
    unpinned: Option<Spanned<String>>,
    /// A published md5, checked in addition to sha256 (ImageNet's own archives have only md5).
    md5: Option<Spanned<String>>,
    format: Format,
    license: Spanned<String>,
    homepage: Spanned<String>,
    /// How to obtain the file by hand when the host needs a login; no download is attempted.
    manual: Option<Spanned<String>>,
    expect: Option<Expect>,
    #[serde(default)]
    description: String,
}

/// How an artifact is stored: a plain file or an archive to extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Format {
    #[serde(rename = "file")]
    File,
    #[serde(rename = "tar")]
    Tar,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "zip")]
    Zip,
}

impl Format {
    pub fn is_archive(self) -> bool {
        self != Format::File
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::File => "file",
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        })
    }
}

/// What a complete extraction contains, so a truncated or partial archive is caught.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Folder inside the archive that holds the class folders (e.g. `imagenet-r`).
    pub root: Option<String>,
    /// Number of class folders directly under `root`.
    pub classes: Option<u64>,
    /// Number of files inside the class folders (files directly under `root`, such as a README,
    /// are not counted).
    pub files: Option<u64>,
    /// Number of files in every class folder.
    pub per_class: Option<u64>,
}

/// Whether the lock knows the artifact's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    Pinned { sha256: String, bytes: u64 },
    /// No hash yet: the artifact is refused until `shiftbench lock pin NAME` records one.
    Unpinned { reason: String },
}

/// One validated artifact of the lock.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub name: String,
    pub file: String,
    /// Primary URL first, then mirrors, tried in order.
    pub urls: Vec<String>,
    pub pin: Pin,
    pub md5: Option<String>,
    pub format: Format,
    pub license: String,
    pub homepage: String,
    pub manual: Option<String>,
    pub expect: Option<Expect>,
    pub description: String,
}

impl Artifact {
    pub fn sha256(&self) -> Option<&str> {
        match &self.pin {
            Pin::Pinned { sha256, .. } => Some(sha256),
            Pin::Unpinned { .. } => None,
        }
    }

    pub fn bytes(&self) -> Option<u64> {
        match &self.pin {
            Pin::Pinned { bytes, .. } => Some(*bytes),
            Pin::Unpinned { .. } => None,
        }
    }
}

/// A parsed and validated lock file.
#[derive(Clone, Debug)]
pub struct Lock {
    pub path: PathBuf,
    /// sha256 of the file's bytes (recorded as `lock_hash` in run records).
    pub hash: String,
    pub artifacts: Vec<Artifact>,
    text: String,
    /// Byte range of each artifact's `unpinned = ...` line, for `lock pin`.
    unpinned_lines: Vec<(String, std::ops::Range<usize>)>,
}

impl Lock {
    /// Reads and validates a lock file.
    pub fn load(path: &Path) -> anyhow::Result<Lock> {
        let text = crate::fsutil::read_text_file(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read lock file {}: {e}; run from the repository root or pass --lock FILE",
                path.display()
            )
        })?;
        Ok(Self::parse(&text, path)?)
    }

    /// Parses and validates lock text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Lock, ConfigError> {
        let file: LockFile = parse_toml(text, path)?;
        let v = LockValidator { text, path };
        if *file.version.get_ref() != LOCK_VERSION {
            return Err(v.err(&file.version, "version", format!("this harness reads lock version {LOCK_VERSION}")));
        }
        let mut names = BTreeSet::new();
        let mut artifacts = Vec::new();
        let mut unpinned_lines = Vec::new();
        for spec in file.artifacts {
            let a = v.artifact(&spec)?;
            if !names.insert(a.name.clone()) {
                return Err(v.err(&spec.name, "artifact.name", format!("`{}` is defined twice", a.name)));
            }
            if let Some(u) = &spec.unpinned {
                unpinned_lines.push((a.name.clone(), line_range(text, u.span().start)));
            }
            artifacts.push(a);
        }
        Ok(Lock {
            path: path.to_path_buf(),
            hash: crate::fsutil::sha256_hex(text.as_bytes()),
            artifacts,
            text: text.to_string(),
            unpinned_lines,
        })
    }

    /// The artifact called `name`, or an error listing the defined names.
    pub fn get(&self, name: &str) -> anyhow::Result<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "`{name}` is not an artifact of {}; defined: {}",
                self.path.display(),
                list(self.artifacts.iter().map(|a| a.name.as_str()))
            )
        })
    }

    /// The lock text with artifact `name`'s `unpinned = ...` line replaced by its measured
    /// `sha256` and `bytes`; everything else (comments, order) is kept byte for byte.
    pub fn pinned_text(&self, name: &str, sha256: &str, bytes: u64) -> anyhow::Result<String> {
        let (_, range) = self.unpinned_lines.iter().find(|(n, _)| n == name).ok_or_else(|| {
            anyhow::anyhow!("artifact `{name}` in {} is already pinned; edit the file by hand to change a pinned hash", self.path.display())
        })?;
        let indent: String = self.text[range.clone()].chars().take_while(|c| c.is_whitespace()).collect();
        let mut out = String::with_capacity(self.text.len() + 100);
        out.push_str(&self.text[..range.start]);
        out.push_str(&format!("{indent}sha256 = \"{sha256}\"\n{indent}bytes = {bytes}\n"));
        out.push_str(&self.text[range.end..]);
        Ok(out)
    }
}

/// Byte range of the whole line containing `offset`, newline included.
fn line_range(text: &str, offset: usize) -> std::ops::Range<usize> {
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..].find('\n').map(|i| offset + i + 1).unwrap_or(text.len());
    start..end
}

struct LockValidator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl LockValidator<'_> {
    fn err<T>(&self, at: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        error_at(self.path, self.text, at.span(), key, message.into())
    }

    fn artifact(&self, s: &ArtifactSpec) -> Result<Artifact, ConfigError> {
        let name = s.name.get_ref();
        let name_ok = !name.is_empty()
            && name.len() <= crate::fsutil::MAX_NAME_BYTES
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
            && !name.starts_with('.');
        if !name_ok {
            return Err(self.err(&s.name, "artifact.name", format!("use 1 to {} lowercase letters, digits and `-_.` only (names become folder names)", crate::fsutil::MAX_NAME_BYTES)));
        }
        for u in &s.urls {
            let ok = reqwest::Url::parse(u.get_ref()).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
            if !ok {
                return Err(self.err(u, "artifact.urls", format!("`{}` is not an http(s) URL", u.get_ref())));
            }
        }
        if s.urls.is_empty() && s.manual.is_none() {
            return Err(self.err(&s.name, "artifact.urls", format!(
                "artifact `{name}` has no URL; list at least one in `urls`, or say how to obtain it by hand with manual = \"...\""
            )));
        }
        let file = match &s.file {
            Some(f) => {
                if !is_plain_file_name(f.get_ref()) {
                    return Err(self.err(f, "artifact.file", "must be a plain file name of at most 200 bytes (no `/`, not `.` or `..`)"));
                }
                f.get_ref().clone()
            }
            None => match s.urls.first().and_then(|u| last_segment(u.get_ref())) {
                Some(f) => f,
                None => {
                    return Err(self.err(&s.name, "artifact.file", format!(
                        "artifact `{name}`: cannot take a file name from its URLs; set file = \"NAME\""
                    )))
                }
            },
        };
        let pin = match (&s.sha256, &s.bytes, &s.unpinned) {
            (Some(h), Some(b), None) => {
                if !is_hex(h.get_ref(), 64) {
                    return Err(self.err(h, "artifact.sha256", "must be 64 lowercase hex digits"));
                }
                if *b.get_ref() == 0 {
                    return Err(self.err(b, "artifact.bytes", "must be positive"));
                }
                Pin::Pinned { sha256: h.get_ref().clone(), bytes: *b.get_ref() }
            }
            (None, None, Some(u)) => {
                if u.get_ref().trim().is_empty() {
                    return Err(self.err(u, "artifact.unpinned", "say why no hash is pinned, e.g. \"the host publishes no checksum\""));
                }
                Pin::Unpinned { reason: u.get_ref().clone() }
            }
            (Some(h), _, Some(_)) => {
                return Err(self.err(h, "artifact.sha256", "an artifact is either pinned (sha256 + bytes) or unpinned; remove `unpinned` or `sha256`"))
            }
            (None, Some(b), Some(_)) => {
                return Err(self.err(b, "artifact.bytes", "an unpinned artifact records no size; `shiftbench lock pin` writes sha256 and bytes together"))
            }
            (Some(_), None, None) => return Err(self.err(&s.name, "artifact.bytes", format!("artifact `{name}` has a sha256 but no `bytes`; add its size in bytes"))),
            (None, Some(_), None) | (None, None, None) => {
                return Err(self.err(&s.name, "artifact.sha256", format!(
                    "artifact `{name}` has no sha256; pin it (sha256 = \"...\", bytes = N) or, if no hash is published, \
                     write unpinned = \"why\" and run `shiftbench lock pin {name}` after obtaining it"
                )))
            }
        };
        if let Some(m) = &s.md5 {
            if !is_hex(m.get_ref(), 32) {
                return Err(self.err(m, "artifact.md5", "must be 32 lowercase hex digits"));
            }
        }
        for (v, key) in [(&s.license, "artifact.license"), (&s.homepage, "artifact.homepage")] {
            if v.get_ref().trim().is_empty() {
                return Err(self.err(v, key, "must not be empty"));
            }
        }
        if let Some(m) = &s.manual {
            if m.get_ref().trim().is_empty() {
                return Err(self.err(m, "artifact.manual", "say how to obtain the file, e.g. where to log in and which file to download"));
            }
        }
        if let Some(e) = &s.expect {
            if !s.format.is_archive() {
                return Err(self.err(&s.name, "artifact.expect", format!("artifact `{name}` is a plain file; `expect` applies to archives only")));
            }
            if e.classes.is_none() && e.files.is_none() && e.per_class.is_none() {
                return Err(self.err(&s.name, "artifact.expect", "give at least one of `files`, `classes`, `per_class`"));
            }
            if let Some(root) = &e.root {
                if root.is_empty() || root.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                    return Err(self.err(&s.name, "artifact.expect.root", format!("`{root}` must be a relative folder path without `.` or `..`")));
                }
            }
        }
        Ok(Artifact {
            name: name.clone(),
            file,
            urls: s.urls.iter().map(|u| u.get_ref().clone()).collect(),
            pin,
            md5: s.md5.as_ref().map(|m| m.get_ref().clone()),
            format: s.format,
            license: s.license.get_ref().clone(),
            homepage: s.homepage.get_ref().clone(),
            manual: s.manual.as_ref().map(|m| m.get_ref().clone()),
            expect: s.expect.clone(),
            description: s.description.clone(),
        })
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// A file name the cache can hold: one component, not hidden, and short enough for every file
/// system with room for the cache's own suffixes (`.verified`).
fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s != "." && s != ".." && !s.contains(['/', '\\']) && !s.starts_with('.')
}

/// Last non-empty path segment of a URL, when it is a plain file name.
fn last_segment(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let seg = url.path_segments()?.rfind(|s| !s.is_empty())?.to_string();
    is_plain_file_name(&seg).then_some(seg)
}

pub(crate) fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version = 1

[[artifact]]
name = "table"
urls = ["https://example.org/a/table.csv", "http://mirror.example.org/table.csv"]
sha256 = "6b32665be2eef1594d6d296fcb07d33fed0dd4ecacacff463841d7cb08e835f7"
bytes = 869425
format = "file"
license = "MIT"
homepage = "https://example.org"

[[artifact]]
name = "photos"
file = "photos.zip"
urls = ["https://example.org/photos.zip"]
unpinned = "the host publishes no checksum"
format = "zip"
license = "custom"
homepage = "https://example.org"
expect = { root = "photos", classes = 3 }
"#;

    fn parse(text: &str) -> Result<Lock, ConfigError> {
        Lock::parse(text, Path::new("datasets.lock"))
    }

    #[test]
    fn parses_pinned_and_unpinned_entries() {
        let lock = parse(GOOD).unwrap();
        let t = lock.get("table").unwrap();
        assert_eq!(t.file, "table.csv");
        assert_eq!(t.bytes(), Some(869425));
        assert_eq!(t.urls.len(), 2);
        let p = lock.get("photos").unwrap();
        assert!(matches!(p.pin, Pin::Unpinned { .. }));
        assert_eq!(p.expect.as_ref().unwrap().classes, Some(3));
        assert!(lock.get("nope").unwrap_err().to_string().contains("defined: `table`, `photos`"));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("bytes = 869425", "bytes = 869425\ncolour = 1", "datasets.lock:8:1: key `artifact.colour`"),
            ("format = \"file\"", "format = \"rar\"", "key `artifact.format`"),
            ("sha256 = \"6b32", "sha256 = \"XX32", "datasets.lock:6:10: key `artifact.sha256`: must be 64 lowercase hex"),
            ("bytes = 869425\n", "", "key `artifact.bytes`: artifact `table` has a sha256 but no `bytes`"),
            ("unpinned = \"the host publishes no checksum\"\n", "", "key `artifact.sha256`: artifact `photos` has no sha256"),
            ("\"https://example.org/photos.zip\"", "\"ftp://example.org/photos.zip\"", "key `artifact.urls`: `ftp://example.org/photos.zip` is not an http(s) URL"),
            ("name = \"photos\"", "name = \"table\"", "key `artifact.name`: `table` is defined twice"),
            ("version = 1", "version = 2", "datasets.lock:1:11: key `version`"),
            ("format = \"file\"", "format = \"file\"\nexpect = { files = 3 }", "`expect` applies to archives only"),
        ];
        for (from, to, want) in cases {
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).expect_err(to).to_string();
            assert!(err.contains(want), "{to:?}: got {err}");
        }
    }

    #[test]
    fn pinning_rewrites_only_the_unpinned_line() {
        let lock = parse(GOOD).unwrap();
        let sha = "a".repeat(64);
        let text = lock.pinned_text("photos", &sha, 42).unwrap();
        let again = parse(&text).unwrap();
        assert_eq!(again.get("photos").unwrap().pin, Pin::Pinned { sha256: sha.clone(), bytes: 42 });
        assert_eq!(text.lines().count(), GOOD.lines().count() + 1);
        assert!(lock.pinned_text("table", &sha, 1).unwrap_err().to_string().contains("already pinned"));
    }
}
