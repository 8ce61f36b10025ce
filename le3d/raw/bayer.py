"""Bayer mosaics: CFA patterns, packing to half-resolution RGB, per-pixel masks, demosaicing.

CFA colour codes follow the DNG CFAPattern tag: 0 = R, 1 = G, 2 = B. A pattern name lists the
colours of the 2x2 cell in row-major order (``"RGGB"``: R at (0, 0), G at (0, 1), (1, 0), B at (1, 1)).
All image functions take and return torch tensors ([H, W] mosaics, [H, W, 3] images).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
CFA_CODES = {"R": 0, "G": 1, "B": 2}


def cfa_positions(pattern: str) -> np.ndarray:
    """Pattern name -> [2, 2] int array of colour codes."""
    p = str(pattern).upper()
    if p not in PATTERNS:
        raise ValueError(f"unsupported CFA pattern {pattern!r}; supported: {', '.join(PATTERNS)}")
    return np.array([CFA_CODES[c] for c in p], dtype=np.int64).reshape(2, 2)


def pattern_name(codes) -> str:
    """[2, 2] colour codes (0=R, 1=G, 2=B) -> pattern name; raises ValueError if not a Bayer cell."""
    codes = np.asarray(codes).reshape(-1)
    name = "".join("RGB"[int(c)] if 0 <= int(c) <= 2 else "?" for c in codes)
    if name not in PATTERNS:
        raise ValueError(f"CFA cell {name} is not a Bayer pattern")
    return name


def channel_index(pattern: str, height: int, width: int) -> torch.Tensor:
    """[H, W] int64 colour code of every pixel."""
    cell = torch.from_numpy(cfa_positions(pattern))
    return cell.repeat((height + 1) // 2, (width + 1) // 2)[:height, :width]


def _check(mosaic: torch.Tensor) -> torch.Tensor:
    mosaic = torch.as_tensor(mosaic)
    if mosaic.ndim != 2:
        raise ValueError(f"mosaic must be [H, W], got {tuple(mosaic.shape)}")
    if not mosaic.is_floating_point():
        mosaic = mosaic.float()
    return mosaic


def pack(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Half-resolution RGB [H/2, W/2, 3]: R, mean of the two Gs, B of each 2x2 cell (odd edges dropped)."""
    m = _check(mosaic)
    h, w = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    m = m[:h, :w]
    cell = cfa_positions(pattern)
    out = torch.zeros(h // 2, w // 2, 3, dtype=m.dtype, device=m.device)
    for (i, j), c in np.ndenumerate(cell):
        out[..., c] += m[i::2, j::2] * (0.5 if c == 1 else 1.0)
    return out


def unpack(rgb: torch.Tensor, pattern: str) -> torch.Tensor:
    """Inverse of :func:`pack` for noise-free data: [h, w, 3] -> mosaic [2h, 2w] (both Gs = G)."""
    rgb = torch.as_tensor(rgb)
    h, w = rgb.shape[:2]
    out = torch.empty(2 * h, 2 * w, dtype=rgb.dtype, device=rgb.device)
    for (i, j), c in np.ndenumerate(cfa_positions(pattern)):
        out[i::2, j::2] = rgb[..., c]
    return out


def mosaic_from_rgb(rgb: torch.Tensor, pattern: str) -> torch.Tensor:
    """Sample a full-resolution RGB image [H, W, 3] through the CFA -> mosaic [H, W]."""
    rgb = torch.as_tensor(rgb)
    idx = channel_index(pattern, rgb.shape[0], rgb.shape[1]).to(rgb.device)
    return torch.gather(rgb, 2, idx.unsqueeze(-1)).squeeze(-1)


def channel_mask(pattern: str, height: int, width: int) -> torch.Tensor:
    """[H, W, 3] bool: True where the sensor measured that colour (one True per pixel)."""
    idx = channel_index(pattern, height, width)
    return F.one_hot(idx, 3).bool()


def masked_full(mosaic: torch.Tensor, pattern: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-resolution [H, W, 3] image holding each measured value in its channel (0 elsewhere)
    and the [H, W, 3] bool mask of measured values (RawNeRF-style loss on the mosaic)."""
    m = _check(mosaic)
    mask = channel_mask(pattern, *m.shape).to(m.device)
    return m.unsqueeze(-1) * mask, mask


def demosaic_bilinear(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Bilinear demosaic [H, W] -> [H, W, 3] (for previews). Measured values are kept exactly;
    missing ones are the mean of the measured neighbours of that colour in the 3x3 window."""
    m = _check(mosaic)
    full, mask = masked_full(m, pattern)
    x = full.permute(2, 0, 1).unsqueeze(1)  # [3, 1, H, W]
    k = mask.permute(2, 0, 1).unsqueeze(1).to(m.dtype)
    kern = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=m.dtype, device=m.device)
    kern = kern.view(1, 1, 3, 3)
    num = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kern)
    den = F.conv2d(F.pad(k, (1, 1, 1, 1), mode="reflect"), kern)
    interp = (num / den.clamp_min(1e-12)).squeeze(1).permute(1, 2, 0)
    return torch.where(mask, full, interp)
