"""A tiny in-memory Scene for trainer tests: random Gaussians rendered from a ring of cameras."""
from __future__ import annotations

import math

import torch
from scenes import intrinsics, look_at_viewmat

import le3d
from le3d.data.types import Camera, Frame, Scene


def toy_scene(n_views=8, width=48, height=32, n_gauss=300, seed=0, brightness=0.02, exposures=None, test_views=2):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n_gauss, 3, generator=g) * 2 - 1) * torch.tensor([0.8, 0.8, 0.3])
    quats = torch.randn(n_gauss, 4, generator=g)
    scales = torch.exp(torch.rand(n_gauss, 3, generator=g) * 1.5 - 3.5)
    opac = torch.rand(n_gauss, generator=g) * 0.5 + 0.5
    cols = (torch.rand(n_gauss, 3, generator=g) * brightness).float()
    frames = []
    for k in range(n_views + test_views):
        a = 2 * math.pi * k / (n_views + test_views)
        eye = (2.5 * math.cos(a), 2.5 * math.sin(a), 1.2)
        V = look_at_viewmat(eye, up=(0.0, 0.0, -1.0))
        K = intrinsics(width, height, 55.0)
        cam = Camera(V, K, width, height, f"v{k}")
        out = le3d.rasterize_gaussians(means, quats, scales, opac, cols, V, K, width, height)
        e = 1.0 if exposures is None else exposures[k % len(exposures)]
        img = out.image * e + torch.randn(height, width, 3, generator=g) * brightness * 0.01
        depth = torch.where(out.alpha > 0.5, out.depth / out.alpha.clamp_min(1e-6), torch.full_like(out.depth, math.inf))
        frames.append(Frame(cam, img.float(), e, None, depth, f"v{k}"))
    test = frames[n_views:]
    for f in test:
        f.exposure = 1.0
    pts = means[::3] + torch.randn(len(means[::3]), 3, generator=g) * 0.02
    return Scene(frames[:n_views], test, pts, torch.full((len(pts), 3), 0.5), "raw", torch.eye(3), torch.ones(3),
                 "", "toy")
