//! Reports built from run records: the leaderboard CSVs and a Markdown summary.
//!
//! Building is pure (`build`: records in, strings and typed rows out); reading records and
//! writing the CSVs are the only I/O, kept at the edges (`load_records`, `write`).

mod leaderboard;
mod markdown;
mod records;

pub use leaderboard::{build, leaderboard_header, Leaderboard, LeaderboardRow, ShiftFit};
pub use markdown::markdown;
pub use records::load_records;

use crate::fsutil::write_atomic;
use anyhow::Result;
use std::path::Path;

/// File name of the leaderboard inside a results folder.
pub const LEADERBOARD_FILE: &str = "leaderboard.csv";
/// File name of the baseline fits inside a results folder.
pub const FITS_FILE: &str = "fits.csv";

/// Writes `dir/leaderboard.csv` and `dir/fits.csv`, each atomically.
pub fn write(dir: &Path, lb: &Leaderboard) -> Result<()> {
    write_atomic(&dir.join(LEADERBOARD_FILE), lb.leaderboard_csv.as_bytes())?;
    write_atomic(&dir.join(FITS_FILE), lb.fits_csv.as_bytes())?;
    Ok(())
}
