//! The imagenet-testbed's own model classification, `plotting/model_types.py`, read as data.
//!
//! The testbed publishes no model-types table: its plots classify models with a Python dict
//! (`model_types_map`, plus `for i in range(N)` loops for its low-accuracy training runs) and
//! derive the natural-shift classification through `mapper` (`ModelTypes.X: NatModelTypes.Y`).
//! `datasets.lock` pins that file, so this reader only has to understand those few statement
//! shapes; any other line inside the dict or the mapper is an error naming the line, never a
//! guess. The result is the same `ModelTypes` a `model,model_type,natural_shift_model_type`
//! CSV gives (for the 338 models of `robustness_top1s.csv` they agree row for row).

use crate::robustness::table::ModelTypes;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

/// The type columns the file defines, in `ModelTypes` column order.
pub const COLUMNS: [&str; 2] = ["model_type", "natural_shift_model_type"];

/// Parses the text of a `model_types.py` in the testbed's format; `source` names it in errors.
pub fn parse(source: &str, text: &str) -> Result<ModelTypes> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut mapper: BTreeMap<String, String> = BTreeMap::new();
    let (mut saw_map, mut saw_mapper) = (false, false);
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let at = i + 1;
        i += 1;
        if line.starts_with("model_types_map = {") {
            saw_map = true;
            i = block(&lines, i, source, "model_types_map", |entry, line| {
                let (name, value) = entry.split_once(':').ok_or_else(|| anyhow!("{source}:{line}: expected `'MODEL': ModelTypes.TYPE,`"))?;
                let name = quoted(name.trim()).ok_or_else(|| anyhow!("{source}:{line}: the model name must be a quoted string"))?;
                // Python: a later entry for the same key wins.
                types.insert(name, enum_member(value, "ModelTypes").ok_or_else(|| anyhow!("{source}:{line}: expected `ModelTypes.TYPE` after the model name"))?);
                Ok(())
            })?;
        } else if line.starts_with("mapper = {") {
            saw_mapper = true;
            i = block(&lines, i, source, "mapper", |entry, line| {
                let (from, to) = entry.split_once(':').ok_or_else(|| anyhow!("{source}:{line}: expected `ModelTypes.X: NatModelTypes.Y,`"))?;
                let from = enum_member(from, "ModelTypes").ok_or_else(|| anyhow!("{source}:{line}: expected `ModelTypes.X` before the colon"))?;
                let to = enum_member(to, "NatModelTypes").ok_or_else(|| anyhow!("{source}:{line}: expected `NatModelTypes.Y` after the colon"))?;
                mapper.insert(from, to);
                Ok(())
            })?;
        } else if let Some(count) = line.strip_prefix("for i in range(").and_then(|r| r.strip_suffix("):")) {
            let count: usize = count.trim().parse().map_err(|_| anyhow!("{source}:{at}: `range({count})` is not a literal count"))?;
            let body = lines.get(i).map(|l| l.trim()).unwrap_or_default();
            let (name, ty) = loop_assignment(body).ok_or_else(|| {
                anyhow!("{source}:{}: expected `model_types_map[f\"PREFIX{{i}}SUFFIX\"] = ModelTypes.TYPE` as the loop's body", at + 1)
            })?;
            for k in 0..count {
                types.insert(name.replace("{i}", &k.to_string()), ty.clone());
            }
            i += 1;
        }
    }
    if !saw_map || !saw_mapper {
        bail!("{source}: no `{}` dict; this is not the imagenet-testbed's plotting/model_types.py", if saw_map { "mapper" } else { "model_types_map" });
    }
    let mut out = BTreeMap::new();
    for (model, ty) in types {
        let natural = mapper.get(&ty).ok_or_else(|| anyhow!("{source}: model `{model}` has type {ty}, which `mapper` does not map to a natural-shift type"))?;
        out.insert(model, vec![ty, natural.clone()]);
    }
    Ok(ModelTypes { source: source.to_string(), columns: COLUMNS.map(String::from).to_vec(), types: out })
}

