"""LDR photometric loss used with convexes (as 3DGS / 3DCS): (1 - l) L1 + l (1 - SSIM), l = 0.2."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(img: torch.Tensor, ref: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of two [H, W, C] images in [0, 1] (Gaussian window, zero padding as 3DGS)."""
    a = img.permute(2, 0, 1)[None]
    b = ref.permute(2, 0, 1)[None]
    C = a.shape[1]
    w = _window(size, sigma, C, a)
    pad = size // 2
    mu_a = F.conv2d(a, w, padding=pad, groups=C)
    mu_b = F.conv2d(b, w, padding=pad, groups=C)
    saa = F.conv2d(a * a, w, padding=pad, groups=C) - mu_a ** 2
    sbb = F.conv2d(b * b, w, padding=pad, groups=C) - mu_b ** 2
    sab = F.conv2d(a * b, w, padding=pad, groups=C) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return s.mean()


def ldr_loss(img: torch.Tensor, ref: torch.Tensor, lambda_dssim: float = 0.2) -> torch.Tensor:
    """(1 - lambda) L1 + lambda (1 - SSIM) on [H, W, C] images."""
    return (1 - lambda_dssim) * (img - ref).abs().mean() + lambda_dssim * (1 - ssim(img, ref))


def psnr(img: torch.Tensor, ref: torch.Tensor) -> float:
    mse = ((img - ref) ** 2).mean().clamp(min=1e-12)
    return float(-10 * torch.log10(mse))
