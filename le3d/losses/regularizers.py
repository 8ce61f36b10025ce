"""Geometry regularisers on the rasterizer's fused outputs (LE3D)."""
from __future__ import annotations

import torch


def distortion_loss(distortion: torch.Tensor) -> torch.Tensor:
    """Mean of the fused per-pixel distortion sum_ij w_i w_j |u_i - u_j| (u: normalised disparity)."""
    return distortion.mean()


def nearfar_loss(near: torch.Tensor, far: torch.Tensor, weight: torch.Tensor | None = None,
                 eps: float = 1e-3) -> torch.Tensor:
    """mean(log((far + eps) / (near + eps))^2 * weight): pulls the first and last contributors of a pixel
    together. `weight` (e.g. the detached pixel alpha) discounts empty pixels; None means 1."""
    r = torch.log((far.clamp_min(0) + eps) / (near.clamp_min(0) + eps)) ** 2
    if weight is not None:
        r = r * weight
    return r.mean()


def alpha_loss(alpha: torch.Tensor) -> torch.Tensor:
    """Binary entropy of the pixel opacity: pushes alpha towards 0 or 1."""
    a = alpha.clamp(1e-4, 1 - 1e-4)
    return (-(a * torch.log(a) + (1 - a) * torch.log(1 - a))).mean()
