"""Image helpers for loaders: reading LDR files, area downscaling, undistortion, pose conversion."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from le3d.color import srgb_eotf
from le3d.errors import Le3dError

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def c2w_opengl_to_viewmat(c2w) -> np.ndarray:
    """NeRF/instant-ngp camera-to-world (OpenGL axes: x right, y up, z back) -> OpenCV viewmat."""
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0, 0, 0, 1]])
    return np.linalg.inv(c2w @ OPENGL_TO_OPENCV)


def read_ldr(path: Path) -> torch.Tensor:
    """8/16-bit sRGB image -> linear sRGB float32 [H, W, 3]."""
    import imageio.v3 as iio

    try:
        img = iio.imread(path)
    except Exception as exc:
        raise Le3dError(f"file {path}: unreadable image ({type(exc).__name__})") from None
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = np.ascontiguousarray(img[..., :3])
    if img.dtype in (np.uint8, np.uint16):  # one table entry per code value: exact, and 20x faster at 1080p
        return _eotf_table(np.iinfo(img.dtype).max)[torch.from_numpy(img.astype(np.int64))]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return srgb_eotf(torch.from_numpy(img).float() / scale)


@functools.lru_cache(maxsize=2)
def _eotf_table(top: int) -> torch.Tensor:
    """Linear value of each code value 0..top of an sRGB-encoded image (float32)."""
    return srgb_eotf(torch.arange(top + 1, dtype=torch.float32) / top)


def downscale_area(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over factor x factor blocks of [H, W, C] (edges that do not fill a block are dropped)."""
    if factor == 1:
        return img
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise Le3dError(f"downscale {factor}: the {img.shape[1]}x{img.shape[0]} image is smaller than one "
                        f"{factor}x{factor} block")
    x = img[:h, :w].permute(2, 0, 1).unsqueeze(0).float()
    return F.avg_pool2d(x, factor).squeeze(0).permute(1, 2, 0)


