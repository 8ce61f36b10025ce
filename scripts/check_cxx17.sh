#!/usr/bin/env bash
# Checks that the C++ sources still parse as C++17. The GPU machines build the extension with their
# own torch (2.11), which compiles extensions as C++17, while the torch of our venv (2.14) requires
# C++20: a C++20-only construct (std::type_identity_t, once) builds here and in CI, then fails the
# build there and wastes the GPU session. The venv's torch headers refuse C++17 outright and do not
# parse as C++17 themselves, so this copies them with the refusal removed, runs g++ -std=c++17
# -fsyntax-only over every .cpp file under csrc/ (with LE3D_WITH_CUDA defined, so the CUDA branches
# of the C++ files and the headers they share with the kernels are read too) and fails on any
# error reported in our own files (errors inside torch's headers are expected and ignored).
# The .cu files are not covered (nvcc's front end gives up in torch's headers first).
#   scripts/check_cxx17.sh [PYTHON]        (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
CXX=${CXX:-g++}
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
TORCH_INC=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$TORCH_INC" "$scratch/include"
grep -rl "C++20 or later compatible compiler is required" "$scratch/include" | while read -r f; do
  sed -i '/C++20 or later compatible compiler is required/d' "$f"
done
cuda_home=
for c in "${CUDA_HOME:-}" /usr/local/cuda "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc || echo /none/bin/nvcc)")")")"; do
  if [ -n "$c" ] && [ -f "$c/include/cuda_runtime.h" ]; then cuda_home=$c; break; fi
done
flags=(-std=c++17 -fsyntax-only -fopenmp -Icsrc/include -I"$scratch/include"
       -I"$scratch/include/torch/csrc/api/include" -I"$PYINC")
if [ -n "$cuda_home" ]; then
  flags+=(-DLE3D_WITH_CUDA -I"$cuda_home/include")
else
  echo "check_cxx17: no CUDA toolkit found (CUDA_HOME): the LE3D_WITH_CUDA branches are not checked"
fi
check_one() {  # prints our errors (csrc/FILE:LINE:COL: error) and any fatal error (a missing header)
  "$CXX" "${flags[@]}" "$1" 2>&1 | grep -E "^csrc/[^:]+:[0-9]+:[0-9]+: error|fatal error" | head -20 \
    | sed "s|^|$1: |"
}
export -f check_one
export CXX
export flags_str="${flags[*]}"
find csrc -name '*.cpp' | sort | xargs -P "$(nproc)" -I{} bash -c 'flags=($flags_str); check_one {}' > "$scratch/errors"
if [ -s "$scratch/errors" ]; then
  echo "check_cxx17: not C++17 (or not checkable):"; cat "$scratch/errors"; exit 1
fi
echo "check_cxx17: every csrc/*.cpp parses as C++17"
