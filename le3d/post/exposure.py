"""Exposure in EV stops (pure torch, differentiable)."""
from __future__ import annotations

import torch

__all__ = ["apply_exposure", "auto_exposure_ev"]


def apply_exposure(x: torch.Tensor, ev) -> torch.Tensor:
    """Multiply linear RGB by 2**ev. ``ev`` may be a float or a tensor broadcastable to ``x[..., :1]``
    (e.g. one value per batch element shaped ``[B, 1, 1, 1]``)."""
    if isinstance(ev, torch.Tensor):
        return x * torch.exp2(ev.to(x.dtype))
    return x * (2.0 ** float(ev))


def auto_exposure_ev(x: torch.Tensor, key: float = 0.18, percentile: float = 0.5) -> float:
    """EV that brings the given luminance percentile (median by default) of linear sRGB ``x`` to
    ``key``; a convenience for previews (not used unless asked)."""
    y = x.clamp_min(0.0) @ torch.tensor([0.2126729, 0.7151522, 0.0721750], dtype=x.dtype, device=x.device)
    y = y.flatten()
    if y.numel() > 1_000_000:
        y = y[:: y.numel() // 1_000_000 + 1]
    q = torch.quantile(y.float(), percentile).item()
    if q <= 0:
        return 0.0
    return float(torch.log2(torch.tensor(key / q)).item())
