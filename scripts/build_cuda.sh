#!/usr/bin/env bash
# Compiles (and links) the CUDA backend headless: every .cu file under csrc/ goes through nvcc,
# so a GPU-breaking typo fails here. Used by .ci/run and scripts/gpu_check.sh.
#   scripts/build_cuda.sh [PYTHON]        (default: .venv/bin/python)
# By default the result goes to a scratch folder (a compile check); BUILD_INPLACE=1 installs it
# into le3d/ so that the package uses it (scripts/gpu_check.sh does that).
# Env: TORCH_CUDA_ARCH_LIST (default "8.0;9.0"), CUDA_HOME (default: found from nvcc).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -z "${CUDA_HOME:-}" ]; then
  for c in /usr/local/cuda "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc || echo /nonexistent/bin/nvcc)")")")"; do
    if [ -x "$c/bin/nvcc" ]; then export CUDA_HOME=$c; break; fi
  done
fi
[ -n "${CUDA_HOME:-}" ] || { echo "build_cuda: nvcc not found (set CUDA_HOME to the toolkit root)" >&2; exit 1; }
export CPATH="$SITE/nvidia/cu13/include${CPATH:+:$CPATH}"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"8.0;9.0"}
export MAX_JOBS=${MAX_JOBS:-2}
echo "build_cuda: CUDA_HOME=$CUDA_HOME arch=$TORCH_CUDA_ARCH_LIST"
if [ "${BUILD_INPLACE:-0}" = 1 ]; then
  LE3D_BUILD_CUDA=1 "$PY" setup.py -q build_ext --inplace
  echo "build_cuda: installed into le3d/: $(ls le3d/_C*.so)"
else
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  LE3D_BUILD_CUDA=1 "$PY" setup.py -q build_ext --build-lib "$scratch/lib" --build-temp "$scratch/tmp"
  ls "$scratch"/lib/le3d/_C*.so >/dev/null
  echo "build_cuda: every .cu file compiled and linked (scratch build, not installed)"
fi
