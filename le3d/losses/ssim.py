"""SSIM with a Gaussian window (for metrics and the 3DGS D-SSIM term) and a configurable stride (S3IM)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_window(size: int, sigma: float, channels: int, dtype=torch.float32, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, stride: int = 1,
         data_range: float = 1.0, padding: bool = False) -> torch.Tensor:
    """Mean SSIM of images [H,W,C] or [B,C,H,W] (constants K1=0.01, K2=0.03)."""
    if x.dim() == 3:
        x, y = x.permute(2, 0, 1)[None], y.permute(2, 0, 1)[None]
    C = x.shape[1]
    w = gaussian_window(window, sigma, C, x.dtype, x.device)
    pad = window // 2 if padding else 0

    def f(t):
        return F.conv2d(t, w, stride=stride, padding=pad, groups=C)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()
