"""Pillow's side of benches/preprocess.rs, and the maker of its synthetic image set.

    python benches/preprocess_pillow.py make DIR N        # N synthetic ImageNet-like JPEGs
    python benches/preprocess_pillow.py run LIST PROCS    # time the eval pipeline on the files

`run` reads the file paths (one a line) from LIST and does, per image, what a torchvision
ImageNet evaluation does on the CPU before the model: `Image.open(p).convert("RGB")`,
`Resize(256)` (bilinear), `CenterCrop(224)`, `ToTensor` + `Normalize` (as numpy float32,
channels last like shiftbench's). PROCS worker processes share the list (multiprocessing, as
torch's DataLoader workers would). It prints one JSON line: {"images": N, "seconds": S}.
"""

import json
import os
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocess(path, size=256, crop=224):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255)
    return (x - MEAN) / STD


def work(paths):
    total = 0.0
    for p in paths:
        total += float(preprocess(p)[0, 0, 0])  # use the result
    return total


def make(out, n):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        # ImageNet's typical photo: 500×375 or 375×500, 4:2:0, quality about 90.
        w, h = (500, 375) if i % 4 else (375, 500)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.stack([128 + 100 * np.sin(x / (9 + 5 * c + i % 7) + c) * np.cos(y / (13 - 3 * c) - i) for c in range(3)], -1)
        a += rng.normal(0, 10, a.shape).astype(np.float32)
        a[(x // 23 + y // 17 + i) % 3 == 0] *= 0.6
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(os.path.join(out, f"{i:04}.jpg"), quality=90)


def run(listing, procs):
    paths = [l for l in open(listing).read().splitlines() if l]
    if procs <= 1:
        t = time.perf_counter()
        work(paths)
        dt = time.perf_counter() - t
    else:
        import multiprocessing as mp

        chunks = [paths[i::procs] for i in range(procs)]
        with mp.get_context("fork").Pool(procs) as pool:
            pool.map(work, [paths[:procs]] * procs)  # start the workers before timing
            t = time.perf_counter()
            pool.map(work, chunks)
            dt = time.perf_counter() - t
    print(json.dumps({"images": len(paths), "seconds": dt}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2], int(sys.argv[3]))
