"""sRGB previews of RAW mosaics (for COLMAP and for looking at data): demosaic, light denoise,
white balance, camera-to-sRGB, exposure, clip, sRGB OETF -> uint8."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from le3d.raw.bayer import demosaic_bilinear
from le3d.raw.isp import process


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [H, W, C] (reflect padding)."""
    if sigma <= 0:
        return img
    r = max(1, int(round(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=img.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    t = img.permute(2, 0, 1).unsqueeze(1)  # [C, 1, H, W]
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return t.squeeze(1).permute(1, 2, 0)


def preview_srgb(mosaic: torch.Tensor, cfa: str, wb_gains, cam_to_srgb, ev: float = 0.0,
                 denoise_sigma: float = 0.0) -> np.ndarray:
    """Full-resolution uint8 sRGB preview [H, W, 3] of a normalised mosaic."""
    rgb = demosaic_bilinear(torch.as_tensor(mosaic), cfa)
    rgb = gaussian_blur(rgb, denoise_sigma)
    out = process(rgb, wb_gains, cam_to_srgb, ev=ev, tonemap="clip")
    return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
