//! The verifying fetcher: puts the artifacts of `datasets.lock` in the cache, byte for byte.
//!
//! Order of sources: the cache itself, then local mirror folders (`--mirror`, `SHIFTBENCH_MIRROR`),
//! then the artifact's URLs in order. Every byte is checked against the pinned sha256 before it
//! is placed under its final name, so anything found there has been verified:
//!
//! ```text
//! CACHE/files/<sha256>/<file>      verified artifacts (content-addressed)
//! CACHE/extracted/<sha256>/        complete extractions of verified archives
//! CACHE/partial/<sha256>.part      an interrupted download, resumed with HTTP Range
//! CACHE/quarantine/                files that failed verification, kept for inspection
//! CACHE/locks/                     one lock file per artifact (two processes never race)
//! ```

pub mod artifacts;
pub mod extract;
pub mod lock;

use extract::Limits;
use lock::{Artifact, Lock, Pin};
use anyhow::{Context, Result};
use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How patient the downloader is. Tests shrink these to keep misbehaving servers fast.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub connect_timeout: Duration,
    /// A transfer that delivers no byte for this long is abandoned (and resumed by a retry).
    pub stall_timeout: Duration,
    /// Requests per URL before moving on to the next URL.
    pub attempts_per_url: u32,
    /// Wait before the first retry; doubles after each, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The most bytes a download with no pinned size (`lock pin`) may deliver: an endless
    /// body would otherwise fill the disk.
    pub max_unpinned_bytes: u64,
}

/// Default of [`NetConfig::max_unpinned_bytes`] and of `lock pin --max-bytes`: 1 TiB, above any
/// dataset archive the lock pins (ImageNet's training archive is 147 GB).
pub const DEFAULT_MAX_PIN_BYTES: u64 = 1 << 40;

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(60),
            attempts_per_url: 5,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            max_unpinned_bytes: DEFAULT_MAX_PIN_BYTES,
        }
    }
}

/// Where artifacts live and where they may come from.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub cache: PathBuf,
    /// Local folders holding artifacts named by sha256 or by their file name; tried first.
    pub mirrors: Vec<PathBuf>,
    /// Never touch the network.
    pub offline: bool,
    pub net: NetConfig,
    pub limits: Limits,
}

impl FetchOptions {
    pub fn new(cache: PathBuf) -> Self {
        Self { cache, mirrors: Vec::new(), offline: false, net: NetConfig::default(), limits: Limits::default() }
    }
}

/// `$SHIFTBENCH_CACHE`, else the platform cache folder (`$XDG_CACHE_HOME/shiftbench`,
/// `~/.cache/shiftbench`, `~/Library/Caches/shiftbench`, ...).
pub fn default_cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SHIFTBENCH_CACHE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("shiftbench"))
        .context("no platform cache folder is known for this user; set SHIFTBENCH_CACHE or pass --cache DIR")
}

/// Mirror folders from `SHIFTBENCH_MIRROR` (a path list, separated like `PATH`).
pub fn mirrors_from_env() -> Vec<PathBuf> {
    std::env::var_os("SHIFTBENCH_MIRROR").map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect()).unwrap_or_default()
}

/// Paths inside the cache folder.
#[derive(Clone, Debug)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Final, verified location of a pinned artifact.
    pub fn file_path(&self, sha256: &str, file: &str) -> PathBuf {
        self.root.join("files").join(sha256).join(file)
    }

    pub fn extracted_dir(&self, sha256: &str) -> PathBuf {
        self.root.join("extracted").join(sha256)
    }

    fn partial_path(&self, key: &str) -> PathBuf {
        self.root.join("partial").join(format!("{key}.part"))
    }

    fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }

    /// Moves a file that failed verification aside (never deleted, never used) and returns
    /// where it went.
    pub fn quarantine(&self, bad: &Path, file: &str, actual_sha256: &str) -> Result<PathBuf> {
        let dir = self.quarantine_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut to = dir.join(format!("{file}.sha256-{}.{stamp}", &actual_sha256[..16]));
        let mut n = 1;
        while to.exists() {
            to = dir.join(format!("{file}.sha256-{}.{stamp}.{n}", &actual_sha256[..16]));
            n += 1;
        }
        fs::rename(bad, &to).with_context(|| format!("cannot move {} to {}", bad.display(), to.display()))?;
        Ok(to)
    }
}

