//! Effective robustness from an accuracy table (`shiftbench er`), without training anything.
//!
//! Input is a *wide* table in the format of imagenet-testbed's `robustness_top1s.csv`: a `model`
//! column and one column per evaluation setting, top-1 accuracy in percent, empty where a model
//! was not evaluated. For each *pairing* (a shift column against its ID column) we select the
//! baseline models, fit the accuracy-on-the-line (`metrics::fit_line`), bootstrap it, and score
//! every model that has both accuracies.
//!
//! Parsing (`AccuracyTable::parse`, `ModelTypes::parse`) and computing (`compute`) are pure;
//! `AccuracyTable::load`, `ModelTypes::load` and `write` are the only I/O.

use crate::csvfmt::{self, fixed, value_and_interval};
use crate::fsutil::write_atomic;
use crate::metrics::{self, Interval, LinearFit, Transform};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

/// File written by `write`: one row per pairing.
pub const FITS_FILE: &str = "fits.csv";
/// File written by `write`: one row per (model, pairing) with both accuracies.
pub const ER_FILE: &str = "effective_robustness.csv";

/// A wide accuracy table: `values[row][column]`, percent, `None` for an empty cell.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyTable {
    /// Where the table came from (a path), for error messages.
    pub source: String,
    /// Evaluation settings, in file order, without `model`.
    pub columns: Vec<String>,
    /// Model names, in file order.
    pub models: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
}

impl AccuracyTable {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the accuracy table {}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses CSV text. Cells must be empty, `nan`, or a number in [0, 100]; model names must be
    /// unique. Every error names `source`, the line and the column.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| anyhow!("{source}: cannot read the header row: {e}"))?.clone();
        let model_index = header.iter().position(|h| h == "model").ok_or_else(|| {
            anyhow!("{source}:1: no `model` column; the first row must name the columns, one of them `model`")
        })?;
        let columns: Vec<String> =
            header.iter().enumerate().filter(|&(i, _)| i != model_index).map(|(_, h)| h.to_string()).collect();
        let mut models = Vec::new();
        let mut values = Vec::new();
        let mut seen = BTreeMap::new();
        for row in reader.records() {
            let row = row.map_err(|e| anyhow!("{source}: {e}; every row needs one field per column"))?;
            let line = row.position().map_or(0, |p| p.line());
            let model = row[model_index].to_string();
            if model.is_empty() {
                bail!("{source}:{line}: empty `model` field; give every row a model name");
            }
            if let Some(first) = seen.insert(model.clone(), line) {
                bail!("{source}:{line}: model `{model}` already appears on line {first}; keep one row per model");
            }
            let mut accs = Vec::with_capacity(columns.len());
            for (i, field) in row.iter().enumerate().filter(|&(i, _)| i != model_index) {
                accs.push(parse_accuracy(field).map_err(|why| {
                    anyhow!("{source}:{line}: column `{}` of model `{model}`: {why}", &header[i])
                })?);
            }
            models.push(model);
            values.push(accs);
        }
        Ok(Self { source: source.to_string(), columns, models, values })
    }

    /// Index of `name` among `columns`, or an error that names the table and the fix.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            let similar: Vec<&str> =
                self.columns.iter().filter(|c| c.contains(name) || name.contains(c.as_str())).map(String::as_str).take(5).collect();
            let hint = if similar.is_empty() { String::new() } else { format!(" (similar: `{}`)", similar.join("`, `")) };
            anyhow!("{}: no column `{name}`{hint}; pick one of its {} columns", self.source, self.columns.len())
        })
    }
}

fn parse_accuracy(field: &str) -> std::result::Result<Option<f64>, String> {
    let field = field.trim();
    if field.is_empty() || field.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    let value: f64 = field
        .parse()
        .map_err(|_| format!("`{field}` is not a number; write top-1 accuracy in percent, or leave the cell empty"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("{value} is outside [0, 100]; accuracies are percentages (76.1, not 0.761)"));
    }
    Ok(Some(value))
}

/// A `model,<type column>...` table (imagenet-testbed's `model_types.csv`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTypes {
    pub source: String,
    pub columns: Vec<String>,
    /// model → one type per column of `columns`.
    pub types: BTreeMap<String, Vec<String>>,
}

