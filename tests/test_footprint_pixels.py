"""The per-pixel footprint functions the CUDA kernels run (footprint_gaussian.h / footprint_convex.h, one
pixel at a time), run on the host through le3d._C.footprint_pixels_cpu, against the PyTorch reference's
raw alpha (float64) and its autograd gradient. The CPU backend evaluates footprints with its own row loops,
so these are the only CPU tests of the code the GPU's footprint math is written in: a change to it that
breaks values or gradients fails here, without a GPU. The host fills each evaluation record with NaN first,
so a gradient that reads a slot the evaluation did not write (an edge past the hull's) fails too. And at
every pixel it checks what the kernels' branch-free backward relies on: a zero upstream gradient gives
exact zeros, from the pixel's evaluation record and from a blank one (footprint_pixels_cpu raises if not)."""
from __future__ import annotations

import math

import pytest
import torch
from scenes import camera
from test_convex_raster import random_convexes

from convex_splat.projection import project_convexes
from le3d._ext import load_extension
from le3d.raster.constants import ALPHA_MIN, FOOTPRINT_CONVEX, FOOTPRINT_GAUSSIAN
from le3d.raster.reference import RAW_ALPHA

W, H = 40, 32


def gaussian_params(n, seed):
    """Random 2D Gaussians [n, 6] (mean, conic, opacity): on screen and off it, tilted, needles, huge ones
    and sub-pixel ones."""
    g = torch.Generator().manual_seed(seed)
    d64 = torch.float64
    mean = torch.rand(n, 2, generator=g, dtype=d64) * torch.tensor([W + 16.0, H + 16.0], dtype=d64) - 8.0
    sd = torch.exp(torch.rand(n, 2, generator=g, dtype=d64) * math.log(40.0) + math.log(0.3))  # 0.3..12 px
    sd[0] = torch.tensor([60.0, 45.0])  # larger than the image
    sd[1] = torch.tensor([0.1, 0.12])  # smaller than a pixel
    sd[2] = torch.tensor([25.0, 0.4])  # a needle
    angle = torch.rand(n, generator=g, dtype=d64) * math.pi
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    conic = rot @ torch.diag_embed(sd.pow(-2)) @ rot.transpose(-1, -2)
    opacity = torch.rand(n, generator=g, dtype=d64) * 0.95 + 0.01
    opacity[3] = 0.003  # below 1/255 everywhere
    opacity[4] = 0.0  # invisible: 1/o must not reach the kernels' branch-free gradient as inf
    return torch.cat([mean, conic[:, 0, 0, None], conic[:, 0, 1, None], conic[:, 1, 1, None], opacity[:, None]], -1)


def convex_params(k, seed, pixel_slope=None):
    """Projected random convexes [n, 29] (unit normals, offsets in pixels) with k points each, degenerate ones
    (no hull: zero edges) included. pixel_slope (lo, hi): delta s uniform in that range, sharp to soft."""
    pts, delta, sigma, opac, _ = random_convexes(40, k, seed=seed)
    viewmat, K = camera(W, H)
    if pixel_slope is not None:
        z = (pts.mean(1) @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2].abs()
        s = z / ((K[0, 0] + K[1, 1]) / 2)
        lo, hi = pixel_slope
        delta = (lo + (hi - lo) * torch.rand(len(pts), generator=torch.Generator().manual_seed(seed))) / s
    with torch.no_grad():
        params = project_convexes(pts, delta, sigma, opac, viewmat, K, W, H)[0]
    return params.double()


def run_both(params64, kind, seed):
    """(scalar raw alpha, scalar gradient, reference raw alpha, reference gradient, pairs used), the
    gradients of sum(d_raw * raw alpha) over the pairs the kernels composite (raw alpha >= 1/255). The
    reference's alpha in float64 from the float32-rounded params the kernels get (so only their arithmetic
    differs), its gradient in float64."""
    ext = load_extension()
    d_raw = torch.randn(len(params64), H, W, generator=torch.Generator().manual_seed(seed + 1))
    raw, d_params = ext.footprint_pixels_cpu(params64.float(), kind, W, H, d_raw)
    p = params64.clone().requires_grad_(True)
    want = RAW_ALPHA[kind](p, W, H)
    used = raw >= ALPHA_MIN
    (want * d_raw.double() * used).sum().backward()
    want_rounded = RAW_ALPHA[kind](params64.float().double(), W, H)
    return raw.double(), d_params.double(), want_rounded, p.grad, used


