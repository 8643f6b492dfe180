//! `shiftbench leaderboard`: rebuild the CSVs, Markdown and plots from a folder's records.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct LeaderboardArgs {
    /// Results folder holding a `records/` directory.
    pub dir: PathBuf,
}

pub fn run(args: LeaderboardArgs) -> Result<()> {
    let dir = &args.dir;
    let records = shiftbench::report::load_records(dir)?;
    anyhow::ensure!(!records.is_empty(), "no run records under {}; run `shiftbench run` first", dir.join("records").display());
    check_against_folder(dir, &records)?;
    let lb = shiftbench::report::build(&records)?;
    shiftbench::report::write(dir, &lb)?;
    print(dir)
}

/// Checks every record against what made the folder: the plan of its suite when `run.json`
/// names a suite file in `suites/` (vocabulary, set sizes, seed), else `run.json`'s suite hash
/// and seed. A folder without `run.json` (records merged by hand) gets only the checks of
/// [`shiftbench::report::build`].
pub fn check_against_folder(dir: &Path, records: &[shiftbench::record::RunRecord]) -> Result<()> {
    use shiftbench::record::check;
    if !dir.join(shiftbench::folder::MANIFEST_FILE).exists() {
        return Ok(());
    }
    let manifest = shiftbench::folder::RunManifest::read(dir)?;
    let suite = shiftbench::reproduce::find_suite(&manifest.suite_hash, &shiftbench::reproduce::suite_files(Path::new("suites")));
    let expected = match suite {
        Some(path) => {
            let suite = shiftbench::suite::Suite::load(&path)?;
            let plan = shiftbench::plan::Plan::new(&suite.config, manifest.seed, manifest.quick);
            Some(check::Expected::new(&plan, suite.name(), &suite.hash))
        }
        None => None,
    };
    for r in records {
        let defect = match &expected {
            Some(e) => check::against_plan(r, e),
            None => check::against_manifest(r, &manifest),
        };
        if let Err(defect) = defect {
            anyhow::bail!("run record {} {defect}; delete it and re-run `shiftbench run` to regenerate it", dir.join(r.file_name()).display());
        }
    }
    Ok(())
}

/// Prints the Markdown leaderboard of `dir` and where its files are.
pub fn print(dir: &Path) -> Result<()> {
    use shiftbench::report::{summary::SUMMARY_FILE, LEADERBOARD_FILE, MARKDOWN_FILE};
    let path = dir.join(MARKDOWN_FILE);
    let md = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    println!("\n{md}");
    println!(
        "wrote {}, {}, {} and {}",
        dir.join(LEADERBOARD_FILE).display(),
        dir.join(shiftbench::robustness::fit::FITS_FILE).display(),
        dir.join(SUMMARY_FILE).display(),
        path.display()
    );
    Ok(())
}
