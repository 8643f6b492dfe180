//! One file per command: each owns its arguments and turns them into calls to the library.

pub mod check;
pub mod common;
pub mod compare;
pub mod er;
pub mod fetch;
pub mod generate;
pub mod leaderboard;
pub mod paper;
pub mod predict;
pub mod reproduce;
pub mod run;
