#!/bin/bash
# Build-time CUDA 13.0 toolkit from PyPI wheels, for building `--features cuda` on a machine
# without NVIDIA's installer or a GPU. Creates $CUDA_VENV and $CUDA_HOME (defaults below):
# nvcc, headers, the unversioned .so links the linker wants, and a link-time-only stub of the
# driver library (soname libcuda.so.1; at run time the GPU driver's own is used).
set -euo pipefail
CUDA_VENV=${CUDA_VENV:-$HOME/.cache/shiftbench-cuda/venv}
CUDA_HOME=${CUDA_HOME:-$HOME/.cache/shiftbench-cuda/home}
python3 -m venv "$CUDA_VENV"
"$CUDA_VENV/bin/pip" install -q "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cccl==13.0.85" \
  "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88" "nvidia-cuda-nvrtc==13.0.88" "nvidia-cublas<13.2" "nvidia-curand<10.4.1"
C=$(echo "$CUDA_VENV"/lib/python3*/site-packages/nvidia/cu13)
mkdir -p "$CUDA_HOME/lib64/stubs" && cd "$CUDA_HOME"
ln -sfn "$C/bin" bin; ln -sfn "$C/include" include; ln -sfn "$C/nvvm" nvvm; ln -sfn lib64 lib
for l in cudart:13 cublas:13 cublasLt:13 curand:10 nvrtc:13; do n=${l%:*}; v=${l#*:}; ln -sf "$C/lib/lib$n.so.$v" "lib64/lib$n.so"; done
# Every driver entry point cudarc declares, each returning CUDA_ERROR_UNKNOWN (999).
R=$(echo ~/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | awk '{print $1}')
grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$R" | sed -E 's/^\s+fn //; s/\($//' | sort -u | awk '{print "int " $1 "(void){return 999;}"}' > lib64/stubs/libcuda_stub.c
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o lib64/stubs/libcuda.so lib64/stubs/libcuda_stub.c
"$CUDA_HOME/bin/nvcc" --version | tail -2
