#!/usr/bin/env bash
# Prints one hash of what le3d's compiled extension is built from (csrc/, le3d/_build.py, setup.py) in
# the tree at $1 (default: this checkout). scripts/device_prebuild.sh stamps its builds with it, and
# scripts/gpu_check.sh uses a prebuilt extension only when its stamp equals the tree's.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
{ find csrc -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' -o -name '*.h' \); echo le3d/_build.py; echo setup.py; } \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
