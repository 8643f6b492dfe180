#!/usr/bin/env python3
"""Evaluation throughput (issue 14, item 5): decode + preprocess + ResNet-50 at 224 px on every
core, shiftbench against PyTorch and onnxruntime on the same machine and the same JPEGs.

    cargo build --release
    python benches/eval_throughput/bench.py --work /tmp/throughput            # all four, 256 images
    python benches/eval_throughput/bench.py --work /tmp/throughput --only torch,shiftbench-onnx

Needs torch, torchvision, onnx, onnxscript, onnxruntime, Pillow, numpy and safetensors (the
project's measuring venv); nothing here runs in CI. --work gets (made once, reused):

  images/cNN/*.jpg   --images (256) JPEG "photos" at ImageNet-like sizes (500×375, 500×333,
                     375×500, 640×480, 500×500, 333×500, 800×600, 1024×768; Pillow quality 90,
                     4:2:0), 8 class folders as torchvision's ImageFolder wants. Smooth random
                     colour fields plus edges and sensor-like noise from numpy's seeded
                     generator, so that the JPEGs have photo-like sizes (tens of kB) and
                     decode costs.
  resnet50.safetensors, resnet50.onnx
                     torchvision's resnet50(weights=None) from torch.manual_seed(0), as a
                     state_dict and exported (dynamo, opset 18, dynamic batch).

Pipelines, each timed from the first image read to the last logit, after one untimed warm-up
run of the same pipeline on --warmup images (page cache, thread pools, kernel caches):

  torch             ImageFolder + DataLoader(batch 64, num_workers = cores, the eval transform
                    Resize(256) + CenterCrop(224) + ToTensor + Normalize) + resnet50 in eval
                    mode under torch.inference_mode(), torch.set_num_threads(cores)
  onnxruntime       the same DataLoader feeding onnxruntime's CPU session of resnet50.onnx
                    (intra_op_num_threads = cores)
  shiftbench        shiftbench predict --arch resnet50 --weights resnet50.safetensors images/
  shiftbench-onnx   shiftbench predict --onnx resnet50.onnx images/   (tract, portable kernels)

The ratios are shiftbench's images/s over the Python pipeline's (goal: at least 1.0). Run the
pairs back to back on a quiet machine; another build sharing the cores moves every figure.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [(500, 375), (500, 333), (375, 500), (640, 480), (500, 500), (333, 500), (800, 600), (1024, 768)]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def make_images(folder, count):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        w, h = SIZES[i % len(SIZES)]
        coarse = rng.uniform(0, 255, (h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
        img = np.array(Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BICUBIC), dtype=np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(3):  # a few hard edges, as objects have
            a, b, c = rng.normal(size=3)
            img[(a * xx + b * yy) > c * max(w, h)] *= rng.uniform(0.5, 1.0)
        img += rng.normal(0, 6, img.shape)
        path = os.path.join(folder, f"c{i % 8:02d}", f"{i:04d}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_models(work):
    import torch
    from safetensors.torch import save_file
    from torchvision.models import resnet50

    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(work, "resnet50.safetensors"))
    torch.onnx.export(
        model, (torch.randn(2, 3, 224, 224),), os.path.join(work, "resnet50.onnx"), dynamo=True, opset_version=18,
        input_names=["input"], output_names=["logits"], dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}}, external_data=False,
    )


def loader(folder, cores, limit=None):
    import torch
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    data = datasets.ImageFolder(folder, transform=tf)
    if limit:
        data = torch.utils.data.Subset(data, range(limit))
    return torch.utils.data.DataLoader(data, batch_size=64, num_workers=cores, shuffle=False)


def run_torch(work, folder, cores, limit=None):
    import torch
    from safetensors.torch import load_file
    from torchvision.models import resnet50

    torch.set_num_threads(cores)
    model = resnet50(weights=None).eval()
    model.load_state_dict(load_file(os.path.join(work, "resnet50.safetensors")))
    n, start = 0, time.perf_counter()
    with torch.inference_mode():
        for x, _ in loader(folder, cores, limit):
            model(x)
            n += len(x)
    return n, time.perf_counter() - start


def run_ort(work, folder, cores, limit=None):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = cores
    session = onnxruntime.InferenceSession(os.path.join(work, "resnet50.onnx"), opts, providers=["CPUExecutionProvider"])
    n, start = 0, time.perf_counter()
    for x, _ in loader(folder, cores, limit):
        session.run(None, {"input": x.numpy()})
        n += len(x)
    return n, time.perf_counter() - start


def run_shiftbench(binary, model_args, work, folder, limit=None):
    inputs = [folder]
    if limit:
        inputs = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)[:limit]
    cmd = [binary, "predict", *model_args, *inputs, "--out", os.path.join(work, "preds.csv")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    n = sum(len(fs) for _, _, fs in os.walk(folder)) if not limit else limit
    return n, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--only", default="torch,onnxruntime,shiftbench,shiftbench-onnx")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "shiftbench"))
    args = parser.parse_args()
    folder = os.path.join(args.work, "images")
    if not os.path.isdir(folder):
        make_images(folder, args.images)
    if not os.path.exists(os.path.join(args.work, "resnet50.onnx")):
        make_models(args.work)
    w = args.work
    pipelines = {
        "torch": lambda limit=None: run_torch(w, folder, args.cores, limit),
        "onnxruntime": lambda limit=None: run_ort(w, folder, args.cores, limit),
        "shiftbench": lambda limit=None: run_shiftbench(args.binary, ["--arch", "resnet50", "--weights", os.path.join(w, "resnet50.safetensors")], w, folder, limit),
        "shiftbench-onnx": lambda limit=None: run_shiftbench(args.binary, ["--onnx", os.path.join(w, "resnet50.onnx")], w, folder, limit),
    }
    results = {}
    for name in args.only.split(","):
        pipelines[name](args.warmup)
        n, seconds = pipelines[name]()
        results[name] = {"images": n, "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 2)}
        print(json.dumps({name: results[name]}), flush=True)
    for ours, theirs in [("shiftbench", "torch"), ("shiftbench-onnx", "onnxruntime"), ("shiftbench-onnx", "torch")]:
        if ours in results and theirs in results:
            print(f"{ours} / {theirs}: {results[ours]['images_per_s'] / results[theirs]['images_per_s']:.2f}x")
    print(f"cores {args.cores}, {sys.platform}")


if __name__ == "__main__":
    main()