/// Where a verified artifact came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// In the cache, with the size and mtime it had when it was verified at this time (Unix
    /// seconds); not re-hashed.
    Cache { verified_at: u64 },
    /// In the cache, re-hashed because its size or mtime changed since it was verified (or
    /// was never recorded), and still the pinned bytes.
    CacheRehashed,
    Mirror(PathBuf),
    Url(String),
}

/// A verified artifact in the cache.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub source: Source,
    /// The extraction folder, for archives (after `expect` was checked).
    pub extracted: Option<PathBuf>,
}

/// Why an artifact is not in place. Each variant's message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("artifact `{name}` is unpinned ({reason}): it is not used until its hash is recorded: run `shiftbench lock pin {name}` (with --from FILE for a copy you downloaded), then review and commit the lock")]
    Unpinned { name: String, reason: String },
    #[error("artifact `{name}` ({file}) must be obtained by hand: {how}; then put it in a folder passed with --mirror DIR (or SHIFTBENCH_MIRROR)")]
    Manual { name: String, file: String, how: String },
    #[error("artifact `{name}` ({file}) is not in the cache or any mirror, and --offline forbids downloading it")]
    Missing { name: String, file: String },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Makes a pinned artifact verified and in place (and extracted, for archives). Safe to call
/// from several processes at once: they take turns through a per-artifact file lock.
pub fn fetch(a: &Artifact, opts: &FetchOptions) -> Result<Fetched, FetchError> {
    let (sha256, bytes) = match &a.pin {
        Pin::Pinned { sha256, bytes } => (sha256.as_str(), *bytes),
        Pin::Unpinned { reason } => return Err(FetchError::Unpinned { name: a.name.clone(), reason: reason.clone() }),
    };
    let cache = Cache::new(&opts.cache);
    let _guard = ArtifactLock::acquire(&cache, sha256, &a.name)?;
    let (path, source) = place_file(a, sha256, bytes, &cache, opts)?;
    let extracted = if a.format.is_archive() {
        let dir = cache.extracted_dir(sha256);
        if !dir.is_dir() {
            crate::progress::say(format!("extracting {} into {}", a.name, dir.display()));
            extract::extract(&path, a.format, &dir, &opts.limits, a.expect.as_ref())
                .with_context(|| format!("extracting artifact `{}` from {}", a.name, path.display()))?;
        }
        Some(dir)
    } else {
        None
    };
    Ok(Fetched { path, source, extracted })
}

/// Where a pinned artifact is in the cache, if it is there with its pinned size. Reads nothing
/// but metadata (`shiftbench lock verify` re-hashes).
pub fn cached_path(a: &Artifact, cache: &Cache) -> Option<PathBuf> {
    let (sha, bytes) = (a.sha256()?, a.bytes()?);
    let p = cache.file_path(sha, &a.file);
    fs::metadata(&p).ok().filter(|m| m.is_file() && m.len() == bytes).map(|_| p)
}

fn place_file(a: &Artifact, sha256: &str, bytes: u64, cache: &Cache, opts: &FetchOptions) -> Result<(PathBuf, Source), FetchError> {
    let final_path = cache.file_path(sha256, &a.file);
    let expected = Expected { sha256, bytes: Some(bytes), md5: a.md5.as_deref() };
    if let Ok(meta) = fs::metadata(&final_path) {
        if let Some(verified_at) = unchanged_since_verified(&final_path, &meta) {
            return Ok((final_path, Source::Cache { verified_at }));
        }
        // Changed since it was verified (or verified before stamps existed): hash it again.
        let (sha, len, md5) = hash_file(&final_path)?;
        if check(&expected, &sha, len, Some(&md5)).is_ok() {
            record_verified(&final_path)?;
            return Ok((final_path, Source::CacheRehashed));
        }
        let to = cache.quarantine(&final_path, &a.file, &sha)?;
        let _ = fs::remove_file(stamp_path(&final_path));
        eprintln!("warning: cached {} changed since it was verified (sha256 {sha}, {len} bytes; pinned {sha256}, {bytes} bytes); moved to {}", a.name, to.display());
    }
    let mut problems = Vec::new();
    if let Some(mirror) = from_mirrors(a, &expected, cache, &opts.mirrors, &final_path, &mut problems)? {
        record_verified(&final_path)?;
        return Ok((final_path, Source::Mirror(mirror)));
    }
    if let Some(how) = &a.manual {
        return Err(FetchError::Manual { name: a.name.clone(), file: a.file.clone(), how: how.clone() });
    }
    if opts.offline {
        if !problems.is_empty() {
            return Err(anyhow::anyhow!("artifact `{}`: {}", a.name, problems.join("; ")).into());
        }
        return Err(FetchError::Missing { name: a.name.clone(), file: a.file.clone() });
    }
    let part = cache.partial_path(sha256);
    let url = download(a, &expected, &part, cache, &opts.net, &mut problems)?;
    move_into_place(&part, &final_path)?;
    record_verified(&final_path)?;
    Ok((final_path, Source::Url(url)))
}

