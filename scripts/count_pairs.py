"""How much compositing work a benchmark scene is: tile-list entries and contributing (primitive, pixel)
pairs of the Gaussian and convex scenes of scripts/bench_raster.py, from the CPU forward kernel's
per-pixel aux output (contributor count, last list index). The convex/Gaussian time ratio compares
scenes with different amounts of such work; this says how different.

    python scripts/count_pairs.py [--sizes 20000:256x256 200000:1280x720]
"""
from __future__ import annotations

import argparse
import os
import sys

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
            captured["aux"], captured["ids"] = out[6], out[8]
            return out
        return forward_recorded, backward

    tile_function._kernels = recording
    print("| N | size | primitive | tile entries | contributing pairs | mean last list index |")
    print("|---|---|---|---|---|---|")
    for spec in args.sizes:
        n, size = spec.split(":")
        n, (w, h) = int(n), (int(v) for v in size.split("x"))
        scene = bench_raster.make_scene(n, w, h, "cpu")
        for name, step in (("gaussian", bench_raster.le3d_step), ("convex", bench_raster.convex_step)):
            step(scene, w, h, "cpu", False)
            aux = captured["aux"]
            print(f"| {n} | {w}x{h} | {name} | {captured['ids'].numel()} | {int(aux[..., AUX_COUNT].sum())} | "
                  f"{float(aux[..., AUX_LAST_INDEX].mean()):.0f} |")


if __name__ == "__main__":
    main()
