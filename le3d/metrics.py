"""Evaluation metrics: PSNR/SSIM on linear RAW after per-channel affine alignment (RawNeRF protocol),
PSNR/SSIM in sRGB after the camera pipeline at a shared exposure, depth AbsRel."""
from __future__ import annotations

import math

import torch

from le3d.losses.ssim import ssim


def psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0) -> float:
    mse = float(((x.double() - y.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(peak * peak / mse)


def affine_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-channel least-squares a, b with a * pred + b ~ gt (RawNeRF's raw metrics)."""
    p, g = pred.reshape(-1, pred.shape[-1]).double(), gt.reshape(-1, gt.shape[-1]).double()
    pm, gm = p.mean(0), g.mean(0)
    var = ((p - pm) ** 2).mean(0)
    cov = ((p - pm) * (g - gm)).mean(0)
    a = torch.where(var > 0, cov / var.clamp_min(1e-30), torch.ones_like(var))
    b = gm - a * pm
    return (pred.double() * a + b).to(pred.dtype)


def srgb_oetf(x: torch.Tensor) -> torch.Tensor:
    try:
        from le3d.color import srgb_oetf as f

        return f(x)
    except Exception:  # noqa: BLE001
        x = x.clamp(0, 1)
        return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def to_srgb(x: torch.Tensor, wb: torch.Tensor | None, cam_to_srgb: torch.Tensor | None) -> torch.Tensor:
    """Linear camera RGB -> white balance gains -> colour matrix -> clip -> sRGB OETF."""
    if wb is not None:
        x = x * wb.to(x)
    if cam_to_srgb is not None:
        x = x @ cam_to_srgb.to(x).T
    return srgb_oetf(x.clamp(0, 1))


def shared_exposure(gt_lin: torch.Tensor, wb, cam_to_srgb, key: float = 0.5, q: float = 0.97) -> float:
    """Scale that maps the GT's q-quantile (after WB/colour matrix) to `key`; applied to GT and prediction."""
    x = gt_lin
    if wb is not None:
        x = x * wb.to(x)
    if cam_to_srgb is not None:
        x = x @ cam_to_srgb.to(x).T
    lum = x.clamp_min(0).mean(-1).reshape(-1)
    v = float(torch.quantile(lum[:: max(1, lum.numel() // 200000)].float(), q))
    return key / v if v > 0 else 1.0


def depth_absrel(pred_depth: torch.Tensor, alpha: torch.Tensor, gt: torch.Tensor, min_alpha: float = 0.5) -> float | None:
    """mean(|d - gt| / gt) over pixels with finite positive gt and alpha > min_alpha, with
    d = (sum w z) / alpha the expected depth of the rendered surface."""
    valid = torch.isfinite(gt) & (gt > 0) & (alpha > min_alpha)
    if not valid.any():
        return None
    d = pred_depth[valid] / alpha[valid]
    g = gt[valid]
    return float(((d - g).abs() / g).mean())


def image_metrics(pred_lin: torch.Tensor, gt_lin: torch.Tensor, kind: str, wb=None, cam_to_srgb=None) -> dict:
    """All image metrics for one view. pred/gt: linear [H,W,3] at the same exposure."""
    pred_lin, gt_lin = pred_lin.float().cpu(), gt_lin.float().cpu()
    out = {}
    if kind == "raw":
        aligned = affine_align(pred_lin, gt_lin)
        peak = float(gt_lin.max()) if float(gt_lin.max()) > 0 else 1.0
        out["raw_psnr"] = psnr(aligned / peak, gt_lin / peak)
        out["raw_ssim"] = float(ssim(aligned / peak, gt_lin / peak, padding=True))
        s = shared_exposure(gt_lin, wb, cam_to_srgb)
        ps, gs = to_srgb(pred_lin * s, wb, cam_to_srgb), to_srgb(gt_lin * s, wb, cam_to_srgb)
    else:
        ps, gs = srgb_oetf(pred_lin.clamp(0, 1)), srgb_oetf(gt_lin.clamp(0, 1))
    out["srgb_psnr"] = psnr(ps, gs)
    out["srgb_ssim"] = float(ssim(ps, gs, padding=True))
    out["_srgb"] = ps
    out["_srgb_gt"] = gs
    return out
