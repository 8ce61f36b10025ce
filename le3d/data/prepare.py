"""``le3d prepare DIR``: a folder of DNGs -> sRGB previews + a COLMAP model (pycolmap on CPU).

Writes DIR/images/NAME.png (denoised, exposure-normalised sRGB), DIR/colmap/database.db and
DIR/sparse/0 (COLMAP binary), so that ``load_scene(DIR)`` loads it as a RawNeRF-layout scene.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from le3d.errors import Le3dError
from le3d.raw.bayer import pack
from le3d.raw.dng import read_dng
from le3d.raw.isp import auto_ev
from le3d.raw.preview import preview_srgb


@dataclass
class PrepareResult:
    n_images: int
    n_registered: int
    reprojection_error: float
    n_points: int
    model_dir: str


def dng_files(root: Path) -> list[Path]:
    folder = root / "raw" if (root / "raw").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".dng") if folder.is_dir() else []
    return files


def write_previews(root: Path, files: list[Path], denoise_sigma: float = 0.7, progress: bool = True) -> Path:
    """Decode all DNGs and write exposure-normalised sRGB previews to root/images."""
    frames = []
    for p in tqdm(files, desc="decode", disable=not progress):
        r = read_dng(p)
        if frames and r.mosaic.shape != frames[0].mosaic.shape:
            raise Le3dError(f"file {p}: image is {r.width}x{r.height} but {frames[0].path} is "
                            f"{frames[0].width}x{frames[0].height}; all frames must have one size")
        frames.append(r)
    evs = np.array([r.exposure_value() for r in frames])
    ref_k = int(np.argsort(evs)[(len(evs) - 1) // 2])
    ref = frames[ref_k]
    wb, c2s = ref.white_balance, ref.cam_to_srgb()
    ev0 = auto_ev(pack(ref.mosaic, ref.cfa), wb, c2s, target=0.5, percentile=0.9)
    out = root / "images"
    out.mkdir(parents=True, exist_ok=True)
    import imageio.v3 as iio

    for r, e in tqdm(list(zip(frames, evs)), desc="previews", disable=not progress):
        ev = ev0 - math.log2(e / evs[ref_k])
        iio.imwrite(out / f"{Path(r.path).stem}.png", preview_srgb(r.mosaic, r.cfa, wb, c2s, ev, denoise_sigma))
    return out


def prepare(root: str | Path, matcher: str = "exhaustive", seed: int = 0, overwrite: bool = False,
            num_threads: int = -1, progress: bool = True, max_features: int = 4096,
            overlap: int = 10, verbose: bool = False) -> PrepareResult:
    """Previews + COLMAP poses for the DNGs of ``root``. ``matcher``: 'exhaustive' (all pairs) or
    'sequential' (each frame with the next ``overlap`` frames in file order: fast for video-like
    captures). ``max_features``: SIFT features per image. ``verbose``: COLMAP's own log on stderr."""
    try:
        import pycolmap
    except ImportError:
        raise Le3dError("pycolmap is not installed (pip install pycolmap)") from None
    root = Path(root)
    if not root.is_dir():
        raise Le3dError(f"folder {root}: not found")
    files = dng_files(root)
    if not files:
        raise Le3dError(f"folder {root}: no .dng files (in the folder or in raw/)")
    sparse = root / "sparse"
    if (sparse / "0").exists() or (root / "colmap").exists():
        if not overwrite:
            raise Le3dError(f"folder {root}: sparse/0 or colmap/ already exists (use --overwrite)")
        shutil.rmtree(sparse, ignore_errors=True)
        shutil.rmtree(root / "colmap", ignore_errors=True)
    if matcher not in ("exhaustive", "sequential"):
        raise Le3dError(f"matcher {matcher!r}: use 'exhaustive' or 'sequential'")
    if max_features < 16 or overlap < 1:
        raise Le3dError(f"max_features {max_features} / overlap {overlap}: need at least 16 features and overlap 1")
    if hasattr(pycolmap, "logging"):
        pycolmap.logging.minloglevel = 0 if verbose else 2  # INFO, else errors only

    def stage(msg):
        if progress:
            print(msg, flush=True)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small per-frame ops: a thread pool only waits on a busy machine
    try:
        images = write_previews(root, files, progress=progress)
    finally:
        torch.set_num_threads(n_threads)
    work = root / "colmap"
    work.mkdir(parents=True)
    db = work / "database.db"
    if hasattr(pycolmap, "set_random_seed"):
        pycolmap.set_random_seed(seed)
    reader = pycolmap.ImageReaderOptions()
    ext = pycolmap.FeatureExtractionOptions()
    ext.num_threads = num_threads
    if hasattr(ext, "sift"):
        ext.sift.max_num_features = int(max_features)
    names = [f"{p.stem}.png" for p in files]
    stage(f"SIFT features of {len(files)} previews ...")
    pycolmap.extract_features(db, images, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=ext, device=pycolmap.Device.cpu)
    mopt = pycolmap.FeatureMatchingOptions()
    mopt.num_threads = num_threads
    stage(f"{matcher} matching ...")
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(db, matching_options=mopt, device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = int(overlap)
        pairing.quadratic_overlap = False
        pycolmap.match_sequential(db, matching_options=mopt, pairing_options=pairing, device=pycolmap.Device.cpu)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = num_threads
    if hasattr(opts, "random_seed"):
        opts.random_seed = int(seed)
    stage("incremental mapping ...")
    recs = pycolmap.incremental_mapping(db, images, work / "mapper", options=opts)
    if not recs:
        raise Le3dError(f"folder {root}: COLMAP registered no images (0 of {len(files)}); too few features or overlap")
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    n_reg = rec.num_reg_images()
    if n_reg < 3:
        raise Le3dError(f"folder {root}: only {n_reg} of {len(files)} frames registered (need at least 3)")
    out = sparse / "0"
    out.mkdir(parents=True)
    rec.write_binary(str(out)) if hasattr(rec, "write_binary") else rec.write(str(out))
    err = float(rec.compute_mean_reprojection_error())
    return PrepareResult(len(files), n_reg, err, rec.num_points3D(), str(out))


_ = torch
