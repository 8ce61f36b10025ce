"""Write real DNG files (uncompressed 16-bit CFA) with tifffile; rawpy/LibRaw reads them back.

Every tag that :func:`le3d.raw.dng.read_dng` understands is written here, so tests can round-trip.
EXIF tags (ExposureTime, ISOSpeedRatings, and above ISO 65535 SensitivityType and
RecommendedExposureIndex) live in IFD 0, which the DNG specification allows.
"""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import tifffile

from le3d.raw.bayer import cfa_positions

# TIFF / DNG tag codes
TAG = {
    "Make": 271, "Model": 272, "Orientation": 274,
    "CFARepeatPatternDim": 33421, "CFAPattern": 33422, "ExposureTime": 33434, "ISO": 34855,
    "SensitivityType": 34864, "RecommendedExposureIndex": 34866,
    "DNGVersion": 50706, "DNGBackwardVersion": 50707, "UniqueCameraModel": 50708,
    "CFAPlaneColor": 50710, "CFALayout": 50711, "BlackLevelRepeatDim": 50713, "BlackLevel": 50714,
    "WhiteLevel": 50717, "DefaultCropOrigin": 50719, "DefaultCropSize": 50720,
    "ColorMatrix1": 50721, "ColorMatrix2": 50722, "AsShotNeutral": 50728, "BaselineExposure": 50730,
    "CalibrationIlluminant1": 50778, "CalibrationIlluminant2": 50779, "ActiveArea": 50829,
    "ForwardMatrix1": 50964, "ForwardMatrix2": 50965, "NoiseProfile": 51041,
}