/// The stamp next to a verified cached file: its size and mtime when it was hashed, and when.
/// A file whose size and mtime still match is not hashed again; any other is.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct VerifiedStamp {
    bytes: u64,
    mtime_ns: u128,
    verified_at: u64,
}

fn stamp_path(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    file.with_file_name(format!("{name}.verified"))
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

/// Records that `file` was just verified (its bytes hashed to the pin).
fn record_verified(file: &Path) -> Result<()> {
    let meta = fs::metadata(file).with_context(|| format!("cannot inspect {}", file.display()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = VerifiedStamp { bytes: meta.len(), mtime_ns: mtime_ns(&meta), verified_at: now };
    crate::fsutil::write_atomic(&stamp_path(file), serde_json::to_string(&stamp)?.as_bytes())
}

/// When `file` (with metadata `meta`) was verified, if its size and mtime are what they were then.
fn unchanged_since_verified(file: &Path, meta: &fs::Metadata) -> Option<u64> {
    let stamp: VerifiedStamp = serde_json::from_slice(&fs::read(stamp_path(file)).ok()?).ok()?;
    (meta.is_file() && stamp.bytes == meta.len() && stamp.mtime_ns == mtime_ns(meta)).then_some(stamp.verified_at)
}

/// `2026-12-02 00:31 UTC` for Unix seconds (the proleptic Gregorian calendar, no time zones).
pub fn utc_date(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// What the bytes must be.
struct Expected<'a> {
    sha256: &'a str,
    bytes: Option<u64>,
    md5: Option<&'a str>,
}

/// Looks in each mirror folder for a file named by the sha256 or by the artifact's file name;
/// copies the first one that verifies into the cache. Mismatching mirror files are reported
/// (in `problems`) and left where they are.
fn from_mirrors(a: &Artifact, expected: &Expected, cache: &Cache, mirrors: &[PathBuf], final_path: &Path, problems: &mut Vec<String>) -> Result<Option<PathBuf>> {
    for dir in mirrors {
        for candidate in [dir.join(expected.sha256), dir.join(&a.file)] {
            if !candidate.is_file() {
                continue;
            }
            let tmp = cache.root.join("partial").join(format!("{}.mirror-{}", expected.sha256, std::process::id()));
            let (sha, len, md5) = copy_hashing(&candidate, &tmp, u64::MAX)?;
            match check(expected, &sha, len, md5.as_deref()) {
                Ok(()) => {
                    move_into_place(&tmp, final_path)?;
                    return Ok(Some(candidate));
                }
                Err(why) => {
                    // Our copy is removed; the mirror's file is not ours to move.
                    let _ = fs::remove_file(&tmp);
                    let msg = format!("mirror file {} is not the pinned `{}`: {why}; it was not used", candidate.display(), a.name);
                    eprintln!("warning: {msg}");
                    problems.push(msg);
                }
            }
        }
    }
    Ok(None)
}

/// Compares measured bytes with the pin; the message names both hashes and sizes.
fn check(expected: &Expected, sha: &str, len: u64, md5: Option<&str>) -> Result<(), String> {
    let size_ok = expected.bytes.is_none_or(|b| b == len);
    if sha != expected.sha256 || !size_ok {
        let want_size = expected.bytes.map(|b| format!(", {b} bytes")).unwrap_or_default();
        return Err(format!("sha256 mismatch: expected {}{want_size}, got {sha}, {len} bytes", expected.sha256));
    }
    if let (Some(want), Some(got)) = (expected.md5, md5) {
        if want != got {
            return Err(format!("md5 mismatch: expected {want}, got {got}"));
        }
    }
    Ok(())
}

fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().expect("cache paths have a parent");
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::rename(from, to).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
}

/// Tries each URL in order, with retries and resume; returns the URL that delivered the
/// verified bytes (left at `part`). On a hash mismatch the bytes are quarantined and the next
/// URL is tried from scratch.
fn download(a: &Artifact, expected: &Expected, part: &Path, cache: &Cache, net: &NetConfig, problems: &mut Vec<String>) -> Result<String, FetchError> {
    let client = http_client(net)?;
    let pb = crate::progress::bytes_bar(expected.bytes, &a.name);
    for url in &a.urls {
        let Some(partial) = transfer_with_retries(&client, a, url, part, expected.bytes, net, &pb, problems)? else { continue };
        let (sha, len, md5) = partial.finish()?;
        match check(expected, &sha, len, md5.as_deref()) {
            Ok(()) => {
                pb.finish_and_clear();
                return Ok(url.clone());
            }
            Err(why) => {
                let to = cache.quarantine(part, &a.file, &sha)?;
                let msg = format!("{url}: {why}; the downloaded file was moved to {} and will not be used", to.display());
                eprintln!("error: artifact `{}`: {msg}", a.name);
                problems.push(msg);
            }
        }
    }
    pb.finish_and_clear();
    let kept = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let resume = if kept > 0 { format!("\n{kept} bytes are kept at {} and the next fetch resumes from there", part.display()) } else { String::new() };
    Err(anyhow::anyhow!(
        "could not fetch artifact `{}` ({}, sha256 {}):\n  {}{resume}",
        a.name,
        a.file,
        expected.sha256,
        if problems.is_empty() { "no URL to try".to_string() } else { problems.join("\n  ") }
    )
    .into())
}

/// Downloads (resuming) from one URL until the transfer completes, with up to
/// `net.attempts_per_url` tries and exponential backoff. Returns the completed partial file, or
/// `None` after recording in `problems` why this URL gave up (the caller moves to the next one).
#[allow(clippy::too_many_arguments)]
fn transfer_with_retries(
    client: &reqwest::blocking::Client,
    a: &Artifact,
    url: &str,
    part: &Path,
    bytes: Option<u64>,
    net: &NetConfig,
    pb: &indicatif::ProgressBar,
    problems: &mut Vec<String>,
) -> Result<Option<PartialFile>> {
    let attempts = net.attempts_per_url.max(1);
    let mut backoff = net.first_backoff;
    for attempt in 1..=attempts {
        let mut partial = PartialFile::open(part)?;
        pb.set_position(partial.len);
        match transfer(client, url, &mut partial, bytes, net.max_unpinned_bytes, pb) {
            Ok(()) => return Ok(Some(partial)),
            Err(Attempt::NextUrl(why)) => {
                problems.push(format!("{url}: {why}"));
                return Ok(None);
            }
            Err(Attempt::Retry(why)) if attempt == attempts => {
                problems.push(format!("{url}: {why} (gave up after {attempt} attempts)"));
                return Ok(None);
            }
            Err(Attempt::Retry(why)) => {
                eprintln!("warning: {} attempt {attempt} from {url}: {why}; retrying in {:.1} s", a.name, backoff.as_secs_f64());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(net.max_backoff);
            }
        }
    }
    Ok(None)
}

/// One HTTP client for a whole fetch: rustls with the ring provider, no content decoding
/// (the bytes on the wire are the bytes hashed), `stall_timeout` per read.
fn http_client(net: &NetConfig) -> Result<reqwest::blocking::Client> {
    // Installing twice is harmless (the second call reports the first provider back).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .connect_timeout(net.connect_timeout)
        .timeout(net.stall_timeout)
        .user_agent(concat!("shiftbench/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// How one request failed.
enum Attempt {
    /// Worth asking the same URL again (timeouts, cut connections, 5xx, 429).
    Retry(String),
    /// This URL will not deliver (404, 403, unexpected answers, too many bytes).
    NextUrl(String),
}

/// One request: asks for the missing tail of `partial` (or everything) and appends the body;
/// without a pinned size, at most `cap` bytes.
fn transfer(client: &reqwest::blocking::Client, url: &str, partial: &mut PartialFile, bytes: Option<u64>, cap: u64, pb: &indicatif::ProgressBar) -> Result<(), Attempt> {
    use reqwest::header::{ACCEPT_ENCODING, CONTENT_RANGE, RANGE};
    use reqwest::StatusCode;
    let io = |what: &str, e: std::io::Error| Attempt::NextUrl(format!("{what}: {e}"));
    if bytes.is_some_and(|b| partial.len > b) {
        partial.truncate().map_err(|e| io("cannot truncate partial file", e))?;
    }
    if bytes.is_some_and(|b| partial.len == b) {
        return Ok(());
    }
    let mut req = client.get(url).header(ACCEPT_ENCODING, "identity");
    if partial.len > 0 {
        req = req.header(RANGE, format!("bytes={}-", partial.len));
    }
    let mut resp = req.send().map_err(|e| Attempt::Retry(describe(&e)))?;
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let start = resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(content_range_start);
            if start != Some(partial.len) {
                // Not the tail we asked for: start over rather than splice mismatched bytes.
                partial.truncate().map_err(|e| io("cannot truncate partial file", e))?;
                return Err(Attempt::Retry(format!("server answered a range starting at {start:?} instead of {}", partial.len)));
            }
        }
        StatusCode::OK => {
            // A full body: either a fresh download or a server that ignores Range.
            if partial.len > 0 {
                partial.truncate().map_err(|e| io("cannot truncate partial file", e))?;
                pb.set_position(0);
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            partial.truncate().map_err(|e| io("cannot truncate partial file", e))?;
            return Err(Attempt::Retry("server refused the resume range (416); restarting from the first byte".into()));
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
            return Err(Attempt::Retry(format!("HTTP {s}")));
        }
        s => return Err(Attempt::NextUrl(format!("HTTP {s}"))),
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Attempt::Retry(format!("transfer stopped after {} bytes: {}", partial.len, describe_io(&e)))),
        };
        if let Some(b) = bytes {
            if partial.len + n as u64 > b {
                // Wrong content, not a hiccup: drop our copy of it and let the next URL start afresh.
                let _ = partial.truncate();
                return Err(Attempt::NextUrl(format!("server sent more than the pinned {b} bytes")));
            }
        } else if partial.len + n as u64 > cap {
            let _ = partial.truncate();
            return Err(Attempt::NextUrl(format!("server sent more than {cap} bytes, the most a pin accepts (raise it with --max-bytes)")));
        }
        partial.append(&buf[..n]).map_err(|e| io("cannot write partial file", e))?;
        pb.set_position(partial.len);
    }
    match bytes {
        Some(b) if partial.len < b => Err(Attempt::Retry(format!("connection closed after {} of {b} bytes", partial.len))),
        _ => Ok(()),
    }
}

/// `bytes START-END/TOTAL` → START.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out waiting for the server".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("timed out") || e.kind() == std::io::ErrorKind::TimedOut {
        format!("stalled (no data within the stall timeout): {text}")
    } else {
        text
    }
}

