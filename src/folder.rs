//! One owner per results folder. A folder belongs to one (suite file, suite seed, profile),
//! written down in `run.json` when a run first claims it; a run of another suite, seed or profile
//! into it is refused (its records would mix with these into a leaderboard that matches neither
//! run), and two runs into one folder never interleave: the second refuses while the first holds
//! the folder's lock.

use anyhow::{bail, Context, Result};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// File in a results folder that says which suite, seed and profile made it.
pub const MANIFEST_FILE: &str = "run.json";

/// What made a results folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunManifest {
    pub suite: String,
    /// sha256 of the suite file's bytes.
    pub suite_hash: String,
    /// The suite seed in force (`--seed` or the suite's own).
    pub seed: u64,
    pub quick: bool,
}

impl RunManifest {
    pub fn read(dir: &Path) -> Result<RunManifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{} has no {MANIFEST_FILE}, so it does not say which suite and seed made it; only folders written by `shiftbench run` can be reproduced", dir.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a run manifest; restore it from version control", path.display()))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::fsutil::write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
    }
}

/// Lock file inside a results folder, held by the run writing into it.
const LOCK_FILE: &str = ".shiftbench.lock";

/// The folder's exclusive lock; released when dropped (or when the process dies).
pub struct FolderLock {
    _file: File,
}

/// Claims `dir` for `manifest`: takes the folder's lock (refusing when another run holds it),
/// then checks the folder's `run.json` names the same suite, seed and profile (or writes it for
/// a new folder).
pub fn claim(dir: &Path, manifest: &RunManifest) -> Result<FolderLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create results folder {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    if !FileExt::try_lock_exclusive(&file).with_context(|| format!("cannot lock {}", path.display()))? {
        bail!("another shiftbench run is writing into {}; wait for it to finish, or pass another --out", dir.display());
    }
    // Holding the lock, every temporary file of an atomic write in here is a dead run's.
    crate::fsutil::remove_temp_files(dir)?;
    if dir.join(MANIFEST_FILE).exists() {
        let owner = RunManifest::read(dir)?;
        if owner != *manifest {
            bail!(
                "{} holds the results of suite `{}` (sha256 {}), seed {}{}; this run is suite `{}` (sha256 {}), seed {}{}. Its records would mix with those; pass a new --out for this run",
                dir.display(),
                owner.suite, owner.suite_hash, owner.seed, if owner.quick { ", quick profile" } else { "" },
                manifest.suite, manifest.suite_hash, manifest.seed, if manifest.quick { ", quick profile" } else { "" },
            );
        }
    } else {
        manifest.write(dir)?;
    }
    Ok(FolderLock { _file: file })
}
