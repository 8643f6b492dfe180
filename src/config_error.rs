//! Errors in the strict TOML files shiftbench reads (suites, `datasets.lock`, reference fits):
//! the error type and the helpers that locate a problem in the text.
//!
//! A leaf module on purpose: every config parser borrows it, so it must depend on none of them
//! (the lock parser sits below the Stable Diffusion weights, which the suite parser needs).

use std::fmt;
use std::path::{Path, PathBuf};

/// One clear error about a config file: where, which key, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: key `{}`: {}", self.file.display(), self.line, self.column, self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Deserialises strict TOML (suites, the lock file, reference fits) into `T`, turning serde's
/// complaint into a [`ConfigError`] that names the file, position and dotted key.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let at = key_at(text, span.start);
        // A missing key has no position of its own: name it inside the table that lacks it.
        let key = match (missing_field(e.message()), at) {
            (Some(field), Some(table)) => format!("{table}.{field}"),
            (Some(field), None) => field,
            (None, at) => at.unwrap_or_else(|| "?".into()),
        };
        error_at(path, text, span, key, e.message().trim().to_string())
    })
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

/// The dotted key whose value sits at `offset`: the enclosing table header plus the key on that
/// line, e.g. `domains.size`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_col(text, offset);
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get(line_no.checked_sub(1)?)?;
    let table = lines[..line_no - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return Some(trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    let key = trimmed.split('=').next()?.trim();
    if key.is_empty() || trimmed.starts_with('#') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// The error at `span` of `text`, with its 1-based line and column.
pub(crate) fn error_at(path: &Path, text: &str, span: std::ops::Range<usize>, key: impl Into<String>, message: String) -> ConfigError {
    let (line, column) = line_col(text, span.start);
    ConfigError { file: path.to_path_buf(), line, column, key: key.into(), message }
}