/// A download in progress: the file and the running hash of everything in it.
struct PartialFile {
    file: File,
    sha: Sha256,
    md5: md5::Md5,
    len: u64,
}

impl PartialFile {
    /// Opens (or creates) the partial file and hashes what an earlier attempt left in it, so
    /// a resumed download is still hashed from its first byte.
    fn open(path: &Path) -> Result<Self> {
        let dir = path.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
        file.rewind()?;
        // Resuming continues the hashes over the bytes already on disk.
        let (sha, md5, len) = hash_reader(&mut file, path)?;
        Ok(Self { file, sha, md5, len })
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.sha.update(bytes);
        self.md5.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn truncate(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.sha = Sha256::new();
        self.md5 = md5::Md5::new();
        self.len = 0;
        Ok(())
    }

    /// Flushes to disk and returns (sha256, length, md5).
    fn finish(self) -> Result<(String, u64, Option<String>)> {
        self.file.sync_all().context("cannot flush the downloaded file")?;
        Ok((hex::encode(self.sha.finalize()), self.len, Some(hex::encode(self.md5.finalize()))))
    }
}

/// Copies `src` to `dst` while hashing, at most `cap` bytes; returns (sha256, length, md5).
fn copy_hashing(src: &Path, dst: &Path, cap: u64) -> Result<(String, u64, Option<String>)> {
    let _ = fs::remove_file(dst);
    let mut out = PartialFile::open(dst)?;
    let mut input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        anyhow::ensure!(out.len + n as u64 <= cap, "{} holds more than {cap} bytes, the most a pin accepts; raise it with --max-bytes if the artifact really is that large", src.display());
        out.append(&buf[..n]).with_context(|| format!("cannot write {}", dst.display()))?;
    }
    out.finish()
}

