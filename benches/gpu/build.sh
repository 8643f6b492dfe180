#!/bin/bash
# Build the CUDA benchmarks for an H100/H200 (compute capability 9.0) against the toolkit that
# toolkit.sh makes; prints the bench binary to carry to the GPU machine (then: run.sh BINARY).
# Measured here: ~45 min cold on 2 busy cores (candle's kernels are most of it), minutes after.
set -euo pipefail
export CUDA_HOME=${CUDA_HOME:-$HOME/.cache/shiftbench-cuda/home}
export PATH=$CUDA_HOME/bin:$PATH CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} LIBRARY_PATH=$CUDA_HOME/lib64:$CUDA_HOME/lib64/stubs
cd "$(dirname "$0")/../.."
cargo bench --features cuda --bench generate --no-run 2>&1 | tee /dev/stderr | grep -o 'target/[^)]*generate-[0-9a-f]*'
