//! The inputs of `shiftbench er`: a wide accuracy table (imagenet-testbed's
//! `robustness_top1s.csv` format) and a model-types table (its `model_types.csv`).
//!
//! Parsing is pure (`parse`); `load` is the only I/O. Every error names the file, the line and
//! the column, and says what to fix.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

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
        let text = crate::fsutil::read_text_file(path)
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
    /// Reads a `model,<type column>...` CSV, or the imagenet-testbed's `plotting/model_types.py`
    /// (a `.py` file, see `testbed_types`): the testbed publishes its classification only so.
    pub fn load(path: &Path) -> Result<Self> {
        if path.extension().is_some_and(|e| e == "py") {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the model types {}", path.display()))?;
            return crate::robustness::testbed_types::parse(&path.display().to_string(), &text);
        }
        let text =
            crate::fsutil::read_text_file(path).with_context(|| format!("cannot read the model types {}", path.display()))?;
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

    /// Index of the type column `name`, or an error that names the table and the fix.
    pub(crate) fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            anyhow!(
                "{}: no type column `{name}` (it has `{}`); add it, or choose one with --type-column",
                self.source,
                self.columns.join("`, `")
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TABLE: &str = "model,val,v2,sketch\n\
        a,60,48,20\n\
        b,70,59,\n\
        c,80,70.5,31\n\
        d-aws,75,80,40\n\
        e,50,30,10\n\
        f,76,70,45\n";

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
}
