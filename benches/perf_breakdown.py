"""Where a training step goes: categorise `perf` samples of the training benchmark.

    RAYON_NUM_THREADS=1 SHIFTBENCH_BENCH_RUNS=1 SHIFTBENCH_TORCH_PYTHON=none \
        perf record -F 199 --call-graph dwarf,16384 -o step.perf target/release/deps/training-<hash>
    perf script -i step.perf | python3 benches/perf_breakdown.py

Only samples under `shiftbench::train::train` count. Each is put in a phase (forward, backward,
optimiser, batch assembly) by the frames above it and in a kind of work by the innermost frame
that names one (GEMM, im2col/col2im, batch norm, residual add+ReLU, candle's gradient buffers).
"""

import collections
import sys

KINDS = [  # first match from the leaf outwards wins
    ("GEMM", ("gemm",)),
    ("im2col/col2im", ("im2col", "col2im", "Im2Col", "Col2Im")),
    ("batch norm", ("BatchNorm", "column_sums", "fused::affine", "column_mean", "repeat_rows")),
    ("residual add+ReLU", ("AddRelu",)),
    ("gradient buffers: zero-fill", ("GradStore::or_insert",)),
    ("gradient buffers: accumulate, primitive backward ops", ("backprop",)),
    ("batch norm", ("ConvBn::forward",)),
    ("optimiser", ("Sgd",)),
    ("batch assembly", ("batch_tensor",)),
]


def classify(frames):
    stack = "\n".join(frames)
    if "shiftbench::train::train" not in stack:
        return None
    if "backprop" in stack and "backward" in stack:
        phase = "backward"
    elif "Sgd" in stack:
        phase = "optimiser"
    elif "batch_tensor" in stack:
        phase = "batch assembly"
    else:
        phase = "forward"
    for frame in frames:
        for kind, needles in KINDS:
            if any(n in frame for n in needles):
                return f"{phase}: {kind}"
    return f"{phase}: other"


def main():
    counts, frames = collections.Counter(), []
    for line in sys.stdin:
        if not line.strip():
            category = classify(frames) if frames else None
            if category:
                counts[category] += 1
            frames = []
        elif line[0] in " \t":
            parts = line.strip().split(" ", 1)
            frames.append(parts[-1])
    total = sum(counts.values())
    for category, n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {category}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