/// Runs `entry` on every non-blank line from `start` up to the closing `}`; returns the index
/// after it. Entries end in an optional comma; trailing whitespace (the file has tabs) is noise.
fn block(lines: &[&str], start: usize, source: &str, name: &str, mut entry: impl FnMut(&str, usize) -> Result<()>) -> Result<usize> {
    for (k, raw) in lines.iter().enumerate().skip(start) {
        let line = raw.trim();
        if line == "}" {
            return Ok(k + 1);
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        entry(line.strip_suffix(',').unwrap_or(line), k + 1)?;
    }
    bail!("{source}: the `{name}` dict opened on line {start} is never closed")
}

/// `'name'` or `"name"` → `name`.
fn quoted(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    (!inner.is_empty() && !inner.contains(q)).then(|| inner.to_string())
}

/// `ENUM.MEMBER` → `MEMBER` (an upper-case identifier).
fn enum_member(s: &str, enum_name: &str) -> Option<String> {
    let member = s.trim().strip_prefix(enum_name)?.strip_prefix('.')?;
    (!member.is_empty() && member.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')).then(|| member.to_string())
}

/// `model_types_map[f"resnet18_{i}_epochs"] = ModelTypes.X` → (`resnet18_{i}_epochs`, `X`).
fn loop_assignment(body: &str) -> Option<(String, String)> {
    let rest = body.strip_prefix("model_types_map[f")?;
    let (key, value) = rest.split_once(']')?;
    let name = quoted(key.trim())?;
    let ty = enum_member(value.trim().strip_prefix('=')?, "ModelTypes")?;
    name.contains("{i}").then_some((name, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream file's statement shapes (tabs, trailing whitespace, a last entry without a
    /// comma, `:` with and without a space), with made-up models.
    pub(crate) const EXCERPT: &str = "from enum import Enum\n\n\nclass ModelTypes(Enum):\n    STANDARD = ('Standard training', 'tab:blue')\n    LP_ADV = ('Lp adversarially robust', 'tab:olive')\t\n\nmodel_types_map = {\n'net-a': ModelTypes.STANDARD,\n'net-b': ModelTypes.LP_ADV,\n'net-c': ModelTypes.MORE_DATA\n}\n\nfor i in range(3):\n    model_types_map[f\"tiny_{i}_epochs\"] =  ModelTypes.LOW_ACCURACY_CNN\n\nclass NatModelTypes(Enum):\n    STANDARD = ('Standard training', 'tab:blue')\n\nmapper = {\n\tModelTypes.STANDARD: NatModelTypes.STANDARD,\n\tModelTypes.LP_ADV: NatModelTypes.ROBUST_INTV,\t\n\tModelTypes.MORE_DATA: NatModelTypes.MORE_DATA,\n\tModelTypes.LOW_ACCURACY_CNN : NatModelTypes.LOW_ACCURACY_CNN\n}\nnat_model_types_map = {k: mapper[v] for k, v in model_types_map.items()}\n";

    #[test]
    fn reads_the_dict_the_loops_and_the_mapper() {
        let t = parse("model_types.py", EXCERPT).unwrap();
        assert_eq!(t.columns, COLUMNS);
        let row = |m: &str| t.types.get(m).map(|v| (v[0].as_str(), v[1].as_str()));
        assert_eq!(row("net-a"), Some(("STANDARD", "STANDARD")));
        assert_eq!(row("net-b"), Some(("LP_ADV", "ROBUST_INTV")));
        assert_eq!(row("net-c"), Some(("MORE_DATA", "MORE_DATA")));
        assert_eq!(row("tiny_2_epochs"), Some(("LOW_ACCURACY_CNN", "LOW_ACCURACY_CNN")));
        assert_eq!(t.types.len(), 6);
    }

    #[test]
    fn anything_else_is_an_error_naming_the_line() {
        let bad = EXCERPT.replace("'net-b': ModelTypes.LP_ADV,", "'net-b': lookup('x'),");
        let err = parse("m.py", &bad).unwrap_err().to_string();
        assert!(err.starts_with("m.py:10:") && err.contains("ModelTypes.TYPE"), "{err}");
        let unmapped = EXCERPT.replace("\tModelTypes.MORE_DATA: NatModelTypes.MORE_DATA,\n", "");
        let err = parse("m.py", &unmapped).unwrap_err().to_string();
        assert!(err.contains("`net-c` has type MORE_DATA") && err.contains("mapper"), "{err}");
        let err = parse("m.py", "model,model_type\na,STANDARD\n").unwrap_err().to_string();
        assert!(err.contains("not the imagenet-testbed's plotting/model_types.py"), "{err}");
        // The dict's closing brace missing: the loop below is read as an entry and refused.
        let err = parse("m.py", &EXCERPT.replace("\n}\n\nfor", "\n\nfor")).unwrap_err().to_string();
        assert!(err.starts_with("m.py:13:"), "{err}");
    }
}
