#!/usr/bin/env bash
# The GPU check: one command on a machine with an NVIDIA GPU (an H100 in about 8 minutes).
#   1. builds the CUDA backend into le3d/ (scripts/build_cuda.sh, BUILD_INPLACE=1)
#   2. runs every CUDA test against the PyTorch/CPU reference (pytest -m cuda)
#   3. runs scripts/bench_raster.py on the GPU, with gsplat side by side when it can be imported
#   4. the viewer's server-side frame time at 1080p with 1M Gaussians
#   5. a short GPU training run of the synthetic scene (le3d synth + le3d train + le3d eval)
#   6. prints one short table; full logs go to $OUT (or ./gpu_check_logs) 
# Env: PY (python, default .venv/bin/python or python3), SKIP_GSPLAT=1, SKIP_TRAIN=1,
#      GSPLAT_TIMEOUT (s, default 240: gsplat 1.5 compiles its CUDA code on first use).
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu_check_logs}
mkdir -p "$LOGS"
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
declare -A RESULT
t0=$(date +%s)
step() { echo; echo "=== $1 ($(( $(date +%s) - t0 )) s)"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOGS/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a "$LOGS/gpu.txt"

step "build CUDA backend"
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  export TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; c=torch.cuda.get_device_capability(); print(f'{c[0]}.{c[1]}')")
fi
if BUILD_INPLACE=1 scripts/build_cuda.sh "$PY" >"$LOGS/build.log" 2>&1; then RESULT[build]=ok; else RESULT[build]=FAILED; tail -30 "$LOGS/build.log"; fi
"$PY" -c "import le3d; print(le3d.backend_info())" | tee -a "$LOGS/gpu.txt"

step "CUDA tests (pytest -m cuda)"
"$PY" -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tee "$LOGS/pytest_cuda.log" | tail -15
RESULT[tests]=$(grep -E "passed|failed|error" "$LOGS/pytest_cuda.log" | tail -1)

step "raster benchmark (GPU)"
if [ "${SKIP_GSPLAT:-0}" != 1 ]; then
  # gsplat compiles its extension on first import of its CUDA module; bound the time it may take.
  timeout "${GSPLAT_TIMEOUT:-240}" "$PY" -c "from gsplat.cuda._backend import _C; assert _C is not None" \
    >"$LOGS/gsplat_build.log" 2>&1 && RESULT[gsplat]=ok || RESULT[gsplat]="unavailable (see gsplat_build.log)"
fi
"$PY" scripts/bench_raster.py --device cuda --repeats 10 --markdown --json "$LOGS/bench_raster_cuda.json" \
  2>&1 | tee "$LOGS/bench_raster.log" | tail -25

step "viewer frame time (1M Gaussians, 1920x1080, render + post)"
"$PY" scripts/bench_viewer.py --gaussians 1000000 --width 1920 --height 1080 --device cuda \
  2>&1 | tee "$LOGS/bench_viewer.log" | tail -8
RESULT[viewer]=$(grep -iE "fps" "$LOGS/bench_viewer.log" | tail -1)

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  step "short GPU training run"
  rm -rf /tmp/le3d_gpu_scene /tmp/le3d_gpu_run
  if "$PY" -m le3d.cli synth /tmp/le3d_gpu_scene --seed 0 >"$LOGS/train.log" 2>&1 &&
     "$PY" -m le3d.cli train /tmp/le3d_gpu_scene --out /tmp/le3d_gpu_run --config configs/le3d.yaml --iters 2000 \
        --seed 0 >>"$LOGS/train.log" 2>&1 &&
     "$PY" -m le3d.cli eval /tmp/le3d_gpu_run >>"$LOGS/train.log" 2>&1; then
    RESULT[train]=$("$PY" -c "import json; m=json.load(open('/tmp/le3d_gpu_run/metrics.json')); print({k: m[k] for k in m if isinstance(m[k], (int, float))})" 2>/dev/null)
    cp /tmp/le3d_gpu_run/metrics.json "$LOGS/train_metrics.json" 2>/dev/null
  else
    RESULT[train]="FAILED (see train.log)"; tail -20 "$LOGS/train.log"
  fi
fi

step "summary"
{
  echo "| check | result |"
  echo "|---|---|"
  echo "| GPU | $(head -1 "$LOGS/gpu.txt") |"
  for k in build tests gsplat viewer train; do [ -n "${RESULT[$k]:-}" ] && echo "| $k | ${RESULT[$k]} |"; done
  grep -E "^ratio" "$LOGS/bench_raster.log" | sed 's/^/| bench | /; s/$/ |/'
  echo "| total time | $(( $(date +%s) - t0 )) s |"
} | tee "$LOGS/summary.md"
[ "${RESULT[build]}" = ok ] && ! grep -qE "[0-9]+ failed|error" <<<"${RESULT[tests]}"
