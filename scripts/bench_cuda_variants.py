"""Side-by-side timing of the CUDA backward kernel's variants (one process, the variants taking turns).

    python scripts/bench_cuda_variants.py [--repeats 15] [--gsplat]

The variants are chosen per call by environment variables that the CUDA backward reads (see
csrc/cuda/rasterize_cuda.cu, backward_variant): LE3D_CUDA_WARP_SUMS=tree (one warp_sum per
gradient value, the kernel before the reduce-scatter) and LE3D_CUDA_CONVEX_KEEP_EVAL=1 (a convex
keeps its pixel evaluation for the gradient). Before timing, every variant's gradients are compared
with the default variant's on the same scene (they differ only by float summation order), so a
variant that is fast because it is wrong shows up. Needs a GPU; gpu_check.sh runs it.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_raster import convex_scene, gsplat_step, le3d_step, make_scene, time_interleaved  # noqa: E402

import convex_splat  # noqa: E402
import le3d  # noqa: E402

GAUSSIAN_VARIANTS = {"warp sums (tree)": {"LE3D_CUDA_WARP_SUMS": "tree"}, "reduce-scatter": {}}
CONVEX_VARIANTS = {
    "warp sums (tree)": {"LE3D_CUDA_WARP_SUMS": "tree"},
    "reduce-scatter": {},
    "tree + kept Eval": {"LE3D_CUDA_WARP_SUMS": "tree", "LE3D_CUDA_CONVEX_KEEP_EVAL": "1"},
    "reduce-scatter + kept Eval": {"LE3D_CUDA_CONVEX_KEEP_EVAL": "1"},
}
_KEYS = ("LE3D_CUDA_WARP_SUMS", "LE3D_CUDA_CONVEX_KEEP_EVAL")


def with_env(env, fn):
    def run():
        for k in _KEYS:
            os.environ.pop(k, None)
        os.environ.update(env)
        try:
            return fn()
        finally:
            for k in _KEYS:
                os.environ.pop(k, None)
    return run


def gaussian_grads(scene, w, h, regularizers):
    leaves = {k: (v.clone().requires_grad_(True) if k not in ("viewmat", "K") else v) for k, v in scene.items()}
    if not regularizers:
        leaves.pop("distortion_coord")
    out = le3d.rasterize_gaussians(**leaves, width=w, height=h, backend="cuda", nearfar_k=4 if regularizers else 0)
    loss = (out.image * torch.linspace(0.5, 1.5, out.image.shape[-1], device="cuda")).sum() + out.depth.sum()
    if regularizers:
        loss = loss + out.distortion.sum() + (out.far_depth - out.near_depth).sum()
    loss.backward()
    return [leaves[k].grad for k in ("means", "quats", "scales", "opacities", "features")]


def convex_grads(scene, w, h):
    c = convex_scene(scene)
    points, delta, sigma = (c[k].clone().requires_grad_(True) for k in ("points", "delta", "sigma"))
    opac = scene["opacities"].clone().requires_grad_(True)
    feats = scene["features"].clone().requires_grad_(True)
    out = convex_splat.rasterize_convexes(points, delta, sigma, opac, feats, scene["viewmat"], scene["K"], w, h,
                                          backend="cuda", distortion_coord=scene["distortion_coord"], nearfar_k=4)
    (out.image.sum() + out.depth.sum() + out.distortion.sum()).backward()
    return [points.grad, delta.grad, sigma.grad, opac.grad, feats.grad]


def convex_step_cuda(scene, w, h):
    c = convex_scene(scene)
    points, delta, sigma = (c[k].clone().requires_grad_(True) for k in ("points", "delta", "sigma"))
    opac = scene["opacities"].clone().requires_grad_(True)
    feats = scene["features"].clone().requires_grad_(True)
    out = convex_splat.rasterize_convexes(points, delta, sigma, opac, feats, scene["viewmat"], scene["K"], w, h,
                                          backend="cuda", distortion_coord=scene["distortion_coord"], nearfar_k=4)
    (out.image.sum() + out.depth.sum() + out.distortion.sum()).backward()


def worst_relative_difference(grads, reference):
    worst = 0.0
    for g, r in zip(grads, reference):
        scale = r.abs().max().clamp(min=1e-12)
        worst = max(worst, float((g - r).abs().max() / scale))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--gsplat", action="store_true", help="time gsplat rasterization() (RGB+ED) in the same rounds")
    ap.add_argument("--gaussians", default="20000:256x256,200000:1280x720,1000000:1920x1080")
    ap.add_argument("--convexes", default="20000:256x256,200000:1280x720")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a GPU"
    print(f"# {torch.cuda.get_device_name()}, fwd+bwd ms (median of {args.repeats}, variants interleaved); "
          "'diff' = worst gradient difference to the default variant, relative to the largest gradient")
    print("| primitive | N | size | outputs | variant | fwd+bwd ms | diff |")
    print("|---|---|---|---|---|---|---|")
    for spec in filter(None, args.gaussians.split(",")):
        n, size = spec.split(":")
        w, h = map(int, size.split("x"))
        scene = make_scene(int(n), w, h, "cuda")
        for regularizers in (False, True):
            reference = gaussian_grads(scene, w, h, regularizers)
            fns, diffs = {}, {}
            for name, env in GAUSSIAN_VARIANTS.items():
                diffs[name] = worst_relative_difference(with_env(env, lambda: gaussian_grads(scene, w, h, regularizers))(),
                                                        reference)
                fns[name] = with_env(env, lambda r=regularizers: le3d_step(scene, w, h, "cuda", True, r))
            if args.gsplat and not regularizers:
                fns["gsplat 1.5 (RGB+ED)"] = lambda: gsplat_step(scene, w, h, True)
            times = time_interleaved(fns, args.repeats, "cuda")
            outputs = "all" if regularizers else "RGB+D"
            for name, t in times.items():
                d = f"{diffs[name]:.1e}" if name in diffs else ""
                print(f"| gaussian | {n} | {size} | {outputs} | {name} | {t * 1e3:.2f} | {d} |", flush=True)
    for spec in filter(None, args.convexes.split(",")):
        n, size = spec.split(":")
        w, h = map(int, size.split("x"))
        scene = make_scene(int(n), w, h, "cuda")
        reference = convex_grads(scene, w, h)
        fns, diffs = {}, {}
        for name, env in CONVEX_VARIANTS.items():
            diffs[name] = worst_relative_difference(with_env(env, lambda: convex_grads(scene, w, h))(), reference)
            fns[name] = with_env(env, lambda: convex_step_cuda(scene, w, h))
        fns["gaussians, same N (default)"] = lambda: le3d_step(scene, w, h, "cuda", True, True)
        times = time_interleaved(fns, args.repeats, "cuda")
        for name, t in times.items():
            d = f"{diffs[name]:.1e}" if name in diffs else ""
            print(f"| convex | {n} | {size} | all | {name} | {t * 1e3:.2f} | {d} |", flush=True)


if __name__ == "__main__":
    main()
