//! shiftbench: does training on generated images make image classifiers robust to natural
//! distribution shift? A benchmark suite and test harness reproducing Bansal & Grover (2023).
//!
//! One module per pipeline stage (see DESIGN.md §3), in the order a run crosses them:
//!
//! - `suite` parses and validates a suite file and resolves it into [`suite::SuiteConfig`],
//!   the only form the rest of the crate reads; `config_error` is the error of every strict
//!   TOML file (suites, `datasets.lock`, reference fits) and depends on no other module;
//! - `plan` turns a resolved suite, a seed and a profile into data to make, training jobs and
//!   the evaluation protocol (pure); `keys` owns every cache key those jobs and sets are
//!   stored under;
//! - `fetch` (lock file, verified downloads, archive extraction) brings external artifacts;
//! - `data` holds images and the procedural world, `generate` the generators and generated
//!   sets, `prepare` makes a plan's sets;
//! - `model` holds the classifiers (behind [`model::Classifier`]), `train` fits them, `eval`
//!   predicts and counts, `record` is the run record's schema and its checks, `checkpoints`
//!   the finished checkpoints that verify themselves; `predict` runs a classifier on image
//!   files for `shiftbench predict`;
//! - `run` schedules a plan's jobs, resumes and cleans up; `reproduce` re-runs a published
//!   results folder and compares it record by record;
//! - `metrics`, `robustness` (effective robustness: the one baseline-fit type, `BaselineFit`,
//!   that the leaderboard, `shiftbench er` and the published reference fits all score against)
//!   and `report` turn records into leaderboards, tables and plots; `csvfmt` is the one CSV
//!   dialect of every output table.

pub mod checkpoints;
pub mod compare;
pub mod config_error;
pub mod csvfmt;
pub mod data;
pub mod eval;
pub mod fetch;
pub mod folder;
pub mod fsutil;
pub mod generate;
pub mod keys;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod predict;
pub mod prepare;
pub mod progress;
pub mod record;
pub mod report;
pub mod reproduce;
pub mod robustness;
pub mod rng;
pub mod run;
pub mod suite;
pub mod train;
pub mod usage;

/// Version of the harness, recorded in every run record.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git revision the binary was built from (`unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("SHIFTBENCH_GIT_REVISION");