/// sha256 and md5 of a file, read in chunks. Returns (sha256, length, md5).
pub fn hash_file(path: &Path) -> Result<(String, u64, String)> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (sha, md5, len) = hash_reader(&mut f, path)?;
    Ok((hex::encode(sha.finalize()), len, hex::encode(md5.finalize())))
}

/// Feeds everything `reader` yields into fresh sha256 and md5 states, in chunks; returns the
/// states (still open for more bytes) and the byte count. `path` names the source in errors.
fn hash_reader(reader: &mut impl Read, path: &Path) -> Result<(Sha256, md5::Md5, u64)> {
    let (mut sha, mut md5, mut len) = (Sha256::new(), md5::Md5::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        len += n as u64;
    }
    Ok((sha, md5, len))
}

/// An exclusive lock on one artifact, held for the whole fetch (released when dropped).
struct ArtifactLock {
    _file: File,
}

impl ArtifactLock {
    fn acquire(cache: &Cache, key: &str, name: &str) -> Result<Self> {
        let path = cache.lock_path(key);
        let dir = path.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).with_context(|| format!("cannot create cache folder {}; pass a writable --cache DIR", dir.display()))?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).with_context(|| format!("cannot open lock file {}", path.display()))?;
        if !FileExt::try_lock_exclusive(&file).with_context(|| format!("cannot lock {}", path.display()))? {
            eprintln!("waiting for another shiftbench process that is fetching `{name}` ...");
            FileExt::lock_exclusive(&file).with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Ok(Self { _file: file })
    }
}

