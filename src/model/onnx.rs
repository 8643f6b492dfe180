//! Classifiers exported to ONNX, run by tract (pure Rust): any architecture PyTorch, timm or
//! another framework can export, evaluated through [`Classifier`] like our own ResNets.
//!
//! **The graph it takes**: one input `(batch, 3, H, W)` of float32, the batch a symbol or 1 and
//! H = W fixed or symbolic (then the caller's size is used), and one output `(batch, classes)`.
//! [`GraphSignature::read`] checks that on the protobuf itself, before tract builds anything, so
//! each mistake is one error naming the file and the fix.
//!
//! **Image by image.** Every image runs alone through a plan optimised for batch 1, on rayon's
//! threads: an image's logits then cannot depend on its batch mates, the batch size or the thread
//! count (tract may pick another kernel for another matrix shape, and a batch changes the shape),
//! and a graph with a fixed batch of 1 needs no special case. A convolution's matrix product is
//! already H·W columns wide at batch 1, so batching would buy little on the CPU.
//!
//! **CPU independence.** tract-linalg chooses its matrix-product and element-wise kernels at run
//! time from the CPU's instruction sets (AVX2/FMA, AVX-512 and more), and kernels of different
//! widths sum in different orders: the same model would give other last bits on another CPU
//! model. [`Kernels::Portable`] takes every x86-64 extension out of tract's kernel pool
//! (tract's `TRACT_CPU_ISA` knob, set before tract first probes the CPU), leaving its generic
//! Rust kernels, which sum each dot product in one fixed order; README "ONNX models" has what it
//! costs and what it changes.

use super::{Classifier, ClassifierInfo};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tract_onnx::pb::{self, tensor_proto::DataType};
use tract_onnx::prelude::*;
use tract_onnx::prelude::Tensor as TractTensor;

/// Where the README documents which architectures load and which operators are missing.
const COVERAGE: &str = "README section \"ONNX models\" lists the architectures checked and the operators tract lacks";

/// Which of tract's matrix-product kernels a process uses (chosen once per process: tract
/// probes the CPU once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// tract's generic Rust kernels only: the same logits on every x86-64 CPU.
    Portable,
    /// Whatever tract picks for this CPU (AVX2, FMA, AVX-512 ...): faster, but the last bits
    /// depend on the CPU model. For measurements, never for records.
    Native,
}

/// Makes tract use `kernels` for the rest of the process. Must run before tract first asks for
/// the CPU's features (it caches them); asking for the other choice later is an error.
pub fn use_kernels(kernels: Kernels) -> Result<()> {
    use tract_linalg::isa::{self, Arch, Isa};
    static CHOSEN: std::sync::OnceLock<Kernels> = std::sync::OnceLock::new();
    let chosen = *CHOSEN.get_or_init(|| {
        if kernels == Kernels::Portable {
            let arch = if cfg!(target_arch = "x86_64") { Some(Arch::X86_64) } else { None };
            let spec: Vec<String> = Isa::ALL.into_iter().filter(|i| Some(i.arch()) == arch && i.level() > 0).map(|i| format!("-{}", i.name())).collect();
            tract_linalg::knobs::TRACT_CPU_ISA.set(Some(spec.join(",")));
        }
        kernels
    });
    if chosen != kernels {
        bail!("this process already runs ONNX models with {chosen:?} kernels; tract cannot switch to {kernels:?} ones: use another process");
    }
    let level = isa::native().level();
    if kernels == Kernels::Portable && level > 0 {
        bail!("tract had probed this CPU ({:?}) before the portable kernels were chosen; its logits would depend on the CPU model", isa::native());
    }
    Ok(())
}

/// A dimension of the graph's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// Named (`dim_param`) or unnamed (`None`): chosen at load time.
    Symbolic(Option<String>),
}

/// What the graph's declared input and output say, read from the protobuf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphSignature {
    pub input: String,
    pub batch: Dim,
    /// Height and width of the input.
    pub spatial: [Dim; 2],
    /// The output's second dimension, when the graph declares it.
    pub classes: Option<usize>,
    /// Elements of the floating-point initializers: the weights.
    pub parameters: u64,
}

