#!/usr/bin/env bash
# The GPU check: one command on a machine with an NVIDIA GPU (an H100 in under 8 minutes).
#   1. builds the CUDA backend into le3d/ (scripts/build_cuda.sh, BUILD_INPLACE=1); gsplat's own
#      CUDA code compiles in the background meanwhile (gsplat 1.5 compiles on first use). Builds that
#      scripts/device_prebuild.sh made on the dev machine (.devprebuilt/, carried) are used instead
#      where their sources, Python, torch and GPU match: no compiling on the device at all
#   2. runs every CUDA test against the PyTorch/CPU reference (pytest -m cuda); when one fails,
#      scripts/cuda_smoke.py under compute-sanitizer memcheck (line numbers of bad accesses)
#   3. scripts/bench_raster.py on the GPU, with gsplat side by side when it built (the random scenes;
#      the real garden scene last, after the patches, in what time is left)
#   3b. scripts/profile_raster.py: the kernels that take a 1M/1080p step's time (le3d and gsplat)
#   3c. scripts/bench_host.py: a tiny scene's step, i.e. the host overhead of a render
#   4. the viewer's server-side frame time at 1080p with 1M Gaussians
#   5. a short GPU training run of the synthetic scene (le3d synth + le3d train + le3d eval)
#   6. prints one short table; full logs go to $OUT (or ./gpu_check_logs)
#   7. (PATCHES="a.patch b.patch") each patch applied to a copy of the tree, built there in the
#      background while steps 1-5 run, then its CUDA tests, benchmark and profile: kernel variants
#      timed in the same device call as the tree they would change
# Every step has a time limit and the whole check a budget, so a hang or a slow build never eats
# the rest: a step that would start with too little time left is reported as skipped.
# Env: PY (python; default .venv/bin/python, else python3), SKIP_GSPLAT=1, SKIP_TRAIN=1, SKIP_VIEWER=1, NCU=1 (Nsight
#      Compute metrics of the two rasterizer kernels: occupancy, registers, stall reasons),
#      BUDGET (s, default 480), GSPLAT_JOBS / MAX_JOBS (parallel compile jobs), CUDA_TESTS (files),
#      PATCHES (patch files, see 7), PATCH_JOBS (compile jobs per patch build, default 4).
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu_check_logs}
mkdir -p "$LOGS"
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
BUDGET=${BUDGET:-480}
CORES=$(nproc)
declare -A RESULT
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( BUDGET - $(elapsed) )); }
step() { echo; echo "=== $1 ($(elapsed) s)"; }
# limit STEP_MAX: the smaller of STEP_MAX and the budget left (minus a reserve for the summary)
limit() { local l=$(( $(left) - 10 )); [ "$l" -lt 1 ] && l=1; [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOGS/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a "$LOGS/gpu.txt"
# What a prebuilt extension must have been built for (scripts/device_prebuild.sh writes it beside each)
DEVICE_TARGET=
if [ -d .devprebuilt ]; then
  DEVICE_TARGET=$("$PY" -c "import sys, torch; c = torch.cuda.get_device_capability(); print(f'cp{sys.version_info[0]}{sys.version_info[1]} torch {torch.__version__} sm_{c[0]}{c[1]}')")
  echo "prebuilt extensions must be for: $DEVICE_TARGET"
fi
# prebuilt_ok DIR TREE: DIR holds le3d's extension built from TREE's sources for this Python, torch and GPU
prebuilt_ok() {
  ls "$1"/_C.cpython-*.so >/dev/null 2>&1 && [ "$(cat "$1/TARGET" 2>/dev/null)" = "$DEVICE_TARGET" ] &&
    [ "$(cat "$1/STAMP" 2>/dev/null)" = "$(scripts/source_stamp.sh "$2")" ]
}
# gsplat_prebuilt_ok DIR VERSION: DIR holds gsplat VERSION's CUDA module built for this Python, torch and GPU
gsplat_prebuilt_ok() {
  [ -f "$1/csrc.so" ] && [ "$(cat "$1/TARGET" 2>/dev/null)" = "$DEVICE_TARGET gsplat $2" ]
}
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; c=torch.cuda.get_device_capability(); print(f'{c[0]}.{c[1]}')")
  export TORCH_CUDA_ARCH_LIST
fi

# The extension in le3d/ loads, has the CUDA backend and its kernels run (a 16x16 render of 4 Gaussians
# with gradients). It imports le3d._C itself first: le3d's loader would compile the extension just in
# time if that import failed.
has_cuda_backend() {
  timeout "$(limit 90)" "$PY" -c "
from le3d import _C
import torch, le3d
assert _C.with_cuda
d = dict(device='cuda')
means = torch.tensor([[0.0, 0.0, 3.0]], **d).repeat(4, 1).requires_grad_()
out = le3d.rasterize_gaussians(means, torch.tensor([[1.0, 0, 0, 0]], **d).repeat(4, 1), torch.full((4, 3), 0.3, **d),
    torch.full((4,), 0.5, **d), torch.ones(4, 3, **d), torch.eye(4, **d),
    torch.tensor([[16.0, 0, 8], [0, 16, 8], [0, 0, 1]], **d), 16, 16, backend='cuda')
out.image.sum().backward()
torch.cuda.synchronize()
assert out.image.sum() > 0 and torch.isfinite(means.grad).all()
"
}
# The tree's prebuilt extension, tried first: where it runs, gsplat's and the patches' prebuilt ones are
# used too
PREBUILT_RUNS=0
if prebuilt_ok .devprebuilt/le3d .; then
  step "prebuilt CUDA backend (scripts/device_prebuild.sh): does it run here?"
  cp .devprebuilt/le3d/_C.cpython-*.so le3d/ && has_cuda_backend && PREBUILT_RUNS=1
  echo "prebuilt extension runs: $PREBUILT_RUNS"
fi

GSPLAT_PID=
GSPLAT_DIR=$("$PY" -c "import importlib.util as u; s = u.find_spec('gsplat'); print(s.submodule_search_locations[0] if s else '')")
if [ "$PREBUILT_RUNS" = 1 ] && [ -n "$GSPLAT_DIR" ] && gsplat_prebuilt_ok .devprebuilt/gsplat \
     "$("$PY" -c "import importlib.metadata as m; print(m.version('gsplat'))")"; then
  cp .devprebuilt/gsplat/csrc.so "$GSPLAT_DIR/csrc.so" && echo "gsplat: its CUDA code prebuilt here (gsplat.csrc)"
fi
if [ "${SKIP_GSPLAT:-0}" != 1 ] && [ -n "$GSPLAT_DIR" ]; then
  step "gsplat: compiling its CUDA code in the background"
  ( MAX_JOBS=${GSPLAT_JOBS:-$(( CORES * 3 / 4 ))} timeout "$(limit 420)" "$PY" -c \
      "from gsplat.cuda._backend import _C; assert _C is not None; print('gsplat CUDA ready')" \
      >"$LOGS/gsplat_build.log" 2>&1 ) &
  GSPLAT_PID=$!
else
  RESULT[gsplat]="not installed or skipped"
fi

# 7 (started here, finished at the end): a copy of the tree per patch, built in the background
declare -A PATCH_DIR PATCH_PID
for patch in ${PATCHES:-}; do
  name=$(basename "$patch" .patch)
  dir=/tmp/le3d_variant_$name
  step "patch $name: building a patched copy in $dir (background)"
  rm -rf "$dir"; mkdir -p "$dir"
  tar cf - --exclude=./gpu_check_logs --exclude='./le3d/_C*.so' --exclude=./build --exclude=./.venv --exclude=./.devprebuilt . | tar xf - -C "$dir"
  [ -e "$dir/../shared/data" ] || { mkdir -p "$dir/../shared"; ln -sfn "$PWD/../shared/data" "$dir/../shared/data"; }
  if ! (cd "$dir" && git apply "$OLDPWD/$patch" 2>"$LOGS/patch_$name.log" || patch -p1 <"$OLDPWD/$patch" >>"$LOGS/patch_$name.log" 2>&1); then
    RESULT[patch_$name]="does not apply (patch_$name.log)"; continue
  fi
  if [ "$PREBUILT_RUNS" = 1 ] && prebuilt_ok ".devprebuilt/patches/$name" "$dir"; then
    ( cp .devprebuilt/patches/"$name"/_C.cpython-*.so "$dir/le3d/" && echo "prebuilt (device_prebuild.sh)" \
      >"$LOGS/patch_${name}_build.log" ) &
  else
    ( cd "$dir" && MAX_JOBS=${PATCH_JOBS:-4} BUILD_INPLACE=1 timeout "$(limit 360)" scripts/build_cuda.sh "$PY" \
        >"$LOGS/patch_${name}_build.log" 2>&1 ) &
  fi
  PATCH_PID[$name]=$!; PATCH_DIR[$name]=$dir
done

step "build CUDA backend"
if [ "$PREBUILT_RUNS" = 1 ]; then
  RESULT[build]="ok (prebuilt by scripts/device_prebuild.sh)"
elif MAX_JOBS=${MAX_JOBS:-4} BUILD_INPLACE=1 timeout "$(limit 300)" scripts/build_cuda.sh "$PY" >"$LOGS/build.log" 2>&1; then
  RESULT[build]=ok
else
  RESULT[build]=FAILED; grep -E "error" "$LOGS/build.log" | head -20; tail -5 "$LOGS/build.log"
  echo "build failed: nothing else can run (logs in $LOGS)"; exit 1
fi
"$PY" -c "import le3d; print(le3d.backend_info())" | tee -a "$LOGS/gpu.txt"

step "CUDA tests (pytest -m cuda)"
CUDA_TESTS=${CUDA_TESTS:-"tests/test_validate.py tests/test_raster_gaussians.py tests/test_projection_fused.py tests/test_convex_raster.py tests/test_tile_binning.py tests/test_post_refocus.py tests/test_post_tonemap.py tests/test_train_audit.py"}
PYTEST_TIMEOUT=$("$PY" -c "import pytest_timeout" 2>/dev/null && echo "--timeout=120")
# shellcheck disable=SC2086
timeout "$(limit 240)" "$PY" -m pytest -q -m cuda -p no:cacheprovider $PYTEST_TIMEOUT $CUDA_TESTS 2>&1 \
  | tee "$LOGS/pytest_cuda.log" | tail -25
RESULT[tests]=$(grep -E "passed|failed|error" "$LOGS/pytest_cuda.log" | tail -1)
[ -n "${RESULT[tests]}" ] || RESULT[tests]="no result (timed out?)"
if ! grep -qE "passed" <<<"${RESULT[tests]}" || grep -qE "[0-9]+ (failed|error)" <<<"${RESULT[tests]}"; then
  step "smoke test under compute-sanitizer (a test failed)"
  timeout "$(limit 90)" "$PY" scripts/cuda_smoke.py 2>&1 | tee "$LOGS/smoke.log" | tail -30
  if command -v compute-sanitizer >/dev/null; then
    timeout "$(limit 120)" compute-sanitizer --tool memcheck --print-limit 20 "$PY" scripts/cuda_smoke.py \
      >"$LOGS/sanitizer.log" 2>&1
    grep -E "ERROR SUMMARY|Invalid|at .*\.(cu|h):[0-9]+" "$LOGS/sanitizer.log" | head -20
  fi
fi

step "raster benchmark (GPU)"
BENCH_ARGS=()
if [ -n "$GSPLAT_PID" ]; then
  echo "waiting for gsplat's build (at most $(limit 200) s more)"
  waited=0
  while kill -0 "$GSPLAT_PID" 2>/dev/null && [ "$waited" -lt "$(limit 200)" ]; do sleep 5; waited=$((waited + 5)); done
  if grep -q "gsplat CUDA ready" "$LOGS/gsplat_build.log" 2>/dev/null; then
    RESULT[gsplat]=ok
  else
    RESULT[gsplat]="unavailable (see gsplat_build.log)"; tail -5 "$LOGS/gsplat_build.log"
    BENCH_ARGS+=(--no-gsplat)
  fi
  kill "$GSPLAT_PID" 2>/dev/null
else
  BENCH_ARGS+=(--no-gsplat)
fi
timeout "$(limit 240)" "$PY" scripts/bench_raster.py --device cuda --repeats 10 --markdown \
  --json "$LOGS/bench_raster_cuda.json" "${BENCH_ARGS[@]}" 2>&1 | tee "$LOGS/bench_raster.log" | tail -25

step "profile: kernels of one 1M/1080p step"
GS_FLAG=$([ "${RESULT[gsplat]:-}" = ok ] && echo --gsplat)
timeout "$(limit 90)" "$PY" scripts/profile_raster.py $GS_FLAG --convex 200000:1280x720 2>&1 | tee "$LOGS/profile.log" | grep -v Warn | head -130

step "host overhead: a tiny scene's step (launches, dispatch, Python)"
timeout "$(limit 60)" "$PY" scripts/bench_host.py --device cuda 2>&1 | tee "$LOGS/bench_host.log" | grep -v Warn

NCU_BIN=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
if [ "${NCU:-0}" = 1 ] && [ -n "$NCU_BIN" ]; then
  step "ncu: le3d's forward and backward kernels at 1M/1080p (NCU=1)"
  timeout "$(limit 75)" "$NCU_BIN" --kernel-name regex:"(^|:)(forward|backward)_kernel" --launch-count 2 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
      "$PY" -c "import sys; sys.path.insert(0, 'scripts'); from bench_raster import make_scene, le3d_step
s = make_scene(1000000, 1920, 1080, 'cuda'); le3d_step(s, 1920, 1080, 'cuda', True)" >"$LOGS/ncu.log" 2>&1
  grep -E "forward_kernel|backward_kernel|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Th|Memory Throughput|Block Limit|Stall|stall" "$LOGS/ncu.log" | head -60
  step "ncu: the convex backward kernel at 200k/720p (NCU=1): which pipe or stall bounds it"
  timeout "$(limit 75)" "$NCU_BIN" --kernel-name-base demangled --kernel-name regex:"backward_kernel<le3d::ConvexFootprint" \
      --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section ComputeWorkloadAnalysis \
      --section InstructionStats \
      "$PY" -c "import sys; sys.path.insert(0, 'scripts'); from bench_raster import make_scene, convex_step
s = make_scene(200000, 1280, 720, 'cuda'); convex_step(s, 1280, 720, 'cuda', True)" >"$LOGS/ncu_convex.log" 2>&1
  grep -E "Duration|Registers Per|Occupancy|Throughput|Issue Slots|Executed Ipc|pipeline|Stall|stall|MIO|Warp Cycles" \
      "$LOGS/ncu_convex.log" | head -40
fi

if [ "${SKIP_VIEWER:-0}" != 1 ]; then
  step "viewer frame time (1M Gaussians, 1920x1080, render + post)"
  timeout "$(limit 120)" "$PY" scripts/bench_viewer.py --gaussians 1000000 --width 1920 --height 1080 --device cuda \
    2>&1 | tee "$LOGS/bench_viewer.log" | tail -8
  RESULT[viewer]=$(grep -iE "fps" "$LOGS/bench_viewer.log" | tail -1)
fi

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  step "short GPU training run"
  rm -rf /tmp/le3d_gpu_scene /tmp/le3d_gpu_run
  lim=$(limit 150)
  if "$PY" -m le3d.cli synth /tmp/le3d_gpu_scene --seed 0 >"$LOGS/train.log" 2>&1 &&
     timeout "$lim" "$PY" -m le3d.cli train /tmp/le3d_gpu_scene --out /tmp/le3d_gpu_run --config configs/le3d.yaml \
        --iters 2000 --seed 0 >>"$LOGS/train.log" 2>&1 &&
     "$PY" -m le3d.cli eval /tmp/le3d_gpu_run >>"$LOGS/train.log" 2>&1; then
    RESULT[train]=$("$PY" -c "import json; m=json.load(open('/tmp/le3d_gpu_run/metrics.json')); print({k: m[k] for k in m if isinstance(m[k], (int, float))})" 2>/dev/null)
    cp /tmp/le3d_gpu_run/metrics.json "$LOGS/train_metrics.json" 2>/dev/null
  else
    RESULT[train]="FAILED or timed out after ${lim} s (see train.log)"; tail -20 "$LOGS/train.log"
  fi
fi

for name in "${!PATCH_PID[@]}"; do
  dir=${PATCH_DIR[$name]}
  step "patch $name: waiting for its build, then CUDA tests, benchmark, profile"
  if ! wait "${PATCH_PID[$name]}"; then
    RESULT[patch_$name]="build FAILED (patch_${name}_build.log)"; grep -E "error" "$LOGS/patch_${name}_build.log" | head -10; continue
  fi
  # shellcheck disable=SC2086
  (cd "$dir" && timeout "$(limit 200)" "$PY" -m pytest -q -m cuda -p no:cacheprovider $PYTEST_TIMEOUT $CUDA_TESTS) 2>&1 \
    | tee "$LOGS/patch_${name}_pytest.log" | tail -8
  RESULT[patch_$name]="tests: $(grep -E "passed|failed|error" "$LOGS/patch_${name}_pytest.log" | tail -1)"
  (cd "$dir" && timeout "$(limit 150)" "$PY" scripts/bench_raster.py --device cuda --repeats 10 --markdown --no-gsplat \
      --json "$LOGS/patch_${name}_bench.json") 2>&1 | tee "$LOGS/patch_${name}_bench.log" | tail -14
  (cd "$dir" && timeout "$(limit 90)" "$PY" scripts/profile_raster.py --convex 200000:1280x720) 2>&1 \
    | tee "$LOGS/patch_${name}_profile.log" | grep -v Warn | head -100
done

# After the patches, in what time is left: the same comparison on real geometry (the garden's SfM points
# and camera, ../shared/data), where the random scenes above are the issues' fixed scenes.
if [ "$(left)" -gt 40 ]; then
  step "benchmark: the real garden scene (138,766 SfM points, its camera at 1x, 2x and 3x)"
  timeout "$(limit 90)" "$PY" scripts/bench_raster.py --device cuda --scene garden --repeats 10 --markdown \
    --json "$LOGS/bench_garden_cuda.json" "${BENCH_ARGS[@]}" 2>&1 | tee "$LOGS/bench_garden.log" | tail -20
fi

step "summary"
{
  echo "| check | result |"
  echo "|---|---|"
  echo "| GPU | $(head -1 "$LOGS/gpu.txt") |"
  for k in build tests gsplat viewer train; do [ -n "${RESULT[$k]:-}" ] && echo "| $k | ${RESULT[$k]} |"; done
  grep -E "^ratio" "$LOGS/bench_raster.log" | sed 's/^/| bench | /; s/$/ |/'
  [ -e "$LOGS/bench_garden.log" ] && grep -E "^ratio" "$LOGS/bench_garden.log" | sed 's/^/| bench | /; s/$/ |/'
  for k in "${!RESULT[@]}"; do [[ $k == patch_* ]] && echo "| $k | ${RESULT[$k]} |"; done
  for f in "$LOGS"/patch_*_bench.log; do
    [ -e "$f" ] && grep -E "^ratio" "$f" | sed "s/^/| $(basename "$f" _bench.log) | /; s/\$/ |/"
  done
  echo "| total time | $(elapsed) s |"
} | tee "$LOGS/summary.md"
[[ ${RESULT[build]} == ok* ]] && grep -qE "passed" <<<"${RESULT[tests]}" && ! grep -qE "[0-9]+ (failed|error)" <<<"${RESULT[tests]}"