impl ModelTypes {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the model types {}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| anyhow!("{source}: cannot read the header row: {e}"))?.clone();
        if header.get(0) != Some("model") || header.len() < 2 {
            bail!("{source}:1: the header must be `model,model_type[,...]` (a model column, then type columns)");
        }
        let columns: Vec<String> = header.iter().skip(1).map(String::from).collect();
        let mut types = BTreeMap::new();
        for row in reader.records() {
            let row = row.map_err(|e| anyhow!("{source}: {e}; every row needs one field per column"))?;
            let line = row.position().map_or(0, |p| p.line());
            let model = row[0].to_string();
            if types.insert(model.clone(), row.iter().skip(1).map(String::from).collect()).is_some() {
                bail!("{source}:{line}: model `{model}` appears twice; keep one row per model");
            }
        }
        Ok(Self { source: source.to_string(), columns, types })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            anyhow!(
                "{}: no type column `{name}` (it has `{}`); add it, or choose one with --type-column",
                self.source,
                self.columns.join("`, `")
            )
        })
    }
}

/// One shift scored against its ID axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Pairing {
    /// Name in the output (`imagenet-sketch`, or the shift column's name).
    pub shift: String,
    pub id_column: String,
    pub shift_column: String,
    /// Column of the model-types table that classifies baseline models for this pairing.
    pub type_column: String,
    /// Baseline models need at least this ID accuracy (percent).
    pub min_id_acc: f64,
}

/// Named protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// imagenet-testbed (Taori et al. 2020): V2 and Sketch against `val`, ImageNet-R and ObjectNet
    /// against `val` restricted to their classes; baseline = STANDARD models, minus subsampled,
    /// AWS and batch-64 variants, ID accuracy ≥ 55 (≥ 75 for ImageNet-R).
    ImagenetTestbed,
}

impl FromStr for Preset {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "imagenet-testbed" => Ok(Preset::ImagenetTestbed),
            other => bail!("unknown preset `{other}`; the presets are: imagenet-testbed"),
        }
    }
}

impl Preset {
    pub fn pairings(self) -> Vec<Pairing> {
        let pairing = |shift: &str, id: &str, column: &str, types: &str, min: f64| Pairing {
            shift: shift.into(),
            id_column: id.into(),
            shift_column: column.into(),
            type_column: types.into(),
            min_id_acc: min,
        };
        match self {
            // The testbed classifies models for the natural re-collections (V2, ObjectNet) with
            // `natural_shift_model_type`, and for the stylised shifts with `model_type`.
            Preset::ImagenetTestbed => vec![
                pairing("imagenet-v2", "val", "imagenetv2-matched-frequency-format-val", "natural_shift_model_type", 55.0),
                pairing("imagenet-sketch", "val", "imagenet-sketch", "model_type", 55.0),
                pairing("imagenet-r", "val-on-imagenet-r-classes", "imagenet-r", "model_type", 75.0),
                pairing("objectnet", "val-on-objectnet-classes", "objectnet-1.0-beta", "natural_shift_model_type", 55.0),
            ],
        }
    }

    /// Model types that form the baseline.
    pub fn baseline_types(self) -> Vec<String> {
        vec!["STANDARD".into()]
    }

    /// Models whose name contains one of these are never baseline models (the testbed drops its
    /// training-set-subsample, AWS-retrained and batch-size-64 variants).
    pub fn excluded_name_parts(self) -> Vec<String> {
        ["subsample", "aws", "batch64"].map(String::from).to_vec()
    }
}

/// Which models may form the baseline of a fit (before the per-pairing ID threshold).
#[derive(Clone, Debug, PartialEq)]
pub enum BaselineSet {
    /// Every model in the table.
    All,
    /// Models listed by name.
    Names(BTreeSet<String>),
    /// Models whose type (in the pairing's type column) is one of `allowed`.
    Types { types: ModelTypes, allowed: Vec<String> },
}

impl BaselineSet {
    /// Reads a file of model names, one per line (blank lines and `#` comments ignored).
    pub fn names_from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the baseline model list {}", path.display()))?;
        let names: BTreeSet<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        if names.is_empty() {
            bail!("{}: no model names; list one baseline model per line", path.display());
        }
        Ok(BaselineSet::Names(names))
    }
}

