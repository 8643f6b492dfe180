//! shiftbench: does training on generated images make image classifiers robust to natural
//! distribution shift? A benchmark suite and test harness reproducing Bansal & Grover (2023).
//!
//! One module per pipeline stage (see DESIGN.md §3): `suite` parses and validates suites,
//! `data` makes labelled image sets, `generate` makes generated sets, `model` and `train` build
//! and fit classifiers, `eval` scores them, `run` plans and resumes a suite, `metrics` and
//! `report` turn run records into leaderboards.
//!
//! `robustness` owns effective robustness: the one baseline-fit type (`BaselineFit`) that the
//! leaderboard, `shiftbench er` and the published reference fits all score against.
//! `config_error` is the error of every strict TOML file (suites, `datasets.lock`, reference
//! fits) and depends on no other module; `csvfmt` is the one CSV dialect of every output table.

pub mod artifacts;
pub mod augment;
pub mod config_error;
pub mod csvfmt;
pub mod data;
pub mod extract;
pub mod fetch;
pub mod fsutil;
pub mod generate;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod record;
pub mod report;
pub mod robustness;
pub mod rng;
pub mod run;
pub mod suite;
pub mod train;

/// Version of the harness, recorded in every run record.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git revision the binary was built from (`unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("SHIFTBENCH_GIT_REVISION");
