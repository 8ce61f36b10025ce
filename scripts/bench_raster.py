#!/usr/bin/env python
"""Rasterizer speed: forward and forward+backward medians per backend and primitive type.

  python scripts/bench_raster.py                 # CPU: reference vs C++ at 20k / 256x256, C++ at 200k / 720p
  python scripts/bench_raster.py --device cuda   # GPU: CUDA backend vs gsplat rasterization() (if installed)
  python scripts/bench_raster.py --json out.json --markdown
  python scripts/bench_raster.py --scene garden  # real SfM points and camera (../shared/data/garden)

Scenes (--scene): "random", fixed random Gaussians (seeded) in front of one camera; "garden", the
Mip-NeRF 360 garden's 138,766 real SfM points seen by its first real camera (gsplat's test asset), with
3DGS's initial scales (mean distance to the 3 nearest points). C=3, with depth, distortion
(u = disparity) and near/far (k=4) outputs on. Convexes are timed at the same N when
convex_splat is importable. With gsplat side by side, le3d also runs with colour, alpha and depth
only (no distortion, no near/far), which is what gsplat's RGB+ED mode computes. Times are medians of
--repeats runs after one warm-up, the cases of one scene taking turns within each round (so that their
ratios are side by side; the torch reference runs once, after them); peak memory is the CUDA
allocator's peak (GPU) or the process's peak RSS during one step (CPU, Linux; includes torch itself).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # le3d without an install
from scenes import garden_points, intrinsics, look_at_viewmat  # noqa: E402

import le3d  # noqa: E402


def make_scene(n: int, width: int, height: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([2.0, 1.2, 1.5])
    quats = torch.randn(n, 4, generator=g)
    # sizes so that the image is well covered: mean footprint ~ a few pixels to tens of pixels
    base = 2.0 / math.sqrt(n) * 4
    scales = base * torch.exp(torch.randn(n, 3, generator=g) * 0.5)
    opacities = torch.rand(n, generator=g) * 0.8 + 0.1
    colours = torch.rand(n, 3, generator=g)
    viewmat = look_at_viewmat((0.0, 0.0, -4.0))
    K = intrinsics(width, height, fov_deg=55)
    z = (means @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
    coord = 1.0 / z.clamp(min=0.1)
    return {k: v.to(device) for k, v in dict(means=means, quats=quats, scales=scales, opacities=opacities,
                                               features=colours, viewmat=viewmat, K=K,
                                               distortion_coord=coord).items()}


def garden_scene(n: int, width: int, height: int, device: str, seed: int = 0):
    """n of the garden's SfM points (a seeded subset when fewer than all) seen by its first camera,
    whose intrinsics are scaled to width x height. Scales as 3DGS initialises them (mean distance to the
    3 nearest points of the subset), capped at their 99th percentile: the few isolated points far from
    the rest would otherwise become metres-wide Gaussians in front of the camera, which a trained scene
    does not have. A little anisotropy (x exp(0.3 N(0,1)) per axis), random rotations and opacities."""
    from le3d.init.knn import knn_scales

    garden = garden_points()
    total = garden["means"].shape[0]
    if not 0 < n <= total:
        raise SystemExit(f"--scene garden has {total} points; N must be 1..{total}, got {n}")
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(total, generator=g)[:n] if n < total else torch.arange(total)
    means, colours = garden["means"][keep], garden["colours"][keep]
    size = knn_scales(means, k=3)
    size = size.clamp(max=size.quantile(0.99).item())
    scales = size[:, None] * torch.exp(0.3 * torch.randn(n, 3, generator=g))
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.rand(n, generator=g) * 0.8 + 0.1
    viewmat = garden["viewmats"][0]
    K = garden["Ks"][0].clone()
    K[0] *= width / garden["width"]
    K[1] *= height / garden["height"]
    z = (means @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
    coord = 1.0 / z.clamp(min=0.1)
    return {k: v.to(device) for k, v in dict(means=means, quats=quats, scales=scales, opacities=opacities,
                                               features=colours, viewmat=viewmat, K=K,
                                               distortion_coord=coord).items()}


SCENES = {"random": make_scene, "garden": garden_scene}
DEFAULT_SIZES = {
    ("random", "cpu"): "20000:256x256,200000:1280x720",
    ("random", "cuda"): "20000:256x256,200000:1280x720,1000000:1920x1080",
    ("garden", "cpu"): "138766:648x420,138766:1296x840",
    ("garden", "cuda"): "138766:648x420,138766:1296x840,138766:1944x1260",
}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_fn(fn, repeats, device):
    return time_interleaved({0: fn}, repeats, device)[0]


def time_interleaved(fns: dict, repeats: int, device, shuffle_seed: int | None = None) -> dict:
    """Median seconds of each fn over `repeats` rounds (after one warm-up call each), the fns taking
    turns within a round: their ratios then compare runs under the same machine conditions (on a
    shared machine the speed drifts by several percent over a minute). shuffle_seed: each round takes
    the fns in a new random order (so that none always runs after the same other one)."""
    for fn in fns.values():
        fn()
    sync(device)
    times = {key: [] for key in fns}
    order = list(fns)
    rng = random.Random(shuffle_seed)
    for _ in range(repeats):
        if shuffle_seed is not None:
            rng.shuffle(order)
        for key in order:
            fn = fns[key]
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(t) for key, t in times.items()}


def le3d_step(scene, width, height, backend, backward, regularizers=True):
    """regularizers=False: colour, alpha and depth only (what gsplat's RGB+ED mode computes)."""
    leaves = {k: (v.clone().requires_grad_(backward) if k not in ("viewmat", "K") else v) for k, v in scene.items()}
    if not regularizers:
        leaves.pop("distortion_coord")
    out = le3d.rasterize_gaussians(**leaves, width=width, height=height, backend=backend,
                                   nearfar_k=4 if regularizers else 0)
    if backward:
        step_loss(out, regularizers).backward()


def step_loss(out, regularizers=True):
    """The timed steps' loss, the same for both primitives: every output the render computed."""
    loss = out.image.sum() + out.depth.sum() + out.alpha.sum()
    if regularizers:
        loss = loss + out.distortion.sum() + (out.far_depth - out.near_depth).sum()
    return loss


_CONVEX_SCENES: dict = {}  # id(scene) -> (scene, its convexes); holding the scene keeps its id unique


def convex_scene(scene):
    """Convexes (6 points each) around the scene's Gaussian means, built once per scene (outside the
    timed steps: generating them on the CPU and copying them over took longer than a GPU render)."""
    if id(scene) not in _CONVEX_SCENES:
        n = scene["means"].shape[0]
        g = torch.Generator().manual_seed(1)
        scale = scene["scales"].mean(-1, keepdim=True)[:, None, :]
        offsets = torch.nn.functional.normalize(torch.randn(n, 6, 3, generator=g), dim=-1).to(scene["means"].device)
        size = scale[:, 0, 0] * 2
        # delta and sigma are in inverse world units: 5 / size gives the same soft blob as ConvexSet's init
        _CONVEX_SCENES[id(scene)] = (scene, dict(points=scene["means"][:, None, :] + offsets * scale * 2,
                                                 delta=5.0 / size, sigma=5.0 / size))
    return _CONVEX_SCENES[id(scene)][1]


def convex_step(scene, width, height, backend, backward):
    import convex_splat

    c = convex_scene(scene)
    points, delta, sigma = (c[k].clone().requires_grad_(backward) for k in ("points", "delta", "sigma"))
    opac = scene["opacities"].clone().requires_grad_(backward)
    feats = scene["features"].clone().requires_grad_(backward)
    out = convex_splat.rasterize_convexes(points, delta, sigma, opac, feats, scene["viewmat"], scene["K"], width,
                                          height, backend=backend, distortion_coord=scene["distortion_coord"],
                                          nearfar_k=4)
    if backward:
        step_loss(out).backward()


def gsplat_step(scene, width, height, backward):
    from gsplat import rasterization

    leaves = {k: (v.clone().requires_grad_(backward) if k not in ("viewmat", "K") else v) for k, v in scene.items()}
    render, alpha, _ = rasterization(leaves["means"], leaves["quats"], leaves["scales"], leaves["opacities"],
                                     leaves["features"], leaves["viewmat"][None], leaves["K"][None], width, height,
                                     render_mode="RGB+ED", packed=False)
    if backward:
        (render.sum() + alpha.sum()).backward()


def peak_memory(fn, device):
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated() / 2**20
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS; report the
    # process's peak RSS during one step (freed memory is reused, so growth alone reads ~0).
    def status_kib(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        if status_kib("VmHWM:") > 1.05 * status_kib("VmRSS:") + 1024:
            return float("nan")  # this kernel/sandbox ignores the reset: a peak would be stale
        fn()
        return status_kib("VmHWM:") / 1024
    except OSError:
        return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--scene", default="random", choices=sorted(SCENES),
                    help="random (default) or garden: real SfM points and camera")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default=None, help="comma list of N:WxH (default depends on device)")
    ap.add_argument("--no-reference", action="store_true", help="skip the slow torch reference")
    ap.add_argument("--no-convex", action="store_true")
    ap.add_argument("--no-gsplat", action="store_true", help="skip gsplat even when it imports")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args()
    device = args.device
    sizes = []
    for item in (args.sizes or DEFAULT_SIZES[args.scene, device]).split(","):
        n, wh = item.split(":")
        w, h = wh.split("x")
        sizes.append((int(n), int(w), int(h)))

    backends = ["cpu"] if device == "cpu" else ["cuda"]
    have_gsplat = False
    if device == "cuda" and not args.no_gsplat:
        try:
            import gsplat  # noqa: F401
            have_gsplat = True
        except ImportError:
            pass
    try:
        import convex_splat  # noqa: F401
        have_convex = not args.no_convex
    except ImportError:
        have_convex = False

    rows = []
    for n, w, h in sizes:
        scene = SCENES[args.scene](n, w, h, device)
        cases = [(f"le3d {b}", "gaussian", lambda bw, b=b: le3d_step(scene, w, h, b, bw)) for b in backends]
        if device == "cpu" and not args.no_reference and n * w * h <= 20000 * 256 * 256:
            # last: its O(N H W) memory stays in the process's RSS and would hide the others' peaks
            reference_case = ("le3d torch reference", "gaussian", lambda bw: le3d_step(scene, w, h, "torch", bw))
        else:
            reference_case = None
        if have_gsplat:
            cases.append((f"le3d {backends[0]} RGB+D only", "gaussian",
                           lambda bw: le3d_step(scene, w, h, backends[0], bw, regularizers=False)))
            cases.append(("gsplat 1.5 rasterization (RGB+ED)", "gaussian", lambda bw: gsplat_step(scene, w, h, bw)))
        if have_convex and n <= 200000:
            cases.append((f"le3d {backends[0]}", "convex", lambda bw: convex_step(scene, w, h, backends[0], bw)))
        # Every case but the reference takes turns in the same rounds (time_interleaved), forward
        # first, then forward+backward; a case that fails is reported and left out.
        timed = {}  # (name, primitive) -> step function
        errors = {}
        for name, prim, fn in cases:
            try:
                fn(True)
                timed[name, prim] = fn
            except Exception as exc:  # report, keep benchmarking the others
                errors[name, prim] = f"{type(exc).__name__}: {exc}"[:200]
        fwd = time_interleaved({key: (lambda fn=fn: fn(False)) for key, fn in timed.items()}, args.repeats, device)
        fb = time_interleaved({key: (lambda fn=fn: fn(True)) for key, fn in timed.items()}, args.repeats, device)
        results = [(name, prim, fwd[name, prim], fb[name, prim], peak_memory(lambda fn=fn: fn(True), device), None)
                   for (name, prim), fn in timed.items()]
        if reference_case is not None:
            name, prim, fn = reference_case
            results.append((name, prim, time_fn(lambda: fn(False), 1, device), time_fn(lambda: fn(True), 1, device),
                            peak_memory(lambda: fn(True), device), None))
        results += [(name, prim, float("nan"), float("nan"), float("nan"), err) for (name, prim), err in errors.items()]
        for name, prim, f_s, fb_s, mem, err in results:
            row = dict(scene=args.scene, n=n, size=f"{w}x{h}", primitive=prim, backend=name, forward_ms=f_s * 1e3,
                       fwd_bwd_ms=fb_s * 1e3, fwd_bwd_its=1.0 / fb_s if fb_s == fb_s and fb_s > 0 else float("nan"),
                       peak_mib=mem, error=err)
            rows.append(row)
            print(f"{n:>8} {w}x{h:<5} {prim:<8} {name:<36} fwd {row['forward_ms']:9.1f} ms  "
                  f"fwd+bwd {row['fwd_bwd_ms']:9.1f} ms ({row['fwd_bwd_its']:6.2f} it/s)  peak {mem:8.1f} MiB"
                  + (f"  ERROR {err}" if err else ""), flush=True)

    machine = dict(platform=platform.platform(), cpu_count=os.cpu_count(), torch=torch.__version__,
                   threads=le3d.backend_info()["cpu_threads"],
                   gpu=torch.cuda.get_device_name(0) if device == "cuda" else None,
                   date=time.strftime("%Y-%m-%d"))
    # ratios measured in this run
    for n, w, h in sizes:
        ref = [r for r in rows if r["n"] == n and r["size"] == f"{w}x{h}" and "reference" in r["backend"]]
        fast = [r for r in rows if r["n"] == n and r["size"] == f"{w}x{h}" and r["backend"] == f"le3d {backends[0]}"
                and r["primitive"] == "gaussian"]
        gs = [r for r in rows if r["n"] == n and r["size"] == f"{w}x{h}" and r["backend"].startswith("gsplat")]
        plain = [r for r in rows if r["n"] == n and r["size"] == f"{w}x{h}" and r["backend"].endswith("RGB+D only")]
        cx = [r for r in rows if r["n"] == n and r["size"] == f"{w}x{h}" and r["primitive"] == "convex"]
        where = f"{n} {w}x{h}" if args.scene == "random" else f"{args.scene} {n} {w}x{h}"
        if ref and fast:
            print(f"ratio {where}: reference / {backends[0]} fwd+bwd = {ref[0]['fwd_bwd_ms'] / fast[0]['fwd_bwd_ms']:.1f}x")
        if gs and fast:
            print(f"ratio {where}: le3d / gsplat fwd+bwd time = {fast[0]['fwd_bwd_ms'] / gs[0]['fwd_bwd_ms']:.2f}")
        if gs and plain:
            print(f"ratio {where}: le3d RGB+D only / gsplat fwd+bwd time = "
                  f"{plain[0]['fwd_bwd_ms'] / gs[0]['fwd_bwd_ms']:.2f}")
        if cx and fast:
            print(f"ratio {where}: convex / gaussian fwd+bwd time = {cx[0]['fwd_bwd_ms'] / fast[0]['fwd_bwd_ms']:.2f}")
    if args.markdown:
        print(f"\nScene: {args.scene}. Machine: {machine}\n")
        print("| N | size | primitive | backend | forward ms | fwd+bwd ms | fwd+bwd it/s | peak MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['n']} | {r['size']} | {r['primitive']} | {r['backend']} | {r['forward_ms']:.1f} | "
                  f"{r['fwd_bwd_ms']:.1f} | {r['fwd_bwd_its']:.2f} | {r['peak_mib']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
