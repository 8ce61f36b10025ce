"""Read DNG captures: pixels through rawpy (LibRaw), colour/noise tags through tifffile.

``read_dng(path)`` returns a :class:`RawFrame` whose mosaic is normalised per CFA position as
``(raw - black) / (white - black)``: float32, noise below black kept (negative), never clipped.
An exiftool-style JSON sidecar (``NAME.json`` next to ``NAME.dng``, as in the RawNeRF dataset) fills
tags that the file lacks. Every problem raises :class:`le3d.errors.Le3dError` with one line naming
the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from le3d.errors import Le3dError
from le3d.raw.bayer import pattern_name

PHOTOMETRIC_CFA = 32803
PHOTOMETRIC_LINEAR_RAW = 34892


@dataclass
class RawFrame:
    """One decoded RAW capture (see module docstring for the normalisation)."""

    mosaic: torch.Tensor  # [H, W] float32, normalised; the active area (less its first row / column
    # where the ActiveArea's top / left is odd: LibRaw starts its image on an even sensor row and column)
    cfa: str  # "RGGB" | "BGGR" | "GRBG" | "GBRG"
    black_level: np.ndarray  # [2, 2] per CFA position of the mosaic, sensor units (BlackLevelDeltaH/V
    # are applied to the mosaic, not held here)
    white_level: float
    as_shot_neutral: np.ndarray  # [3] camera RGB of a neutral (white balance = 1 / neutral); from
    # AsShotNeutral, else AsShotWhiteXY through the ColorMatrix, else [1, 1, 1]
    color_matrix1: np.ndarray | None = None  # [3, 3] XYZ -> camera
    illuminant1: int | None = None
    color_matrix2: np.ndarray | None = None
    illuminant2: int | None = None
    forward_matrix1: np.ndarray | None = None  # [3, 3] wb camera -> XYZ D50
    forward_matrix2: np.ndarray | None = None
    exposure_time: float | None = None  # seconds
    iso: float | None = None  # above 65535 from RecommendedExposureIndex / ISOSpeed / SOS (EXIF 2.3)
    noise_profile: np.ndarray | None = None  # [3, 2] (S, O) per channel R, G, B; var = S x + O
    active_area: tuple[int, int, int, int] | None = None  # top, left, bottom, right
    default_crop: tuple[int, int, int, int] | None = None  # x0, y0, width, height
    orientation: int = 1
    baseline_exposure: float = 0.0
    make: str = ""
    model: str = ""
    path: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.mosaic.shape[0])

    @property
    def width(self) -> int:
        return int(self.mosaic.shape[1])

    @property
    def white_balance(self) -> torch.Tensor:
        """As-shot white-balance gains [3] (1 / neutral, normalised so that G = 1)."""
        g = 1.0 / np.asarray(self.as_shot_neutral, dtype=np.float64)
        return torch.tensor(g / g[1], dtype=torch.float32)

    def exposure_value(self) -> float:
        """exposure_time x ISO (1 when unknown): the frame's relative exposure before a reference."""
        t = self.exposure_time if self.exposure_time else 1.0
        s = self.iso if self.iso else 100.0
        return float(t * s / 100.0)

    def cam_to_xyz(self) -> torch.Tensor | None:
        """[3, 3] camera RGB -> CIE XYZ: the inverse of the ColorMatrix calibrated nearest to D65
        (for white balance by colour temperature); None when the file has no ColorMatrix."""
        cm = _color_matrix_nearest_d65(self.color_matrix1, self.illuminant1, self.color_matrix2, self.illuminant2)
        return None if cm is None else torch.linalg.inv(torch.as_tensor(cm, dtype=torch.float64)).float()

    def cam_to_srgb(self) -> torch.Tensor:
        """[3, 3] white-balanced camera RGB -> linear sRGB (ForwardMatrix if present, else the
        ColorMatrix nearest to D65 by calibration illuminant, else identity)."""
        from le3d.color import camera_to_srgb, forward_matrix_to_srgb

        cands = [(self.color_matrix1, self.illuminant1, self.forward_matrix1),
                 (self.color_matrix2, self.illuminant2, self.forward_matrix2)]
        cands = [c for c in cands if c[0] is not None]
        if not cands:
            return torch.eye(3)

        def dist(c):  # prefer D65-like illuminants (21, 1, 4, 9, 10, 22, 20); then any
            return 0 if c[1] in (21, 1, 4, 9, 10) else 1 if c[1] in (20, 22, 23) else 2
        cm, ill, fm = min(cands, key=dist)
        if fm is not None:
            return forward_matrix_to_srgb(fm)
        try:
            return camera_to_srgb(cm, ill if ill else 21)
        except ValueError:
            return camera_to_srgb(cm, 21)


