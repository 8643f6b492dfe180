//! `shiftbench generate`: one generated set of a suite (or one shard of it), or a merge of shards.

use super::common::SuiteTarget;
use anyhow::{Context, Result};
use shiftbench::suite::Suite;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Suite file.
    #[arg(required_unless_present = "merge")]
    pub suite: Option<PathBuf>,
    /// Name of the `[[generated]]` set.
    #[arg(long, required_unless_present = "merge")]
    pub set: Option<String>,
    /// Make only shard I of N (0-based): images with index % N == I.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub target: SuiteTarget,
    /// Write the set (or shard) into exactly this folder instead of the results folder's.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Stop after this many newly rendered images (resume later with the same command).
    #[arg(long, value_name = "N")]
    pub max_new: Option<usize>,
    /// Merge shard folders: OUT first, then the shard folders.
    #[arg(long, num_args = 2.., value_name = "DIR", conflicts_with_all = ["suite", "set", "shard"])]
    pub merge: Option<Vec<PathBuf>>,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    if let Some(dirs) = &args.merge {
        let rows = shiftbench::generate::merge_shards(&dirs[0], &dirs[1..])?;
        println!("merged {} shard folders into {} ({} images)", dirs.len() - 1, dirs[0].display(), rows.len());
        return Ok(());
    }
    // clap requires both unless --merge is given.
    let (Some(suite), Some(set)) = (&args.suite, &args.set) else { return Err(shiftbench::usage::usage("give a suite and --set NAME, or --merge OUT SHARD_DIR...")) };
    generate_set(suite, set, args.shard.as_deref(), &args.target, args.dir.clone(), args.max_new)
}

fn generate_set(suite: &Path, set: &str, shard: Option<&str>, target: &SuiteTarget, dir: Option<PathBuf>, max_new: Option<usize>) -> Result<()> {
    use shiftbench::generate::{SetOptions, Shard};
    let suite = Suite::load(suite)?;
    let config = &suite.config;
    let seed = target.seed.unwrap_or(config.seed);
    let plan = shiftbench::plan::Plan::new(config, seed, target.quick);
    let plan = plan.generated.iter().find(|g| g.name == set).with_context(|| {
        format!("suite {} has no generated set `{set}`; defined: {}", suite.path.display(), config.generated.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", "))
    })?;
    let shard = shard.map(Shard::parse).transpose()?.unwrap_or(Shard::WHOLE);
    let out = target.out_dir(&suite);
    let sd = shiftbench::generate::sd::prepare(config, &suite.path, seed, target.weights.as_deref(), Path::new(shiftbench::fetch::lock::LOCK_FILE))?;
    let prepared = shiftbench::generate::PreparedGenerators { sd, ..Default::default() };
    let source = shiftbench::prepare::generated_set_source(config, plan, &prepared, &out.join("work"))?;
    let (generator, set_dir) = (&source.generator, &source.dir);
    let target = match dir {
        Some(d) => d,
        None if shard == Shard::WHOLE => set_dir.clone(),
        None => set_dir.with_file_name(format!("{}.shard-{}-of-{}", set_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), shard.index, shard.count)),
    };
    let mine = (0..plan.count as u64).filter(|&i| shard.contains(i)).count();
    let pb = shiftbench::progress::bar(mine as u64, set);
    let started = std::time::Instant::now();
    let opts = SetOptions { shard, max_new, ..Default::default() };
    let (_, rows, stats) = plan.generate(generator.as_dyn(), &target, &pb, &opts)?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{set}: {} of {mine} images in {} ({} rendered at {:.2} images/s, {} reused)",
        rows.len(), target.display(), stats.rendered, stats.rendered as f64 / secs.max(1e-9), stats.reused
    );
    if shard != Shard::WHOLE {
        println!("when every shard is done: shiftbench generate --merge {} {}", set_dir.display(), set_dir.with_file_name(format!("{}.shard-*", set_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())).display());
    }
    Ok(())
}
