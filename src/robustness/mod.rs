//! Effective robustness: how far a classifier's shifted accuracy lies above the "accuracy on the
//! line" of a baseline. This module owns every effective-robustness computation of the harness:
//!
//! - `fit`: `BaselineFit`, the one baseline type (a fitted line, its bootstrap refits, and how a
//!   classifier is scored against it), shared by `shiftbench er`, the reference fits and the
//!   leaderboard (`report`), and `FITS_FILE`.
//! - `table`: the accuracy and model-types tables `shiftbench er` reads; `testbed_types` reads
//!   the imagenet-testbed's own classification (`plotting/model_types.py`) as a model-types table.
//! - `baseline`: a suite's `[metrics.baseline_table]`: the table's baseline points, read from the
//!   fetch cache into the protocol its records carry, and refitted from there by the leaderboard.
//! - `pairing`: which columns are compared, the named presets, and which models form a baseline.
//! - `reference`: fixed published fits from a `[[reference_fits]]` TOML file.
//! - `report`: `compute` (fit every pairing, score every model) and `shiftbench er`'s two CSVs.
//! - `request`: the `shiftbench er` flags resolved into options, and the command's one I/O call.
//!
//! The formulas (fits, bootstrap, intervals) are `metrics`'; everything here is pure except the
//! `load`s, `report::write` and `ErRequest::run`.

pub mod baseline;
pub mod fit;
pub mod pairing;
pub mod reference;
pub mod report;
pub mod request;
pub mod table;
pub mod testbed_types;
