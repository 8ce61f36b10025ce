"""Reconstruction losses on linear values."""
from __future__ import annotations

import torch


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def rawnerf_l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               eps: float = 1e-3) -> torch.Tensor:
    """RawNeRF loss: mean(((min(y_hat,1) - y) / (sg(min(y_hat,1)) + eps))^2); `mask` selects measured
    values (e.g. the Bayer mosaic's sites in packed RGB)."""
    p = pred.clamp(max=1.0)
    return _masked_mean(((p - target) / (p.detach() + eps)) ** 2, mask)


def l2_loss(pred, target, mask=None):
    return _masked_mean((pred - target) ** 2, mask)


def l1_loss(pred, target, mask=None):
    return _masked_mean((pred - target).abs(), mask)
