#!/usr/bin/env bash
# Prepares what a device call carries (docs/gpu_check.md): the lent GPU machines have Python 3.12 with
# torch but no package registry and no ../shared, so the call takes along
#   .whl/     wheels of the packages their image lacks (gsplat for the side-by-side benchmark, rawpy and
#             OpenEXR, which le3d imports), downloaded here for CPython 3.12 / manylinux x86-64;
#   .devdata/ the two shared test files the CUDA-marked tests read (garden SfM points, one HDR image).
# Both are git-ignored (.whl by .gitignore, .devdata by .git/info/exclude). A fresh checkout has neither,
# so run this once before the session's first device call (about 20 s, about 15 MiB):
#   scripts/device_carry.sh            # then run(carry=[".whl", ".devdata"], ...)
# and scripts/device_prebuild.sh after it, so that the call compiles nothing (carry ".devprebuilt" too).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
SHARED=${SHARED:-../shared/data}
# One version of each (two stop the device's install). gsplat pinned as the benchmark names it.
PACKAGES=${PACKAGES:-"gsplat==1.5.3 rawpy==0.28.0 OpenEXR==3.5.3"}

mkdir -p .git/info
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo '/.devdata/' >> .git/info/exclude

rm -rf .whl && mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
for spec in $PACKAGES; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "$spec"
done

rm -rf .devdata && mkdir -p .devdata/garden .devdata/hdr
cp "$SHARED/garden/test_garden.npz" .devdata/garden/
cp "$SHARED/hdr/albert.exr" .devdata/hdr/

ls -l .whl
du -sh .whl .devdata
git status --short --ignored .whl .devdata | sed 's/^/git: /'
