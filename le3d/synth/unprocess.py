"""Turn a real LDR (sRGB) capture into a dark RAW scene by "unprocessing" (``le3d synth OUT --from SRC``).

Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019): each sRGB photo is run
backwards through a camera pipeline,

  sRGB -> inverse sRGB curve (done by the loader) -> inverse colour matrix (the cam_to_srgb that
  read_dng derives from the written tags, ``le3d.synth.generate.dng_colour``) -> inverse white
  balance (seeded as-shot gains) -> Bayer mosaic (CFA) -> darken by
  ``darken`` stops -> Poisson-Gaussian noise of the ISO -> black/white level -> 16-bit DNG,

with every tag the forward pipeline needs (ColorMatrix1/2, AsShotNeutral, NoiseProfile, black and
white level, exposure time, ISO), so ``le3d.data.load_scene(OUT)`` loads it as a RAW scene and the
scene's own pipeline (``le3d.raw.isp.process`` with its white balance and colour matrix, +darken EV)
gives the source photo back, up to clipping of out-of-gamut colours, the mosaic and the noise.

OUT/ has the RawNeRF layout of ``le3d.synth.generate``: raw/NAME.dng, images/NAME.png (sRGB
previews), sparse/0 (COLMAP text: the source's true poses as undistorted PINHOLE cameras at mosaic
resolution, the source's SfM points, else points sampled where the cameras look as the loader does),
gt/NAME.npy (test views: the clean packed camera RGB at the reference exposure) and scene.json.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from le3d.color import apply_matrix
from le3d.data.colmap import model_from_cameras, write_model
from le3d.data.types import Camera
from le3d.errors import Le3dError
from le3d.raw.bayer import mosaic_from_rgb, pack
from le3d.raw.preview import preview_srgb
from le3d.synth.generate import (
    MIN_MOSAIC,
    dng_colour,
    prepare_output,
    sensor_colour,
    single_threaded,
    write_frame_dng,
)

# Brooks et al. sample as-shot red and blue gains in these ranges (green = 1)
RED_GAIN = (1.9, 2.4)
BLUE_GAIN = (1.5, 1.9)


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).stem) or "frame"


def camera_colour(seed: int, jitter: float = 0.05):
    """A plausible sensor: (ColorMatrix1 D65, ColorMatrix2 A, white-balance gains [3] with G = 1).

    The ColorMatrix is the synthetic scenes' CMOS matrix with each entry scaled by a seeded factor
    in 1 +- ``jitter`` (so different seeds give different, still plausible, cameras); the gains are
    drawn as Brooks et al. do."""
    rng = np.random.default_rng([seed, 17])
    cm1, cm2, _ = sensor_colour()
    f = 1.0 + rng.uniform(-jitter, jitter, (3, 3))
    cm1, cm2 = cm1 * f, cm2 * f
    wb = np.array([rng.uniform(*RED_GAIN), 1.0, rng.uniform(*BLUE_GAIN)])
    return cm1, cm2, wb


def _source_frames(source: Path, downscale: int, progress: bool = False):
    from le3d.data import detect_layout

    kind = detect_layout(source)
    if kind == "rawnerf":
        raise Le3dError(f"folder {source}: is already a RAW (DNG) scene; --from expects an LDR scene "
                        "(transforms.json or images/ + sparse/0)")
    if kind == "transforms":
        from le3d.data.transforms import load_transforms

        scene = load_transforms(source, downscale, split="all", progress=progress)
    else:
        from le3d.data.rawnerf import load_colmap_ldr

        scene = load_colmap_ldr(source, downscale, split="all", progress=progress)
    if scene.kind != "ldr":
        raise Le3dError(f"{source}: not an LDR scene")
    frames = sorted(scene.train + scene.test, key=lambda f: f.camera.name)
    if len(frames) < 3:
        raise Le3dError(f"{source}: {len(frames)} images; need at least 3")
    return scene, frames


def unprocess_image(lin_srgb: torch.Tensor, wb, c2s, cfa: str, darken: float) -> torch.Tensor:
    """Linear sRGB [H, W, 3] (even H, W) -> clean normalised Bayer mosaic [H, W] (no noise yet)."""
    cam_wb = apply_matrix(lin_srgb.double().clamp(0, 1), torch.linalg.inv(torch.as_tensor(c2s).double()))
    cam = (cam_wb / torch.as_tensor(wb, dtype=torch.float64)).clamp(0, 1)
    return mosaic_from_rgb(cam * 2.0 ** -float(darken), cfa)


@single_threaded
def unprocess_scene(out, source, downscale: int = 4, seed: int = 0, cfa: str = "RGGB", iso: int = 3200,
                    darken: float = 3.0, bits: int = 14, noise: bool = True, exposure_time: float = 1 / 30,
                    overwrite: bool = False, progress: bool = True) -> dict:
    """Write the unprocessed RAW version of the LDR scene ``source``; returns the scene.json dict.

    ``darken``: stops below the source photo's exposure (0: the source's brightest white reaches the
    white level); ``iso`` sets the NoiseProfile and the sampled noise (``noise=False``: clean)."""
    source = Path(source)
    if bits not in (12, 14):
        raise Le3dError(f"--bits {bits}: must be 12 or 14")
    if not math.isfinite(darken) or darken < 0 or darken > 16:
        raise Le3dError(f"--darken {darken}: must be between 0 and 16 stops")
    if iso <= 0:
        raise Le3dError(f"--iso {iso}: must be positive")
    if Path(out).resolve() == (source if source.is_dir() else source.parent).resolve():
        raise Le3dError(f"folder {out}: is the source scene; choose another output folder")
    out_p = Path(out)
    if out_p.exists() and not out_p.is_dir():
        raise Le3dError(f"{out}: exists and is not a folder")
    if out_p.is_dir() and any(out_p.iterdir()) and not overwrite:  # before the slow load
        raise Le3dError(f"folder {out}: already exists and is not empty (use --overwrite)")
    from le3d.data import detect_layout

    detect_layout(source)  # a clear error for a missing folder before anything is printed
    if progress:
        print(f"loading {source} (downscale {downscale}) ...", flush=True)
    src_scene, frames = _source_frames(source, downscale, progress)
    out = prepare_output(out, overwrite)
    for sub in ("raw", "images", "sparse/0", "gt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    cm1, cm2, wb = camera_colour(seed)
    # the tags as written and the (gains, matrix) read_dng derives from them: an exact inverse
    cm1, cm2, neutral, wb, c2s = dng_colour(cm1, cm2, 1.0 / wb)
    ref_exposure = exposure_time * iso / 100.0
    names, used = [], set()
    for f in frames:
        n = _safe_stem(f.camera.name)
        while n in used:
            n += "_"
        used.add(n)
        names.append(n)
    test = [n for k, n in enumerate(names) if k % 8 == 0]
    cams = []
    for name, f in tqdm(list(zip(names, frames)), desc=f"unprocess {source.name}", disable=not progress):
        img = f.image
        H, W = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
        if H < MIN_MOSAIC or W < MIN_MOSAIC:
            raise Le3dError(f"{f.path}: image too small at downscale {downscale} ({img.shape[1]}x{img.shape[0]}; "
                            f"LibRaw reads no mosaic under {MIN_MOSAIC}x{MIN_MOSAIC}): use a smaller --downscale")
        clean = unprocess_image(img[:H, :W], wb, c2s, cfa, darken).float()
        mosaic = write_frame_dng(out / "raw" / f"{name}.dng", clean, cfa, 1.0, iso, bits, gen, cm1, cm2, neutral,
                                 exposure_time, noise=noise)
        prev = preview_srgb(mosaic, cfa, wb, c2s, ev=darken, denoise_sigma=1.0 if noise else 0.0)
        import imageio.v3 as iio

        iio.imwrite(out / "images" / f"{name}.png", prev)
        cams.append(Camera(f.camera.viewmat.clone(), f.camera.K.clone(), W, H, f"{name}.png"))
        if name in test:
            np.save(out / "gt" / f"{name}.npy", pack(clean, cfa).numpy().astype(np.float32))
    pts = src_scene.points.double().numpy()
    cols = (src_scene.point_colors.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    write_model(model_from_cameras(cams, pts, cols), out / "sparse" / "0")
    near, far = _near_far(cams, pts)
    meta = {
        "format": "le3d-unprocessed", "version": 1, "scene": f"{source.name if source.is_dir() else source.parent.name}-unprocessed",
        "source": str(source), "seed": seed, "downscale": downscale, "n_views": len(names),
        "width": cams[0].width // 2, "height": cams[0].height // 2, "mosaic_width": cams[0].width,
        "mosaic_height": cams[0].height, "cfa": cfa, "iso": iso, "bits": bits, "darken_stops": darken,
        "noise": noise, "white_balance": wb.tolist(), "color_matrix1": cm1.tolist(),
        "reference_exposure": ref_exposure, "exposure_times": {n: exposure_time for n in names},
        "near": near, "far": far, "train": [n for n in names if n not in test], "test": test,
        "gt_units": "normalised sensor value at the reference exposure (packed RGB)",
        "preview_ev": darken,
    }
    tmp = out / "scene.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / "scene.json")
    return meta


def _near_far(cams: list[Camera], pts: np.ndarray):
    """Near/far planes from the points in view (None when there are no points)."""
    zs = []
    for c in cams:
        V = c.viewmat.double().numpy()
        z = pts @ V[2, :3] + V[2, 3]
        zs.append(z[z > 0])
    z = np.concatenate(zs) if zs else np.zeros(0)
    if z.size == 0:
        return None, None
    return float(np.percentile(z, 1)) * 0.5, float(np.percentile(z, 99)) * 2.0
