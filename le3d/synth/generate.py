"""Write a RawNeRF-layout synthetic dark scene with ground truth (``le3d synth``).

OUT/
  raw/frame_NNN.dng        Bayer DNGs (noise, black/white level, all colour and noise tags)
  images/frame_NNN.png     sRGB previews (full mosaic resolution, exposure-normalised)
  sparse/0/*.txt           COLMAP text model: true poses (PINHOLE at mosaic resolution), points
  gt/frame_NNN.npy         test views: clean linear HDR camera RGB, packed resolution, at the
                           reference exposure (the units the trainer's radiance lives in)
  gt/frame_NNN_depth.npy   test views: view-space z at packed pixel centres (inf: background)
  scene.json               metadata: split, near/far, scene radius, exposures, sensor
Units: a frame's normalised sensor value = radiance * CALIBRATION * exposure_time * ISO / 100.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from le3d.color import apply_matrix, bradford, illuminant_xyz
from le3d.data.colmap import model_from_cameras, write_model
from le3d.data.types import Camera
from le3d.errors import Le3dError
from le3d.raw.bayer import channel_index, mosaic_from_rgb, pack
from le3d.raw.dng import dng_color
from le3d.raw.dng_write import as_stored, write_dng
from le3d.raw.noise import add_noise, noise_profile_for_iso
from le3d.raw.preview import preview_srgb
from le3d.synth.scenes import make_scene
from le3d.synth.tracer import Tracer, look_at, render

CALIBRATION = 0.04  # normalised sensor value of radiance 1 at exposure 1 (t * ISO / 100 = 1)
# XYZ -> camera matrix of a typical CMOS sensor under D65 (values of a real published DNG profile)
CAMERA_CM_D65 = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])
EXPOSURE_CYCLE = (1.0, 0.25, 4.0, 0.5, 2.0)
ILLUMINANT1, ILLUMINANT2 = 21, 17  # CalibrationIlluminant1 / 2 of the written DNGs: D65, standard light A


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` intra-op threads (restored afterwards). The tracer and the per-frame
    image ops work on small tensors: on a busy machine a multi-threaded pool spends far more
    time waiting for its threads than computing (12 views of 320x240: 1.2 s of CPU with one
    thread, 20 s with two on a loaded 2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def prepare_output(out: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise Le3dError(f"folder {out}: already exists and is not empty (use --overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def sensor_colour():
    """(ColorMatrix1 under D65, ColorMatrix2 under A, as-shot neutral for daylight).

    A ColorMatrix maps the XYZ of a light to the camera's response to it: a sensor meeting the Luther
    condition would have one matrix for every illuminant, and real ones differ by a few percent between
    their A and D65 calibrations (their predicted responses to illuminant A differ by 4-11% in R/G, 3-4%
    in B/G in Adobe's profiles of a Canon SX50 HS and a Sony A7R VI). This sensor's A calibration
    predicts a response to A 5% lower in R/G and 11% higher in B/G than its D65 one: 10% of the way to
    ``CM1 @ bradford(A -> D65)``, which would map A to the same response as D65 (a profile whose
    as-shot white the DNG interpolation could not tell from D65)."""
    cm1 = CAMERA_CM_D65
    cm2 = cm1 @ (0.9 * np.eye(3) + 0.1 * bradford("A", "D65").double().numpy())
    neutral = cm1 @ illuminant_xyz("D65").double().numpy()
    return cm1, cm2, neutral / neutral[1]


def dng_colour(cm1, cm2, neutral):
    """The synth's forward colour model: (ColorMatrix1, ColorMatrix2, AsShotNeutral) as the DNG that
    :func:`write_frame_dng` writes stores them (rationals; what read_dng reads back), with the
    white-balance gains [3] (G = 1) and the white-balanced camera -> linear sRGB matrix that read_dng
    derives from exactly those tags (``le3d.raw.dng.dng_color``: the matrices interpolated at the
    as-shot white). Unprocessing with this (gains, matrix) pair is the exact inverse of the scene's
    own pipeline (``RawFrame.white_balance``, ``RawFrame.cam_to_srgb()``, ``le3d.raw.isp.process``).
    Returns (cm1, cm2, neutral, wb, cam_to_srgb)."""
    cm1, cm2 = as_stored(cm1, signed=True), as_stored(cm2, signed=True)
    neutral = as_stored(neutral, signed=False)
    c2s = dng_color(cm1, ILLUMINANT1, cm2, ILLUMINANT2, neutral=neutral).cam_to_srgb
    wb = neutral[1] / neutral
    return cm1, cm2, neutral, wb, c2s


def orbit_poses(n: int, center, radius: float, rng: np.random.Generator, arc_deg: float = 360.0):
    """``n`` cameras looking at ``center`` on an orbit; a full circle, or an arc of ``arc_deg``
    degrees (denser views: easier for structure-from-motion)."""
    poses = []
    step = 2 * math.pi / n if arc_deg >= 360 else math.radians(arc_deg) / max(1, n - 1)
    jitter = 0.1 if arc_deg >= 360 else min(0.1, 0.25 * step)
    for k in range(n):
        az = step * k + rng.uniform(-jitter, jitter)
        el = math.radians(rng.uniform(22, 42))
        r = radius * rng.uniform(1.35, 1.6)
        c = np.asarray(center)
        eye = c + r * np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
        poses.append(look_at(eye, c + rng.normal(0, 0.05 * radius, 3)))
    return poses


def write_frame_dng(path, clean_mosaic, cfa, exposure, iso, bits, gen, cm1, cm2, neutral, t, noise: bool = True):
    """Write one frame (clean normalised mosaic x exposure, plus the ISO's noise unless ``noise`` is
    False); returns the mosaic as stored (normalised, quantised)."""
    white = (1 << bits) - 1
    black = 512 if bits == 14 else 256
    prof = noise_profile_for_iso(iso, white_minus_black=white - black)
    x = clean_mosaic * exposure
    idx = channel_index(cfa, *x.shape)
    noisy = add_noise(x, prof, channel=idx, generator=gen) if noise else x
    raw = torch.round(noisy.double() * (white - black) + black).clamp(0, white).numpy().astype(np.uint16)
    write_dng(path, raw, cfa=cfa, black_level=black, white_level=white, as_shot_neutral=neutral,
              color_matrix1=cm1, illuminant1=ILLUMINANT1, color_matrix2=cm2, illuminant2=ILLUMINANT2, exposure_time=t,
              iso=iso, noise_profile=prof)
    return (torch.from_numpy(raw.astype(np.float32)) - black) / (white - black)


def single_threaded(fn):
    """Decorator: run ``fn`` under ``torch_threads(1)``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)
    return wrapper


