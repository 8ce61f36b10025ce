#!/usr/bin/env python
"""A small CUDA-vs-CPU check of the rasterizer, quick enough to run under compute-sanitizer.

  python scripts/cuda_smoke.py
  compute-sanitizer --tool memcheck python scripts/cuda_smoke.py     # out-of-bounds, with line info

Renders one random Gaussian scene and one random convex scene (image size not a multiple of the
tile) on the CUDA and the C++ CPU backend, prints each output's and gradient's relative error, and
exits non-zero when one is over the test tolerances (forward 1e-5, gradients 1e-3).
The pytest suite (pytest -m cuda) is the full check; this is the first thing to run when it fails.
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # le3d without an install
from raster_compare import rel_err, run_backend  # noqa: E402
from scenes import camera, random_gaussians  # noqa: E402
from test_convex_raster import random_convexes  # noqa: E402

import le3d  # noqa: E402


def compare(name, fn, tensors, kwargs) -> bool:
    out_cpu, grad_cpu = run_backend(fn, tensors, kwargs, "cpu")
    out_gpu, grad_gpu = run_backend(fn, tensors, kwargs, "cuda", device="cuda")
    ok = True
    for kind, a, b, tol in (("forward", out_gpu, out_cpu, 1e-5), ("gradient", grad_gpu, grad_cpu, 1e-3)):
        for key in b:
            err = 0.0 if key == "radii" and torch.equal(a[key], b[key]) else rel_err(a[key], b[key])
            flag = "ok" if err < tol else "FAIL"
            ok &= err < tol
            print(f"{name:9} {kind:8} {key:12} rel err {err:9.2e}  {flag}")
    return ok


def main() -> int:
    if "cuda" not in le3d.backend_info()["compiled_backends"]:
        print("cuda_smoke: le3d was built without the CUDA backend (scripts/build_cuda.sh)")
        return 2
    W, H = 61, 45
    viewmat, K = camera(W, H)
    means, quats, scales, opacities, features = random_gaussians(300, C=3, seed=0)
    z = (means @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
    gaussians = dict(means=means, quats=quats, scales=scales, opacities=opacities, features=features,
                     viewmat=viewmat, K=K, distortion_coord=1.0 / z.clamp(min=0.1))
    ok = compare("gaussian", le3d.rasterize_gaussians, gaussians, dict(width=W, height=H, nearfar_k=3))

    import convex_splat

    points, delta, sigma, opac, feats = random_convexes(60, 6, seed=1)
    convexes = dict(points=points, delta=delta, sigma=sigma, opacities=opac, features=feats, viewmat=viewmat, K=K)
    ok &= compare("convex", convex_splat.rasterize_convexes, convexes, dict(width=W, height=H, nearfar_k=3))
    print("cuda_smoke:", "all within tolerance" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
