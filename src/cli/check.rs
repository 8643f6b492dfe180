//! `shiftbench check`: validate a suite and say what it would run.

use anyhow::Result;
use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct CheckArgs {
    #[arg(default_value = "suites/shapes.toml")]
    pub suite: PathBuf,
    /// Stable Diffusion weights (see `run --weights`); checked to be complete.
    #[arg(long, value_name = "SOURCE", env = "SHIFTBENCH_SD_WEIGHTS")]
    pub weights: Option<String>,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let s = Suite::load(&args.suite)?;
    let c = &s.config;
    shiftbench::run::check_before_work(&s, &Path::new("runs").join(s.name()))?;
    let sd = shiftbench::generate::sd::locate_all(c, &s.path, args.weights.as_deref(), Path::new(shiftbench::fetch::lock::LOCK_FILE))?;
    println!("{}: valid suite `{}` (sha256 {})", args.suite.display(), s.name(), &s.hash[..12]);
    println!("  classes: {}", c.class_names().join(", "));
    let domain = |d: &shiftbench::suite::Domain| match &d.data {
        shiftbench::suite::DomainData::Procedural { size, .. } => format!("{} ({size})", d.name),
        shiftbench::suite::DomainData::Files(f) => format!("{} ({}, {})", d.name, f.layout.name(), f.preprocess.name),
    };
    println!("  domains: {}", c.domains.iter().map(domain).collect::<Vec<_>>().join(", "));
    println!("  generated sets: {}", c.generated.iter().map(|g| format!("{} ({})", g.name, g.size)).collect::<Vec<_>>().join(", "));
    println!("  testbed: {} models on regime `{}`", c.testbed.members.len(), c.testbed.regime);
    println!("  leaderboard: {} models × {} regimes × {} seeds", c.leaderboard.models.len(), c.leaderboard.regimes.len(), c.leaderboard.seeds.len());
    for (name, root, _) in sd {
        println!("  generator {name}: stable-diffusion weights complete in {}", root.display());
    }
    Ok(())
}