/// Everything `compute` needs besides the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ErOptions {
    pub pairings: Vec<Pairing>,
    pub baseline: BaselineSet,
    /// Models whose name contains any of these never join the baseline.
    pub exclude_name_parts: Vec<String>,
    pub transform: Transform,
    pub resamples: usize,
    pub seed: u64,
}

/// A fitted pairing.
#[derive(Clone, Debug, PartialEq)]
pub struct PairingFit {
    pub pairing: Pairing,
    pub fit: LinearFit,
    /// The baseline models, in table order.
    pub baseline_models: Vec<String>,
    /// Bootstrap refits (`metrics::bootstrap_fits`), `ErOptions::resamples` of them.
    pub resampled: Vec<LinearFit>,
}

/// One model scored on one pairing. Accuracies percent, ER points.
#[derive(Clone, Debug, PartialEq)]
pub struct ErRow {
    pub model: String,
    pub shift: String,
    pub id_acc: f64,
    pub shift_acc: f64,
    /// The shifted accuracy the baseline line predicts from `id_acc`.
    pub predicted: f64,
    pub er: f64,
    /// Bootstrap 95% interval of `er` (baseline uncertainty); `None` with zero resamples.
    pub er_interval: Option<Interval>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ErReport {
    pub transform: Transform,
    pub fits: Vec<PairingFit>,
    /// Table order of models, then pairing order.
    pub rows: Vec<ErRow>,
}

/// Fits every pairing and scores every model that has both of its accuracies.
///
/// Fails when a column is missing, when a pairing has fewer than two baseline models with
/// distinct ID accuracies, or when a baseline filter needs a type column the types table lacks.
pub fn compute(table: &AccuracyTable, options: &ErOptions) -> Result<ErReport> {
    let mut fits = Vec::new();
    for pairing in &options.pairings {
        let id = table.column(&pairing.id_column)?;
        let shift = table.column(&pairing.shift_column)?;
        let type_index = match &options.baseline {
            BaselineSet::Types { types, .. } => Some(types.column(&pairing.type_column)?),
            _ => None,
        };
        let mut baseline_models = Vec::new();
        let mut points = Vec::new();
        for (model, accs) in table.models.iter().zip(&table.values) {
            let (Some(id_acc), Some(shift_acc)) = (accs[id], accs[shift]) else { continue };
            if id_acc < pairing.min_id_acc || options.exclude_name_parts.iter().any(|p| model.contains(p.as_str())) {
                continue;
            }
            let in_set = match &options.baseline {
                BaselineSet::All => true,
                BaselineSet::Names(names) => names.contains(model),
                BaselineSet::Types { types, allowed } => types
                    .types
                    .get(model)
                    .and_then(|t| t.get(type_index.unwrap_or(0)))
                    .is_some_and(|t| allowed.iter().any(|a| a == t)),
            };
            if in_set {
                baseline_models.push(model.clone());
                points.push((id_acc, shift_acc));
            }
        }
        let fit = metrics::fit_line(&points, options.transform).ok_or_else(|| {
            anyhow!(
                "{}: `{}` against `{}` has {} baseline model(s) with both accuracies and ID accuracy ≥ {}; a fit needs \
                 at least two with different ID accuracies — widen the baseline set or lower --min-id-acc",
                table.source,
                pairing.shift_column,
                pairing.id_column,
                points.len(),
                pairing.min_id_acc
            )
        })?;
        let purpose = format!("er/bootstrap/{}", pairing.shift);
        let resampled = metrics::bootstrap_fits(&points, options.transform, options.resamples, options.seed, &purpose)
            .unwrap_or_default();
        fits.push(PairingFit { pairing: pairing.clone(), fit, baseline_models, resampled });
    }

    let mut rows = Vec::new();
    for (model, accs) in table.models.iter().zip(&table.values) {
        for f in &fits {
            let id = table.column(&f.pairing.id_column)?;
            let shift = table.column(&f.pairing.shift_column)?;
            let (Some(id_acc), Some(shift_acc)) = (accs[id], accs[shift]) else { continue };
            rows.push(ErRow {
                model: model.clone(),
                shift: f.pairing.shift.clone(),
                id_acc,
                shift_acc,
                predicted: f.fit.predict(options.transform, id_acc),
                er: metrics::effective_robustness(&f.fit, options.transform, id_acc, shift_acc),
                er_interval: metrics::er_interval(&f.resampled, options.transform, id_acc, shift_acc),
            });
        }
    }
    Ok(ErReport { transform: options.transform, fits, rows })
}

impl ErReport {
    /// `shift,id_column,shift_column,transform,n,slope,intercept,r`; slope, intercept and r with
    /// 4 decimals, rows in pairing order.
    pub fn fits_csv(&self) -> Result<String> {
        let mut w = csvfmt::writer();
        w.write_record(["shift", "id_column", "shift_column", "transform", "n", "slope", "intercept", "r"])?;
        for f in &self.fits {
            w.write_record([
                f.pairing.shift.clone(),
                f.pairing.id_column.clone(),
                f.pairing.shift_column.clone(),
                self.transform.to_string(),
                f.fit.n.to_string(),
                fixed(Some(f.fit.slope), 4),
                fixed(Some(f.fit.intercept), 4),
                fixed(Some(f.fit.r), 4),
            ])?;
        }
        csvfmt::finish(w)
    }

