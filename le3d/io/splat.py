"""The compact .splat format (antimatter15/splat web viewer): 32 bytes per Gaussian, no header.

Per Gaussian, little-endian: position float32 x3, scale float32 x3 (linear), colour uint8 RGBA
(R,G,B = 0.5 + C0 * f_dc clipped to [0,1] x 255, i.e. the view-independent SH colour; A = opacity x 255),
rotation uint8 x4 (normalised quaternion w,x,y,z mapped by q * 128 + 128, clipped to 0..255).
Gaussians are written by decreasing scale volume x opacity, as the reference converter does.
View-dependent colour (SH degree > 0) is dropped by the format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from le3d.errors import Le3dError
from le3d.io.ply import GaussianCloud, _atomic_write
from le3d.model.sh import C0

DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert DTYPE.itemsize == 32


def save_splat(path, cloud: GaussianCloud) -> Path:
    path = Path(path)
    means = cloud.means.detach().float().cpu().numpy()
    scales = cloud.scales.detach().float().cpu().numpy()
    op = cloud.opacities.detach().float().cpu().numpy()
    rgb = (0.5 + C0 * cloud.sh[:, 0].detach().float().cpu().numpy()).clip(0, 1)
    q = cloud.quats.detach().float().cpu()
    q = (q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)).numpy()
    if not all(np.isfinite(a).all() for a in (means, scales, op, rgb, q)):  # as save_ply refuses them
        raise Le3dError(f"{path}: refusing to write NaN or inf Gaussian parameters")
    order = np.argsort(-(np.prod(scales, axis=1) * op), kind="stable")
    rec = np.zeros(len(order), DTYPE)
    rec["pos"] = means[order]
    rec["scale"] = scales[order]
    rec["rgba"][:, :3] = np.round(rgb[order] * 255).clip(0, 255).astype(np.uint8)
    rec["rgba"][:, 3] = np.round(op[order] * 255).clip(0, 255).astype(np.uint8)
    rec["rot"] = np.round(q[order] * 128 + 128).clip(0, 255).astype(np.uint8)
    _atomic_write(path, rec.tobytes())
    return path


def load_splat(path, device="cpu") -> GaussianCloud:
    path = Path(path)
    if not path.is_file():
        raise Le3dError(f"{path}: no such file")
    raw = path.read_bytes()
    if len(raw) % 32:
        raise Le3dError(f"{path}: size {len(raw)} is not a multiple of 32 bytes (not a .splat file)")
    rec = np.frombuffer(raw, DTYPE)
    means = torch.from_numpy(rec["pos"].astype(np.float32))
    scales = torch.from_numpy(rec["scale"].astype(np.float32))
    rgba = torch.from_numpy(rec["rgba"].astype(np.float32)) / 255.0
    q = (torch.from_numpy(rec["rot"].astype(np.float32)) - 128.0) / 128.0
    n = q.norm(dim=-1, keepdim=True)
    q = torch.where(n > 0, q / n.clamp_min(1e-12), torch.tensor([1.0, 0, 0, 0]))
    sh = torch.zeros(len(rec), 16, 3)
    sh[:, 0] = (rgba[:, :3] - 0.5) / C0
    return GaussianCloud(means, q, scales, rgba[:, 3].clamp(1e-4, 1 - 1e-4), sh, 0).to(device)
