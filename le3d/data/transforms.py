"""instant-ngp / nerfstudio ``transforms.json`` scenes (LDR sRGB images, OpenGL camera-to-world)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from le3d.data.imageops import (
    c2w_opengl_to_viewmat,
    check_factor,
    check_split,
    downscale_area,
    every_nth_test,
    focus_points,
    read_ldr,
    undistort,
)
from le3d.data.types import Camera, Frame, Scene
from le3d.errors import Le3dError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".JPG", ".PNG", ".JPEG")
# nerfstudio's perspective camera models, which k1 k2 k3 p1 p2 describe; fisheye and panoramic ones are
# refused (instant-ngp's is_fisheye too) rather than undistorted as if they were perspective
PERSPECTIVE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


def _resolve(root: Path, file_path: str) -> Path | None:
    p = root / file_path
    if p.is_file():
        return p
    for ext in IMAGE_EXTS:
        q = p.with_name(p.name + ext)
        if q.is_file():
            return q
    return None


def _intrinsics(d: dict, src: dict, path: Path, width: int, height: int):
    """K's entries and the OpenCV distortion (k1, k2, p1, p2, k3) of one frame of (width, height) pixels:
    per-frame keys override the file's. Without fl_x, the focal length comes from camera_angle_x and the
    width (the file's w, else the image's own, as instant-ngp does for Blender scenes)."""
    def g(*keys, default=None):
        for k in keys:
            if k in d:
                return d[k]
            if k in src:
                return src[k]
        return default

    model = str(g("camera_model", default="OPENCV")).upper()
    if model not in PERSPECTIVE_MODELS or g("is_fisheye", default=False):
        raise Le3dError(f"file {path}: camera model {'fisheye' if model in PERSPECTIVE_MODELS else model} is not "
                        f"supported; use a perspective one ({', '.join(PERSPECTIVE_MODELS)})")
    num = {k: float(v) for k in ("w", "h", "fl_x", "fl_y", "camera_angle_x", "camera_angle_y", "cx", "cy", "k1",
                                 "k2", "k3", "k4", "p1", "p2") if (v := g(k)) is not None}
    if num.get("k4", 0.0) != 0.0:
        raise Le3dError(f"file {path}: distortion coefficient k4 is not supported (k1 k2 k3 p1 p2 are)")
    w, h = num.get("w", float(width)), num.get("h", float(height))
    fx, fy = num.get("fl_x"), num.get("fl_y")
    if fx is None and "camera_angle_x" in num:
        fx = 0.5 * w / np.tan(0.5 * num["camera_angle_x"])
    if fy is None and "camera_angle_y" in num:
        fy = 0.5 * h / np.tan(0.5 * num["camera_angle_y"])
    fy = fy if fy is not None else fx
    if fx is None:
        raise Le3dError(f"file {path}: no focal length (fl_x or camera_angle_x)")
    cx, cy = num.get("cx", w / 2), num.get("cy", h / 2)
    dist = np.array([num.get(k, 0.0) for k in ("k1", "k2", "p1", "p2", "k3")])
    return fx, fy, cx, cy, dist


def load_transforms(path: str | Path, downscale: int = 1, split: str = "auto", seed: int = 0,
                    progress: bool = False) -> Scene:
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Le3dError(f"file {path}: unreadable transforms.json ({exc})") from None
    root = path.parent
    factor = check_factor(downscale)
    frames_meta = meta.get("frames")
    if not frames_meta:
        raise Le3dError(f"file {path}: no frames")
    check_split(split)
    entries, missing = [], 0
    for fm in frames_meta:
        img_path = _resolve(root, fm.get("file_path", ""))
        if img_path is None:
            missing += 1
            continue
        entries.append((fm, img_path))
    if missing:
        warnings.warn(f"{path}: {missing} of {len(frames_meta)} frames have no image file and are skipped",
                      stacklevel=2)
    if not entries:
        raise Le3dError(f"file {path}: none of the {len(frames_meta)} listed images exist")
    entries.sort(key=lambda e: str(e[1]))  # every 8th frame by name, whatever order the file lists them in
    names = [p.name for _, p in entries]
    explicit = meta.get("test_filenames") or meta.get("test")
    if split == "all":
        test_names = set()
    elif explicit and split == "auto":
        test_names = {Path(n).name for n in explicit} | {_resolve(root, n).name for n in explicit if _resolve(root, n)}
    else:
        test_names = every_nth_test(names)
    train, test = [], []
    from tqdm import tqdm

    for fm, img_path in tqdm(entries, desc=f"load {root.name}", disable=not progress):
        img = read_ldr(img_path)
        H, W = img.shape[:2]
        fx, fy, cx, cy, dist = _intrinsics(fm, meta, path, W, H)
        w, h = (fm.get(k, meta.get(k)) for k in ("w", "h"))
        if w is not None and h is not None and (int(w), int(h)) != (W, H):
            raise Le3dError(f"file {img_path}: image is {W}x{H} but transforms.json says {int(w)}x{int(h)}")
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        img, K = undistort(img, K, dist)
        V = c2w_opengl_to_viewmat(fm["transform_matrix"])
        cam = Camera(torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32),
                     img.shape[1], img.shape[0], img_path.name)
        if factor > 1:
            img = downscale_area(img, factor)
            cam = cam.scaled(1.0 / factor)
            cam.width, cam.height = img.shape[1], img.shape[0]
        frame = Frame(cam, img.contiguous(), 1.0, path=str(img_path))
        (test if img_path.name in test_names else train).append(frame)
    pts, cols = focus_points([f.camera.viewmat.double().numpy() for f in train + test], 5000, seed)
    return Scene(train, test, torch.tensor(pts, dtype=torch.float32), torch.tensor(cols, dtype=torch.float32),
                 kind="ldr", root=str(root), name=root.name)
