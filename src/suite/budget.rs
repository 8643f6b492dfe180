//! What a suite costs before it runs: the memory its sets and largest training job hold and the
//! disk its generated sets and checkpoints take, so that `check` and `run` refuse a suite the
//! machine cannot hold with one line naming the key to lower, instead of aborting on an
//! allocation hours in. The estimate is pure ([`estimate`]); [`check_machine`] reads the
//! machine's memory and the results folder's free space at the edge.
//!
//! The figures are lower bounds of what a run holds (pixels as bytes, 32-bit weights with their
//! gradient and momentum, one activation map per block), good to a small factor: enough to tell
//! a suite that fits from one that needs terabytes.

use super::SuiteConfig;
use anyhow::Result;
use std::path::Path;

/// The largest contributor to a need, in words that name the key to lower.
#[derive(Clone, Debug, PartialEq)]
pub struct Need {
    pub bytes: u128,
    pub largest: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub memory: Need,
    pub disk: Need,
}

/// The memory and disk a full-profile run of `c` needs.
pub fn estimate(c: &SuiteConfig) -> Budget {
    let pixels = (c.image_size as u128).pow(2) * 3;
    // Every procedural domain is rendered into memory; generated sets are loaded there too.
    // (set name, key in words, bytes)
    let sets: Vec<(&str, String, u128)> = c
        .domains
        .iter()
        // File-backed domains stream a few batches at a time and hold no set in memory.
        .filter_map(|d| match d.data {
            super::DomainData::Procedural { size, .. } => Some((d.name.as_str(), format!("`domains.size` = {size} of `{}`", d.name), size as u128 * pixels)),
            super::DomainData::Files(_) => None,
        })
        .chain(c.generated.iter().map(|g| (g.name.as_str(), format!("`generated.size` = {} of `{}`", g.size, g.name), g.size as u128 * pixels)))
        .collect();
    let images: u128 = sets.iter().map(|s| s.2).sum();
    // A training job gathers its sets once more, as one training set.
    let gathered = c
        .regimes
        .iter()
        .map(|r| r.train_on.iter().filter_map(|t| sets.iter().find(|s| s.0 == t)).map(|s| s.2).sum::<u128>())
        .max()
        .unwrap_or(0);
    let batch = c.training.as_ref().map_or(0, |t| t.batch_size) as u128;
    let jobs: Vec<(String, u128, u128)> = c
        .models
        .iter()
        .map(|m| {
            let a = &m.arch;
            let expand = a.block.expansion() as u128;
            let (mut params, mut activations) = (0u128, 0u128);
            let mut side = c.image_size as u128;
            for (i, &blocks) in a.layers.iter().enumerate() {
                let w = (a.width as u128) << i.min(64);
                // A basic block: two 3×3 convolutions of width w; a bottleneck roughly the same
                // at its expanded width.
                params += blocks as u128 * 18 * w * w * expand;
                activations += blocks as u128 * 4 * batch * side * side * w * expand;
                side = side.div_ceil(2);
            }
            (format!("`models.width` (width {} after multipliers) of `{}`", a.width, m.name), params, activations)
        })
        .collect();
    let job_memory = jobs.iter().map(|(_, p, a)| p * 4 * 3 + a * 4).max().unwrap_or(0);
    let checkpoints: u128 = jobs.iter().map(|(_, p, _)| p * 4).max().unwrap_or(0) * (c.testbed.members.len() + c.leaderboard.models.len() * c.leaderboard.regimes.len() * c.leaderboard.seeds.len()) as u128;

    let largest_set = sets.iter().max_by_key(|s| s.2).map(|s| (s.1.clone(), s.2 * 2));
    let largest_job = jobs.iter().max_by_key(|(_, p, a)| p * 12 + a * 4).map(|(k, p, a)| (k.clone(), p * 12 + a * 4));
    let memory_largest = match (largest_set, largest_job) {
        (Some(s), Some(j)) if j.1 > s.1 => j.0,
        (Some(s), _) => s.0,
        (None, Some(j)) => j.0,
        (None, None) => String::new(),
    };
    let generated: u128 = c.generated.iter().map(|g| g.size as u128 * pixels).sum();
    let disk_largest = if generated >= checkpoints {
        c.generated.iter().max_by_key(|g| g.size).map(|g| format!("`generated.size` = {} of `{}`", g.size, g.name)).unwrap_or_default()
    } else {
        jobs.iter().max_by_key(|j| j.1).map(|j| j.0.clone()).unwrap_or_default()
    };
    Budget {
        memory: Need { bytes: images + gathered + job_memory, largest: memory_largest },
        disk: Need { bytes: generated + checkpoints, largest: disk_largest },
    }
}

/// Whether `b` fits in `memory` bytes of RAM and `disk` free bytes (either unknown: unchecked);
/// else the reason, naming the key to lower.
pub fn fits(suite: &str, b: &Budget, memory: Option<u128>, disk: Option<u128>) -> Result<(), String> {
    let gib = |x: u128| x as f64 / (1u128 << 30) as f64;
    if let Some(m) = memory.filter(|&m| b.memory.bytes > m) {
        return Err(format!(
            "suite `{suite}` needs at least {:.1} GiB of memory to run, and this machine has {:.1} GiB; lower {} (its largest share)",
            gib(b.memory.bytes), gib(m), b.memory.largest
        ));
    }
    if let Some(d) = disk.filter(|&d| b.disk.bytes > d) {
        return Err(format!(
            "suite `{suite}` needs at least {:.1} GiB of disk for generated images and checkpoints, and its results folder has {:.1} GiB free; lower {} (its largest share) or pass an --out on a larger disk",
            gib(b.disk.bytes), gib(d), b.disk.largest
        ));
    }
    Ok(())
}

/// Refuses `c` when its [`estimate`] exceeds this machine's memory or the free space where its
/// results go (`out`, or its nearest existing parent).
pub fn check_machine(c: &SuiteConfig, out: &Path) -> Result<()> {
    fits(&c.name, &estimate(c), total_memory(), free_disk(out)).map_err(anyhow::Error::msg)
}

fn total_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u128 = text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

fn free_disk(out: &Path) -> Option<u128> {
    let dir = out.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf).unwrap_or_else(|| ".".into());
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str())).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `s` a zeroed statvfs the call fills.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u128 * s.f_frsize as u128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn shapes_with(from: &str, to: &str) -> SuiteConfig {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/shapes.toml")).unwrap();
        Suite::parse(&text.replacen(from, to, 1), Path::new("s.toml")).unwrap().config
    }

    #[test]
    fn the_shipped_suite_fits_a_small_machine_and_a_huge_one_does_not() {
        let b = estimate(&shapes_with("", ""));
        assert!(b.memory.bytes < 1 << 30 && b.disk.bytes < 1 << 30, "{b:?}");
        assert_eq!(fits("shapes", &b, Some(8 << 30), Some(8 << 30)), Ok(()));

        let big = estimate(&shapes_with("size = 5000", "size = 9000000"));
        let err = fits("shapes", &big, Some(16 << 30), None).unwrap_err();
        assert!(err.contains("memory") && err.contains("`domains.size` = 9000000 of `train`"), "{err}");

        let wide = estimate(&shapes_with("width = 16", "width = 4096"));
        let err = fits("shapes", &wide, Some(16 << 30), None).unwrap_err();
        assert!(err.contains("`models.width` (width 4096 after multipliers) of `resnet-w16`"), "{err}");
    }
}