def alpha_tolerance(params64, kind, want):
    """How far float32 arithmetic may take raw alpha from want: 1e-5, and for a Gaussian also 8 ulp of
    its exponent's largest term, relative (a needle's exponent of -10 is a difference of terms near
    1000, good to 1e-4 in float32; the kernels' own rounding of them, measured, stays within 3.4 ulp)."""
    tol = torch.full_like(want, 1e-5)
    if kind == FOOTPRINT_GAUSSIAN:
        p = params64.float().double()
        ys, xs = torch.meshgrid(torch.arange(H, dtype=p.dtype) + 0.5, torch.arange(W, dtype=p.dtype) + 0.5,
                                indexing="ij")
        mx, my, a, b, c = (p[:, k, None, None] for k in range(5))
        dx, dy = mx - xs, my - ys
        terms = 0.5 * a.abs() * dx * dx + (b * dx * dy).abs() + 0.5 * c.abs() * dy * dy
        tol = tol + 8 * 2.0**-24 * want * (terms + 1)
    return tol


def assert_close_rows(name, got, want, rel):
    """|got - want| <= rel x each primitive's largest |want| (floored at 1e-3 of the largest overall)."""
    rows = want.reshape(len(want), -1).abs().amax(-1)
    tol = rel * rows.clamp(min=1e-3 * rows.max().item() + 1e-12)
    err = (got - want).reshape(len(want), -1).abs().amax(-1)
    assert (err <= tol).all(), (name, (err / tol).max().item(), int((err / tol).argmax()))


def check(params64, kind, seed):
    raw, grad, want, want_grad, used = run_both(params64, kind, seed)
    # alpha: the reference's wherever the kernels evaluate; 0 only where the reference is below 1/255
    evaluated = raw != 0
    err = (raw - want).abs() / alpha_tolerance(params64, kind, want)
    assert (err <= 1)[evaluated].all(), err[evaluated].max().item()
    assert (want[~evaluated] < ALPHA_MIN * (1 + 1e-4)).all(), want[~evaluated].max().item()
    assert_close_rows("d_params", grad, want_grad, 1e-3)
    return raw, grad, used


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_pixels_match_the_reference(seed):
    params = gaussian_params(64, seed)
    raw, grad, used = check(params, FOOTPRINT_GAUSSIAN, seed)
    assert used[4:].flatten(1).any(1).float().mean() > 0.5  # most Gaussians reach a pixel...
    assert not used[3].any() and grad[3].abs().sum() == 0  # ...the one below 1/255 everywhere none
    assert not used[4].any() and grad[4].abs().sum() == 0  # (nor the one of opacity 0)
    assert used[1].sum() <= 1 and used[0].all()  # sub-pixel: one pixel at most; larger than the image: every one


@pytest.mark.parametrize("k,seed,pixel_slope", [(3, 0, None), (6, 1, None), (8, 2, None), (6, 3, (0.02, 0.5)),
                                                (6, 4, (0.5, 8.0)), (8, 5, (2.0, 30.0))])
def test_convex_pixels_match_the_reference(k, seed, pixel_slope):
    params = convex_params(k, seed, pixel_slope)
    raw, grad, used = check(params, FOOTPRINT_CONVEX, seed)
    edges = params[:, 0].long()
    assert (edges[:2] == 0).all() and not used[:2].any()  # collinear, coincident: no hull, no alpha
    seen = used.flatten(1).any(1)
    assert seen.sum() >= 10, seen.sum()
    assert (grad[:, 0] == 0).all()  # the edge count has no gradient
    for n in torch.nonzero(seen).flatten().tolist():  # a visible convex's used params all get a gradient...
        assert (grad[n, 1:5 + 3 * edges[n]] != 0).all(), n
        assert (grad[n, 5 + 3 * edges[n]:] == 0).all(), n  # ...and its unused edge slots none
    if k == 8:
        assert (edges > 6).any()  # 7- and 8-edge hulls (the kernels' merged-extras path does not apply)


def test_footprint_pixels_refuses_bad_inputs():
    ext = load_extension()
    with pytest.raises(RuntimeError, match="params are"):
        ext.footprint_pixels_cpu(torch.zeros(2, 7), FOOTPRINT_GAUSSIAN, 4, 4, torch.zeros(2, 4, 4))
    with pytest.raises(RuntimeError, match="d_raw"):
        ext.footprint_pixels_cpu(torch.zeros(2, 6), FOOTPRINT_GAUSSIAN, 4, 4, torch.zeros(2, 4, 5))
