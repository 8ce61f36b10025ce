"""`backend="gsplat"`: rasterize_gaussians through gsplat 1.5's `rasterization()` (optional dependency).

For users who already trust gsplat's CUDA kernels, and for side-by-side comparisons. It renders the
image, alpha and depth (sum w z, our convention: gsplat's "RGB+D" mode) with gsplat's own projection
(3-sigma bounds, where ours are the exact alpha >= 1/255 ellipse), so images agree with the other
backends up to splats that gsplat's bound cuts; the fused distortion and near/far outputs exist only
in le3d's own kernels and are refused here. gsplat compiles its CUDA code on first use (minutes).
"""
from __future__ import annotations

import torch

from le3d.errors import InputError
from le3d.raster.types import RenderOutput


def check_gsplat_usable(device: torch.device, dtype: torch.dtype, distortion_coord, nearfar_k: int) -> None:
    """Raises InputError with the reason when backend="gsplat" cannot serve this call."""
    if device.type != "cuda":
        raise InputError(f"backend='gsplat' needs CUDA tensors (gsplat has no CPU kernels), got {device}")
    if dtype != torch.float32:
        raise InputError(f"backend='gsplat' needs float32 tensors, got {dtype}")
    if distortion_coord is not None or nearfar_k:
        raise InputError("backend='gsplat' renders image, alpha and depth only; the distortion and near/far "
                         "outputs need backend='cuda' (or 'cpu'/'torch')")
    try:
        import gsplat  # noqa: F401
    except ImportError as exc:
        raise InputError(f"backend='gsplat': gsplat is not installed ({exc}); pip install gsplat==1.5.3") from exc


def rasterize_gsplat(means, quats, scales, opacities, features, viewmat, K, width: int, height: int,
                     background, near: float, far: float) -> RenderOutput:
    from gsplat import rasterization

    colours, alphas, meta = rasterization(
        means, quats, scales, opacities, features, viewmat[None], K[None], width, height,
        near_plane=near, far_plane=far, backgrounds=background[None], render_mode="RGB+D", packed=False,
    )
    C = features.shape[1]
    means2d = meta["means2d"][0]  # [N, 2]; its .grad (after retain_grad) drives densification
    radii = meta["radii"][0]
    if radii.dim() == 2:  # gsplat 1.5: per-axis radii [N, 2]
        radii = radii.max(dim=-1).values
    return RenderOutput(image=colours[0, ..., :C], alpha=alphas[0, ..., 0], depth=colours[0, ..., C],
                        means2d=means2d, radii=radii.int())
