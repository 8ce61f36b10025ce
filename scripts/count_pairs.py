"""How much compositing work a benchmark scene is: tile-list entries and contributing (primitive, pixel)
pairs of the Gaussian and convex scenes of scripts/bench_raster.py, from the CPU forward kernel's
per-pixel aux output (contributor count, last list index). The convex/Gaussian time ratio compares
scenes with different amounts of such work; this says how different. It also counts the (tile entry,
warp) pairs whose warp holds no pixel of the primitive's screen bound, which the GPU kernels could skip
(patches/warp-masks.patch), and those whose warp the footprint's own tile test misses too
(patches/warp-masks-footprint.patch), for warps of 8x4 pixels and of 16x2 (the tile rows the kernels
use now).

It then samples tiles to count the warp-level work: (entry, warp) pairs the kernels evaluate,
those the footprint masks keep, and those whose warp reduction runs (a pixel takes the primitive), also
for warps of 64 pixels (two pixels a lane: one reduction where 32-pixel warps run two).

    python scripts/count_pairs.py [--sizes 20000:256x256 200000:1280x720] [--sample-tiles 400]
    python scripts/count_pairs.py --scene garden --sizes 138766:648x420
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_raster  # noqa: E402

import le3d.raster.tile_function as tile_function  # noqa: E402
from le3d._ext import load_extension  # noqa: E402

_SLOTS = load_extension().aux_layout(has_distortion=False, nearfar_k=0)  # the slots every render keeps
AUX_LAST_INDEX, AUX_COUNT = _SLOTS["last_index"], _SLOTS["count"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["20000:256x256", "200000:1280x720"])
    ap.add_argument("--scene", default="random", choices=sorted(bench_raster.SCENES))
    ap.add_argument("--sample-tiles", type=int, default=400, help="tiles sampled for the warp-work table")
    args = ap.parse_args()
    captured = {}
    kernels = tile_function._kernels

    def recording(device):  # the forward kernel's outputs, aux and the tile lists included
        forward, backward = kernels(device)

        def forward_recorded(*a):
            out = forward(*a)
            captured["aux"], captured["offsets"], captured["ids"], captured["bounds"] = out[6], out[7], out[8], a[5]
            captured["params"] = a[0]
            return out
        return forward_recorded, backward

    tile_function._kernels = recording
    work = []
    print("| N | size | primitive | tile entries | contributing pairs | mean last list index "
          "| warp pairs outside the bound, 8x4 / 16x2 | warp pairs the footprint misses, 8x4 / 16x2 |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.sizes:
        n, size = spec.split(":")
        n, (w, h) = int(n), (int(v) for v in size.split("x"))
        scene = bench_raster.SCENES[args.scene](n, w, h, "cpu")
        for name, step in (("gaussian", bench_raster.le3d_step), ("convex", bench_raster.convex_step)):
            step(scene, w, h, "cpu", False)
            aux = captured["aux"]
            print(f"| {n} | {w}x{h} | {name} | {captured['ids'].numel()} | {int(aux[..., AUX_COUNT].sum())} | "
                  f"{float(aux[..., AUX_LAST_INDEX].mean()):.0f} | "
                  f"{warps_outside_bound(captured, w, h, 8, 4):.1%} / {warps_outside_bound(captured, w, h, 16, 2):.1%} | "
                  f"{warps_missed(captured, name, w, h, 8, 4):.1%} / {warps_missed(captured, name, w, h, 16, 2):.1%} |")
            work.append((n, f"{w}x{h}", name, warp_work(captured, name, w, h, args.sample_tiles)))
    print(f"\nWarp work per step, millions of (tile entry, warp) pairs (from {args.sample_tiles} sampled tiles, "
          "scaled to the whole list):\n")
    print("| N | size | primitive | not yet finished, 16x2 / 8x4 | 8x4 in the footprint masks | "
          "contributing, 16x2 / 8x4 | contributing outside a mask | contributing, 64-pixel warps 16x4 / 8x8 |")
    print("|---|---|---|---|---|---|---|---|")
    for n, size, name, c in work:
        print(f"| {n} | {size} | {name} | {c['pending 16x2']:.2f} / {c['pending 8x4']:.2f} | {c['pending masked']:.2f} | "
              f"{c['contributing 16x2']:.2f} / {c['contributing 8x4']:.2f} | {c['contributing unmasked']:.0f} | "
              f"{c['contributing 16x4']:.2f} / {c['contributing 8x8']:.2f} |")


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


def warps_missed(captured, primitive: str, width: int, height: int, warp_w: int, warp_h: int,
                 tile: int = 16) -> float:
    """Share of the (tile entry, warp) pairs, over warps that hold image pixels, whose block of pixel
    centres is outside the entry's screen bound or fails the footprint's own tile test (reaches_tile in
    footprint_gaussian.h / footprint_convex.h, re-written here in torch): what warp masks built with
    both tests could skip (patches/warp-masks-footprint.patch)."""
    offsets, ids = captured["offsets"].long(), captured["ids"].long()
    b = captured["bounds"][ids]
    tiles_x = (width + tile - 1) // tile
    tile_of = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets[1:] - offsets[:-1])
    p = captured["params"][ids].double()
    reaches = reaches_convex if primitive == "convex" else reaches_gaussian
    total = missed = 0
    for wy in range(tile // warp_h):
        for wx in range(tile // warp_w):
            x0 = (tile_of % tiles_x) * tile + wx * warp_w
            y0 = (tile_of // tiles_x) * tile + wy * warp_h
            holds_pixels = (x0 < width) & (y0 < height)
            box = torch.stack([x0 + 0.5, y0 + 0.5, (x0 + warp_w).clamp(max=width) - 0.5,
                               (y0 + warp_h).clamp(max=height) - 0.5], -1).double()
            in_bound = ((box[:, 2] >= b[:, 0]) & (box[:, 0] <= b[:, 2]) & (box[:, 3] >= b[:, 1]) &
                        (box[:, 1] <= b[:, 3]))
            total += int(holds_pixels.sum())
            missed += int((holds_pixels & ~(in_bound & reaches(p, box))).sum())
    return missed / max(total, 1)


def warp_work(captured, primitive: str, width: int, height: int, sample: int, tile: int = 16) -> dict:
    """The warp-level work of the kernels on a random sample of tiles (float64 reference alphas of each
    tile's entries), scaled to the whole list, in millions of (entry, warp) pairs: warps with a pixel
    not yet finished at the entry (its list index before the pixel's last contributor: the kernels
    evaluate the primitive there), those of them the footprint masks keep (8x4), and warps with a pixel
    that takes the primitive (alpha >= 1/255: the backward's warp reduction runs). 'contributing
    unmasked' counts contributing pairs a mask would drop: 0 for masks that skip exactly. 'contributing
    16x4 / 8x8': the same for warps of 64 pixels (2 pixels a lane), which would run one warp reduction
    for what now takes two."""
    from le3d.raster.reference import convex_raw_alpha, gaussian_raw_alpha

    offsets, ids, params = captured["offsets"].long(), captured["ids"].long(), captured["params"]
    bounds, last = captured["bounds"], captured["aux"][..., AUX_LAST_INDEX]
    alpha_of = convex_raw_alpha if primitive == "convex" else gaussian_raw_alpha
    reaches = reaches_convex if primitive == "convex" else reaches_gaussian
    tiles_x, tiles = (width + tile - 1) // tile, len(offsets) - 1
    counts = dict.fromkeys(["entries", "pending 16x2", "pending 8x4", "pending masked", "contributing 16x2",
                            "contributing 8x4", "contributing unmasked", "contributing 16x4", "contributing 8x8"], 0)
    for t in torch.randperm(tiles, generator=torch.Generator().manual_seed(0))[:sample].tolist():
        b, e = int(offsets[t]), int(offsets[t + 1])
        if e == b:
            continue
        x0, y0 = (t % tiles_x) * tile, (t // tiles_x) * tile
        h, w = min(tile, height - y0), min(tile, width - x0)
        p = params[ids[b:e]].double()
        pixel_last = torch.zeros(tile, tile)
        pixel_last[:h, :w] = last[y0:y0 + h, x0:x0 + w]  # 0 outside the image: never pending
        pending = torch.arange(e - b)[:, None, None] < pixel_last[None]  # [M, 16, 16]
        contributing = pending & (alpha_of(p, tile, tile, x0, y0) >= 1 / 255)

        def warps(x, ww, wh):  # [M, 16, 16] -> [M, rows of warps, columns of warps]: any pixel
            return x.reshape(-1, tile // wh, wh, tile // ww, ww).any(4).any(2)
        mask = torch.zeros(e - b, tile // 4, tile // 8, dtype=torch.bool)
        bnd = bounds[ids[b:e]].double()
        for wy in range(tile // 4):
            for wx in range(tile // 8):
                bx, by = x0 + 8 * wx, y0 + 4 * wy
                box = torch.tensor([bx + 0.5, by + 0.5, min(bx + 8, width) - 0.5, min(by + 4, height) - 0.5],
                                   dtype=torch.float64).expand(e - b, 4)
                in_bound = ((box[:, 2] >= bnd[:, 0]) & (box[:, 0] <= bnd[:, 2]) & (box[:, 3] >= bnd[:, 1]) &
                            (box[:, 1] <= bnd[:, 3]))
                mask[:, wy, wx] = in_bound & reaches(p, box)
        counts["entries"] += e - b
        counts["pending 16x2"] += int(warps(pending, 16, 2).sum())
        counts["pending 8x4"] += int(warps(pending, 8, 4).sum())
        counts["pending masked"] += int((warps(pending, 8, 4) & mask).sum())
        counts["contributing 16x2"] += int(warps(contributing, 16, 2).sum())
        counts["contributing 8x4"] += int(warps(contributing, 8, 4).sum())
        counts["contributing unmasked"] += int((warps(contributing, 8, 4) & ~mask).sum())
        counts["contributing 16x4"] += int(warps(contributing, 16, 4).sum())
        counts["contributing 8x8"] += int(warps(contributing, 8, 8).sum())
    scale = len(ids) / max(counts.pop("entries"), 1) / 1e6
    return {k: (v if k == "contributing unmasked" else v * scale) for k, v in counts.items()}


def reaches_convex(p, box):
    """ConvexFootprint::reaches_tile for rows of params p [M, 29] and boxes [M, 4] (without its tiny
    rounding slack)."""
    E = p[:, 0].long()
    o = p[:, 4]
    threshold = torch.where(255 * o - 1 > 0, torch.log((255 * o - 1).clamp(min=1e-30)) + 1e-3,
                            torch.full_like(o, -torch.inf))
    ds = p[:, 1] * p[:, 2]
    ok = E >= 3
    for e in range(8):
        nx, ny, c = p[:, 5 + 3 * e], p[:, 6 + 3 * e], p[:, 7 + 3 * e]
        L_min = torch.minimum(nx * box[:, 0], nx * box[:, 2]) + torch.minimum(ny * box[:, 1], ny * box[:, 3]) + c
        invisible = p[:, 3] * ds * L_min > threshold * p[:, 1]
        ok &= ~((e < E) & invisible)
    return ok


def reaches_gaussian(p, box):
    """GaussianFootprint::reaches_tile for rows of params p [M, 6] and boxes [M, 4] (without its tiny
    rounding slack): the conic's minimum over the box, at the mean or on an edge."""
    mx, my, a, b, c, o = p.unbind(-1)
    threshold = torch.where(o > 0, -torch.log(255 * o.clamp(min=1e-30)) - 1e-3, torch.full_like(o, torch.inf))
    inside = (mx >= box[:, 0]) & (mx <= box[:, 2]) & (my >= box[:, 1]) & (my <= box[:, 3])
    q_min = torch.full_like(mx, torch.inf)
    for side in range(4):
        if side < 2:
            dx = box[:, 0 if side == 0 else 2] - mx
            dy = torch.minimum(torch.maximum(-b * dx / c, box[:, 1] - my), box[:, 3] - my)
        else:
            dy = box[:, 1 if side == 2 else 3] - my
            dx = torch.minimum(torch.maximum(-b * dy / a, box[:, 0] - mx), box[:, 2] - mx)
        q_min = torch.minimum(q_min, 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy)
    return inside | ~((a > 0) & (c > 0)) | (-q_min >= threshold)


if __name__ == "__main__":
    main()
