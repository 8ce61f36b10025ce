#!/usr/bin/env bash
# Compiles here, before a device call, what scripts/gpu_check.sh would otherwise compile on the GPU
# machine, where the builds took about 135 s of each call (a session has 15 minutes of device time):
#   - le3d's CUDA extension, for the tree and for each patch named in PATCHES;
#   - gsplat's CUDA code, as the module gsplat.csrc (scripts/prebuild_gsplat.py).
# They are built for the lent machines (docs/gpu_check.md): Python 3.12, torch 2.11.0+cu130, sm_90 (H100,
# H200). Results go to .devprebuilt/ (git-ignored; debug info stripped: 4 MiB a le3d build, 14 for
# gsplat); name it in the call's carry. Each build is stamped with its sources (scripts/source_stamp.sh)
# and its target (Python, torch, GPU); gpu_check.sh uses one only where both match the tree and the
# machine, and builds there otherwise.
#
#   scripts/device_carry.sh && PATCHES="patches/a.patch" scripts/device_prebuild.sh
#
# The first run downloads torch 2.11 (530 MB) into a Python 3.12 venv; on 2 cores each le3d build takes
# 7-13 minutes and gsplat's 5 (45 minutes with three patches). Later runs redo only the builds whose
# sources changed (a few seconds when none did).
# Needs: python3.12, nvcc (CUDA 13), the project's .venv (its nvidia libraries let torch 2.11 import here).
# Env: DEVBUILD (the venv and build folders; default ~/.cache/le3d_devbuild), PATCHES, MAX_JOBS (2),
#      TORCH_VERSION (2.11.0), ARCH (9.0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEVBUILD=${DEVBUILD:-$HOME/.cache/le3d_devbuild}
TORCH_VERSION=${TORCH_VERSION:-2.11.0}
ARCH=${ARCH:-9.0}
OUT=$ROOT/.devprebuilt
VENV=$DEVBUILD/venv
PY=$VENV/bin/python

PY312=${PY312:-$(command -v python3.12 || true)}
[ -n "$PY312" ] || { echo "device_prebuild: python3.12 not found (set PY312)" >&2; exit 1; }
NV=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/nvidia 2>/dev/null | head -1)
[ -n "$NV" ] || { echo "device_prebuild: the project's .venv (make install) is missing" >&2; exit 1; }
ls .whl/gsplat-*.whl >/dev/null 2>&1 || { echo "device_prebuild: run scripts/device_carry.sh first" >&2; exit 1; }
# torch 2.11 loads its CUDA libraries on import; the project's CUDA torch has the same (CUDA 13) ones
LD_LIBRARY_PATH=$(printf '%s:' "$NV"/*/lib)${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} CPATH=$NV/cu13/include${CPATH:+:$CPATH}
export TORCH_CUDA_ARCH_LIST=$ARCH MAX_JOBS=${MAX_JOBS:-2} LE3D_BUILD_CUDA=1
mkdir -p .git/info "$OUT"
grep -qx '/.devprebuilt/' .git/info/exclude 2>/dev/null || echo '/.devprebuilt/' >> .git/info/exclude

if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "device_prebuild: a Python 3.12 venv with torch $TORCH_VERSION in $VENV"
  rm -rf "$VENV"
  "$PY312" -m venv "$VENV"
  "$PY" -m pip install -q --no-deps "torch==$TORCH_VERSION"
  "$PY" -m pip install -q ninja "setuptools<82" numpy typing-extensions filelock sympy networkx jinja2 fsspec \
    packaging
fi
# (installed once: a reinstall would renew its sources' times, and ninja would then rebuild gsplat whole)
GSPLAT_WHEEL=$(ls .whl/gsplat-*.whl | head -1)
GSPLAT_VERSION=$(basename "$GSPLAT_WHEEL" | cut -d- -f2)
"$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('gsplat') != '$GSPLAT_VERSION')" 2>/dev/null ||
  "$PY" -m pip install -q --no-deps --force-reinstall "$GSPLAT_WHEEL"
TARGET=$("$PY" -c "import sys, torch; print(f'cp{sys.version_info[0]}{sys.version_info[1]} torch {torch.__version__} sm_${ARCH/./}')")
echo "device_prebuild: target $TARGET"

# build_le3d SRC_TREE NAME: le3d's extension from SRC_TREE into $OUT/NAME, unless its stamp is current
build_le3d() {
  local src=$1 dest=$OUT/$2 stamp
  stamp=$(scripts/source_stamp.sh "$src")
  if [ "$(cat "$dest/STAMP" 2>/dev/null)" = "$stamp" ] && [ "$(cat "$dest/TARGET" 2>/dev/null)" = "$TARGET" ]; then
    echo "device_prebuild: $2 is current ($stamp)"; return
  fi
  echo "device_prebuild: building $2 ($stamp)"
  local work=$DEVBUILD/build_$(basename "$2")
  (cd "$src" && "$PY" setup.py -q build_ext --build-lib "$work/lib" --build-temp "$work/tmp") >"$work.log" 2>&1 \
    || { tail -30 "$work.log"; echo "device_prebuild: $2 failed to build ($work.log)" >&2; return 1; }
  rm -rf "$dest" && mkdir -p "$dest"
  strip --strip-debug -o "$dest/$(basename "$work"/lib/le3d/_C.cpython-*.so)" "$work"/lib/le3d/_C.cpython-*.so
  echo "$stamp" >"$dest/STAMP"
  echo "$TARGET" >"$dest/TARGET"
}

build_le3d "$ROOT" le3d
for patch in ${PATCHES:-}; do
  name=$(basename "$patch" .patch)
  src=$DEVBUILD/src_$name
  # a copy of the tree with the patch applied; cp -a keeps the files' times, so ninja rebuilds only what changed
  rm -rf "$src" && mkdir -p "$src"
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp -a --parents -t "$src"
  (cd "$src" && git apply "$ROOT/$patch") || { echo "device_prebuild: $patch does not apply" >&2; exit 1; }
  build_le3d "$src" "patches/$name"
done

GSPLAT_TARGET="$TARGET gsplat $("$PY" -c "import importlib.metadata as m; print(m.version('gsplat'))")"
if [ "$(cat "$OUT/gsplat/TARGET" 2>/dev/null)" = "$GSPLAT_TARGET" ] && [ -f "$OUT/gsplat/csrc.so" ]; then
  echo "device_prebuild: gsplat is current"
else
  echo "device_prebuild: building gsplat (the longest part)"
  "$PY" scripts/prebuild_gsplat.py "$DEVBUILD/gsplat_out" "$DEVBUILD/gsplat_build" >"$DEVBUILD/gsplat.log" 2>&1 \
    || { tail -30 "$DEVBUILD/gsplat.log"; echo "device_prebuild: gsplat failed to build" >&2; exit 1; }
  rm -rf "$OUT/gsplat" && mkdir -p "$OUT/gsplat"
  strip --strip-debug -o "$OUT/gsplat/csrc.so" "$DEVBUILD/gsplat_out/csrc.so"
  echo "$GSPLAT_TARGET" >"$OUT/gsplat/TARGET"
fi
du -sh "$OUT"
find "$OUT" -type f | sort
