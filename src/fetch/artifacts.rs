//! The `fetch` and `lock` commands: resolve what to fetch (suites or artifact names), run the
//! fetcher, and report per artifact. Exit status 0 means every requested artifact is verified
//! and in place; anything else is an error that names the artifact and what to do.

use super::{self as fetch, Cache, CacheState, FetchError, FetchOptions, Source};
use crate::fetch::lock::{list, Artifact, Lock, Pin};
use crate::suite::Suite;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Flags shared by every command that reads artifacts.
#[derive(Clone, Debug, clap::Args)]
pub struct ArtifactArgs {
    /// Lock file pinning every artifact.
    #[arg(long = "lock", value_name = "FILE", default_value = "datasets.lock")]
    pub lock: PathBuf,
    /// Cache folder [default: $SHIFTBENCH_CACHE, else the platform cache folder, e.g. ~/.cache/shiftbench]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Folder holding artifacts named by sha256 or by file name; checked (and verified) before
    /// any download. Repeatable; SHIFTBENCH_MIRROR adds more (separated like PATH).
    #[arg(long = "mirror", value_name = "DIR")]
    pub mirrors: Vec<PathBuf>,
    /// Never touch the network: use the cache and mirrors only, and list what is missing.
    #[arg(long)]
    pub offline: bool,
}

impl ArtifactArgs {
    pub fn options(&self) -> Result<FetchOptions> {
        let cache = match &self.cache {
            Some(c) => c.clone(),
            None => fetch::default_cache_dir()?,
        };
        let mut opts = FetchOptions::new(cache);
        opts.mirrors = self.mirrors.iter().cloned().chain(fetch::mirrors_from_env()).collect();
        for m in &opts.mirrors {
            if !m.is_dir() {
                return Err(crate::usage::usage(format!("mirror folder {} does not exist; pass an existing folder to --mirror (or fix SHIFTBENCH_MIRROR)", m.display())));
            }
        }
        opts.offline = self.offline;
        Ok(opts)
    }
}