    /// `model,shift,id_acc,shift_acc,predicted,er,er_lo,er_hi`; percent and points with 2
    /// decimals, rows in table order of models, then pairing order. `er_lo`/`er_hi` are empty
    /// with `--resamples 0`.
    pub fn er_csv(&self) -> Result<String> {
        let mut w = csvfmt::writer();
        w.write_record(["model", "shift", "id_acc", "shift_acc", "predicted", "er", "er_lo", "er_hi"])?;
        for r in &self.rows {
            let accuracies = [
                r.model.clone(),
                r.shift.clone(),
                fixed(Some(r.id_acc), 2),
                fixed(Some(r.shift_acc), 2),
                fixed(Some(r.predicted), 2),
            ];
            w.write_record(accuracies.into_iter().chain(value_and_interval(Some(r.er), r.er_interval)))?;
        }
        csvfmt::finish(w)
    }
}

/// Writes `out/fits.csv` and `out/effective_robustness.csv` atomically, creating `out`.
pub fn write(out: &Path, report: &ErReport) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(FITS_FILE), report.fits_csv()?.as_bytes())?;
    write_atomic(&out.join(ER_FILE), report.er_csv()?.as_bytes())?;
    Ok(())
}

/// What `shiftbench er` was asked, before any file is read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErRequest {
    pub table: std::path::PathBuf,
    pub types: Option<std::path::PathBuf>,
    pub preset: Option<Preset>,
    /// ID column for `shift_columns` (without a preset).
    pub id_column: Option<String>,
    pub shift_columns: Vec<String>,
    /// File of baseline model names.
    pub baseline_file: Option<std::path::PathBuf>,
    /// Allowed model types (needs `types`).
    pub baseline_types: Vec<String>,
    /// Type column for every pairing (default: the preset's per-pairing choice, else `model_type`).
    pub type_column: Option<String>,
    /// Name parts that exclude a model from the baseline (default: the preset's, else none).
    pub exclude: Option<Vec<String>>,
    /// Minimum baseline ID accuracy for every pairing (default: the preset's, else 0).
    pub min_id_acc: Option<f64>,
    pub transform: Option<Transform>,
    pub resamples: Option<usize>,
    pub seed: u64,
    /// Fixed fits (`[[reference_fits]]` TOML) to score against instead of fitting a baseline.
    pub reference_fits: Option<std::path::PathBuf>,
}

