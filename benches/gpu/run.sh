#!/bin/bash
# Run a CUDA-enabled shiftbench binary on the GPU machine (no Rust, no network needed).
# Usage: bash benches/gpu/run.sh BINARY [args...]   (BINARY or BINARY.xz, built by build.sh)
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$1"; shift
unxz_to() { # $1 = .xz file, $2 = output; xz if present, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; fi
}
if [ ! -e "$BIN" ] && [ -f "$BIN.xz" ]; then
  mkdir -p /tmp/shiftbench-gpu && out=/tmp/shiftbench-gpu/$(basename "$BIN")
  unxz_to "$BIN.xz" "$out" && chmod +x "$out" && BIN="$out" && echo "decompressed $BIN"
fi
# SEARCH_ROOTS overrides where to look (default: /opt /usr /root /home).
need=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10)  # NEEDED (+cublasLt via cublas); libcuda.so.1 comes from the driver
dirs=(); curand_found=
for lib in "${need[@]}"; do
  # Prefer the pip nvidia/cu13 layout (PyTorch cu130 venv), then anything else under /opt, /usr.
  f=$(find ${SEARCH_ROOTS:-/opt /usr /root /home} -name "$lib" \( -type f -o -type l \) 2>/dev/null | grep -v -e /stubs/ -e compat | sort | head -1)
  if [ -n "$f" ]; then d=$(dirname "$f"); echo "found $lib in $d"; dirs+=("$d"); [ "$lib" = libcurand.so.10 ] && curand_found=1
  else echo "MISSING $lib"; fi
done
# Keep one copy of each dir, cublas dir first so libcublasLt etc. come from the same place.
LDP=$(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd:)
if [ -z "$curand_found" ]; then
  if [ -f "$HERE/libcurand.so.10.xz" ]; then
    mkdir -p /tmp/curand && unxz_to "$HERE/libcurand.so.10.xz" /tmp/curand/libcurand.so.10 && LDP="$LDP:/tmp/curand"
    echo "using shipped real libcurand.so.10 (decompressed to /tmp/curand)"
  else
    LDP="$LDP:$HERE/fallback"
    echo "WARNING: using stub libcurand.so.10 (device randn/rand fail with CURAND_STATUS_INTERNAL_ERROR)"
  fi
fi
export LD_LIBRARY_PATH="$LDP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv 2>/dev/null || true
echo "--- ldd $BIN"; ldd "$BIN" | grep -E 'cuda|cublas|curand|nvrtc|not found'
echo "--- running $BIN $*"
exec "$BIN" "$@"