def _rationals(values, signed: bool) -> tuple[int, ...]:
    out: list[int] = []
    lim = 2**31 - 1 if signed else 2**32 - 1
    for v in np.asarray(values, dtype=np.float64).ravel():
        if not np.isfinite(v) or (v < 0 and not signed):
            raise ValueError(f"cannot store {v} as a {'S' if signed else ''}RATIONAL")
        f = Fraction(float(v)).limit_denominator(1 << 20)
        while abs(f.numerator) > lim:
            f = Fraction(float(v)).limit_denominator(max(1, f.denominator // 16))
        out += [f.numerator, f.denominator]
    return tuple(out)


def as_stored(values, signed: bool = True) -> np.ndarray:
    """``values`` as a (S)RATIONAL tag holds them, i.e. as read_dng reads them back (float64, same
    shape): what a writer must use to compute anything the reader will derive from the tags."""
    a = np.asarray(_rationals(values, signed), dtype=np.float64)
    return (a[0::2] / a[1::2]).reshape(np.shape(values))


def write_dng(
    path: str | os.PathLike,
    raw: np.ndarray,
    *,
    cfa: str = "RGGB",
    black_level=0,
    white_level: int = 4095,
    as_shot_neutral=(1.0, 1.0, 1.0),
    color_matrix1=None,
    illuminant1: int = 21,
    color_matrix2=None,
    illuminant2: int | None = None,
    forward_matrix1=None,
    forward_matrix2=None,
    exposure_time: float | None = None,
    iso: float | None = None,
    noise_profile=None,
    active_area: tuple[int, int, int, int] | None = None,
    default_crop: tuple[int, int, int, int] | None = None,
    orientation: int = 1,
    baseline_exposure: float | None = None,
    make: str = "le3d",
    model: str = "synthetic",
    extra_tags=(),
) -> None:
    """Write ``raw`` (uint16 [H, W] Bayer mosaic, values in sensor units) as a DNG.

    ``black_level``: scalar, or 4 values in row-major order of the 2x2 CFA positions (written with
    BlackLevelRepeatDim 2x2). ``noise_profile``: (S, O) or three (S, O) pairs for R, G, B in
    normalised units (variance = S * x + O). ``active_area``: (top, left, bottom, right).
    ``default_crop``: (x0, y0, width, height) relative to the active area. ``cfa`` and ``black_level``
    repeat from the active area's top-left corner, as the DNG specification says (raw[top, left] is the
    pattern's first position). ``extra_tags``: more (code, tifffile dtype, count, value) tags, as is.
    """
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f"raw must be a uint16 [H, W] mosaic, got {raw.dtype} {raw.shape}")
    h, w = raw.shape
    pattern = cfa_positions(cfa)  # [2, 2] codes
    tags: list[tuple] = []

    def add(name, dtype, value, count=None):
        if isinstance(value, str):
            tags.append((TAG[name], "s", 0, value, True))
            return
        value = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,)
        n = count if count is not None else (len(value) // 2 if dtype.startswith("2") else len(value))
        tags.append((TAG[name], dtype, n, value if len(value) > 1 else value[0], True))

    add("DNGVersion", "B", (1, 4, 0, 0))
    add("DNGBackwardVersion", "B", (1, 1, 0, 0))
    add("Make", "s", make)
    add("Model", "s", model)
    add("UniqueCameraModel", "s", f"{make} {model}")
    add("Orientation", "H", int(orientation))
    add("CFARepeatPatternDim", "H", (2, 2))
    add("CFAPattern", "B", tuple(int(c) for c in pattern.ravel()))
    add("CFAPlaneColor", "B", (0, 1, 2))
    add("CFALayout", "H", 1)
    bl = np.asarray(black_level, dtype=np.float64).ravel()
    if bl.size == 1:
        add("BlackLevelRepeatDim", "H", (1, 1))
    elif bl.size == 4:
        add("BlackLevelRepeatDim", "H", (2, 2))
    else:
        raise ValueError("black_level must be a scalar or 4 values (2x2 CFA positions)")
    if np.all(bl == np.round(bl)):
        add("BlackLevel", "I", tuple(int(b) for b in bl))
    else:
        add("BlackLevel", "2I", _rationals(bl, signed=False))
    add("WhiteLevel", "I", int(white_level))
    if as_shot_neutral is not None:  # None: leave it out (a file may give AsShotWhiteXY instead)
        add("AsShotNeutral", "2I", _rationals(as_shot_neutral, signed=False))
    if color_matrix1 is None:
        color_matrix1 = np.eye(3)
    add("ColorMatrix1", "2i", _rationals(color_matrix1, signed=True))
    add("CalibrationIlluminant1", "H", int(illuminant1))
    if color_matrix2 is not None:
        add("ColorMatrix2", "2i", _rationals(color_matrix2, signed=True))
        add("CalibrationIlluminant2", "H", int(illuminant2 if illuminant2 is not None else 17))
    if forward_matrix1 is not None:
        add("ForwardMatrix1", "2i", _rationals(forward_matrix1, signed=True))
    if forward_matrix2 is not None:
        add("ForwardMatrix2", "2i", _rationals(forward_matrix2, signed=True))
    if exposure_time is not None:
        add("ExposureTime", "2I", _rationals([exposure_time], signed=False))
    if iso is not None:
        iso = int(round(iso))
        add("ISO", "H", min(iso, 65535))
        if iso >= 65535:  # EXIF 2.3: the SHORT tag saturates, the value goes to RecommendedExposureIndex
            add("SensitivityType", "H", 2)
            add("RecommendedExposureIndex", "I", iso)
    if baseline_exposure is not None:
        add("BaselineExposure", "2i", _rationals([baseline_exposure], signed=True))
    if noise_profile is not None:
        npf = np.asarray(noise_profile, dtype=np.float64).reshape(-1, 2)
        add("NoiseProfile", "d", tuple(npf.ravel()))
    if active_area is not None:
        add("ActiveArea", "I", tuple(int(v) for v in active_area))
    if default_crop is not None:
        x0, y0, cw, ch = default_crop
        add("DefaultCropOrigin", "I", (int(x0), int(y0)))
        add("DefaultCropSize", "I", (int(cw), int(ch)))
    tags += [(int(code), dtype, int(count), value, True) for code, dtype, count, value in extra_tags]
    tmp = f"{os.fspath(path)}.tmp"
    tifffile.imwrite(tmp, raw, photometric=32803, subfiletype=0, extratags=tags, metadata=None,
                     software="le3d")
    os.replace(tmp, path)