impl ErRequest {
    /// Resolves flags and preset into pairings and a baseline rule; explicit flags override the
    /// preset. Reads the types table and the baseline list when named.
    pub fn options(&self) -> Result<ErOptions> {
        let mut pairings = match (self.preset, &self.id_column, self.shift_columns.is_empty()) {
            (Some(_), Some(_), _) | (Some(_), _, false) => {
                bail!("--preset chooses the columns itself; drop --id/--shift, or drop --preset to pick columns by hand")
            }
            (Some(preset), None, true) => preset.pairings(),
            (None, Some(id), false) => self
                .shift_columns
                .iter()
                .map(|shift| Pairing {
                    shift: shift.clone(),
                    id_column: id.clone(),
                    shift_column: shift.clone(),
                    type_column: "model_type".into(),
                    min_id_acc: 0.0,
                })
                .collect(),
            _ => bail!("say which columns to compare: --preset imagenet-testbed, or --id COLUMN with one or more --shift COLUMN"),
        };
        for p in &mut pairings {
            if let Some(min) = self.min_id_acc {
                p.min_id_acc = min;
            }
            if let Some(column) = &self.type_column {
                p.type_column = column.clone();
            }
        }
        let baseline = match (&self.baseline_file, self.baseline_types.is_empty()) {
            (Some(_), false) => bail!("--baseline and --baseline-types both choose the baseline; use one"),
            (Some(file), true) => BaselineSet::names_from_file(file)?,
            (None, allowed_given) => {
                let allowed = if allowed_given {
                    self.preset.map(Preset::baseline_types).unwrap_or_default()
                } else {
                    self.baseline_types.clone()
                };
                match (&self.types, allowed.is_empty()) {
                    (_, true) => BaselineSet::All,
                    (Some(path), false) => BaselineSet::Types { types: ModelTypes::load(path)?, allowed },
                    (None, false) => bail!(
                        "the baseline is models of type {}, which needs --types MODEL_TYPES.csv (columns model,model_type,...); \
                         or name the baseline models with --baseline FILE",
                        allowed.join(", ")
                    ),
                }
            }
        };
        let exclude_name_parts = match &self.exclude {
            Some(parts) => parts.clone(),
            None => self.preset.map(Preset::excluded_name_parts).unwrap_or_default(),
        };
        let resamples = self.resamples.unwrap_or(metrics::DEFAULT_RESAMPLES);
        Ok(ErOptions {
            pairings,
            baseline,
            exclude_name_parts,
            transform: self.transform.unwrap_or(Transform::Logit),
            resamples,
            seed: self.seed,
        })
    }

    /// Loads the table, computes the report and writes it to `out`.
    pub fn run(&self, out: &Path) -> Result<ErReport> {
        if let Some(fits_path) = &self.reference_fits {
            if self.preset.is_some() || self.id_column.is_some() || !self.shift_columns.is_empty() {
                bail!("--fits names the columns and fits itself; drop --preset/--id/--shift");
            }
            let fits = crate::reference_fits::load(fits_path)?;
            let report = crate::reference_fits::score(&AccuracyTable::load(&self.table)?, &fits)?;
            write(out, &report)?;
            return Ok(report);
        }
        let options = self.options()?;
        let table = AccuracyTable::load(&self.table)?;
        let report = compute(&table, &options)?;
        write(out, &report)?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "model,val,v2,sketch\n\
        a,60,48,20\n\
        b,70,59,\n\
        c,80,70.5,31\n\
        d-aws,75,80,40\n\
        e,50,30,10\n\
        f,76,70,45\n";

    fn options(baseline: BaselineSet) -> ErOptions {
        ErOptions {
            pairings: vec![Pairing {
                shift: "v2".into(),
                id_column: "val".into(),
                shift_column: "v2".into(),
                type_column: "model_type".into(),
                min_id_acc: 55.0,
            }],
            baseline,
            exclude_name_parts: vec!["aws".into()],
            transform: Transform::Logit,
            resamples: 200,
            seed: 0,
        }
    }

    #[test]
    fn parses_empty_cells_as_missing() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        assert_eq!(t.columns, ["val", "v2", "sketch"]);
        assert_eq!(t.values[1], [Some(70.0), Some(59.0), None]);
        assert_eq!(t.models.len(), 6);
    }