def resize(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x = img.permute(2, 0, 1).unsqueeze(0).float()
    return F.interpolate(x, size=(height, width), mode="area").squeeze(0).permute(1, 2, 0)


def distort_normalized(x: torch.Tensor, y: torch.Tensor, dist) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV (k1, k2, p1, p2[, k3]) distortion of normalised image coordinates (OpenCV's order)."""
    k1, k2, p1, p2, k3 = (list(float(v) for v in dist) + [0.0])[:5]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def _distorted_pixels(K: np.ndarray, dist, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel centre of the ideal pinhole image lies in the distorted photo (pixel units)."""
    jj, ii = torch.meshgrid(torch.arange(width, dtype=torch.float64) + 0.5,
                            torch.arange(height, dtype=torch.float64) + 0.5, indexing="xy")
    xd, yd = distort_normalized((jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], dist)
    return xd * K[0, 0] + K[0, 2], yd * K[1, 1] + K[1, 2]


def valid_rectangle(valid: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive ends: a large axis-aligned rectangle of an [H, W] bool
    mask holding only True. Greedy: drop the border row or column with the most False until none is
    left (the invalid band of a lens undistortion touches the border)."""
    t, l, b, r = 0, 0, valid.shape[0], valid.shape[1]
    while t < b and l < r:
        v = valid[t:b, l:r]
        if bool(v.all()):
            return t, l, b, r
        bad = [int((~v[0]).sum()), int((~v[-1]).sum()), int((~v[:, 0]).sum()), int((~v[:, -1]).sum())]
        if max(bad) == 0:  # holes inside only (a folding distortion): shrink all sides
            t, l, b, r = t + 1, l + 1, b - 1, r - 1
            continue
        side = bad.index(max(bad))
        t, b, l, r = t + (side == 0), b - (side == 1), l + (side == 2), r - (side == 3)
    return t, l, t, l


@functools.lru_cache(maxsize=8)
def _undistort_map(K: tuple, dist: tuple, width: int, height: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """grid_sample's grid [1, h, w, 2] of the crop and the crop (top, left, bottom, right), for one
    camera: computed once for all the frames that share it (2 s a 1080x1920 frame otherwise)."""
    Km = np.asarray(K, dtype=np.float64).reshape(3, 3)
    ud, vd = _distorted_pixels(Km, dist, width, height)
    valid = (ud >= 0) & (ud <= width) & (vd >= 0) & (vd <= height)
    t, l, b, r = valid_rectangle(valid)
    if b - t < 2 or r - l < 2:
        raise Le3dError(f"distortion {list(dist)}: no part of the {width}x{height} photo maps onto "
                        "the undistorted image")
    grid = torch.stack([2 * ud[t:b, l:r] / width - 1, 2 * vd[t:b, l:r] / height - 1], -1).unsqueeze(0).float()
    return grid, (t, l, b, r)


def undistort(img: torch.Tensor, K, dist, mode: str = "bilinear") -> tuple[torch.Tensor, np.ndarray]:
    """Resample a distorted photo [H, W, C] onto the ideal pinhole camera with the same focal length,
    cropped to the rectangle whose every pixel comes from inside the photo (no made-up border to train
    or evaluate on). Returns (image, K of the crop: the principal point moves by the crop's corner).
    ``mode``: grid_sample's ('nearest' for maps such as depth, whose inf must not be interpolated)."""
    K = np.asarray(K, dtype=np.float64)
    if dist is None or not np.any(np.asarray(dist, dtype=np.float64) != 0):
        return img, K
    h, w = img.shape[:2]
    grid, (t, l, _, _) = _undistort_map(tuple(K.ravel().tolist()),
                                        tuple(np.asarray(dist, dtype=np.float64).ravel().tolist()), w, h)
    x = img.permute(2, 0, 1).unsqueeze(0).float()
    out = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)
    K_crop = K.copy()
    K_crop[0, 2] -= l
    K_crop[1, 2] -= t
    return out.squeeze(0).permute(1, 2, 0), K_crop


def check_factor(downscale) -> int:
    f = int(downscale)
    if f != downscale or f < 1:
        raise Le3dError(f"downscale {downscale}: must be a positive integer")
    return f


def focus_points(viewmats: list[np.ndarray], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random initial points where the cameras look (for scenes without SfM points): uniform in a
    ball around the point closest to all optical axes, radius half the median camera distance."""
    if not viewmats:
        return np.zeros((0, 3)), np.zeros((0, 3))
    A = np.zeros((3, 3))
    b = np.zeros(3)
    centers = []
    for V in viewmats:
        R, t = V[:3, :3], V[:3, 3]
        c = -R.T @ t
        d = R[2]
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
        centers.append(c)
    focus = np.linalg.lstsq(A, b, rcond=None)[0]
    dirs = np.stack([V[2, :3] for V in viewmats])
    cs = np.stack(centers)
    if float(np.mean(((focus - cs) * dirs).sum(-1) > 0)) < 0.5:
        # (nearly) parallel axes, e.g. a few neighbouring views: the least-squares "intersection"
        # can land behind the cameras. Look ahead along the mean axis instead, as far as the
        # world origin is (NeRF-style datasets centre the object there).
        d = dirs.mean(0)
        d /= max(np.linalg.norm(d), 1e-12)
        dist = float(np.median(np.linalg.norm(cs, axis=1)))
        focus = cs.mean(0) + d * (dist if dist > 1e-6 else 1.0)
    radius = 0.5 * float(np.median([np.linalg.norm(c - focus) for c in centers]))
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    r = radius * rng.uniform(0, 1, n) ** (1 / 3)
    return focus + v * r[:, None], np.full((n, 3), 0.5)


SPLITS = ("auto", "every8", "all")


def check_split(split: str) -> None:
    """The scene loaders' split names: 'auto' (the scene's own test list, else every 8th frame by name),
    'every8' or 'all' (no test views)."""
    if split not in SPLITS:
        raise Le3dError(f"split {split!r}: use 'auto', 'every8' or 'all'")


def every_nth_test(names: list[str], n: int = 8) -> set[str]:
    return {name for k, name in enumerate(names) if k % n == 0}


_ = math
