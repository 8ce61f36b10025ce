"""The camera pipeline shared by data previews and rendering (torch, any leading shape [..., 3]).

camera RGB -> white balance -> camera-to-sRGB matrix -> exposure (EV) -> tone map -> sRGB OETF.
Tone mapping proper lives in le3d.post; here ``tonemap`` is "clip" (clip to [0, 1]), "none"
(no clipping: values stay HDR) or any callable on linear sRGB.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from le3d.color import apply_matrix, srgb_eotf, srgb_oetf


def white_balance(rgb: torch.Tensor, gains) -> torch.Tensor:
    return rgb * torch.as_tensor(gains, dtype=rgb.dtype, device=rgb.device)


def apply_ev(x: torch.Tensor, ev: float) -> torch.Tensor:
    return x * (2.0 ** float(ev))


def camera_to_linear_srgb(cam_rgb: torch.Tensor, wb_gains, cam_to_srgb, ev: float = 0.0) -> torch.Tensor:
    """Camera RGB -> white-balanced -> linear sRGB -> x 2^ev (no clipping)."""
    cam_rgb = torch.as_tensor(cam_rgb)
    if not cam_rgb.is_floating_point():
        cam_rgb = cam_rgb.float()
    return apply_ev(apply_matrix(white_balance(cam_rgb, wb_gains), cam_to_srgb), ev)


def process(cam_rgb: torch.Tensor, wb_gains, cam_to_srgb, ev: float = 0.0,
            tonemap: str | Callable[[torch.Tensor], torch.Tensor] = "clip") -> torch.Tensor:
    """Full pipeline to display-referred sRGB (encoded with the sRGB OETF)."""
    lin = camera_to_linear_srgb(cam_rgb, wb_gains, cam_to_srgb, ev)
    if callable(tonemap):
        lin = tonemap(lin)
    elif tonemap == "clip":
        lin = lin.clamp(0.0, 1.0)
    elif tonemap != "none":
        raise ValueError(f"unknown tonemap {tonemap!r} (use 'clip', 'none' or a callable)")
    return srgb_oetf(lin)


def unprocess(srgb: torch.Tensor, wb_gains, cam_to_srgb, ev: float = 0.0) -> torch.Tensor:
    """Exact inverse of ``process(..., tonemap='none')``: sRGB -> camera RGB (Brooks et al. 2019)."""
    srgb = torch.as_tensor(srgb)
    if not srgb.is_floating_point():
        srgb = srgb.float()
    lin = srgb_eotf(srgb) * (2.0 ** -float(ev))
    inv = torch.linalg.inv(torch.as_tensor(cam_to_srgb, dtype=torch.float64)).to(lin.dtype)
    cam_wb = apply_matrix(lin, inv)
    return cam_wb / torch.as_tensor(wb_gains, dtype=lin.dtype, device=lin.device)


def auto_ev(cam_rgb: torch.Tensor, wb_gains, cam_to_srgb, target: float = 0.18, percentile: float = 0.5) -> float:
    """EV that brings the given percentile of luminance to ``target`` (for exposure-normalised previews)."""
    lin = camera_to_linear_srgb(cam_rgb, wb_gains, cam_to_srgb)
    y = lin.mean(-1).flatten()
    if y.numel() > 1_000_000:
        y = y[:: y.numel() // 1_000_000 + 1]
    v = torch.quantile(y.float(), percentile).item()
    return float(torch.log2(torch.tensor(target / max(v, 1e-8))).item())
