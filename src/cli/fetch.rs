//! `shiftbench fetch` and `shiftbench lock`: the artifacts pinned in datasets.lock.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FetchArgs {
    /// Suite files (their `[suite] artifacts`) or artifact names.
    #[arg(required_unless_present = "print_path")]
    pub targets: Vec<String>,
    /// Fetch and verify one artifact, then print only its path (for scripts).
    #[arg(long, value_name = "NAME", conflicts_with = "targets")]
    pub print_path: Option<String>,
    #[command(flatten)]
    pub artifacts: shiftbench::fetch::artifacts::ArtifactArgs,
}

pub fn run(args: FetchArgs) -> Result<()> {
    match &args.print_path {
        Some(name) => shiftbench::fetch::artifacts::print_path(&args.artifacts, name),
        None => shiftbench::fetch::artifacts::fetch_command(&args.artifacts, &args.targets),
    }
}

#[derive(clap::Subcommand)]
pub enum LockCommand {
    /// Re-hash every cached artifact against the lock; quarantine and report mismatches, list
    /// missing and unpinned ones.
    #[command(after_help = "Example:\n  shiftbench lock verify --cache /data/shiftbench-cache")]
    Verify {
        #[command(flatten)]
        artifacts: shiftbench::fetch::artifacts::ArtifactArgs,
    },
    /// Record the sha256 and size of an unpinned artifact (one whose host publishes no hash)
    /// in the lock, from a file you obtained, a mirror, or its URLs.
    #[command(after_help = "Example:\n  shiftbench lock pin objectnet --from ~/Downloads/objectnet-1.0.zip")]
    Pin {
        /// Artifact name.
        name: String,
        /// Take the bytes from this file instead of a mirror or a download.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// The most bytes the file (or download) may have; a larger one is refused, not pinned.
        #[arg(long, value_name = "BYTES", default_value_t = shiftbench::fetch::DEFAULT_MAX_PIN_BYTES)]
        max_bytes: u64,
        #[command(flatten)]
        artifacts: shiftbench::fetch::artifacts::ArtifactArgs,
    },
}

pub fn lock(action: LockCommand) -> Result<()> {
    match action {
        LockCommand::Verify { artifacts } => shiftbench::fetch::artifacts::lock_verify(&artifacts),
        LockCommand::Pin { name, from, max_bytes, artifacts } => shiftbench::fetch::artifacts::lock_pin(&artifacts, &name, from.as_deref(), max_bytes),
    }
}