/// What `shiftbench lock verify` found for one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    Verified(PathBuf),
    NotCached,
    Unpinned,
    /// The cached bytes did not match; they were moved to the given path.
    Corrupt { quarantined: PathBuf, actual_sha256: String, actual_bytes: u64 },
}

/// Re-hashes one artifact's cached file. A mismatching file is quarantined.
pub fn verify_cached(a: &Artifact, cache: &Cache) -> Result<CacheState> {
    let Pin::Pinned { sha256, bytes } = &a.pin else { return Ok(CacheState::Unpinned) };
    let path = cache.file_path(sha256, &a.file);
    if !path.is_file() {
        return Ok(CacheState::NotCached);
    }
    let _guard = ArtifactLock::acquire(cache, sha256, &a.name)?;
    let (sha, len, md5) = hash_file(&path)?;
    let expected = Expected { sha256, bytes: Some(*bytes), md5: a.md5.as_deref() };
    match check(&expected, &sha, len, Some(&md5)) {
        Ok(()) => {
            record_verified(&path)?;
            Ok(CacheState::Verified(path))
        }
        Err(_) => {
            let quarantined = cache.quarantine(&path, &a.file, &sha)?;
            Ok(CacheState::Corrupt { quarantined, actual_sha256: sha, actual_bytes: len })
        }
    }
}