# ---------------------------------------------------------------------------------------------
# tag helpers


def _num(v) -> float:
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return v[0] / v[1] if v[1] else float("nan")
    if isinstance(v, str):
        v = v.strip()
        if "/" in v:
            return float(Fraction(v))
        return float(v)
    return float(v)


def _array(v, pairs: bool) -> np.ndarray:
    """Tag value -> float64 array; ``pairs``: value is flattened (num, den) rationals."""
    if isinstance(v, str):
        return np.array([_num(s) for s in v.replace(",", " ").split()], dtype=np.float64)
    a = np.asarray(v, dtype=np.float64).ravel()
    if pairs:
        a = a[0::2] / a[1::2]
    return a


RATIONAL_TYPES = {5, 10}  # RATIONAL, SRATIONAL
# EXIF IFD tags read_dng uses, by tifffile's names (ISO above 65535: see _iso)
_EXIF_NAMES = {"ExposureTime": 33434, "ISOSpeedRatings": 34855, "PhotographicSensitivity": 34855,
               "SensitivityType": 34864, "StandardOutputSensitivity": 34865, "RecommendedExposureIndex": 34866,
               "ISOSpeed": 34867}
ISO_SATURATED = 65535  # EXIF 2.3: PhotographicSensitivity holds 65535 when the ISO is 65535 or more


def _tags_of(page) -> dict:
    out = {}
    for tag in page.tags.values():
        out[tag.code] = (tag.value, int(tag.dtype))
        if tag.code == 34665 and isinstance(tag.value, dict):  # ExifIFD
            for k, val in tag.value.items():
                code = _EXIF_NAMES.get(k)
                if code is not None and code not in out:
                    out[code] = (val, 5 if k == "ExposureTime" else 4)
    return out


def _find_sidecar(path: Path) -> Path | None:
    for cand in (path.with_suffix(".json"), path.with_suffix(path.suffix + ".json")):
        if cand.is_file():
            return cand
    return None


SIDECAR_KEYS = {
    "BlackLevel": 50714, "WhiteLevel": 50717, "AsShotNeutral": 50728, "ColorMatrix1": 50721,
    "ColorMatrix2": 50722, "ForwardMatrix1": 50964, "ForwardMatrix2": 50965,
    "CalibrationIlluminant1": 50778, "CalibrationIlluminant2": 50779, "NoiseProfile": 51041,
    "ExposureTime": 33434, "ISO": 34855, "Orientation": 274, "BaselineExposure": 50730,
    "SensitivityType": 34864, "StandardOutputSensitivity": 34865, "RecommendedExposureIndex": 34866,
    "ISOSpeed": 34867, "AsShotWhiteXY": 50729,
}
# exiftool's names of the TIFF Orientation values (its -j output without -n)
_ORIENTATION_NAMES = {"horizontal (normal)": 1, "mirror horizontal": 2, "rotate 180": 3, "mirror vertical": 4,
                      "mirror horizontal and rotate 270 cw": 5, "rotate 90 cw": 6,
                      "mirror horizontal and rotate 90 cw": 7, "rotate 270 cw": 8}
_ILLUMINANT_NAMES = {"d65": 21, "d50": 23, "d55": 20, "d75": 22, "standard light a": 17, "tungsten": 3,
                     "daylight": 1, "fluorescent": 2, "flash": 4}