impl GraphSignature {
    /// Checks `model`'s input and output. Errors say what is wrong, not which file: the caller
    /// names it.
    pub fn read(model: &pb::ModelProto) -> Result<Self, String> {
        let graph = model.graph.as_ref().ok_or("it has no graph")?;
        let weights: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !weights.contains(i.name.as_str())).collect();
        let [input] = inputs[..] else {
            return Err(format!("it has {} inputs ({}); a classifier has one image input", inputs.len(), inputs.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ")));
        };
        let (elem, dims) = tensor_type(input).map_err(|e| format!("its input `{}` {e}", input.name))?;
        if elem != DataType::Float as i32 {
            return Err(format!(
                "its input `{}` is {}, not float32; shiftbench feeds normalised float32 images: export the model without the uint8/float16 preprocessing (e.g. wrap it so that it takes the float tensor torchvision's transform makes)",
                input.name,
                type_name(elem)
            ));
        }
        let shape = || dims.iter().map(|d| match d { Dim::Fixed(n) => n.to_string(), Dim::Symbolic(_) => "?".into() }).collect::<Vec<_>>().join(", ");
        if dims.len() != 4 {
            return Err(format!("its input `{}` has rank {} ({}), not (batch, 3, height, width); export it from a model that takes NCHW image batches", input.name, dims.len(), shape()));
        }
        if dims[1] != Dim::Fixed(3) {
            return Err(format!("its input `{}` is ({}), not (batch, 3, height, width): the channels must come second and be RGB; export it in NCHW layout", input.name, shape()));
        }
        if let Dim::Fixed(n) = dims[0] {
            if n != 1 {
                return Err(format!("its input `{}` has a fixed batch of {n}; export it with a dynamic batch axis (torch.onnx.export(..., dynamic_shapes=...) or dynamic_axes=...) or a batch of 1", input.name));
            }
        }
        let [output] = graph.output.as_slice() else {
            return Err(format!("it has {} outputs; a classifier has one, the logits (batch, classes)", graph.output.len()));
        };
        let (_, out_dims) = tensor_type(output).map_err(|e| format!("its output `{}` {e}", output.name))?;
        if out_dims.len() != 2 {
            return Err(format!("its output `{}` has rank {}, not (batch, classes); export the logits, not a feature map", output.name, out_dims.len()));
        }
        let classes = match out_dims[1] {
            Dim::Fixed(n) => Some(n),
            Dim::Symbolic(_) => None,
        };
        let parameters = graph.initializer.iter().filter(|t| is_float(t.data_type)).map(|t| t.dims.iter().map(|&d| d.max(0) as u64).product::<u64>()).sum();
        Ok(Self { input: input.name.clone(), batch: dims[0].clone(), spatial: [dims[2].clone(), dims[3].clone()], classes, parameters })
    }
}

fn tensor_type(value: &pb::ValueInfoProto) -> Result<(i32, Vec<Dim>), String> {
    let Some(pb::type_proto::Value::TensorType(t)) = value.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err("is not a tensor".into());
    };
    let shape = t.shape.as_ref().ok_or("has no declared shape")?;
    let dims = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if *n > 0 => Dim::Fixed(*n as usize),
            Some(pb::tensor_shape_proto::dimension::Value::DimParam(name)) if !name.is_empty() => Dim::Symbolic(Some(name.clone())),
            _ => Dim::Symbolic(None),
        })
        .collect();
    Ok((t.elem_type, dims))
}

fn is_float(data_type: i32) -> bool {
    [DataType::Float, DataType::Double, DataType::Float16, DataType::Bfloat16].iter().any(|&t| t as i32 == data_type)
}

fn type_name(elem: i32) -> String {
    DataType::try_from(elem).map(|t| t.as_str_name().to_lowercase()).unwrap_or_else(|_| format!("element type {elem}"))
}

/// An ONNX classifier, ready to run.
pub struct OnnxClassifier {
    plan: Arc<TypedRunnableModel>,
    path: PathBuf,
    size: usize,
    classes: usize,
    parameters: u64,
    device: Device,
}

impl OnnxClassifier {
    /// Loads `path` with [`Kernels::Portable`]. `size` is the side of the square images to feed
    /// it: required when the graph's height and width are symbolic, and when it fixes them they
    /// must be `size` (`None` takes the graph's).
    pub fn load(path: &Path, size: Option<usize>) -> Result<Self> {
        Self::load_with(path, size, Kernels::Portable)
    }