    #[test]
    fn bad_cells_name_file_line_column_and_fix() {
        let err = AccuracyTable::parse("t.csv", "model,val\na,70\nb,seventy\n").unwrap_err().to_string();
        assert!(err.starts_with("t.csv:3: column `val` of model `b`: `seventy` is not a number"), "{err}");
        let err = AccuracyTable::parse("t.csv", "model,val\na,0.7\nb,170\n").unwrap_err().to_string();
        assert!(err.contains("t.csv:3:") && err.contains("outside [0, 100]"), "{err}");
        let err = AccuracyTable::parse("t.csv", "name,val\na,70\n").unwrap_err().to_string();
        assert!(err.contains("no `model` column"), "{err}");
        let err = AccuracyTable::parse("t.csv", "model,val\na,70\na,71\n").unwrap_err().to_string();
        assert!(err.contains("t.csv:3: model `a` already appears on line 2"), "{err}");
        let err = AccuracyTable::parse("t.csv", "model,val\na,70,3\n").unwrap_err().to_string();
        assert!(err.starts_with("t.csv:"), "{err}");
    }

    #[test]
    fn baseline_rule_filters_threshold_names_and_exclusions() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let report = compute(&t, &options(BaselineSet::All)).unwrap();
        // e is below 55, d-aws is excluded by name.
        assert_eq!(report.fits[0].baseline_models, ["a", "b", "c", "f"]);
        let types = ModelTypes::parse("types.csv", "model,model_type\na,STANDARD\nb,MORE_DATA\nc,STANDARD\nf,STANDARD\n")
            .unwrap();
        let report =
            compute(&t, &options(BaselineSet::Types { types, allowed: vec!["STANDARD".into()] })).unwrap();
        assert_eq!(report.fits[0].baseline_models, ["a", "c", "f"]);
        let names = BaselineSet::Names(["a", "c"].map(String::from).into());
        let report = compute(&t, &options(names)).unwrap();
        assert_eq!(report.fits[0].baseline_models, ["a", "c"]);
        // Every model with both accuracies gets a row, baseline or not.
        assert_eq!(report.rows.len(), 6);
        let d = report.rows.iter().find(|r| r.model == "d-aws").unwrap();
        assert!(d.er > 10.0, "{d:?}");
    }

    #[test]
    fn er_rows_agree_with_metrics_and_bracket_their_interval() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let report = compute(&t, &options(BaselineSet::All)).unwrap();
        let fit = report.fits[0].fit;
        assert_eq!(report.fits[0].resampled.len(), 200);
        for r in &report.rows {
            assert_eq!(r.er, metrics::effective_robustness(&fit, Transform::Logit, r.id_acc, r.shift_acc));
            assert!((r.shift_acc - r.predicted - r.er).abs() < 1e-12);
            let i = r.er_interval.unwrap();
            assert!(i.lo <= i.hi, "{r:?}");
        }
        let csv = report.er_csv().unwrap();
        assert!(csv.starts_with("model,shift,id_acc,shift_acc,predicted,er,er_lo,er_hi\na,v2,60.00,48.00,"), "{csv}");
        let fits = report.fits_csv().unwrap();
        assert!(fits.starts_with("shift,id_column,shift_column,transform,n,slope,intercept,r\nv2,val,v2,logit,4,"), "{fits}");
        // Same inputs, same bytes.
        assert_eq!(csv, compute(&t, &options(BaselineSet::All)).unwrap().er_csv().unwrap());
    }

    #[test]
    fn unusable_pairings_are_clear_errors() {
        let t = AccuracyTable::parse("t.csv", TABLE).unwrap();
        let mut o = options(BaselineSet::All);
        o.pairings[0].shift_column = "v3".into();
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("t.csv: no column `v3`"), "{err}");
        let mut o = options(BaselineSet::All);
        o.pairings[0].min_id_acc = 79.0;
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("1 baseline model(s)") && err.contains("--min-id-acc"), "{err}");
        let types = ModelTypes::parse("types.csv", "model,model_type\na,STANDARD\n").unwrap();
        let mut o = options(BaselineSet::Types { types, allowed: vec!["STANDARD".into()] });
        o.pairings[0].type_column = "natural_shift_model_type".into();
        let err = compute(&t, &o).unwrap_err().to_string();
        assert!(err.contains("types.csv: no type column `natural_shift_model_type`"), "{err}");
        assert!("imagenet".parse::<Preset>().is_err());
    }
}
