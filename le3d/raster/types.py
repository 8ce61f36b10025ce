"""RenderOutput: what every rasterizer entry point returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RenderOutput:
    """Per-pixel outputs ([H, W, ...]) and per-primitive screen data ([N, ...]).

    image: [H, W, C] premultiplied features composited over the background.
    alpha: [H, W] 1 - final transmittance.  depth: [H, W] sum_i w_i z_i (not normalised).
    distortion: [H, W] sum_ij w_i w_j |u_i - u_j| when `distortion_coord` was given, else None.
    near_depth / far_depth: [H, W] w-weighted mean z of the first / last k contributors (nearfar_k > 0).
    means2d: [N, 2] projected centres; call `.retain_grad()` before backward to read its gradient
    (densification statistics).  radii: [N] int pixel radius of the screen bound, 0 when culled.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    means2d: torch.Tensor
    radii: torch.Tensor
    distortion: torch.Tensor | None = None
    near_depth: torch.Tensor | None = None
    far_depth: torch.Tensor | None = None
