//! Reports built from run records: the leaderboard CSVs, a Markdown rendering and the
//! effective-robustness plots.
//!
//! Building is pure (`build`: records in, strings and typed rows out); reading records and
//! writing the CSVs are the only I/O, kept at the edges (`load_records`, `write`).

mod leaderboard;
mod markdown;
pub mod paper;
pub mod plot;
mod records;
pub mod summary;
pub mod sweep_plot;

pub use leaderboard::{build, leaderboard_header, Leaderboard, LeaderboardRow, ShiftFit, TableFit, BOOTSTRAP_SEED, LEADERBOARD_SCHEMA};
pub use markdown::markdown;
pub use records::{load_records, read_record};

use crate::fsutil::write_atomic;
use crate::robustness::fit::FITS_FILE;
use anyhow::Result;
use std::path::Path;

/// File name of the leaderboard inside a results folder.
pub const LEADERBOARD_FILE: &str = "leaderboard.csv";

/// File name of the baseline table's fits inside a results folder (`shiftbench er`'s `fits.csv`
/// format), written when the suite has `[metrics.baseline_table]`.
pub const TABLE_FITS_FILE: &str = "table_fits.csv";

/// File name of the Markdown rendering inside a results folder.
pub const MARKDOWN_FILE: &str = "leaderboard.md";

/// Writes `dir/leaderboard.csv`, `dir/fits.csv` (and `dir/table_fits.csv`), `dir/summary.csv`, `dir/leaderboard.md` and the figures
/// `dir/plots/<shift>.svg|png`, each file atomically.
pub fn write(dir: &Path, lb: &Leaderboard) -> Result<()> {
    write_atomic(&dir.join(LEADERBOARD_FILE), lb.leaderboard_csv.as_bytes())?;
    write_atomic(&dir.join(FITS_FILE), lb.fits_csv.as_bytes())?;
    if let Some(table_fits) = &lb.table_fits_csv {
        write_atomic(&dir.join(TABLE_FITS_FILE), table_fits.as_bytes())?;
    }
    write_atomic(&dir.join(MARKDOWN_FILE), markdown(lb).as_bytes())?;
    write_atomic(&dir.join(summary::SUMMARY_FILE), summary::summary_csv(&summary::summarize(lb))?.as_bytes())?;
    plot::write_plots(dir, lb)?;
    Ok(())
}
