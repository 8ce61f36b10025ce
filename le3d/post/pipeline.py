"""The post-processing chain of a rendered linear HDR frame (pure torch, batched, CPU or CUDA).

Order: white balance + camera -> sRGB (one 3x3) -> exposure -> refocus (linear HDR, needs depth)
-> tone map -> sRGB OETF -> clip to [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from le3d.color import srgb_oetf
from le3d.post.exposure import apply_exposure
from le3d.post.refocus import focus_depth_at, refocus
from le3d.post.tonemap import tonemap
from le3d.post.white_balance import WhiteBalance, apply_color_matrix, white_balance_matrix

__all__ = ["PostSettings", "apply_post", "apply_post_linear"]


@dataclass
class PostSettings:
    """Everything the user can change after the fact.

    white_balance: 'asshot' | 'none' | (kelvin, tint) | neutral camera RGB triple; with the scene's
    colour profile (apply_post's ``color_profile``) the DNG colour matrices are interpolated at the
    requested white, as the DNG specification says.
    tonemap: a name of ``le3d.post.tonemap.TONEMAPPERS`` (params in ``tonemap_params``).
    focus_depth / focus_pixel (x, y): where to focus (focus_pixel picks the depth there);
    aperture: A of the CoC c = A |1/z_f - 1/z| in pixels (0 disables refocus).
    """

    exposure_ev: float = 0.0
    white_balance: WhiteBalance = "asshot"
    tonemap: str = "aces"
    tonemap_params: dict[str, Any] = field(default_factory=dict)
    focus_depth: float | None = None
    focus_pixel: tuple[int, int] | None = None
    aperture: float = 0.0
    refocus_layer_step: float = 1.0
    refocus_max_layers: int = 64


def apply_post_linear(hdr: torch.Tensor, settings: PostSettings, cam_to_srgb=None, asshot_wb=None,
                      depth: torch.Tensor | None = None, *, cam_to_xyz=None, color_profile=None) -> torch.Tensor:
    """White balance, colour matrix, exposure and refocus: linear sRGB (D65) HDR ``[..., H, W, 3]``
    (what an EXR export stores). ``hdr`` is linear camera-native RGB. ``cam_to_xyz`` and
    ``color_profile`` (the scene's DNG colour tags) as ``le3d.post.white_balance_matrix`` takes them."""
    if hdr.shape[-1] != 3:
        raise ValueError(f"apply_post: expected [..., H, W, 3] linear RGB, got {tuple(hdr.shape)}")
    m = white_balance_matrix(settings.white_balance, cam_to_srgb=cam_to_srgb, asshot_wb=asshot_wb,
                             cam_to_xyz=cam_to_xyz, color_profile=color_profile)
    x = apply_color_matrix(hdr, m)
    x = apply_exposure(x, settings.exposure_ev)
    if settings.aperture > 0:
        if depth is None:
            raise ValueError("refocus (aperture > 0) needs the rendered depth")
        fd = settings.focus_depth
        if fd is None:
            if settings.focus_pixel is None:
                raise ValueError("refocus needs focus_depth or focus_pixel")
            fd = focus_depth_at(depth, *settings.focus_pixel)
        x = refocus(x, depth, fd, settings.aperture, layer_step=settings.refocus_layer_step,
                    max_layers=settings.refocus_max_layers)
    return x


def apply_post(hdr: torch.Tensor, settings: PostSettings, cam_to_srgb=None, asshot_wb=None,
               depth: torch.Tensor | None = None, *, cam_to_xyz=None, color_profile=None) -> torch.Tensor:
    """Linear camera RGB ``[..., H, W, 3]`` -> display sRGB in [0, 1] (same shape)."""
    x = apply_post_linear(hdr, settings, cam_to_srgb, asshot_wb, depth, cam_to_xyz=cam_to_xyz,
                          color_profile=color_profile)
    y = tonemap(x, settings.tonemap, **settings.tonemap_params)
    return srgb_oetf(y.clamp(0.0, 1.0)).clamp(0.0, 1.0)
