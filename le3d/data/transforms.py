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
    downscale_area,
    every_nth_test,
    focus_points,
    read_ldr,
    undistort,
)
from le3d.data.types import Camera, Frame, Scene
from le3d.errors import Le3dError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".JPG", ".PNG", ".JPEG", ".exr")


def _resolve(root: Path, file_path: str) -> Path | None:
    p = root / file_path
    if p.is_file():
        return p
    for ext in IMAGE_EXTS:
        q = p.with_name(p.name + ext)
        if q.is_file():
            return q
    return None


def _intrinsics(d: dict, src: dict, path: Path):
    def g(*keys, default=None):
        for k in keys:
            if k in d:
                return float(d[k])
            if k in src:
                return float(src[k])
        return default

    w, h = g("w"), g("h")
    fx, fy = g("fl_x"), g("fl_y")
    if fx is None and g("camera_angle_x") is not None and w is not None:
        fx = 0.5 * w / np.tan(0.5 * g("camera_angle_x"))
    if fy is None and g("camera_angle_y") is not None and h is not None:
        fy = 0.5 * h / np.tan(0.5 * g("camera_angle_y"))
    fy = fy if fy is not None else fx
    if fx is None:
        raise Le3dError(f"file {path}: no focal length (fl_x or camera_angle_x)")
    cx = g("cx", default=None if w is None else w / 2)
    cy = g("cy", default=None if h is None else h / 2)
    dist = np.array([g("k1", default=0.0), g("k2", default=0.0), g("p1", default=0.0), g("p2", default=0.0)])
    return fx, fy, cx, cy, w, h, dist


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
    names = [p.name for _, p in entries]
    explicit = meta.get("test_filenames") or meta.get("test")
    if split == "all":
        test_names = set()
    elif explicit:
        test_names = {Path(n).name for n in explicit} | {_resolve(root, n).name for n in explicit if _resolve(root, n)}
    else:
        test_names = every_nth_test(names)
    train, test = [], []
    from tqdm import tqdm

    for fm, img_path in tqdm(entries, desc=f"load {root.name}", disable=not progress):
        fx, fy, cx, cy, w, h, dist = _intrinsics(fm, meta, path)
        img = read_ldr(img_path)
        H, W = img.shape[:2]
        if w is not None and (int(w), int(h)) != (W, H):
            raise Le3dError(f"file {img_path}: image is {W}x{H} but transforms.json says {int(w)}x{int(h)}")
        cx = W / 2 if cx is None else cx
        cy = H / 2 if cy is None else cy
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        img = undistort(img, K, dist)
        V = c2w_opengl_to_viewmat(fm["transform_matrix"])
        cam = Camera(torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32), W, H, img_path.name)
        if factor > 1:
            img = downscale_area(img, factor)
            cam = cam.scaled(1.0 / factor)
            cam.width, cam.height = img.shape[1], img.shape[0]
        frame = Frame(cam, img.contiguous(), 1.0, path=str(img_path))
        (test if img_path.name in test_names else train).append(frame)
    pts, cols = focus_points([f.camera.viewmat.double().numpy() for f in train + test], 5000, seed)
    return Scene(train, test, torch.tensor(pts, dtype=torch.float32), torch.tensor(cols, dtype=torch.float32),
                 kind="ldr", root=str(root), name=root.name)
