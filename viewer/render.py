"""One viewer frame: render the source for a camera, then post-process it for display (pure, no viser).

Render modes: colour (HDR -> le3d.post chain), depth (mean depth, turbo colour map of disparity),
alpha, distortion (depth-distortion map), heatmap (number of primitives whose screen bound covers
each pixel, log scale).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from le3d.post.pipeline import PostSettings, apply_post, apply_post_linear

__all__ = ["MODES", "ViewSettings", "Frame", "render_frame", "mean_depth", "coverage_count", "turbo"]

MODES = ("colour", "depth", "alpha", "distortion", "heatmap")


@dataclass
class ViewSettings:
    post: PostSettings = field(default_factory=lambda: PostSettings(tonemap="aces"))
    mode: str = "colour"
    max_width: int = 1280  # full-resolution frame width (capped by the canvas size)
    preview_scale: float = 0.35  # resolution factor while the camera moves
    jpeg_quality: int = 85

    def copy(self) -> ViewSettings:
        return dataclasses.replace(self, post=dataclasses.replace(
            self.post, tonemap_params=dict(self.post.tonemap_params)))


@dataclass
class Frame:
    rgb: np.ndarray  # [H, W, 3] uint8 display image
    hdr: torch.Tensor  # [H, W, 3] linear camera RGB as rendered
    depth: torch.Tensor  # [H, W] mean depth (0 where empty)
    alpha: torch.Tensor  # [H, W]
    render_ms: float
    post_ms: float
    camera: object = None
    settings: ViewSettings | None = None

    @property
    def frame_ms(self) -> float:
        return self.render_ms + self.post_ms


def mean_depth(out, min_alpha: float = 1e-3) -> torch.Tensor:
    """Expected depth sum(w z) / sum(w) where the pixel is covered, 0 elsewhere (refocus: infinitely far)."""
    a = out.alpha
    return torch.where(a > min_alpha, out.depth / a.clamp_min(1e-6), torch.zeros_like(out.depth))


def coverage_count(means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[H, W] number of primitives whose square screen bound (centre +- radius) covers each pixel,
    via a 2D difference array (O(N + HW))."""
    dev = means2d.device
    r = radii.reshape(-1).to(torch.int64)
    keep = r > 0
    if not bool(keep.any()):
        return torch.zeros(height, width, device=dev)
    c = means2d.reshape(-1, 2)[keep].detach()
    r = r[keep]
    x0 = (c[:, 0].floor().long() - r).clamp(0, width)
    x1 = (c[:, 0].floor().long() + r + 1).clamp(0, width)
    y0 = (c[:, 1].floor().long() - r).clamp(0, height)
    y1 = (c[:, 1].floor().long() + r + 1).clamp(0, height)
    ok = (x1 > x0) & (y1 > y0)
    x0, x1, y0, y1 = x0[ok], x1[ok], y0[ok], y1[ok]
    W1 = width + 1
    diff = torch.zeros((height + 1) * W1, device=dev, dtype=torch.float32)
    ones = torch.ones_like(x0, dtype=torch.float32)
    diff.index_add_(0, y0 * W1 + x0, ones)
    diff.index_add_(0, y0 * W1 + x1, -ones)
    diff.index_add_(0, y1 * W1 + x0, -ones)
    diff.index_add_(0, y1 * W1 + x1, ones)
    return diff.view(height + 1, W1).cumsum(0).cumsum(1)[:height, :width]


def turbo(x: torch.Tensor) -> torch.Tensor:
    """Turbo-like colour map of x in [0, 1] -> [..., 3] (polynomial fit by A. Mikhailov, 2019)."""
    x = x.clamp(0, 1).unsqueeze(-1)
    kr = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
    kg = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
    kb = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)
    powers = torch.cat([x ** i for i in range(6)], dim=-1)
    k = torch.tensor([kr, kg, kb], dtype=x.dtype, device=x.device)  # [3, 6]
    return (powers @ k.T).clamp(0, 1)


def _normalise(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return torch.zeros_like(v)
    vals = v[mask]
    lo, hi = torch.quantile(vals.float()[:: max(1, vals.numel() // 100000)], torch.tensor([0.01, 0.99], device=v.device))
    return ((v - lo) / (hi - lo).clamp_min(1e-9)).clamp(0, 1)


def display_image(out, settings: ViewSettings, source, depth: torch.Tensor) -> torch.Tensor:
    """[H, W, 3] display RGB in [0, 1] for the render mode."""
    mode = settings.mode
    if mode == "colour":
        return apply_post(out.image, settings.post, source.cam_to_srgb.to(out.image),
                          source.asshot_wb.to(out.image), depth,
                          cam_to_xyz=None if source.cam_to_xyz is None else source.cam_to_xyz.to(out.image),
                          color_profile=getattr(source, "color_profile", None))
    if mode == "depth":
        mask = out.alpha > 1e-3
        disp = torch.where(mask, 1.0 / depth.clamp_min(1e-6), torch.zeros_like(depth))
        img = turbo(_normalise(disp, mask))
        return img * mask.unsqueeze(-1)
    if mode == "alpha":
        return out.alpha.clamp(0, 1).unsqueeze(-1).expand(*out.alpha.shape, 3)
    if mode == "distortion":
        d = out.distortion if out.distortion is not None else torch.zeros_like(out.alpha)
        return turbo(_normalise(d, d > 0))
    if mode == "heatmap":
        H, W = out.alpha.shape
        n = coverage_count(out.means2d, out.radii, W, H)
        return turbo(torch.log1p(n) / max(float(torch.log1p(n.max())), 1e-6))
    raise ValueError(f"unknown render mode {mode!r}; choose one of {MODES}")


def render_frame(source, camera, settings: ViewSettings) -> Frame:
    """Render and post-process one frame (raises on any error; the caller reports it)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = source.render(camera, distortion=settings.mode == "distortion")
        sync()
        t1 = time.perf_counter()
        depth = mean_depth(out)
        img = display_image(out, settings, source, depth)
        rgb = (img * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    t2 = time.perf_counter()
    return Frame(rgb, out.image, depth, out.alpha, (t1 - t0) * 1e3, (t2 - t1) * 1e3, camera, settings)


def hdr_linear_srgb(frame: Frame, source) -> torch.Tensor:
    """The frame's HDR as linear sRGB (white balance, colour matrix, exposure, refocus applied)."""
    s = frame.settings.post if frame.settings else PostSettings()
    return apply_post_linear(frame.hdr, s, source.cam_to_srgb.to(frame.hdr), source.asshot_wb.to(frame.hdr),
                             frame.depth, cam_to_xyz=None if source.cam_to_xyz is None else source.cam_to_xyz.to(frame.hdr),
                             color_profile=getattr(source, "color_profile", None))
