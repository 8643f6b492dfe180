//! `shiftbench paper`: the paper's five research questions, from a folder's records alone.

use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct PaperArgs {
    /// Results folder holding a `records/` directory (e.g. results/shapes-rq).
    pub dir: PathBuf,
}

pub const LONG_ABOUT: &str = "Lay out the paper's five research questions from the run records in DIR \
alone (no training, no suite file needed), as DIR/paper.md plus the figures under DIR/plots/:\n\n\
  RQ1  real vs generated vs real+generated (text prompts from the 80 CLIP templates), per shift: \
accuracy and effective robustness\n\
  RQ2  regimes that differ only in how their generated data was conditioned (80 templates, one \
template, a real image, a real image plus the prompt at a strength)\n\
  RQ3  every [[sweeps]] entry: the gain at each swept value (and its figure)\n\
  RQ4  regimes that differ only in the generator's variant (base or fine-tuned)\n\
  RQ5  degradation on the generated evaluation set, per regime and per record role\n\n\
Which regimes answer RQ2 and RQ4 comes from what each record says its classifier trained on \
(train.sources), not from regime names; a question the records cannot answer says \"no records \
for this question\". Every cell is the mean ± standard deviation over training seeds with the paired \
gain over `real` and its 95% paired-t interval (summary.csv); the readings under each table list the \
intervals that exclude 0. The same records give the same bytes.";

pub const AFTER_HELP: &str = "Examples:\n  shiftbench paper results/shapes-rq      # writes results/shapes-rq/paper.md and plots/\n  shiftbench run suites/shapes-rq.toml --out /tmp/rq && shiftbench paper /tmp/rq";

pub fn run(args: PaperArgs) -> Result<()> {
    let dir = &args.dir;
    write_report(dir)?;
    println!("wrote {} and the figures in {}", dir.join(shiftbench::report::paper::PAPER_FILE).display(), dir.join("plots").display());
    Ok(())
}

/// `paper.md` and its figures for the records under `dir`; `reproduce` rebuilds a published
/// folder's report with it.
pub fn write_report(dir: &Path) -> Result<()> {
    let records = shiftbench::report::load_records(dir)?;
    anyhow::ensure!(!records.is_empty(), "no run records under {}; run `shiftbench run` first", dir.join("records").display());
    super::leaderboard::check_against_folder(dir, &records)?;
    let lb = shiftbench::report::build(&records)?;
    shiftbench::report::paper::write(dir, &lb, &records[0].suite)
}
