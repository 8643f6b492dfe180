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
    /// Validate the suite (and its artifacts against the lock) and print its plan, without
    /// checking that this machine has the weights, memory and disk to run it: for suites meant
    /// for a larger machine, such as suites/imagenet-paper.toml.
    #[arg(long)]
    pub plan_only: bool,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let s = Suite::load(&args.suite)?;
    let c = &s.config;
    let sd = if args.plan_only {
        shiftbench::run::check_artifacts(&s)?;
        Vec::new()
    } else {
        shiftbench::run::check_before_work(&s, &Path::new("runs").join(s.name()))?;
        shiftbench::generate::sd::locate_all(c, &s.path, args.weights.as_deref(), Path::new(shiftbench::fetch::lock::LOCK_FILE))?
    };
    println!("{}: valid suite `{}` (sha256 {})", args.suite.display(), s.name(), &s.hash[..12]);
    match c.classes.is_empty() {
        true => println!("  classes: the {} of vocabulary imagenet-1k", c.num_classes()),
        false => println!("  classes: {}", c.class_names().join(", ")),
    }
    let domain = |d: &shiftbench::suite::Domain| match &d.data {
        shiftbench::suite::DomainData::Procedural { size, .. } => format!("{} ({size})", d.name),
        shiftbench::suite::DomainData::Files(f) => format!("{} ({}, {})", d.name, f.layout.name(), f.preprocess.name),
    };
    println!("  domains: {}", c.domains.iter().map(domain).collect::<Vec<_>>().join(", "));
    println!("  generated sets: {}", c.generated.iter().map(|g| format!("{} ({})", g.name, g.size)).collect::<Vec<_>>().join(", "));
    if c.trains() {
        println!("  testbed: {} models on regime `{}`", c.testbed.members.len(), c.testbed.regime);
        println!("  leaderboard: {} models × {} regimes × {} seeds", c.leaderboard.models.len(), c.leaderboard.regimes.len(), c.leaderboard.seeds.len());
    } else {
        println!("  evaluation only: classifiers come from `shiftbench compare`");
    }
    let fits: Vec<String> = c.metrics.reference_fits.iter().map(|f| format!("{} on {}", f.shift, f.id_domain)).collect();
    if !fits.is_empty() {
        println!("  reference fits: {}", fits.join(", "));
    }
    if let Some(t) = &c.metrics.baseline_table {
        let pairs: Vec<String> = t.pairings.iter().map(|p| format!("{} on {}", p.shift_column, p.id_column)).collect();
        println!("  baseline table: artifact `{}` (types `{}`, preset {}): {}", t.table, t.types, t.preset.name(), pairs.join(", "));
    }
    for (name, root, _) in sd {
        println!("  generator {name}: stable-diffusion weights complete in {}", root.display());
    }
    Ok(())
}