/// `shiftbench lock pin NAME`: obtains an unpinned artifact (from `from`, a mirror, or its
/// URLs), checks a published md5 if the lock has one, places it in the cache and writes its
/// sha256 and size into the lock file. Returns (sha256, bytes, cached path).
pub fn pin(lock: &Lock, name: &str, from: Option<&Path>, opts: &FetchOptions) -> Result<(String, u64, PathBuf)> {
    let a = lock.get(name)?;
    if let Pin::Pinned { .. } = a.pin {
        anyhow::bail!("artifact `{name}` is already pinned in {}; `shiftbench fetch {name}` verifies it", lock.path.display());
    }
    if let Some(src) = from {
        check_pin_source(src)?;
    }
    let cache = Cache::new(&opts.cache);
    let key = format!("unpinned-{name}");
    let _guard = ArtifactLock::acquire(&cache, &key, name)?;
    let staged = cache.partial_path(&key);
    let result = pin_staged(lock, a, from, opts, &cache, &staged);
    if result.is_err() {
        // Whatever was copied or downloaded is neither pinned nor trusted: never leave it behind.
        let _ = fs::remove_file(&staged);
    }
    result
}

/// A `--from` file must be a regular, non-empty file: a FIFO blocks forever, a device such as
/// /dev/zero never ends, and an empty pin breaks every later command on the lock.
fn check_pin_source(src: &Path) -> Result<()> {
    let meta = fs::metadata(src).with_context(|| format!("cannot read --from {}; pass the file you downloaded", src.display()))?;
    anyhow::ensure!(meta.is_file(), "--from {} is not a regular file (a folder, FIFO or device); pass the downloaded file itself", src.display());
    anyhow::ensure!(meta.len() > 0, "--from {} is empty; pass the downloaded file, not a placeholder", src.display());
    Ok(())
}

fn pin_staged(lock: &Lock, a: &Artifact, from: Option<&Path>, opts: &FetchOptions, cache: &Cache, staged: &Path) -> Result<(String, u64, PathBuf)> {
    let name = a.name.as_str();
    let cap = opts.net.max_unpinned_bytes;
    let source = match from.map(Path::to_path_buf).or_else(|| opts.mirrors.iter().map(|d| d.join(&a.file)).find(|p| p.is_file())) {
        Some(src) => {
            check_pin_source(&src)?;
            copy_hashing(&src, staged, cap)?;
            src.display().to_string()
        }
        None => {
            if let Some(how) = &a.manual {
                anyhow::bail!("artifact `{name}` must be obtained by hand: {how}; then run `shiftbench lock pin {name} --from FILE`");
            }
            anyhow::ensure!(!opts.offline, "artifact `{name}` is not in any mirror and --offline forbids downloading it; pass --from FILE or --mirror DIR");
            let mut problems = Vec::new();
            // A first download has no pinned hash: it is checked against a published md5 (if
            // any) below, and by whoever reviews the pin before committing the lock.
            download_unverified(a, staged, &opts.net, &mut problems)?
        }
    };
    let (sha, len, md5) = hash_file(staged)?;
    anyhow::ensure!(len > 0, "artifact `{name}` from {source} is empty; not pinned");
    if let Some(want) = &a.md5 {
        if *want != md5 {
            let to = cache.quarantine(staged, &a.file, &sha)?;
            anyhow::bail!("artifact `{name}` from {source}: md5 mismatch: the lock's published md5 is {want}, got {md5} ({len} bytes); moved to {} and not pinned", to.display());
        }
    }
    let final_path = cache.file_path(&sha, &a.file);
    if final_path.is_file() {
        fs::remove_file(staged).with_context(|| format!("cannot remove {}", staged.display()))?;
    } else {
        move_into_place(staged, &final_path)?;
    }
    record_verified(&final_path)?;
    let text = lock.pinned_text(name, &sha, len)?;
    // write_atomic keeps the lock file's permissions (a read-only lock stays read-only).
    crate::fsutil::write_atomic(&lock.path, text.as_bytes())?;
    Ok((sha, len, final_path))
}

/// Like `download`, for a first download with no pinned hash: retries and resumes, but the
/// result is only verified later (by md5, if published, and by the user who commits the pin).
fn download_unverified(a: &Artifact, part: &Path, net: &NetConfig, problems: &mut Vec<String>) -> Result<String> {
    let client = http_client(net)?;
    let pb = crate::progress::bytes_bar(None, &a.name);
    for url in &a.urls {
        if let Some(partial) = transfer_with_retries(&client, a, url, part, None, net, &pb, problems)? {
            partial.finish()?;
            pb.finish_and_clear();
            return Ok(url.clone());
        }
    }
    pb.finish_and_clear();
    anyhow::bail!("could not download artifact `{}`:\n  {}", a.name, problems.join("\n  "))
}
