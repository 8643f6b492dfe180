//! `shiftbench compare`: put a classifier trained elsewhere on a suite's leaderboard.

use anyhow::Result;
use shiftbench::compare::CompareRequest;
use shiftbench::predict::ModelSource;
use shiftbench::data::image::Preprocess;
use shiftbench::suite::Suite;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Evaluate a classifier trained elsewhere on every evaluation set of a suite, \
without training: one run record per set under OUT/records/compared/NAME/, then leaderboard.csv, fits.csv, \
leaderboard.md and the plots are rebuilt from every record in OUT, so the classifier sits in one table with \
the suite's own rows and any classifiers compared before (one `compare` call each). Re-running skips the \
sets whose record this classifier already has; new weights (another sha256) are evaluated again.\n\n\
Each set is scored by the suite's protocol for it (its domains' `protocol` key): ImageNet-R and -A on \
their 200 logits only, ObjectNet by the imagenet-testbed's rule (2-pixel border cropped, argmax over the \
125 ImageNet classes mapped from ObjectNet's 113, correct when in the image's class) or the \
generative-robustness code's (one wnid per class, 113 logits, no crop), and the ID axes of their fits on \
val images of those classes. Records hold top-1 and top-5 counts and per-class counts. Effective \
robustness is measured against the suite's fits: its trained testbed, or the fixed lines of \
`[metrics] reference_fits` (the imagenet-testbed's, for the ImageNet suites): the er_<shift> columns. \
A suite with `[metrics.baseline_table]` is also measured against baselines fitted from that accuracy \
table (fetched first: `shiftbench fetch SUITE`), with 95% bootstrap intervals over its baseline models, \
as `shiftbench er --preset` computes them: the er_table_<shift> columns. A suite's generated evaluation \
set is scored too, so compared rows have gen_degradation.\n\n\
The classifier: --arch and --weights (a safetensors file with torchvision tensor names, one logit per class \
of the suite's vocabulary: 1000 in torchvision's order for ImageNet suites), or --onnx. File-backed sets \
are read with --preprocess when given (the classifier's own eval transform), else with each domain's \
`preprocess`; the crop must be the suite's image_size. Results do not depend on batch size or threads.";

pub const AFTER_HELP: &str = "Examples:\n  \
shiftbench compare suites/imagenet-eval.toml --name resnet50-tv --arch resnet50 --weights resnet50.safetensors\n  \
shiftbench compare suites/imagenet-eval.toml --name r50-timm --arch resnet50 --weights r50.safetensors --preprocess timm:crop_pct=0.95,interpolation=bicubic\n  \
shiftbench compare suites/shapes.toml --name my-w16 --arch resnet-w16-b1-s3 --weights model.safetensors --out results/shapes";

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("classifier").required(true).args(["weights", "onnx"]))]
pub struct CompareArgs {
    /// Suite file whose evaluation sets and protocols score the classifier.
    pub suite: PathBuf,
    /// Row name of the classifier in the leaderboard (letters, digits, `-`, `_`, `.`).
    #[arg(long)]
    pub name: String,
    /// Architecture of --weights: resnet18, resnet34, resnet50, or a harness description such as
    /// resnet-w16-b1-s3 or resnet-imagenet-basic-w8-l1.1.1.1 (the leaderboard's `arch` column).
    #[arg(long, requires = "weights", value_name = "ARCH")]
    pub arch: Option<String>,
    /// safetensors weights with torchvision tensor names (conv1.weight, ..., fc.weight).
    #[arg(long, requires = "arch", value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// An ONNX classifier (input N×3×H×W float, output N×classes).
    #[arg(long, value_name = "MODEL.onnx", conflicts_with_all = ["arch", "weights"])]
    pub onnx: Option<PathBuf>,
    /// The classifier's eval transform for file-backed sets (as `predict --preprocess`)
    /// [default: each domain's `preprocess`].
    #[arg(long, value_parser = parse_preprocess, value_name = "SPEC")]
    pub preprocess: Option<Preprocess>,
    /// Results folder [default: runs/<suite>/]; it may hold the suite's own run.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The suite seed of the folder (procedural and generated sets depend on it) [default: the suite's].
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_preprocess(s: &str) -> Result<Preprocess, String> {
    Preprocess::parse(s).map_err(|e| format!("{e:#}"))
}

pub fn run(args: CompareArgs) -> Result<()> {
    let suite = Suite::load(&args.suite)?;
    let source = match (args.onnx, args.arch, args.weights) {
        (Some(onnx), _, _) => ModelSource::Onnx(onnx),
        (None, Some(arch), Some(weights)) => ModelSource::Torchvision { arch, weights },
        _ => unreachable!("clap requires --onnx or both --arch and --weights"),
    };
    let out = args.out.unwrap_or_else(|| std::path::Path::new("runs").join(suite.name()));
    let request = CompareRequest {
        name: args.name,
        source,
        preprocess: args.preprocess,
        out: out.clone(),
        seed: args.seed,
        lock: PathBuf::from(shiftbench::fetch::lock::LOCK_FILE),
    };
    let summary = shiftbench::compare::compare(&suite, &request)?;
    println!(
        "{}: {} evaluation sets scored, {} already done ({})",
        request.name,
        summary.evaluated.len(),
        summary.skipped.len(),
        if summary.evaluated.is_empty() { "nothing new".to_string() } else { summary.evaluated.join(", ") }
    );
    super::leaderboard::print(&out)
}
