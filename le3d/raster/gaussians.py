"""rasterize_gaussians: the user-facing Gaussian splatting entry point."""
from __future__ import annotations

import torch

from le3d.errors import InputError
from le3d.raster.backends import rasterize, resolve_backend
from le3d.raster.constants import FOOTPRINT_GAUSSIAN
from le3d.raster.gsplat_backend import check_gsplat_usable, rasterize_gsplat
from le3d.raster.project_function import project_gaussians_fused
from le3d.raster.projection import gaussian_params, project_gaussians
from le3d.raster.types import RenderOutput
from le3d.raster.validate import ValueChecks, check_common, check_tensor


def rasterize_gaussians(means, quats, scales, opacities, features, viewmat, K, width: int, height: int, *,
                        background=None, near: float = 0.01, far: float = 1e10, backend: str = "auto",
                        distortion_coord=None, nearfar_k: int = 0) -> RenderOutput:
    """Render N 3D Gaussians with one camera (conventions in DESIGN.md).

    means [N,3], quats [N,4] (w,x,y,z; normalised here), scales [N,3] (linear), opacities [N] in (0,1),
    features [N,C] (C in 1..64), viewmat [4,4] world-to-camera (OpenCV), K [3,3].
    background [C] (default zeros). distortion_coord [N]: a per-Gaussian scalar u, monotone in view
    depth (e.g. normalised disparity), for the fused depth-distortion output (the compiled backends'
    one-pass sums are exact only for a monotone u; the reference for any). nearfar_k > 0 adds the
    near/far depths of the first/last k contributors. Differentiable w.r.t. every tensor input.
    backend: "auto" (compiled for the tensors' device, else the reference), "torch", "cpu", "cuda", or
    "gsplat" (gsplat 1.5's rasterization(); CUDA only, no distortion or near/far outputs).
    """
    if not isinstance(means, torch.Tensor):
        raise InputError(f"means: expected a torch.Tensor, got {type(means).__name__}")
    device = means.device
    checks = ValueChecks()
    check_tensor("means", means, (None, 3), device, checks=checks)
    n = means.shape[0]
    check_tensor("quats", quats, (n, 4), device, checks=checks)
    check_tensor("scales", scales, (n, 3), device, checks=checks)
    check_tensor("opacities", opacities, (n,), device, checks=checks)
    background = check_common(features, viewmat, K, width, height, background, near, far, nearfar_k,
                              distortion_coord, n, device, checks,
                              primitives=dict(means=means, quats=quats, scales=scales, opacities=opacities))
    checks.rows_nonzero(quats, "quats: a quaternion has zero norm")
    if backend == "gsplat":
        checks.raise_first_failure()
        check_gsplat_usable(device, means.dtype, distortion_coord, nearfar_k)
        return rasterize_gsplat(means, quats, scales, opacities, features, viewmat, K, width, height, background,
                                near, far)
    backend = resolve_backend(backend, device, means.dtype)
    checks.raise_first_failure(compiled=backend != "torch")

    # The compiled backends project with the fused kernels; the reference keeps the PyTorch twin,
    # which also serves gradients w.r.t. K (the fused backward has none).
    project = project_gaussians if backend == "torch" or K.requires_grad else project_gaussians_fused
    means2d, conics, depths, bounds, radii = project(
        means, quats, scales, opacities, viewmat, K, width, height, near, far
    )
    params = gaussian_params(means2d, conics, opacities)
    image, alpha, depth, distortion, near_d, far_d = rasterize(
        params, FOOTPRINT_GAUSSIAN, features, depths, distortion_coord, bounds, background, width, height,
        nearfar_k, backend,
    )
    return RenderOutput(image=image, alpha=alpha, depth=depth, means2d=means2d, radii=radii,
                        distortion=distortion, near_depth=near_d, far_depth=far_d)
