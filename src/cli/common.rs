//! Options shared by several commands.

use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};

/// Where a suite's results go and under which seed, profile and weights (`run` and `generate`).
#[derive(clap::Args)]
pub struct SuiteTarget {
    /// Results folder: records, leaderboard.csv, fits.csv and work/ (data, generated sets,
    /// checkpoints) [default: runs/<suite>/, or runs/<suite>-quick/ with --quick; published
    /// results live under results/ and are written only when named here]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the suite's seed (data, generation, initialisation and shuffling all change).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use the suite's small `[quick]` profile (fewer images and epochs) for smoke runs and tests.
    #[arg(long)]
    pub quick: bool,
    /// Stable Diffusion weights for `stable-diffusion` generators: a diffusers-layout folder,
    /// hf:ORG/NAME[@REV] (Hugging Face cache) or artifact:NAME [default: the generator's
    /// `weights` key, else the preset's repository in the HF cache]
    #[arg(long, value_name = "SOURCE", env = "SHIFTBENCH_SD_WEIGHTS")]
    pub weights: Option<String>,
}

impl SuiteTarget {
    /// The results folder for `suite`.
    pub fn out_dir(&self, suite: &Suite) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let name = if self.quick { format!("{}-quick", suite.name()) } else { suite.name().to_string() };
            Path::new("runs").join(name)
        })
    }
}
