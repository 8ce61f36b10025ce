"""Convexes vs Gaussians on the same rasterizer: forward and forward+backward time at equal N.

Both scenes put N primitives at the same random centres; each convex is a K-point Fibonacci-sphere
blob of radius r (ConvexSet.from_points defaults for delta/sigma), each Gaussian is isotropic with
scale r/2, so that their screen footprints are comparable (the mean bound radius is printed).
Usage: python scripts/bench_convex.py [--n 1000 10000] [--size 256] [--backend cpu] [--repeat 5]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from convex_splat import ConvexSet
from le3d.raster import rasterize_gaussians


def scene(n, size, seed=0, k=6, radius=0.05):
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(n, 3, generator=g) * 2 - 1)
    colors = torch.rand(n, 3, generator=g)
    # fixed radius for every convex so N does not change the footprint size
    r = torch.full((n,), radius)
    cs = ConvexSet.from_points(centres, colors, k=k, seed=seed, radius_scale=1.0)
    dirs = cs.points.detach() - centres[:, None]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    pts = centres[:, None] + radius * dirs
    cs = ConvexSet(pts, 5.0 / r, 5.0 / r, torch.full((n,), 0.5), colors)
    f = 0.5 * size / math.tan(math.radians(30))
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    V = torch.eye(4)
    V[2, 3] = 3.0
    gauss = dict(means=centres, quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                 scales=torch.full((n, 3), radius / 2), opacities=torch.full((n,), 0.5), features=colors)
    return cs, gauss, V, K


def timeit(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--k", type=int, default=6)
    a = ap.parse_args()
    dev = "cuda" if a.backend == "cuda" else "cpu"
    print(f"backend={a.backend} size={a.size}x{a.size} threads={torch.get_num_threads()}")
    print(f"{'N':>7} {'kind':>8} {'radius_px':>9} {'fwd_ms':>8} {'fwd+bwd_ms':>10}")
    for n in a.n:
        cs, g, V, K = scene(n, a.size, k=a.k)
        cs = cs.to(dev)
        g = {k: v.to(dev) for k, v in g.items()}
        V, K = V.to(dev), K.to(dev)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

        def conv(backward):
            out = cs.render(V, K, a.size, a.size, backend=a.backend)
            if backward:
                out.image.sum().backward()
            sync()
            return out

        gp = {k: v.clone().requires_grad_(True) for k, v in g.items()}

        def gaus(backward):
            out = rasterize_gaussians(gp["means"], gp["quats"], gp["scales"], gp["opacities"], gp["features"],
                                      V, K, a.size, a.size, backend=a.backend)
            if backward:
                out.image.sum().backward()
            sync()
            return out

        rows = []
        for kind, fn in (("gaussian", gaus), ("convex", conv)):
            radius = fn(False).radii.float()
            radius = radius[radius > 0].mean().item()
            with torch.no_grad():
                t_f = timeit(lambda: fn(False), a.repeat)
            t_fb = timeit(lambda: fn(True), a.repeat)
            rows.append((kind, radius, t_f, t_fb))
            print(f"{n:>7} {kind:>8} {radius:>9.1f} {1e3 * t_f:>8.1f} {1e3 * t_fb:>10.1f}", flush=True)
        print(f"{n:>7} ratio convex/gaussian fwd {rows[1][2] / rows[0][2]:.2f}x  fwd+bwd {rows[1][3] / rows[0][3]:.2f}x")


if __name__ == "__main__":
    main()
