"""Poisson-Gaussian sensor noise in normalised units, matching the DNG NoiseProfile tag.

NoiseProfile (S, O): the variance of a normalised value x is ``S * x + O``. A photon-counting model
gives S = 1 / (electrons at white) and O = read-noise variance, both growing with gain (ISO).
"""
from __future__ import annotations

import numpy as np
import torch


def noise_profile_for_iso(iso: float, full_well_e: float = 20000.0, read_e: float = 2.0,
                          adc_dn: float = 1.0, white_minus_black: float = 16383 - 512) -> np.ndarray:
    """(S, O) per channel [3, 2] for a sensor whose unity-ISO (100) full well is ``full_well_e``."""
    gain = float(iso) / 100.0
    s = gain / full_well_e
    o = (read_e * gain / full_well_e) ** 2 + (adc_dn / white_minus_black) ** 2
    return np.array([[s, o]] * 3, dtype=np.float64)


def add_noise(x: torch.Tensor, profile, channel: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample noisy values: Poisson(x / S) * S + N(0, O). ``x`` is a mosaic [H, W] with per-pixel
    colour codes ``channel`` [H, W] (0, 1, 2), or an image [..., 3] when ``channel`` is None."""
    p = torch.as_tensor(np.asarray(profile, dtype=np.float64).reshape(-1, 2), dtype=torch.float64)
    if p.shape[0] == 1:
        p = p.repeat(3, 1)
    x64 = x.double()
    if channel is None:
        s, o = p[:, 0].to(x.device), p[:, 1].to(x.device)
    else:
        s, o = p[channel, 0].to(x.device), p[channel, 1].to(x.device)
    lam = (x64.clamp_min(0) / s)
    shot = torch.poisson(lam, generator=generator) * s
    read = torch.randn(x64.shape, dtype=torch.float64, generator=generator, device=x.device) * o.sqrt()
    return (shot + read).to(x.dtype)


def noise_std(x: torch.Tensor, profile) -> torch.Tensor:
    """Predicted standard deviation for an image [..., 3] of clean normalised values."""
    p = torch.as_tensor(np.asarray(profile, dtype=np.float64).reshape(-1, 2), dtype=x.dtype)
    if p.shape[0] == 1:
        p = p.repeat(3, 1)
    return (p[:, 0] * x.clamp_min(0) + p[:, 1]).sqrt()
