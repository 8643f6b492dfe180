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
    let lb = shiftbench::report::build(&records)?;
    shiftbench::report::write(dir, &lb)?;
    print(dir)
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
