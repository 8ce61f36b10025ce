"""rasterize_convexes: the user-facing smooth-convex splatting entry point (3D Convex Splatting)."""
from __future__ import annotations

import torch

from convex_splat.projection import project_convexes, project_convexes_by_steps
from le3d.errors import InputError
from le3d.raster.backends import rasterize, resolve_backend
from le3d.raster.constants import FOOTPRINT_CONVEX
from le3d.raster.types import RenderOutput
from le3d.raster.validate import ValueChecks, check_common, check_tensor

MIN_POINTS, MAX_POINTS = 3, 8


def rasterize_convexes(points, delta, sigma, opacities, features, viewmat, K, width: int, height: int, *,
                       background=None, near: float = 0.01, far: float = 1e10, backend: str = "auto",
                       distortion_coord=None, nearfar_k: int = 0) -> RenderOutput:
    """Render N smooth 3D convexes with one camera (the primitive is defined in convex_splat/projection.py).

    points [N,K,3] (K in 3..8) world points of each convex, delta [N] > 0 smoothness, sigma [N] > 0
    sharpness (both in inverse world units), opacities [N] in (0,1), features [N,C] (C in 1..64),
    viewmat [4,4] world-to-camera (OpenCV), K [3,3]. Keywords as `le3d.rasterize_gaussians`.
    Returns a RenderOutput; `means2d` [N,2] is the centroid's projection and its `.grad` (after
    `.retain_grad()` and backward) is the gradient of a screen-space translation of each convex.
    Differentiable w.r.t. points, delta, sigma, opacities, features, background, viewmat, K,
    distortion_coord.
    """
    if not isinstance(points, torch.Tensor):
        raise InputError(f"points: expected a torch.Tensor, got {type(points).__name__}")
    device = points.device
    checks = ValueChecks()
    check_tensor("points", points, (None, None, 3), device, checks=checks)
    n, k = points.shape[:2]
    if n and not MIN_POINTS <= k <= MAX_POINTS:
        raise InputError(f"points: {MIN_POINTS} to {MAX_POINTS} points per convex supported, got {k}")
    check_tensor("delta", delta, (n,), device, checks=checks)
    check_tensor("sigma", sigma, (n,), device, checks=checks)
    check_tensor("opacities", opacities, (n,), device, checks=checks)
    background = check_common(features, viewmat, K, width, height, background, near, far, nearfar_k,
                              distortion_coord, n, device, checks,
                              primitives=dict(points=points, delta=delta, sigma=sigma, opacities=opacities))
    checks.positive(delta, "delta: must be > 0")
    checks.positive(sigma, "sigma: must be > 0")
    backend = resolve_backend(backend, device, points.dtype)
    checks.raise_first_failure(compiled=backend != "torch")

    tap = None  # means2d's stand-in for the densification statistic (its value is set below)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (points, viewmat, K)):
        tap = torch.zeros(n, 2, dtype=points.dtype, device=device, requires_grad=True)
    if backend == "torch":  # the reference: every projection step its PyTorch twin
        params, means2d, depths, bounds, radii = project_convexes_by_steps(
            points, delta, sigma, opacities, viewmat, K, width, height, near, far, means2d_tap=tap, compiled=False)
    else:
        params, means2d, depths, bounds, radii = project_convexes(
            points, delta, sigma, opacities, viewmat, K, width, height, near, far, means2d_tap=tap)
    if tap is not None:
        with torch.no_grad():
            tap.copy_(means2d.detach())
        means2d = tap
    image, alpha, depth, distortion, near_d, far_d = rasterize(
        params, FOOTPRINT_CONVEX, features, depths, distortion_coord, bounds, background, width, height,
        nearfar_k, backend,
    )
    return RenderOutput(image=image, alpha=alpha, depth=depth, means2d=means2d, radii=radii,
                        distortion=distortion, near_depth=near_d, far_depth=far_d)