MIN_MOSAIC = 22  # LibRaw (le3d.raw.read_dng) refuses a raw image under 22 pixels wide or high


@single_threaded
def generate(out, scene: str = "lamps", seed: int = 0, n_views: int = 40, width: int = 240, height: int = 160,
             cfa: str = "RGGB", iso: int = 3200, bits: int = 14, mixed_exposures: bool = False,
             fov_deg: float = 60.0, exposure_scale: float = 1.0, overwrite: bool = False,
             progress: bool = True, arc_deg: float = 360.0, sfm_dark_fraction: float = 0.0) -> dict:
    """Render and write a synthetic scene; returns the scene.json metadata.

    sfm_dark_fraction: SfM points come only from pixels brighter than this quantile of each view's
    luminance (as in a real night scene, where feature matching finds nothing in the dark regions);
    0 samples every surface."""
    if n_views < 3:
        raise Le3dError(f"--views {n_views}: need at least 3 views")
    if bits not in (12, 14):
        raise Le3dError(f"--bits {bits}: must be 12 or 14")
    if not 0 < arc_deg <= 360:
        raise Le3dError(f"--arc {arc_deg}: must be in (0, 360] degrees")
    if width < MIN_MOSAIC // 2 or height < MIN_MOSAIC // 2:
        raise Le3dError(f"--width/--height {width}x{height}: must be at least {MIN_MOSAIC // 2}x{MIN_MOSAIC // 2} "
                        f"(the mosaic is 2x; LibRaw, which reads the DNGs back, refuses mosaics under "
                        f"{MIN_MOSAIC}x{MIN_MOSAIC})")
    if not 0 <= sfm_dark_fraction < 1:
        raise Le3dError(f"--sfm-dark-fraction {sfm_dark_fraction}: must be in [0, 1)")
    if not iso > 0:
        raise Le3dError(f"--iso {iso}: must be positive")
    if not (math.isfinite(exposure_scale) and exposure_scale > 0):
        raise Le3dError(f"--exposure-scale {exposure_scale}: must be a finite number > 0")
    sdef = make_scene(scene, seed)
    out = prepare_output(out, overwrite)
    for sub in ("raw", "images", "sparse/0", "gt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    tracer = Tracer(sdef)
    mw, mh = 2 * width, 2 * height
    f = 0.5 * mw / math.tan(math.radians(fov_deg) / 2)
    K = np.array([[f, 0, mw / 2], [0, f, mh / 2], [0, 0, 1.0]])
    poses = orbit_poses(n_views, sdef.center, sdef.radius, rng, arc_deg)
    cm1, cm2, neutral, wb, c2s = dng_colour(*sensor_colour())
    t_ref = exposure_scale / 30.0
    srgb_to_cam = torch.linalg.inv(c2s.double()).float()
    ref_exposure = t_ref * iso / 100.0
    names = [f"frame_{k:03d}" for k in range(n_views)]
    test = [n for k, n in enumerate(names) if k % 8 == 0]
    cams, zmin, zmax, exposure_times = [], np.inf, 0.0, {}
    ev_preview = math.log2(0.18 / (0.1 * CALIBRATION))  # radiance 0.1 -> mid grey
    pts, pcols = [], []
    for k, (name, V) in enumerate(tqdm(list(zip(names, poses)), desc=f"synth {scene}", disable=not progress)):
        rad, z = render(tracer, V, K, mw, mh)
        # scene colours are linear sRGB under a neutral light: convert to camera RGB (sensor response)
        rad = (apply_matrix(rad, srgb_to_cam) / torch.as_tensor(wb, dtype=torch.float32)).clamp_min(0)
        clean = mosaic_from_rgb(rad * CALIBRATION, cfa)  # at reference exposure
        t = t_ref * (EXPOSURE_CYCLE[k % len(EXPOSURE_CYCLE)] if mixed_exposures and name not in test else 1.0)
        rel = t * iso / 100.0 / ref_exposure
        exposure_times[name] = t
        mosaic = write_frame_dng(out / "raw" / f"{name}.dng", clean * ref_exposure, cfa, rel, iso, bits, gen,
                                 cm1, cm2, neutral, t)
        img = preview_srgb(mosaic, cfa, wb, c2s, ev=ev_preview - math.log2(rel * ref_exposure), denoise_sigma=1.5)
        import imageio.v3 as iio

        iio.imwrite(out / "images" / f"{name}.png", img)
        cams.append(Camera(torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32), mw, mh,
                           f"{name}.png"))
        fin = torch.isfinite(z)
        if fin.any():
            zmin, zmax = min(zmin, float(z[fin].min())), max(zmax, float(z[fin].max()))
        if name in test:
            gt = pack(clean * ref_exposure, cfa)
            Kp = K.copy()
            Kp[:2] *= 0.5
            _, zp = render(tracer, V, Kp, width, height)
            np.save(out / "gt" / f"{name}.npy", gt.numpy().astype(np.float32))
            np.save(out / "gt" / f"{name}_depth.npy", zp.numpy().astype(np.float32))
        elif len(pts) < 8 and fin.any():  # surface points from a few train views
            usable = fin.flatten()
            if sfm_dark_fraction > 0:
                lum = rad.mean(-1).flatten()
                usable &= lum >= torch.quantile(lum[usable], sfm_dark_fraction)
            sel = torch.nonzero(usable).squeeze(1)
            sel = sel[torch.randperm(len(sel), generator=gen)[:600]]
            ii, jj = sel // mw, sel % mw
            zz = z.flatten()[sel].double().numpy()
            xc = np.stack([(jj.numpy() + 0.5 - K[0, 2]) / K[0, 0] * zz, (ii.numpy() + 0.5 - K[1, 2]) / K[1, 1] * zz, zz], -1)
            R, tv = V[:3, :3], V[:3, 3]
            pw = (xc - tv) @ R  # R^T (x - t)
            pts.append(pw + rng.normal(0, 0.002 * sdef.radius, pw.shape))
            pcols.append(img.reshape(-1, 3)[sel.numpy()])
    points = np.concatenate(pts) if pts else np.zeros((0, 3))
    colors = np.concatenate(pcols) if pcols else np.zeros((0, 3), np.uint8)
    write_model(model_from_cameras(cams, points, colors), out / "sparse" / "0")
    meta = {
        "format": "le3d-synth", "version": 1, "scene": scene, "seed": seed, "n_views": n_views,
        "width": width, "height": height, "mosaic_width": mw, "mosaic_height": mh, "cfa": cfa, "iso": iso,
        "bits": bits, "calibration": CALIBRATION, "reference_exposure": ref_exposure,
        "exposure_times": exposure_times, "near": float(zmin) * 0.9, "far": float(zmax) * 1.1,
        "exposure_scale": exposure_scale, "arc_deg": arc_deg, "sfm_dark_fraction": sfm_dark_fraction, "scene_radius": sdef.radius, "center": list(sdef.center), "train": [n for n in names if n not in test],
        "test": test, "gt_units": "normalised sensor value at the reference exposure (packed RGB)",
    }
    tmp = out / "scene.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / "scene.json")
    return meta
