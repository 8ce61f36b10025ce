"""Scenes with a COLMAP model: RawNeRF layout (``raw/*.dng``) and LDR COLMAP (``images/``).

RAW frames are packed half-resolution linear camera RGB (``bayer="packed"``), or the full-resolution
mosaic as [H, W, 3] with a measured-value mask (``bayer="mosaic"``). Values are normalised sensor
values of each frame, not exposure-normalised: ``Frame.exposure`` holds exposure_time * ISO relative
to the scene's reference (``scene.json`` ``reference_exposure``, else the lower median frame).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from le3d.data.colmap import read_model
from le3d.data.imageops import check_factor, check_split, downscale_area, every_nth_test, read_ldr, undistort
from le3d.data.types import Camera, Frame, Scene
from le3d.errors import Le3dError
from le3d.raw.bayer import masked_full, pack
from le3d.raw.dng import color_profile_of, read_dng

LDR_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _model_dir(root: Path) -> Path:
    for cand in (root / "sparse" / "0", root / "sparse"):
        if (cand / "cameras.bin").is_file() or (cand / "cameras.txt").is_file():
            return cand
    raise Le3dError(f"folder {root}: no COLMAP model in sparse/0")


def _scene_json(root: Path) -> dict:
    p = root / "scene.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise Le3dError(f"file {p}: invalid JSON ({exc})") from None


def _split(names: list[str], meta: dict, split: str) -> set[str]:
    check_split(split)
    if split == "all":
        return set()
    if split == "auto" and meta.get("test") is not None:
        return {Path(n).stem for n in meta["test"]}
    return every_nth_test(names)


def _image_scale(image_size: int, camera_size: int) -> float:
    """Pixels of the image per pixel of the camera, along one axis. An image decimated by an integer k
    (a packed Bayer image: k = 2) is exactly 1/k of the camera even where the camera's size is odd (the
    last row or column dropped): image_size / camera_size would shift its far side by up to half a pixel."""
    if 0 < image_size < camera_size:
        k = round(camera_size / image_size)
        if camera_size // k == image_size:
            return 1.0 / k
    return image_size / camera_size


def _camera(model, img, width: int, height: int, factor: int):
    """Our camera for an image of (width, height) pixels; the COLMAP camera may be at another size."""
    cam = model.cameras[img.camera_id]
    K, dist = cam.intrinsics()
    sx, sy = _image_scale(width, cam.width), _image_scale(height, cam.height)
    if abs(sx - sy) > 1e-3 * max(sx, sy):
        raise Le3dError(f"image {img.name}: aspect ratio {width}x{height} differs from COLMAP camera {cam.width}x{cam.height}")
    Ks = K.copy()
    Ks[0] *= sx
    Ks[1] *= sy
    return Ks, dist


def _points(model):
    return (torch.tensor(model.points, dtype=torch.float32).reshape(-1, 3),
            torch.tensor(model.colors, dtype=torch.float32).reshape(-1, 3) / 255.0)


def _gt_depth(root: Path, stem: str, factor: int):
    p = root / "gt" / f"{stem}_depth.npy"
    if not p.is_file():
        return None
    d = torch.from_numpy(np.load(p)).float()
    if factor > 1:
        d = downscale_area(d.unsqueeze(-1), factor).squeeze(-1)
    return d


def load_rawnerf(root: str | Path, downscale: int = 1, split: str = "auto", bayer: str = "packed") -> Scene:
    root = Path(root)
    factor = check_factor(downscale)
    if bayer not in ("packed", "mosaic"):
        raise Le3dError(f"bayer {bayer!r}: use 'packed' or 'mosaic'")
    folder = root / "raw" if (root / "raw").is_dir() else root
    dngs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".dng")
    if not dngs:
        raise Le3dError(f"folder {folder}: no .dng files")
    model = read_model(_model_dir(root))
    by_stem = {Path(im.name).stem: im for im in model.images.values()}
    meta = _scene_json(root)
    posed = [p for p in dngs if p.stem in by_stem]
    if len(posed) < len(dngs):
        warnings.warn(f"{root}: {len(dngs) - len(posed)} of {len(dngs)} DNGs have no COLMAP pose and are skipped",
                      stacklevel=2)
    if not posed:
        raise Le3dError(f"folder {root}: no DNG in raw/ has a pose in the COLMAP model")
    raws = [read_dng(p) for p in posed]
    h0, w0 = raws[0].mosaic.shape
    for r in raws[1:]:
        if tuple(r.mosaic.shape) != (h0, w0):
            raise Le3dError(f"file {r.path}: image is {r.width}x{r.height} but {raws[0].path} is {w0}x{h0}; "
                            "all frames of a scene must have one size")
    evs = [r.exposure_value() for r in raws]
    ref = float(meta.get("reference_exposure") or sorted(evs)[(len(evs) - 1) // 2])
    test_names = _split([p.stem for p in posed], meta, split)
    hdrplus = root / "hdrplus_test" / "merged.dng"
    if split == "auto" and not meta.get("test") and hdrplus.is_file():
        test_names = {posed[0].stem}
    train, test = [], []
    for p, r, ev in zip(posed, raws, evs):
        img_meta = by_stem[p.stem]
        src = r
        if p.stem in test_names and hdrplus.is_file() and not meta.get("test"):
            src = read_dng(hdrplus)  # ground truth of the test view (HDR+ merged burst)
            ev = src.exposure_value()
        if bayer == "packed":
            image = pack(src.mosaic, src.cfa)
            mask = None
        else:
            image, mask = masked_full(src.mosaic, src.cfa)
        H, W = image.shape[:2]
        K, dist = _camera(model, img_meta, W, H, factor)
        depth = _gt_depth(root, p.stem, 1) if p.stem in test_names else None
        if np.any(dist != 0):
            if bayer == "mosaic":
                raise Le3dError(f"folder {root}: distorted COLMAP camera with bayer='mosaic' is not supported")
            if depth is not None:  # the ground truth is in the photo's pixels: resample and crop it alike
                if tuple(depth.shape) != (H, W):
                    raise Le3dError(f"file {root / 'gt' / (p.stem + '_depth.npy')}: depth is "
                                    f"{tuple(depth.shape)}, the packed image {(H, W)}")
                depth = undistort(depth.unsqueeze(-1), K, dist, mode="nearest")[0].squeeze(-1)
            image, K = undistort(image, K, dist)
        cam = Camera(torch.tensor(img_meta.viewmat(), dtype=torch.float32), torch.tensor(K, dtype=torch.float32),
                     image.shape[1], image.shape[0], p.stem)
        if factor > 1:
            if bayer == "mosaic":
                raise Le3dError("downscale > 1 with bayer='mosaic' is not supported (use packed)")
            image = downscale_area(image, factor)
            cam = cam.scaled(1.0 / factor)
            cam.width, cam.height = image.shape[1], image.shape[0]
            if depth is not None:
                depth = downscale_area(depth.unsqueeze(-1), factor).squeeze(-1)
        frame = Frame(cam, image.contiguous(), ev / ref, mask, depth, str(p))
        (test if p.stem in test_names else train).append(frame)
    pts, cols = _points(model)
    colour = raws[0].color()  # one white-point iteration for both matrices
    return Scene(train, test, pts, cols, kind="raw", cam_to_srgb=colour.cam_to_srgb,
                 white_balance=raws[0].white_balance, cam_to_xyz=colour.cam_to_xyz, root=str(root),
                 name=meta.get("scene", root.name), color_profile=color_profile_of(raws[0]))


def load_colmap_ldr(root: str | Path, downscale: int = 1, split: str = "auto", progress: bool = False) -> Scene:
    root = Path(root)
    factor = check_factor(downscale)
    model = read_model(_model_dir(root))
    meta = _scene_json(root)
    images = sorted(model.images.values(), key=lambda im: im.name)
    present = [im for im in images if (root / "images" / im.name).is_file()]
    if len(present) < len(images):
        warnings.warn(f"{root}: {len(images) - len(present)} of {len(images)} registered images are missing in images/",
                      stacklevel=2)
    if not present:
        raise Le3dError(f"folder {root / 'images'}: none of the {len(images)} registered images exist")
    test_names = _split([Path(im.name).stem for im in present], meta, split)
    train, test, size = [], [], None
    from tqdm import tqdm

    for im in tqdm(present, desc=f"load {root.name}", disable=not progress):
        path = root / "images" / im.name
        img = read_ldr(path)
        H, W = img.shape[:2]
        if size is None:
            size = (W, H)
        elif (W, H) != size:
            raise Le3dError(f"file {path}: image is {W}x{H} but the first image is {size[0]}x{size[1]}")
        K, dist = _camera(model, im, W, H, factor)
        img, K = undistort(img, K, dist)
        cam = Camera(torch.tensor(im.viewmat(), dtype=torch.float32), torch.tensor(K, dtype=torch.float32),
                     img.shape[1], img.shape[0], im.name)
        if factor > 1:
            img = downscale_area(img, factor)
            cam = cam.scaled(1.0 / factor)
            cam.width, cam.height = img.shape[1], img.shape[0]
        frame = Frame(cam, img.contiguous(), 1.0, path=str(path))
        (test if Path(im.name).stem in test_names else train).append(frame)
    pts, cols = _points(model)
    return Scene(train, test, pts, cols, kind="ldr", root=str(root), name=root.name)