    pub fn load_with(path: &Path, size: Option<usize>, kernels: Kernels) -> Result<Self> {
        use_kernels(kernels)?;
        let file = path.display();
        std::fs::metadata(path).with_context(|| format!("cannot read ONNX model {file}"))?;
        let onnx = tract_onnx::onnx();
        let proto = onnx.proto_model_for_path(path).map_err(|e| {
            anyhow!("{file} is not an ONNX model ({e}); give a .onnx file as torch.onnx.export writes it")
        })?;
        let sig = GraphSignature::read(&proto).map_err(|e| anyhow!("ONNX model {file} is not an image classifier shiftbench can feed: {e}"))?;
        let size = match (&sig.spatial, size) {
            ([Dim::Fixed(h), Dim::Fixed(w)], _) if h != w => bail!("ONNX model {file} takes {h}×{w} images; shiftbench feeds square crops: export it with a square input size"),
            ([Dim::Fixed(h), Dim::Fixed(_)], Some(s)) if *h != s => {
                bail!("ONNX model {file} takes {h}×{h} images, not the {s}×{s} crops asked for: preprocess to {h} pixels (e.g. --preprocess imagenet:resize={},crop={h})", h * 8 / 7)
            }
            ([Dim::Fixed(h), Dim::Fixed(_)], _) => *h,
            (_, Some(s)) => s,
            (_, None) => bail!("ONNX model {file} leaves its input height and width symbolic: say which image size to feed it"),
        };
        // External weights (`model.onnx.data`) are found next to the file, as onnxruntime does.
        let dir = path.parent().and_then(|d| d.to_str());
        let parsed = onnx.parse(&proto, dir).map_err(|e| anyhow!("tract cannot read ONNX model {file}: {e:#}; {COVERAGE}"))?;
        drop(proto);
        if !parsed.unresolved_inputs.is_empty() {
            bail!("ONNX model {file} reads values no node makes ({}); the file is incomplete: export it again", parsed.unresolved_inputs.join(", "));
        }
        let model = parsed.model;
        if let Some(node) = model.nodes().iter().find(|n| n.op.name().starts_with("Unimplemented(")) {
            let op = node.op.name();
            let op = op.trim_start_matches("Unimplemented(").trim_end_matches(')');
            bail!("ONNX model {file} uses operator {op} (node `{}`), which tract does not implement: export the model without it (another opset, or a replacement for the module); {COVERAGE}", node.name);
        }
        let cannot_run = |e: TractError| anyhow!("tract cannot run ONNX model {file} on 1×3×{size}×{size} inputs: {e:#}; {COVERAGE}");
        // Intermediate shapes in the file name the input's symbols (`batch`), so those symbols
        // are bound to 1 and the size rather than the input fact replaced; unnamed ones get names.
        let mut model = model;
        let dims = [&sig.batch, &Dim::Fixed(3), &sig.spatial[0], &sig.spatial[1]];
        let name = |i: usize, d: &Dim| match d {
            Dim::Symbolic(Some(n)) => Some(n.clone()),
            Dim::Symbolic(None) => Some(format!("shiftbench_input_{i}")),
            Dim::Fixed(_) => None,
        };
        if dims.iter().any(|d| **d == Dim::Symbolic(None)) {
            let fact: Vec<TDim> = dims.iter().enumerate().map(|(i, d)| match d {
                Dim::Fixed(n) => TDim::from(*n),
                _ => model.sym(&name(i, d).unwrap_or_default()).into(),
            }).collect();
            model = model.with_input_fact(0, f32::fact(fact).into()).map_err(cannot_run)?;
        }
        let values = [1, 3, size, size];
        let subs: std::collections::HashMap<Symbol, TDim> = dims.iter().enumerate().filter_map(|(i, d)| Some((model.sym(&name(i, d)?), TDim::from(values[i])))).collect();
        let typed = model.into_typed().and_then(|m| m.set_symbols(&subs)).and_then(|m| m.into_optimized()).map_err(cannot_run)?;
        let out = typed.output_fact(0).map_err(cannot_run)?;
        let classes = match out.shape.as_concrete() {
            Some(&[1, classes]) if classes > 0 && sig.classes.is_none_or(|c| c == classes) => classes,
            _ => bail!("ONNX model {file} gives {:?} for one image, not (1, classes); export the logits", out.shape),
        };
        let plan = typed.into_runnable().map_err(cannot_run)?;
        Ok(Self { plan, path: path.to_owned(), size, classes, parameters: sig.parameters, device: Device::Cpu })
    }

    /// Logits of one normalised `size × size` NHWC image.
    fn run_one(&self, nhwc: &[f32]) -> Result<Vec<f32>> {
        let plane = self.size * self.size;
        let mut nchw = vec![0f32; 3 * plane];
        for (p, px) in nhwc.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                nchw[c * plane + p] = v;
            }
        }
        let input = TractTensor::from_shape(&[1, 3, self.size, self.size], &nchw)?;
        let out = self.plan.run(tvec!(input.into())).map_err(|e| anyhow!("ONNX model {} failed on an image: {e:#}", self.path.display()))?;
        let logits = out[0].cast_to::<f32>()?;
        Ok(logits.to_plain_array_view::<f32>()?.iter().copied().collect())
    }
}

impl Classifier for OnnxClassifier {
    fn logits(&mut self, batch: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = batch.dims4()?;
        if (h, w, c) != (self.size, self.size, 3) {
            bail!("ONNX model {} takes {s}×{s} RGB images, given a batch of {h}×{w}×{c}", self.path.display(), s = self.size);
        }
        let data = batch.flatten_all()?.to_vec1::<f32>()?;
        let rows: Vec<Vec<f32>> = data.par_chunks(h * w * c).map(|image| self.run_one(image)).collect::<Result<_>>()?;
        Ok(Tensor::from_vec(rows.concat(), (n, self.classes), &self.device)?)
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn input_size(&self) -> usize {
        self.size
    }

    fn info(&self) -> ClassifierInfo {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        ClassifierInfo { arch: format!("onnx:{name}"), parameters: self.parameters }
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
