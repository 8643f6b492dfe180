//! The one CSV dialect of shiftbench's outputs (leaderboards and `shiftbench er`): `\n` line
//! ends, fixed decimals, and no `-0.00`, so the same numbers always give the same bytes.
//!
//! Pure string building; callers write the result with `fsutil::write_atomic`.

use anyhow::{anyhow, Context, Result};
use crate::metrics::{Interval, LinearFit};

/// A CSV writer into memory with `\n` line ends on every platform.
pub fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new())
}

/// The text `writer` assembled.
pub fn finish(writer: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = writer.into_inner().map_err(|e| anyhow!("cannot assemble CSV: {e}"))?;
    String::from_utf8(bytes).context("CSV output is not UTF-8")
}

/// `x` with `decimals` fixed decimals; empty for a missing or non-finite value. A negative number
/// that rounds to zero prints as `0.00`, not `-0.00`, so the sign of a rounding residue cannot
/// change the bytes.
pub fn fixed(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.decimals$}");
            match s.strip_prefix('-') {
                Some(magnitude) if magnitude.bytes().all(|b| b == b'0' || b == b'.') => magnitude.to_string(),
                _ => s,
            }
        }
        _ => String::new(),
    }
}

/// `value, lo, hi` with 2 decimals each (empty where missing): a value and its 95% interval as
/// three adjacent columns.
pub fn value_and_interval(value: Option<f64>, interval: Option<Interval>) -> [String; 3] {
    [fixed(value, 2), fixed(interval.map(|i| i.lo), 2), fixed(interval.map(|i| i.hi), 2)]
}

/// `slope, intercept, r` of a fitted line with 4 decimals each (empty without a line): the
/// columns every fits table ends with.
pub fn line_fields(line: Option<LinearFit>) -> [String; 3] {
    [fixed(line.map(|l| l.slope), 4), fixed(line.map(|l| l.intercept), 4), fixed(line.map(|l| l.r), 4)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decimals_never_print_negative_zero() {
        assert_eq!(fixed(Some(-0.001), 2), "0.00");
        assert_eq!(fixed(Some(-0.0), 4), "0.0000");
        assert_eq!(fixed(Some(-0.006), 2), "-0.01");
        assert_eq!(fixed(Some(12.345), 2), "12.35");
        assert_eq!(fixed(None, 2), "");
        assert_eq!(fixed(Some(f64::NAN), 2), "");
    }
    #[test]
    fn intervals_and_lines_are_fixed_columns() {
        assert_eq!(value_and_interval(Some(1.234), Some(Interval { lo: -0.001, hi: 2.0 })), ["1.23", "0.00", "2.00"]);
        assert_eq!(value_and_interval(Some(1.0), None), ["1.00", "", ""]);
        let line = LinearFit { slope: 0.92321, intercept: -0.49774, r: 0.99, n: 85 };
        assert_eq!(line_fields(Some(line)), ["0.9232", "-0.4977", "0.9900"]);
        assert_eq!(line_fields(None), ["", "", ""]);
    }
}
