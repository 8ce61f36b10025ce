"""HDR transfer functions for HDR video: SMPTE ST 2084 (PQ) and ARIB STD-B67 / BT.2100 HLG.

PQ constants (ST 2084): m1 = 2610/16384, m2 = 2523/4096 * 128, c1 = 3424/4096, c2 = 2413/4096 * 32,
c3 = 2392/4096 * 32; absolute luminance normalised by 10000 cd/m^2.
HLG (BT.2100): a = 0.17883277, b = 1 - 4a, c = 0.5 - a ln(4a); E' = sqrt(3E) for E <= 1/12 else
a ln(12E - b) + c, with scene-linear E in [0, 1].
Also the BT.709 -> BT.2020 primaries matrix (BT.2087) used to put linear sRGB into the BT.2020
container that HDR10/HLG video expects.
"""
from __future__ import annotations

import math

import torch

__all__ = ["pq_oetf", "pq_eotf", "hlg_oetf", "hlg_inverse_oetf", "BT709_TO_BT2020", "PQ_M1", "PQ_M2",
           "PQ_C1", "PQ_C2", "PQ_C3", "HLG_A", "HLG_B", "HLG_C"]

PQ_M1 = 2610.0 / 16384.0
PQ_M2 = 2523.0 / 4096.0 * 128.0
PQ_C1 = 3424.0 / 4096.0
PQ_C2 = 2413.0 / 4096.0 * 32.0
PQ_C3 = 2392.0 / 4096.0 * 32.0

HLG_A = 0.17883277
HLG_B = 1.0 - 4.0 * HLG_A
HLG_C = 0.5 - HLG_A * math.log(4.0 * HLG_A)

BT709_TO_BT2020 = torch.tensor([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])


def pq_oetf(nits: torch.Tensor) -> torch.Tensor:
    """Absolute luminance in cd/m^2 (0..10000) -> PQ signal in [0, 1] (the ST 2084 inverse EOTF)."""
    y = (nits / 10000.0).clamp(0.0, 1.0)
    p = y.pow(PQ_M1)
    return ((PQ_C1 + PQ_C2 * p) / (1.0 + PQ_C3 * p)).pow(PQ_M2)


def pq_eotf(signal: torch.Tensor) -> torch.Tensor:
    """PQ signal in [0, 1] -> absolute luminance in cd/m^2."""
    e = signal.clamp(0.0, 1.0).pow(1.0 / PQ_M2)
    return 10000.0 * ((e - PQ_C1).clamp_min(0.0) / (PQ_C2 - PQ_C3 * e)).pow(1.0 / PQ_M1)


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """Scene-linear E in [0, 1] -> HLG signal in [0, 1]."""
    e = e.clamp(0.0, 1.0)
    return torch.where(e <= 1.0 / 12.0, torch.sqrt(3.0 * e),
                       HLG_A * torch.log((12.0 * e - HLG_B).clamp_min(1e-12)) + HLG_C)


def hlg_inverse_oetf(s: torch.Tensor) -> torch.Tensor:
    """HLG signal -> scene-linear E."""
    s = s.clamp(0.0, 1.0)
    return torch.where(s <= 0.5, s * s / 3.0, (torch.exp((s - HLG_C) / HLG_A) + HLG_B) / 12.0)