/// `shiftbench fetch TARGET...`: each target is a suite file (its `artifacts`) or an artifact name.
pub fn fetch_command(args: &ArtifactArgs, targets: &[String]) -> Result<()> {
    let lock = Lock::load(&args.lock)?;
    let opts = args.options()?;
    if targets.is_empty() {
        return Err(crate::usage::usage(format!(
            "name a suite file or artifacts to fetch, e.g. `shiftbench fetch imagenet-testbed-top1s`; artifacts in {}: {}",
            lock.path.display(),
            list(lock.artifacts.iter().map(|a| a.name.as_str()))
        )));
    }
    let wanted = resolve_targets(&lock, targets)?;
    let (mut missing, mut failed) = (Vec::new(), 0usize);
    for a in &wanted {
        match fetch::fetch(a, &opts) {
            Ok(f) => {
                let extracted = f.extracted.map(|d| format!(", extracted to {}", d.display())).unwrap_or_default();
                let how = match &f.source {
                    Source::Cache { verified_at } => format!("in the cache, unchanged since verified on {}", fetch::utc_date(*verified_at)),
                    Source::CacheRehashed => "verified (sha256) in the cache, whose size or mtime had changed".to_string(),
                    Source::Mirror(p) => format!("verified (sha256) from mirror {}", p.display()),
                    Source::Url(u) => format!("verified (sha256), downloaded from {u}"),
                };
                println!("{how}: {} {}{extracted}", a.name, f.path.display());
            }
            Err(FetchError::Missing { .. }) => missing.push(*a),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    for a in &missing {
        let size = a.bytes().map(|b| format!("{b} bytes")).unwrap_or_else(|| "size unknown".into());
        println!("missing: {} ({}, {size}, {})", a.name, a.file, a.urls.first().map(String::as_str).unwrap_or("no URL"));
    }
    let bad = missing.len() + failed;
    if bad > 0 {
        let hint = if missing.is_empty() { String::new() } else { format!("; {} missing offline: run without --offline or add a --mirror DIR holding them", missing.len()) };
        bail!("{bad} of {} artifacts are not verified and in place{hint}", wanted.len());
    }
    Ok(())
}

/// `shiftbench fetch --print-path NAME`: makes NAME verified and in place, prints its path.
pub fn print_path(args: &ArtifactArgs, name: &str) -> Result<()> {
    let lock = Lock::load(&args.lock)?;
    let opts = args.options()?;
    let f = fetch::fetch(lock.get(name)?, &opts)?;
    println!("{}", f.path.display());
    Ok(())
}

/// Artifacts named directly or through suites, in order, each once.
fn resolve_targets<'l>(lock: &'l Lock, targets: &[String]) -> Result<Vec<&'l Artifact>> {
    let mut out: Vec<&Artifact> = Vec::new();
    for t in targets {
        let path = Path::new(t);
        let found = if t.ends_with(".toml") || path.is_file() {
            suite_artifacts(&Suite::load(path)?, lock)?
        } else {
            vec![lock.get(t)?]
        };
        for a in found {
            if !out.iter().any(|o| o.name == a.name) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// The artifacts a suite lists under `[suite] artifacts`, each checked against the lock; an
/// unknown name is an error at its position in the suite file.
pub fn suite_artifacts<'l>(suite: &Suite, lock: &'l Lock) -> Result<Vec<&'l Artifact>> {
    let mut out = Vec::new();
    let table_files: Vec<&str> = suite.config.metrics.baseline_table.iter().flat_map(|t| [t.table.as_str(), t.types.as_str()]).collect();
    for (i, name) in suite.config.artifacts.iter().enumerate() {
        match lock.artifacts.iter().find(|a| &a.name == name) {
            Some(a) if a.format.is_archive() && table_files.contains(&name.as_str()) => {
                let message = format!("`{name}` is a {} archive in {}, but `[metrics.baseline_table]` reads it as a plain file; name an artifact with format = \"file\"", a.format, lock.path.display());
                return Err(suite.artifact_error(i, message).into());
            }
            Some(a) => out.push(a),
            None => {
                let message = format!("`{name}` is not an artifact of {}; defined: {}", lock.path.display(), list(lock.artifacts.iter().map(|a| a.name.as_str())));
                return Err(suite.artifact_error(i, message).into());
            }
        }
    }
    Ok(out)
}

/// `shiftbench lock verify`: re-hashes every cached artifact. Corrupt files are quarantined and
/// make the command fail; missing and unpinned ones are listed.
pub fn lock_verify(args: &ArtifactArgs) -> Result<()> {
    let lock = Lock::load(&args.lock)?;
    let cache = Cache::new(args.options()?.cache);
    let mut corrupt = 0;
    for a in &lock.artifacts {
        match fetch::verify_cached(a, &cache).with_context(|| format!("verifying `{}`", a.name))? {
            CacheState::Verified(p) => println!("verified:   {} {}", a.name, p.display()),
            CacheState::NotCached => println!("not cached: {} (`shiftbench fetch {}`)", a.name, a.name),
            CacheState::Unpinned => {
                let reason = match &a.pin {
                    Pin::Unpinned { reason } => reason.as_str(),
                    Pin::Pinned { .. } => "",
                };
                println!("UNPINNED:   {} ({reason}); not usable until `shiftbench lock pin {}` records its hash", a.name, a.name)
            }
            CacheState::Corrupt { quarantined, actual_sha256, actual_bytes } => {
                corrupt += 1;
                eprintln!(
                    "error: cached `{}` does not match the lock: expected sha256 {} ({} bytes), got {actual_sha256} ({actual_bytes} bytes); moved to {}",
                    a.name,
                    a.sha256().unwrap_or_default(),
                    a.bytes().unwrap_or_default(),
                    quarantined.display()
                );
            }
        }
    }
    if corrupt > 0 {
        bail!("{corrupt} cached artifacts failed verification and were quarantined; `shiftbench fetch` downloads them again");
    }
    Ok(())
}

/// `shiftbench lock pin NAME [--from FILE]`: records the sha256 and size of an unpinned artifact.
pub fn lock_pin(args: &ArtifactArgs, name: &str, from: Option<&Path>, max_bytes: u64) -> Result<()> {
    let lock = Lock::load(&args.lock)?;
    let mut opts = args.options()?;
    opts.net.max_unpinned_bytes = max_bytes;
    let (sha, bytes, path) = fetch::pin(&lock, name, from, &opts)?;
    println!("pinned: {name} sha256 {sha}, {bytes} bytes, cached at {}", path.display());
    println!("{} now pins it; review the change and commit it so every user verifies the same bytes", lock.path.display());
    Ok(())
}
