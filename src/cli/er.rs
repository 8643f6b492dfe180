//! `shiftbench er`: effective robustness from a table of accuracies.

use anyhow::Result;
use std::path::PathBuf;

/// Flags of `shiftbench er`; `shiftbench::robustness::request::ErRequest` documents what each means.
#[derive(clap::Args)]
pub struct ErArgs {
    /// Wide accuracy table: a `model` column, then one column per evaluation setting (percent).
    #[arg(long, value_name = "ACCURACIES.csv")]
    pub table: PathBuf,
    /// Model types: a `model,model_type[,natural_shift_model_type]` CSV, or the imagenet-testbed's
    /// own plotting/model_types.py (artifact imagenet-testbed-model-types).
    #[arg(long, value_name = "MODEL_TYPES.csv")]
    pub types: Option<PathBuf>,
    /// Named protocol for columns and baseline rule: imagenet-testbed.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<shiftbench::robustness::pairing::ProtocolPreset>,
    /// ID-accuracy column (x axis) for the --shift columns.
    #[arg(long = "id", value_name = "COLUMN")]
    pub id_column: Option<String>,
    /// Shifted-accuracy column (y axis); repeat for several shifts.
    #[arg(long = "shift", value_name = "COLUMN")]
    pub shift_columns: Vec<String>,
    /// File of baseline model names, one per line (`#` comments allowed).
    #[arg(long = "baseline", value_name = "FILE")]
    pub baseline_file: Option<PathBuf>,
    /// Baseline = models of these types (comma-separated), read from --types.
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    pub baseline_types: Vec<String>,
    /// Column of --types to filter on, for every shift [default: the preset's choice, else model_type].
    #[arg(long, value_name = "COLUMN")]
    pub type_column: Option<String>,
    /// Drop baseline models whose name contains this; repeat for several [default: the preset's: subsample, aws, batch64].
    #[arg(long, value_name = "TEXT")]
    pub exclude: Option<Vec<String>>,
    /// Minimum ID accuracy (percent) of a baseline model, for every shift [default: the preset's, else 0].
    #[arg(long, value_name = "PERCENT")]
    pub min_id_acc: Option<f64>,
    /// Scale of the fit: logit, probit or linear [default: logit].
    #[arg(long)]
    pub transform: Option<shiftbench::metrics::Transform>,
    /// Bootstrap resamples of the baseline models for the ER intervals [default: 1000].
    #[arg(long)]
    pub resamples: Option<usize>,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Score against fixed fits from a `[[reference_fits]]` TOML file (e.g.
    /// suites/imagenet-testbed-fits.toml) instead of fitting a baseline; rows get no interval.
    #[arg(long = "fits", value_name = "FITS.toml")]
    pub reference_fits: Option<PathBuf>,
    /// Output folder for fits.csv and effective_robustness.csv.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

impl ErArgs {
    pub fn request(&self) -> shiftbench::robustness::request::ErRequest {
        shiftbench::robustness::request::ErRequest {
            table: self.table.clone(),
            types: self.types.clone(),
            preset: self.preset,
            id_column: self.id_column.clone(),
            shift_columns: self.shift_columns.clone(),
            baseline_file: self.baseline_file.clone(),
            baseline_types: self.baseline_types.clone(),
            type_column: self.type_column.clone(),
            exclude: self.exclude.clone(),
            min_id_acc: self.min_id_acc,
            transform: self.transform,
            resamples: self.resamples,
            seed: self.seed,
            reference_fits: self.reference_fits.clone(),
        }
    }
}

pub fn run(args: ErArgs) -> Result<()> {
    let report = args.request().run(&args.out)?;
    for f in &report.fits {
        println!(
            "{}: {} against {}, {} baseline models: slope {:.4}, intercept {:.4}, r {:.4}",
            f.pairing.shift, f.pairing.shift_column, f.pairing.id_column, f.fit.line.n, f.fit.line.slope, f.fit.line.intercept, f.fit.line.r
        );
    }
    println!(
        "wrote {} and {} ({} rows)",
        args.out.join(shiftbench::robustness::fit::FITS_FILE).display(),
        args.out.join(shiftbench::robustness::report::ER_FILE).display(),
        report.rows.len()
    );
    Ok(())
}
