//! `shiftbench predict`: top-5 classes and logits of a classifier for image files.

use anyhow::Result;
use shiftbench::data::image::Preprocess;
use shiftbench::model::NamedArch;
use shiftbench::predict::{ModelSource, PredictRequest, DEFAULT_BATCH};
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Run a classifier on image files and write what it predicts: PREDS.csv with each \
image's five highest-scoring classes, and optionally LOGITS.npy with every logit.\n\n\
Each PATH is an image file (PNG or JPEG, whatever its name) or a folder, whose files ending in .png, .jpg or \
.jpeg (any case) are read recursively, hidden files left out, sorted by path component by component with \
each name in byte order (10.png before 9.png, B.png before a.png, a/x.png before a.png), as image sets read \
folders. Images are decoded as PIL's Image.open(f).convert(\"RGB\") does (PNG exactly, \
JPEG within a few levels: zune-jpeg, not libjpeg-turbo) and preprocessed as torchvision's eval transform \
on a PIL image (`imagenet`: Resize(256) with Pillow's antialiased bilinear, CenterCrop(224), ToTensor, \
Normalize), so the logits are those PyTorch gives for the same weights to float rounding.\n\n\
PREDS.csv has the columns path,top1,top2,top3,top4,top5: the image's path as listed, then class indices \
(0-based, the order of the weights' fc rows; for ImageNet weights the torchvision index of the sorted \
wnids) from the highest logit down, equal logits ranked by the lower index. Rows are in input order. \
LOGITS.npy is a float32 array of shape (images, classes) in the same row order (numpy .npy v1.0, \
little-endian, C order).\n\n\
The classifier is either a torchvision ResNet (--arch with --weights: a safetensors file with \
torchvision or timm tensor names, e.g. a torchvision state_dict saved with safetensors.torch.save_file; \
the number of classes is taken from fc.weight) or any network exported to ONNX (--onnx: one float32 \
input (batch, 3, H, W) with the batch dynamic or 1, one output (batch, classes); a fixed H×W must equal \
the --preprocess crop, a symbolic one is fed the crop). ONNX graphs run in tract's portable kernels, so \
their logits are the same on every x86-64 CPU; the README's \"ONNX models\" section lists the \
architectures checked. The output does not depend on --batch-size or the number of threads. An image that cannot be read is an error naming it \
(exit status 1) unless --skip-unreadable leaves it out of both outputs and lists it at the end.";

pub const AFTER_HELP: &str = "Examples:\n  \
shiftbench predict --arch resnet50 --weights resnet50.safetensors imagenet-r/ --out preds.csv --logits logits.npy\n  \
shiftbench predict --arch resnet18 --weights r18.safetensors cat.jpg dog.png --out preds.csv\n  \
shiftbench predict --onnx convnext_tiny.onnx imagenet-sketch/ --out preds.csv\n  \
shiftbench predict --arch resnet50 --weights timm-r50.safetensors --preprocess timm:crop_pct=0.95,interpolation=bicubic photos/ --out p.csv\n\n\
Reading the outputs in Python:\n  \
import csv, numpy as np\n  \
logits = np.load(\"logits.npy\")             # shape (images, classes), float32\n  \
rows = list(csv.DictReader(open(\"preds.csv\")))\n  \
assert int(rows[0][\"top1\"]) == logits[0].argmax()";

#[derive(clap::Args)]
pub struct PredictArgs {
    /// Network architecture of the weights (with --weights; or give --onnx instead): resnet18,
    /// resnet34, resnet50, or a harness description such as resnet-w16-b1-s3 or
    /// resnet-imagenet-basic-w8-l1.1.1.1.
    #[arg(long, value_parser = parse_arch, value_name = "ARCH", requires = "weights", required_unless_present = "onnx")]
    pub arch: Option<String>,
    /// safetensors weights with torchvision/timm tensor names (conv1.weight, ..., fc.weight).
    #[arg(long, value_name = "FILE", requires = "arch")]
    pub weights: Option<PathBuf>,
    /// An ONNX classifier of any architecture (torch.onnx.export), instead of --arch/--weights.
    #[arg(long, value_name = "MODEL.onnx", conflicts_with_all = ["arch", "weights"])]
    pub onnx: Option<PathBuf>,
    /// Eval transform: `imagenet` (torchvision's Resize(256) + CenterCrop(224)), or
    /// `imagenet:resize=N,crop=N,interpolation=bicubic`, or
    /// `timm:size=224,crop_pct=0.875,interpolation=bilinear|bicubic`; add `pillow=13` to
    /// resample in Pillow 13's pass order (the default is Pillow 12's, which made the published
    /// numbers; they differ on images more than twice as tall as wide).
    #[arg(long, value_parser = parse_preprocess, default_value = "imagenet", value_name = "SPEC")]
    pub preprocess: Preprocess,
    /// Image files and folders of images, predicted in this order.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Predictions CSV: path,top1,top2,top3,top4,top5.
    #[arg(long, value_name = "PREDS.csv")]
    pub out: PathBuf,
    /// Also write every logit, a float32 .npy of shape (images, classes).
    #[arg(long, value_name = "LOGITS.npy")]
    pub logits: Option<PathBuf>,
    /// Leave images that cannot be read out of the outputs (listed at the end) instead of stopping.
    #[arg(long)]
    pub skip_unreadable: bool,
    /// Images per forward pass (memory and speed only: the outputs are the same).
    #[arg(long, default_value_t = DEFAULT_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub batch_size: u32,
}

fn parse_arch(s: &str) -> Result<String, String> {
    match shiftbench::model::ArchConfig::from_description(s, 1, 224) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("unknown architecture `{s}`: use one of {} or a description such as resnet-imagenet-basic-w8-l1.1.1.1 (stem, block, width, blocks per stage)", NamedArch::ALL.map(|a| a.name()).join(", "))),
    }
}

fn parse_preprocess(s: &str) -> Result<Preprocess, String> {
    Preprocess::parse(s).map_err(|e| format!("{e:#}"))
}

pub fn run(args: PredictArgs) -> Result<()> {
    let model = match (args.onnx, args.arch, args.weights) {
        (Some(onnx), _, _) => ModelSource::Onnx(onnx),
        (None, Some(arch), Some(weights)) => ModelSource::Torchvision { arch, weights },
        _ => anyhow::bail!("give --onnx MODEL.onnx, or --arch with --weights"),
    };
    let request = PredictRequest {
        model,
        preprocess: args.preprocess,
        inputs: args.paths,
        out: args.out,
        logits: args.logits,
        skip_unreadable: args.skip_unreadable,
        batch_size: args.batch_size as usize,
    };
    let summary = shiftbench::predict::run(&request)?;
    if !summary.skipped.is_empty() {
        eprintln!("skipped {} unreadable images (left out of the outputs):", summary.skipped.len());
        for s in &summary.skipped {
            eprintln!("  {s}");
        }
    }
    println!("wrote {} ({} images, top-5 of {} classes)", request.out.display(), summary.images, summary.classes);
    if let Some(p) = &request.logits {
        println!("wrote {} (float32, shape ({}, {}))", p.display(), summary.images, summary.classes);
    }
    Ok(())
}
