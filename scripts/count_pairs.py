"""How much compositing work a benchmark scene is: tile-list entries and contributing (primitive, pixel)
pairs of the Gaussian and convex scenes of scripts/bench_raster.py, from the CPU forward kernel's
per-pixel aux output (contributor count, last list index). The convex/Gaussian time ratio compares
scenes with different amounts of such work; this says how different. It also counts the (tile entry,
warp) pairs whose warp holds no pixel of the primitive's screen bound, which the GPU kernels could skip
(patches/warp-masks.patch), for warps of 8x4 pixels and of 16x2 (the tile rows the kernels use now).

    python scripts/count_pairs.py [--sizes 20000:256x256 200000:1280x720]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_raster  # noqa: E402

import le3d.raster.tile_function as tile_function  # noqa: E402

AUX_LAST_INDEX, AUX_COUNT = 1, 2  # slots of aux [H, W, 8]: csrc/include/le3d/common.h, AuxSlot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["20000:256x256", "200000:1280x720"])
    args = ap.parse_args()
    captured = {}
    kernels = tile_function._kernels

    def recording(device):  # the forward kernel's outputs, aux and the tile lists included
        forward, backward = kernels(device)

        def forward_recorded(*a):
            out = forward(*a)
            captured["aux"], captured["offsets"], captured["ids"], captured["bounds"] = out[6], out[7], out[8], a[5]
            return out
        return forward_recorded, backward

    tile_function._kernels = recording
    print("| N | size | primitive | tile entries | contributing pairs | mean last list index "
          "| warp pairs outside the bound, 8x4 / 16x2 |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.sizes:
        n, size = spec.split(":")
        n, (w, h) = int(n), (int(v) for v in size.split("x"))
        scene = bench_raster.make_scene(n, w, h, "cpu")
        for name, step in (("gaussian", bench_raster.le3d_step), ("convex", bench_raster.convex_step)):
            step(scene, w, h, "cpu", False)
            aux = captured["aux"]
            print(f"| {n} | {w}x{h} | {name} | {captured['ids'].numel()} | {int(aux[..., AUX_COUNT].sum())} | "
                  f"{float(aux[..., AUX_LAST_INDEX].mean()):.0f} | "
                  f"{warps_outside_bound(captured, w, h, 8, 4):.1%} / {warps_outside_bound(captured, w, h, 16, 2):.1%} |")


def warps_outside_bound(captured, width: int, height: int, warp_w: int, warp_h: int, tile: int = 16) -> float:
    """Share of the (tile entry, warp) pairs, over warps that hold image pixels, in which no pixel centre
    of the warp's warp_w x warp_h block lies inside the entry's screen bound."""
    offsets, ids, bounds = captured["offsets"].long(), captured["ids"].long(), captured["bounds"]
    tiles_x = (width + tile - 1) // tile
    tile_of = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets[1:] - offsets[:-1])
    b = bounds[ids]
    total = outside = 0
    for wy in range(tile // warp_h):
        for wx in range(tile // warp_w):
            x0 = ((tile_of % tiles_x) * tile + wx * warp_w).float()
            y0 = ((tile_of // tiles_x) * tile + wy * warp_h).float()
            holds_pixels = (x0 < width) & (y0 < height)
            overlaps = ((x0 + warp_w - 0.5 >= b[:, 0]) & (x0 + 0.5 <= b[:, 2]) &
                        (y0 + warp_h - 0.5 >= b[:, 1]) & (y0 + 0.5 <= b[:, 3]))
            total += int(holds_pixels.sum())
            outside += int((holds_pixels & ~overlaps).sum())
    return outside / max(total, 1)


if __name__ == "__main__":
    main()
