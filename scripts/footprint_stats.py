#!/usr/bin/env python
"""How much screen the Gaussians and the convexes of scripts/bench_raster.py's scene cover: the context
of its convex / Gaussian time ratio (equal N is not equal work when one primitive covers more pixels).

  python scripts/footprint_stats.py [--n 20000] [--size 256x256] [--sample 2000]

Prints, per primitive type: mean visible pixels per primitive (raw alpha >= 1/255, the reference's
footprint functions on a random sample), mean screen-box area, and the (tile, primitive) entries the
CPU binning makes (tiles the footprint reaches) against those of the boxes alone.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_raster import convex_scene, make_scene  # noqa: E402

from convex_splat.projection import project_convexes  # noqa: E402
from le3d._ext import load_extension  # noqa: E402
from le3d.raster.constants import ALPHA_MIN, FOOTPRINT_CONVEX, FOOTPRINT_GAUSSIAN, TILE_SIZE  # noqa: E402
from le3d.raster.projection import gaussian_params, project_gaussians  # noqa: E402
from le3d.raster.reference import RAW_ALPHA  # noqa: E402


def box_stats(bounds, width, height):
    """(mean box area over kept primitives, tile entries of the boxes)."""
    b = bounds.double()
    kept = b[:, 0] <= b[:, 2]
    x0 = torch.ceil(b[:, 0] - 0.5).clamp(min=0) // TILE_SIZE
    x1 = torch.floor(b[:, 2] - 0.5).clamp(max=width - 1) // TILE_SIZE
    y0 = torch.ceil(b[:, 1] - 0.5).clamp(min=0) // TILE_SIZE
    y1 = torch.floor(b[:, 3] - 0.5).clamp(max=height - 1) // TILE_SIZE
    on = kept & (x1 >= x0) & (y1 >= y0)
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[kept].mean().item()
    return area, int(torch.where(on, (x1 - x0 + 1) * (y1 - y0 + 1), torch.zeros_like(x0)).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--sample", type=int, default=2000, help="primitives whose visible pixels are counted")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    scene = make_scene(args.n, w, h, "cpu")
    with torch.no_grad():
        means2d, conics, depths, bounds, _ = project_gaussians(
            scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["viewmat"], scene["K"], w, h)
        c = convex_scene(scene)
        cparams, _, cdepths, cbounds, _ = project_convexes(c["points"], c["delta"], c["sigma"], scene["opacities"],
                                                           scene["viewmat"], scene["K"], w, h)
    kinds = {"gaussian": (gaussian_params(means2d, conics, scene["opacities"]), depths, bounds, FOOTPRINT_GAUSSIAN),
             "convex": (cparams, cdepths, cbounds, FOOTPRINT_CONVEX)}
    sample = torch.randperm(args.n, generator=torch.Generator().manual_seed(0))[:args.sample]
    ext = load_extension()
    print(f"{args.n} primitives at {w}x{h}, visible pixels counted on {len(sample)} of them")
    print("| primitive | visible px / primitive | box px / primitive | box tile entries | binned tile entries |")
    print("|---|---|---|---|---|")
    for name, (params, z, b, footprint) in kinds.items():
        params = params.detach().float().contiguous()
        visible = sum(int((RAW_ALPHA[footprint](params[i:i + 1], w, h) >= ALPHA_MIN).sum()) for i in sample.tolist())
        area, box_entries = box_stats(b, w, h)
        binned = "-"
        if ext is not None:
            n = params.shape[0]
            out = ext.rasterize_forward_cpu(params, footprint, torch.ones(n, 1), z.detach().contiguous(),
                                            None, b, torch.zeros(1), w, h, 0)
            binned = out[8].numel()
        print(f"| {name} | {visible / len(sample):.0f} | {area:.0f} | {box_entries} | {binned} |")


if __name__ == "__main__":
    main()
