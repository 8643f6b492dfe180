#!/usr/bin/env python3
"""Exports torchvision classifiers to ONNX for the README's ONNX coverage table (not committed:
100-350 MB each), with onnxruntime's and PyTorch's logits for the committed fixture PNGs.

    python benches/onnx/export_zoo.py --out /tmp/onnx-zoo           # all five models
    SHIFTBENCH_ONNX_ZOO=/tmp/onnx-zoo cargo test --release --test onnx -- --ignored --nocapture zoo

Models: resnet50, convnext_tiny, vit_b_16, efficientnet_b0, mobilenet_v3_large, built with
`weights=None` (no download) from torch.manual_seed(SEED + index), in eval mode. Random
initialisation leaves some outputs degenerate, so two things are changed after it: ViT-B/16's
head is zero-initialised by torchvision (every logit 0), so it is redrawn from N(0, 0.02²); and
every BatchNorm gets running statistics and affine parameters drawn at random (mean N(0, 0.1²),
variance U(0.5, 1.5), weight U(0.5, 1.5), bias N(0, 0.1²)), so that eval-mode BN is not the
identity. Exported with `torch.onnx.export(dynamo=True, opset_version=OPSET)`, a dynamic batch
axis, the weights inside the file (`external_data=False`).

For each model NAME the folder gets NAME.onnx, NAME.ort.npy (onnxruntime 1.32 CPU logits,
float32 (images, 1000)) and NAME.torch.npy (PyTorch's, one thread), and manifest.json lists the
models, the opset, the images (fixtures/predict/png, sorted; preprocessed by torchvision's eval
transform under Pillow 13, which `--preprocess imagenet:pillow=13` reproduces bit for bit) and
the versions. Made with torch 2.15.0, torchvision 0.29.2, onnx 1.23.2, onnxscript 0.7.2,
onnxruntime 1.32.0, Pillow 13.0.0.
"""

import argparse
import json
import os
import time

import numpy as np
import onnx
import onnxruntime
import PIL
import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torchvision import models, transforms

SEED = 20261202
OPSET = 18
MODELS = ["resnet50", "convnext_tiny", "vit_b_16", "efficientnet_b0", "mobilenet_v3_large"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PNG = os.path.join(ROOT, "fixtures", "predict", "png")
TRANSFORM = transforms.Compose(
    [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
)


def build(name, index):
    torch.manual_seed(SEED + index)
    model = getattr(models, name)(weights=None)
    g = torch.Generator().manual_seed(SEED + 100 + index)
    with torch.no_grad():
        if name == "vit_b_16":
            model.heads.head.weight.normal_(0, 0.02, generator=g)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", action="append", help=", ".join(MODELS))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    images = sorted(os.listdir(PNG))
    x = torch.stack([TRANSFORM(Image.open(os.path.join(PNG, f)).convert("RGB")) for f in images])
    done = []
    for index, name in enumerate(MODELS):
        if args.model and name not in args.model:
            continue
        model = build(name, index)
        path = os.path.join(args.out, f"{name}.onnx")
        start = time.time()
        torch.onnx.export(
            model, (x[:2],), path, dynamo=True, opset_version=OPSET, input_names=["input"], output_names=["logits"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}}, external_data=False,
        )
        proto = onnx.load(path)
        ops = sorted({n.op_type for n in proto.graph.node})
        with torch.no_grad():
            ref = model(x).numpy()
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        ort = session.run(None, {"input": x.numpy()})[0]
        np.save(os.path.join(args.out, f"{name}.ort.npy"), ort.astype(np.float32))
        np.save(os.path.join(args.out, f"{name}.torch.npy"), ref.astype(np.float32))
        row = {
            "name": name, "file": f"{name}.onnx", "bytes": os.path.getsize(path), "ops": ops,
            "max_abs_ort_minus_torch": float(np.abs(ort - ref).max()), "max_abs_logit": float(np.abs(ref).max()),
            "same_top1_ort_torch": bool((ort.argmax(1) == ref.argmax(1)).all()), "export_s": round(time.time() - start, 1),
        }
        print(json.dumps(row))
        done.append(row)
    manifest = {
        "opset": OPSET, "seed": SEED, "preprocess": "imagenet:pillow=13", "images": [f"fixtures/predict/png/{f}" for f in images], "models": done,
        "torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "pillow": PIL.__version__,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
