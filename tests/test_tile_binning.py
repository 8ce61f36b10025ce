"""Tile binning: a primitive is listed for a tile only where its footprint reaches the tile
(Footprint::reaches_tile), never for a tile where one of its pixels has alpha >= 1/255, and for
fewer tiles than its screen box covers when the footprint is tilted or rounded."""
from __future__ import annotations

import pytest
import torch
from scenes import camera, random_gaussians
from test_convex_raster import random_convexes

from convex_splat.projection import project_convexes
from le3d._ext import load_extension
from le3d.raster.constants import ALPHA_MIN, FOOTPRINT_CONVEX, FOOTPRINT_GAUSSIAN, TILE_SIZE
from le3d.raster.projection import project_gaussians
from le3d.raster.reference import RAW_ALPHA

ext = load_extension()
pytestmark = pytest.mark.skipif(ext is None, reason="le3d extension not built")
W, H = 72, 56  # not multiples of the tile size
BIG = (200, 168)  # 13 x 11 tiles: many primitives' tile ranges exceed 64 tiles (the CPU binning's other path)


def gaussian_inputs(n, seed, size=(W, H)):
    means, quats, scales, opacities, _ = random_gaussians(n, seed=seed, scale=(0.01, 0.3))
    scales[:, 0] *= 4  # elongated, in random orientations: their boxes are loose
    viewmat, K = camera(*size)
    means2d, conics, depths, bounds, _ = project_gaussians(means, quats, scales, opacities, viewmat, K, *size)
    params = torch.cat([means2d, conics, opacities[:, None]], -1).detach().contiguous()
    return params, depths.detach().contiguous(), bounds, FOOTPRINT_GAUSSIAN, size


def convex_inputs(n, seed, size=(W, H)):
    points, delta, sigma, opac, _ = random_convexes(n, 6, seed=seed)
    viewmat, K = camera(*size)
    params, _, depths, bounds, _ = project_convexes(points, delta, sigma, opac, viewmat, K, *size)
    return params.detach().contiguous(), depths.detach().contiguous(), bounds, FOOTPRINT_CONVEX, size


def tile_lists(params, depths, bounds, footprint, size, device):
    """{(tile, primitive)} the forward kernel binned."""
    n = params.shape[0]
    to = dict(device=device)
    out = getattr(ext, f"rasterize_forward_{device}")(
        params.to(**to), footprint, torch.full((n, 1), 0.5, **to), depths.to(**to), None,
        bounds.to(**to), torch.zeros(1, **to), *size, 0)
    offsets, ids = out[7].cpu(), out[8].cpu()
    tiles = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets.diff().long())
    return set(zip(tiles.tolist(), ids.tolist()))


def visible_tiles(params, footprint, size):
    """{(tile, primitive)} where some pixel of the tile has raw alpha >= 1/255 (the reference's alpha)."""
    w, h = size
    alpha = RAW_ALPHA[footprint](params.double(), w, h) >= ALPHA_MIN  # [N, H, W]
    tiles_x = (w + TILE_SIZE - 1) // TILE_SIZE
    tile_of = ((torch.arange(h)[:, None] // TILE_SIZE) * tiles_x + torch.arange(w)[None, :] // TILE_SIZE).flatten()
    prim, pixel = torch.nonzero(alpha.reshape(len(params), -1), as_tuple=True)
    pairs = torch.unique(tile_of[pixel] * len(params) + prim)
    return {(int(p) // len(params), int(p) % len(params)) for p in pairs}


def box_tiles(bounds, size):
    """Per primitive, the number of tiles its screen box covers."""
    w, h = size
    b = bounds.double()
    x0 = torch.ceil(b[:, 0] - 0.5).clamp(min=0) // TILE_SIZE
    x1 = torch.floor(b[:, 2] - 0.5).clamp(max=w - 1) // TILE_SIZE
    y0 = torch.ceil(b[:, 1] - 0.5).clamp(min=0) // TILE_SIZE
    y1 = torch.floor(b[:, 3] - 0.5).clamp(max=h - 1) // TILE_SIZE
    ok = (b[:, 0] <= b[:, 2]) & (x1 >= x0) & (y1 >= y0)
    return torch.where(ok, (x1 - x0 + 1) * (y1 - y0 + 1), torch.zeros_like(x0))


def check(inputs, device):
    params, depths, bounds, footprint, size = inputs
    binned = tile_lists(params, depths, bounds, footprint, size, device)
    missing = visible_tiles(params, footprint, size) - binned
    assert not missing, f"tiles with visible pixels left out: {sorted(missing)[:5]}"
    boxed = int(box_tiles(bounds, size).sum())
    assert len(binned) < 0.9 * boxed, (len(binned), boxed)  # the culling does cut loose boxes


@pytest.mark.parametrize("make", [gaussian_inputs, convex_inputs], ids=["gaussian", "convex"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cpu_binning_keeps_visible_tiles_and_drops_unreached(make, seed):
    check(make(150, seed), "cpu")


@pytest.mark.parametrize("make", [gaussian_inputs, convex_inputs], ids=["gaussian", "convex"])
def test_cpu_binning_of_ranges_over_64_tiles(make):
    """The CPU binning keeps the tiles a range of up to 64 reaches as bits between its two passes and
    tests larger ranges twice: both ways list the visible tiles, each tile's list in depth order."""
    inputs = make(150, 2, size=BIG)
    assert (box_tiles(inputs[2], BIG) > 64).sum() >= 5 and (box_tiles(inputs[2], BIG) <= 64).sum() >= 5
    check(inputs, "cpu")
    params, depths, bounds, footprint, size = inputs
    n = params.shape[0]
    out = ext.rasterize_forward_cpu(params, footprint, torch.full((n, 1), 0.5), depths, None, bounds,
                                    torch.zeros(1), *size, 0)
    offsets, ids = out[7], out[8].long()
    for t in range(len(offsets) - 1):
        z = depths[ids[offsets[t]:offsets[t + 1]]]
        assert (z[1:] >= z[:-1]).all(), t


@pytest.mark.cuda
@pytest.mark.parametrize("make", [gaussian_inputs, convex_inputs], ids=["gaussian", "convex"])
def test_cuda_binning_matches_cpu(make):
    inputs = make(150, 0)
    check(inputs, "cuda")
    cuda, cpu = tile_lists(*inputs, "cuda"), tile_lists(*inputs, "cpu")
    # The same tests; the GPU may fuse multiply-adds, so a tile exactly at the margin may differ.
    assert len(cuda ^ cpu) <= max(1, len(cpu) // 1000), sorted(cuda ^ cpu)[:5]
