"""A hard-edged synthetic scene and a tiny fixed-count fitting loop, convexes vs Gaussians (CPU).

The scene: flat, opaque, uniformly coloured rectangles at several depths over a black background,
ray-cast exactly (so its edges are perfectly hard), seen from a few cameras. Both primitive kinds
start from the same points sampled on the rectangles with the same grey colour and are fitted with
Adam and the L1 + 0.2 D-SSIM loss for the same number of steps, with no densification, so that both
keep exactly the same primitive count. Used by tests/test_convex_model.py
(test_convexes_beat_gaussians_on_hard_edges) and scripts/bench_convex.py.
"""
from __future__ import annotations

import math

import torch

from convex_splat.losses import ldr_loss, psnr
from convex_splat.model import ConvexSet, knn_mean_distance
from le3d.raster import rasterize_gaussians

# (centre xyz, half-size xy, rgb): axis-aligned rectangles facing -z
RECTS = [((-0.35, -0.2, 0.4), (0.3, 0.22), (0.9, 0.2, 0.15)),
         ((0.3, 0.15, 0.2), (0.25, 0.3), (0.15, 0.7, 0.2)),
         ((0.05, -0.05, -0.1), (0.12, 0.12), (0.2, 0.3, 0.95)),
         ((0.0, 0.0, 0.8), (0.8, 0.6), (0.85, 0.85, 0.8))]


def look_at(eye, target=(0.0, 0.0, 0.3)) -> torch.Tensor:
    eye, target = torch.tensor(eye, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
    z = (target - eye) / (target - eye).norm()
    x = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    V = torch.eye(4, dtype=torch.float64)
    V[:3, :3] = torch.stack([x, y, z])
    V[:3, 3] = -V[:3, :3] @ eye
    return V.float()


def cameras(n: int = 6, width: int = 64, height: int = 48):
    f = 0.5 * width / math.tan(math.radians(25))
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    views = []
    for i in range(n):
        a = 2 * math.pi * i / n
        views.append(look_at((0.35 * math.cos(a), 0.25 * math.sin(a), -2.2)))
    return views, K


def trace(viewmat, K, width: int, height: int, rects=RECTS) -> torch.Tensor:
    """[H, W, 3] exact render (one sample per pixel centre) of the rectangles."""
    j, i = torch.meshgrid(torch.arange(width) + 0.5, torch.arange(height) + 0.5, indexing="xy")
    d_cam = torch.stack([(j - K[0, 2]) / K[0, 0], (i - K[1, 2]) / K[1, 1], torch.ones_like(j)], -1).double()
    Rinv = viewmat[:3, :3].double().T
    origin = -Rinv @ viewmat[:3, 3].double()
    d = d_cam @ Rinv.T
    best = torch.full(d.shape[:2], math.inf, dtype=torch.float64)
    img = torch.zeros(d.shape[:2] + (3,), dtype=torch.float64)
    for (cx, cy, cz), (hx, hy), rgb in rects:
        t = (cz - origin[2]) / d[..., 2]
        x, y = origin[0] + t * d[..., 0], origin[1] + t * d[..., 1]
        hit = (t > 0) & ((x - cx).abs() <= hx) & ((y - cy).abs() <= hy) & (t < best)
        best = torch.where(hit, t, best)
        img[hit] = torch.tensor(rgb, dtype=torch.float64)
    return img.float()


def sample_points(n: int, seed: int = 0, rects=RECTS) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    areas = torch.tensor([4 * hx * hy for _, (hx, hy), _ in rects])
    which = torch.multinomial(areas, n, replacement=True, generator=g)
    u = torch.rand(n, 2, generator=g) * 2 - 1
    c = torch.tensor([r[0] for r in rects])[which]
    h = torch.tensor([r[1] for r in rects])[which]
    return torch.cat([c[:, :2] + u * h, c[:, 2:]], -1)


def fit(kind: str, n: int = 150, steps: int = 300, seed: int = 0, width: int = 64, height: int = 48,
        n_views: int = 6, backend: str = "cpu", lr_scale: float = 1.0) -> dict:
    """Fits n primitives of `kind` ("convex" | "gaussian") to the scene; returns PSNR and timings.
    lr_scale multiplies every learning rate (to check that neither kind is handicapped by them)."""
    import time

    torch.manual_seed(seed)
    views, K = cameras(n_views, width, height)
    targets = [trace(v, K, width, height) for v in views]
    pts = sample_points(n, seed)
    grey = torch.full((n, 3), 0.5)
    if kind == "convex":
        cs = ConvexSet.from_points(pts, grey, k=6, seed=seed, opacity=0.5)
        groups = [{"params": [cs.points], "lr": 2e-3}, {"params": [cs.log_delta, cs.log_sigma], "lr": 2e-2},
                  {"params": [cs.opacity_logit], "lr": 5e-2}, {"params": [cs.colors], "lr": 2.5e-2}]

        def render(v):
            return cs.render(v, K, width, height, backend=backend).image
    elif kind == "gaussian":
        r = knn_mean_distance(pts)
        means = torch.nn.Parameter(pts.clone())
        log_scales = torch.nn.Parameter(torch.log(r)[:, None].repeat(1, 3))
        quats = torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1))
        opac = torch.nn.Parameter(torch.full((n,), math.log(0.5 / 0.5)))
        colors = torch.nn.Parameter(grey.clone())
        groups = [{"params": [means], "lr": 2e-3}, {"params": [log_scales], "lr": 2e-2},
                  {"params": [quats], "lr": 1e-2}, {"params": [opac], "lr": 5e-2}, {"params": [colors], "lr": 2.5e-2}]

        def render(v):
            return rasterize_gaussians(means, quats, torch.exp(log_scales), torch.sigmoid(opac), colors, v, K,
                                       width, height, backend=backend).image
    else:
        raise ValueError(kind)
    for group in groups:
        group["lr"] *= lr_scale
    opt = torch.optim.Adam(groups, eps=1e-15)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        i = int(torch.randint(len(views), (1,), generator=g))
        loss = ldr_loss(render(views[i]), targets[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        scores = [psnr(render(v).clamp(0, 1), t) for v, t in zip(views, targets)]
    return {"kind": kind, "n": n, "steps": steps, "psnr": sum(scores) / len(scores), "seconds": elapsed}