def _sidecar_value(key: str, value):
    if key.startswith("CalibrationIlluminant") and isinstance(value, str):
        v = value.strip().lower()
        if v in _ILLUMINANT_NAMES:
            return _ILLUMINANT_NAMES[v]
        try:
            return int(v)
        except ValueError:
            return None
    if key == "Orientation" and isinstance(value, str):
        name = value.strip().lower()
        if name in _ORIENTATION_NAMES:
            return [float(_ORIENTATION_NAMES[name])]
        if name.isdigit():
            return [float(name)]
        raise ValueError(f"unknown orientation {value!r}")
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, list):
        return [float(_num(x)) for x in value]
    return list(_array(value, pairs=False))


def load_sidecar(path: str | os.PathLike) -> dict:
    """exiftool ``-j`` style JSON (a list with one dict, or a dict) -> {tag code: value}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise Le3dError(f"file {path}: unreadable JSON sidecar ({exc})") from None
    if isinstance(data, list):
        data = data[0] if data else {}
    if not isinstance(data, dict):
        raise Le3dError(f"file {path}: JSON sidecar is not an object")
    out = {}
    for key, value in data.items():
        base = key.split(":")[-1]
        if base == "ISOSpeedRatings":
            base = "ISO"
        if base in SIDECAR_KEYS:
            try:
                v = _sidecar_value(base, value)
            except (ValueError, ZeroDivisionError):
                raise Le3dError(f"file {path}: cannot parse {base}={value!r}") from None
            if v is not None:
                out[SIDECAR_KEYS[base]] = v
    return out


def _iso(get) -> float | None:
    """The frame's ISO. EXIF 2.3 caps PhotographicSensitivity (34855) at 65535 and puts a higher one
    in RecommendedExposureIndex, ISOSpeed or StandardOutputSensitivity (the one SensitivityType
    names); those are also read when 34855 is missing."""
    iso = get(34855, scalar=True)
    if iso is not None and 0 < iso < ISO_SATURATED:
        return iso
    for code in (34866, 34867, 34865):  # REI, ISO speed, SOS
        value = get(code, scalar=True)
        if value is not None and value > 0:
            return value
    return iso if iso else None


def _color_matrix_nearest_d65(cm1, ill1, cm2, ill2):
    """The ColorMatrix calibrated under a D65-like illuminant (EXIF codes 21, 1, 4, 9, 10) if there is
    one, else the first present; None without any."""
    cands = [(m, ill) for m, ill in ((cm1, ill1), (cm2, ill2)) if m is not None]
    if not cands:
        return None
    return min(cands, key=lambda c: 0 if c[1] in (21, 1, 4, 9, 10) else 1)[0]


def _neutral_from_white_xy(xy, cm1, ill1, cm2, ill2) -> np.ndarray | None:
    """AsShotNeutral from AsShotWhiteXY (the DNG specification's alternative): the camera's response
    ColorMatrix @ XYZ to the white's chromaticity, with the ColorMatrix RawFrame.cam_to_xyz uses (the
    one calibrated nearest D65), scaled so that its largest value is 1."""
    cm = _color_matrix_nearest_d65(cm1, ill1, cm2, ill2)
    if xy is None or xy.size != 2 or not 0 < xy[1] < 1 or cm is None:
        return None
    x, y = float(xy[0]), float(xy[1])
    neutral = cm @ np.array([x / y, 1.0, (1.0 - x - y) / y])
    return neutral / neutral.max() if np.all(neutral > 0) else None


# ---------------------------------------------------------------------------------------------


def read_dng(path: str | os.PathLike, sidecar: str | os.PathLike | None | bool = None) -> RawFrame:
    """Decode one DNG. ``sidecar``: a JSON path, None (use ``NAME.json`` if present) or False."""
    import rawpy
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise Le3dError(f"file {path}: not found")
    # --- tags (tifffile) -------------------------------------------------------------------
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            ifd0 = _tags_of(pages[0])
            raw_tags = None
            candidates = []
            for p in pages:
                candidates.append(p)
                for sub in getattr(p, "pages", None) or []:
                    candidates.append(sub)
            for p in candidates:
                t = _tags_of(p)
                if t.get(254, (1,))[0] == 0 and 262 in t:
                    raw_tags = t
                    break
            if raw_tags is None:
                raw_tags = ifd0
    except Le3dError:
        raise
    except Exception as exc:  # tifffile raises many kinds of errors on garbage
        raise Le3dError(f"file {path}: not a readable TIFF/DNG ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if 50706 not in ifd0:
        raise Le3dError(f"file {path}: not a DNG (no DNGVersion tag)")
    tags = dict(ifd0)
    tags.update(raw_tags)
    values = {code: (v, t) for code, (v, t) in tags.items()}

    side = {}
    if sidecar is not False:
        sc = Path(sidecar) if sidecar else _find_sidecar(path)
        if sc is not None:
            side = load_sidecar(sc)

    def get(code, default=None, scalar=False):
        if code in values:
            v, t = values[code]
            a = _array(v, pairs=t in RATIONAL_TYPES) if not isinstance(v, bytes) else np.frombuffer(v, np.uint8).astype(np.float64)
        elif code in side:
            a = np.atleast_1d(np.asarray(side[code], dtype=np.float64))
        else:
            return default
        return float(a[0]) if scalar else a

    photometric = int(raw_tags.get(262, (0, 0))[0])
    if photometric == PHOTOMETRIC_LINEAR_RAW:
        raise Le3dError(f"file {path}: LinearRaw DNG (already demosaiced); only Bayer CFA DNGs are supported")
    if photometric != PHOTOMETRIC_CFA:
        raise Le3dError(f"file {path}: PhotometricInterpretation {photometric} is not CFA; only Bayer DNGs are supported")
    dim = get(33421)
    if dim is not None and tuple(int(d) for d in dim) != (2, 2):
        raise Le3dError(f"file {path}: CFA repeat pattern {tuple(int(d) for d in dim)} is not a 2x2 Bayer pattern")
    black = get(50714)
    white = get(50717)
    if black is None:
        raise Le3dError(f"file {path}: missing black level (no BlackLevel tag or sidecar)")
    if white is None:
        raise Le3dError(f"file {path}: missing white level (no WhiteLevel tag or sidecar)")
    rep = get(50713)
    rep = (1, 1) if rep is None else tuple(int(r) for r in rep[:2])
    if get(339, 1.0, scalar=True) == 3:
        # LibRaw converts floating-point samples to integers on a scale of its own, which depends on
        # the image's content: normalising by the tags would be off by that unknown factor.
        raise Le3dError(f"file {path}: floating-point DNG (SampleFormat 3) is not supported; "
                        "only integer Bayer CFA DNGs are")

    # --- pixels (rawpy / LibRaw) -----------------------------------------------------------
    try:
        with rawpy.imread(str(path)) as r:
            raw = np.array(r.raw_image_visible, dtype=np.float32, copy=True)
            rp = r.raw_pattern
            desc = r.color_desc.decode(errors="replace")
            ncol = r.num_colors
            margins = (int(r.sizes.top_margin), int(r.sizes.left_margin))
    except Exception as exc:
        raise Le3dError(f"file {path}: LibRaw cannot decode it ({type(exc).__name__}: {exc}); truncated or corrupt?".splitlines()[0]) from None
    if rp is None or ncol != 3 or np.asarray(rp).shape != (2, 2):
        raise Le3dError(f"file {path}: sensor is not a 2x2 Bayer CFA (colors {desc!r})")
    codes = np.array([{"R": 0, "G": 1, "B": 2}.get(desc[int(c)], 9) for c in np.asarray(rp).ravel()])
    try:
        cfa = pattern_name(codes)
    except ValueError as exc:
        raise Le3dError(f"file {path}: {exc}") from None
    # The DNG specification repeats CFAPattern, BlackLevel and the black deltas from the ActiveArea's
    # top-left corner. LibRaw's visible image starts there too, except that it rounds an odd margin up
    # to an even one: (dy, dx) is where its origin lies in the active area.
    aa = get(50829)
    aa_top, aa_left = (int(aa[0]), int(aa[1])) if aa is not None and aa.size == 4 else (0, 0)
    dy, dx = margins[0] - aa_top, margins[1] - aa_left
    if dy < 0 or dx < 0:
        raise Le3dError(f"file {path}: LibRaw's image starts at ({margins[0]}, {margins[1]}), outside the "
                        f"ActiveArea starting at ({aa_top}, {aa_left})")
    tag_cfa = get(33422)
    if tag_cfa is not None and tag_cfa.size == 4:
        tag_codes = np.roll(tag_cfa.astype(int).reshape(2, 2), (-dy, -dx), axis=(0, 1)).ravel()
        try:
            if pattern_name(tag_codes) != cfa:
                raise Le3dError(f"file {path}: CFAPattern tag and LibRaw disagree")
        except ValueError as exc:
            raise Le3dError(f"file {path}: {exc}") from None

    h, w = raw.shape
    if h < 2 or w < 2:
        raise Le3dError(f"file {path}: image of {w}x{h} pixels is too small")
    # black level per pixel position of a 2x2 cell (BlackLevelRepeatDim may be 1x1, 1x2, 2x1, 2x2)
    if black.size == 1:
        bl = np.full((2, 2), float(black[0]))
    elif black.size == rep[0] * rep[1] and rep[0] <= 2 and rep[1] <= 2:
        b = black.reshape(rep)
        bl = np.array([[b[i % rep[0], j % rep[1]] for j in range(2)] for i in range(2)])
    elif black.size == 4:
        bl = black.reshape(2, 2)
    else:
        raise Le3dError(f"file {path}: unsupported BlackLevel of {black.size} values with repeat {rep}")
    wl = float(white[0])
    if not np.all(wl > bl):
        raise Le3dError(f"file {path}: white level {wl} is not above black level {bl.ravel().tolist()}")
    bl = np.roll(bl, (-dy, -dx), axis=(0, 1))  # per CFA position of the decoded image
    black_img = np.tile(bl, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    # BlackLevelDeltaV / DeltaH: per row and column of the active area, added to the BlackLevel pattern
    for code, axis, size in ((50716, 0, h), (50715, 1, w)):
        delta = get(code)
        if delta is None:
            continue
        start = dy if axis == 0 else dx
        if delta.size < start + size:
            raise Le3dError(f"file {path}: BlackLevelDelta{'V' if axis == 0 else 'H'} has {delta.size} values "
                            f"for {start + size} {'rows' if axis == 0 else 'columns'}")
        part = delta[start:start + size]
        black_img = black_img + (part[:, None] if axis == 0 else part[None, :])
    if not np.all(wl > black_img):
        raise Le3dError(f"file {path}: white level {wl} is not above the black level with its deltas")
    mosaic = (raw - black_img) / (wl - black_img)

    def mat(code):
        a = get(code)
        if a is None:
            return None
        if a.size != 9:
            raise Le3dError(f"file {path}: tag {code} must hold 9 values, has {a.size}")
        return a.reshape(3, 3)

    neutral = get(50728)
    if neutral is None:
        neutral = _neutral_from_white_xy(get(50729), mat(50721), get(50778, scalar=True), mat(50722),
                                         get(50779, scalar=True))
    if neutral is None or neutral.size != 3 or not np.all(neutral > 0):
        neutral = np.ones(3)
    npf = get(51041)
    if npf is not None:
        npf = npf.reshape(-1, 2)
        if npf.shape[0] == 1:
            npf = np.repeat(npf, 3, axis=0)
    dco, dcs = get(50719), get(50720)

    def text(code):
        v = tags.get(code)
        return str(v[0]).strip("\x00 ") if v is not None else ""

    ill1, ill2 = get(50778, scalar=True), get(50779, scalar=True)
    return RawFrame(
        mosaic=torch.from_numpy(mosaic.astype(np.float32)),
        cfa=cfa,
        black_level=bl,
        white_level=wl,
        as_shot_neutral=neutral,
        color_matrix1=mat(50721),
        illuminant1=int(ill1) if ill1 is not None else None,
        color_matrix2=mat(50722),
        illuminant2=int(ill2) if ill2 is not None else None,
        forward_matrix1=mat(50964),
        forward_matrix2=mat(50965),
        exposure_time=get(33434, scalar=True),
        iso=_iso(get),
        noise_profile=npf,
        active_area=tuple(int(v) for v in aa) if aa is not None else None,
        default_crop=(int(dco[0]), int(dco[1]), int(dcs[0]), int(dcs[1])) if dco is not None and dcs is not None else None,
        orientation=int(get(274, 1, scalar=True)),
        baseline_exposure=float(get(50730, 0.0, scalar=True)),
        make=text(271),
        model=text(272),
        path=str(path),
    )
