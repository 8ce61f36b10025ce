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

from le3d.color import (
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    bradford,
    forward_matrix_to_srgb,
    illuminant_cct,
    illuminant_xyz,
    xy_to_cct,
)
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
    # AsShotNeutral, else AsShotWhiteXY through the ColorMatrix interpolated at its CCT, else [1, 1, 1]
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

    def color(self) -> DngColor:
        """The DNG colour model for this frame's as-shot white (see :func:`dng_color`)."""
        return dng_color(self.color_matrix1, self.illuminant1, self.color_matrix2, self.illuminant2,
                         self.forward_matrix1, self.forward_matrix2, self.as_shot_neutral)

    def cam_to_xyz(self) -> torch.Tensor | None:
        """[3, 3] camera native RGB -> CIE XYZ under the as-shot illuminant (for white balance by
        colour temperature): the inverse of the ColorMatrix interpolated at the as-shot white as the
        DNG specification says (see :func:`dng_color`); None when the file has no ColorMatrix."""
        return self.color().cam_to_xyz

    def cam_to_srgb(self) -> torch.Tensor:
        """[3, 3] white-balanced camera RGB -> linear sRGB (D65) for the as-shot white: from the
        ForwardMatrix when present, else from the ColorMatrix, each interpolated at that white (see
        :func:`dng_color`); identity without a ColorMatrix."""
        return self.color().cam_to_srgb


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


# ---------------------------------------------------------------------------------------------
# colour: the DNG specification (1.4+), chapter 6, "Mapping Camera Color Space to CIE XYZ Space"

D50_XY = (0.34567, 0.35850)
WHITE_XY_PASSES = 30  # iterations of the as-shot white's chromaticity (the DNG SDK's limit too)
WHITE_XY_TOLERANCE = 1e-7  # |dx| + |dy| at which it has converged


@dataclass(frozen=True)
class Calibration:
    """A DNG profile's colour calibrations: one or two (ColorMatrix, CCT, ForwardMatrix) triples.
    With two, matrices are interpolated linearly in inverse CCT between ``cct1`` and ``cct2``."""

    color_matrix1: np.ndarray  # [3, 3] XYZ -> camera native
    cct1: float | None
    forward_matrix1: np.ndarray | None  # [3, 3] white-balanced camera -> XYZ D50
    color_matrix2: np.ndarray | None = None
    cct2: float | None = None
    forward_matrix2: np.ndarray | None = None

    def weight1(self, cct: float) -> float:
        """Weight of the first calibration at ``cct`` (kelvin): 1 - weight of the second, linear in
        1 / CCT between the two calibration illuminants, clamped to [0, 1] outside them."""
        if self.color_matrix2 is None:
            return 1.0
        g = (1.0 / cct - 1.0 / self.cct2) / (1.0 / self.cct1 - 1.0 / self.cct2)
        return float(min(max(g, 0.0), 1.0))

    def color_matrix(self, cct: float) -> np.ndarray:
        """The ColorMatrix interpolated at ``cct``."""
        g = self.weight1(cct)
        return self.color_matrix1 if g == 1.0 else g * self.color_matrix1 + (1.0 - g) * self.color_matrix2

    def forward_matrix(self, cct: float) -> np.ndarray | None:
        """The ForwardMatrix interpolated at ``cct`` (one present alone is used as is); None without."""
        fm1, fm2 = self.forward_matrix1, self.forward_matrix2
        if fm1 is None or fm2 is None:
            return fm1 if fm1 is not None else fm2
        g = self.weight1(cct)
        return g * fm1 + (1.0 - g) * fm2


def calibration(cm1, ill1, cm2=None, ill2=None, fm1=None, fm2=None) -> Calibration | None:
    """A profile's calibrations from its tags (CalibrationIlluminant codes as EXIF LightSource).

    Two ColorMatrices whose illuminants both have a known, different CCT are interpolated. Otherwise
    one is used alone: the only one present, or (illuminants unknown or equal) the one calibrated
    nearest D65, as LibRaw picks. None without a ColorMatrix."""
    cm1 = None if cm1 is None else np.asarray(cm1, dtype=np.float64).reshape(3, 3)
    cm2 = None if cm2 is None else np.asarray(cm2, dtype=np.float64).reshape(3, 3)
    fm1 = None if fm1 is None else np.asarray(fm1, dtype=np.float64).reshape(3, 3)
    fm2 = None if fm2 is None else np.asarray(fm2, dtype=np.float64).reshape(3, 3)
    t1, t2 = illuminant_cct(ill1), illuminant_cct(ill2)
    if cm1 is not None and cm2 is not None and t1 is not None and t2 is not None and t1 != t2:
        return Calibration(cm1, t1, fm1, cm2, t2, fm2)
    cm = _color_matrix_nearest_d65(cm1, ill1, cm2, ill2)
    if cm is None:
        return None
    first = cm is cm1
    return Calibration(cm, t1 if first else t2, fm1 if first else fm2)


def _xy_of(xyz: np.ndarray) -> tuple[float, float] | None:
    s = float(xyz.sum())
    if not np.all(np.isfinite(xyz)) or s <= 0 or xyz[1] <= 0:
        return None
    return float(xyz[0] / s), float(xyz[1] / s)


def white_xy_from_neutral(cal: Calibration, neutral) -> tuple[float, float] | None:
    """Chromaticity of the white whose camera response is ``neutral`` (AsShotNeutral): with two
    calibrations iteratively, from D50: interpolate the ColorMatrix at the guess's CCT, take the xy
    of ``inverse(CM) @ neutral``, repeat until it moves less than 1e-7 (the last two guesses are
    averaged if it has not after 30 passes). None when the neutral maps to no valid chromaticity."""
    n = np.asarray(neutral, dtype=np.float64).ravel()
    if cal.color_matrix2 is None:
        return _xy_of(np.linalg.solve(cal.color_matrix1, n))
    xy = D50_XY
    for k in range(WHITE_XY_PASSES):
        nxt = _xy_of(np.linalg.solve(cal.color_matrix(xy_to_cct(*xy)), n))
        if nxt is None:
            return None
        if abs(nxt[0] - xy[0]) + abs(nxt[1] - xy[1]) < WHITE_XY_TOLERANCE:
            return nxt
        if k == WHITE_XY_PASSES - 1:
            nxt = (0.5 * (xy[0] + nxt[0]), 0.5 * (xy[1] + nxt[1]))
        xy = nxt
    return xy


@dataclass(frozen=True)
class DngColor:
    """The colour model of one capture for its as-shot white (see :func:`dng_color`)."""

    white_xy: tuple[float, float] | None  # chromaticity of the as-shot white
    cct: float | None  # its correlated colour temperature (kelvin)
    weight1: float  # weight of ColorMatrix1 / ForwardMatrix1 in the interpolation (1 - that of the 2s)
    color_matrix: np.ndarray | None  # [3, 3] interpolated XYZ -> camera native
    forward_matrix: np.ndarray | None  # [3, 3] interpolated ForwardMatrix, when the file has one
    cam_to_xyz: torch.Tensor | None  # [3, 3] camera native -> XYZ under the as-shot white (float32)
    cam_to_srgb: torch.Tensor  # [3, 3] white-balanced camera -> linear sRGB D65 (float32)


def dng_color(cm1, ill1, cm2=None, ill2=None, fm1=None, fm2=None, neutral=(1.0, 1.0, 1.0)) -> DngColor:
    """The DNG specification's camera colour for the white whose camera response is ``neutral``.

    ColorMatrix1/2 (XYZ -> camera, under CalibrationIlluminant1/2) and ForwardMatrix1/2 are
    interpolated linearly in inverse CCT at the white's CCT (:func:`white_xy_from_neutral`; the
    nearer matrix outside the two illuminants' range; with one matrix, that one). Then, with ``CM``
    the interpolated ColorMatrix and ``W = inverse(CM) @ neutral`` the white's XYZ:

    - ``cam_to_xyz = inverse(CM)`` (camera native -> XYZ, the white not adapted);
    - ``cam_to_srgb = XYZ_TO_SRGB @ bradford(W -> D65) @ inverse(CM) @ diag(neutral)``, normalised so
      that white-balanced (1, 1, 1) -> sRGB (1, 1, 1): ``le3d.color.camera_to_srgb(CM, W)``;
    - with a ForwardMatrix ``FM`` (white-balanced camera -> XYZ D50; the spec's camera -> XYZ D50 is
      ``FM @ diag(1 / neutral)``): ``cam_to_srgb = forward_matrix_to_srgb(FM)`` and
      ``cam_to_xyz = bradford(D65 -> W) @ SRGB_TO_XYZ @ cam_to_srgb @ diag(1 / neutral)``, the spec's
      matrix adapted back from D50 to the white.

    Either way the camera-space white balance ``cam_to_srgb @ diag(1 / neutral)`` equals the Bradford
    adaptation ``XYZ_TO_SRGB @ bradford(W -> D65) @ cam_to_xyz`` that ``le3d.post`` applies for
    'asshot' (up to the neutral's scale), so previews, eval and the viewers show one colour.
    Without a ColorMatrix: ``cam_to_xyz`` None and ``cam_to_srgb`` the identity."""
    cal = calibration(cm1, ill1, cm2, ill2, fm1, fm2)
    if cal is None:
        return DngColor(None, None, 1.0, None, None, None, torch.eye(3))
    n = np.asarray(neutral, dtype=np.float64).ravel()
    if n.size != 3 or not np.all(n > 0) or not np.all(np.isfinite(n)):
        n = np.ones(3)
    xy = white_xy_from_neutral(cal, n)
    if xy is None:  # a neutral no white explains: the first calibration's illuminant (else D65)
        t = cal.cct1 or 6504.0
        cm = cal.color_matrix(t)
        white = illuminant_xyz(t).double().numpy()
        n = cm @ white
        xy = _xy_of(white)
    cct = xy_to_cct(*xy)
    cm = cal.color_matrix(cct)
    fm = cal.forward_matrix(cct)
    white = np.linalg.solve(cm, n)
    white = (white / white[1]).tolist()
    # the sRGB matrix's own white (its (1, 1, 1)), which le3d.post's Bradford adapts to: D65 to 1e-4
    d65 = SRGB_TO_XYZ.double().sum(1).tolist()
    if fm is None:
        c2x = torch.linalg.inv(torch.from_numpy(cm))
        # = le3d.color.camera_to_srgb(CM, W) up to that 1e-4 (it adapts from D65's xy)
        c2s = XYZ_TO_SRGB.double() @ bradford(white, d65).double() @ c2x @ torch.from_numpy(np.diag(n))
    else:
        c2s = forward_matrix_to_srgb(fm).double()
    c2s = c2s / c2s.sum(1, keepdim=True)  # white-balanced (1, 1, 1) -> (1, 1, 1)
    if fm is not None:
        c2x = bradford(d65, white).double() @ SRGB_TO_XYZ.double() @ c2s @ torch.from_numpy(np.diag(1.0 / n))
    return DngColor(xy, cct, cal.weight1(cct), cm, fm, c2x.float(), c2s.float())


PROFILE_KEYS = ("color_matrix1", "illuminant1", "color_matrix2", "illuminant2", "forward_matrix1",
                "forward_matrix2")


def color_profile_of(source) -> dict | None:
    """A scene's DNG colour profile as a JSON-able dict {color_matrix1, illuminant1, color_matrix2,
    illuminant2, forward_matrix1, forward_matrix2} (matrices as nested [3][3] float lists or None,
    illuminants as EXIF LightSource codes or None) from a :class:`RawFrame` (its attributes of
    those names) or a dict of them (e.g. config.json's); None when ``source`` is None or has no
    ColorMatrix."""
    if source is None:
        return None
    get = source.get if isinstance(source, dict) else (lambda k: getattr(source, k, None))
    out = {}
    for k in PROFILE_KEYS:
        v = get(k)
        if k.startswith("illuminant"):
            out[k] = None if v is None else int(v)
        else:
            out[k] = None if v is None else torch.as_tensor(v, dtype=torch.float64).reshape(3, 3).tolist()
    if out["color_matrix1"] is None and out["color_matrix2"] is None:
        return None
    return out


def neutral_of_white_xy(xy, cm1, ill1, cm2=None, ill2=None) -> np.ndarray | None:
    """The camera's response (its neutral, float64 [3], unscaled) to the white of chromaticity ``xy``:
    ``CM @ XYZ(xy)`` with the ColorMatrix interpolated at that white's CCT (``xy_to_cct``), as
    :func:`dng_color` does, so that ``dng_color(..., neutral)`` finds that white again. None without a
    ColorMatrix or for an ``xy`` with y outside (0, 1)."""
    cal = calibration(cm1, ill1, cm2, ill2)
    xy = None if xy is None else np.asarray(xy, dtype=np.float64).ravel()
    if xy is None or xy.size != 2 or not 0 < xy[1] < 1 or cal is None:
        return None
    x, y = float(xy[0]), float(xy[1])
    return cal.color_matrix(xy_to_cct(x, y)) @ np.array([x / y, 1.0, (1.0 - x - y) / y])


def _neutral_from_white_xy(xy, cm1, ill1, cm2, ill2) -> np.ndarray | None:
    """AsShotNeutral from AsShotWhiteXY (the DNG specification's alternative): the camera's response to
    the white (:func:`neutral_of_white_xy`), scaled so that its largest value is 1."""
    neutral = neutral_of_white_xy(xy, cm1, ill1, cm2, ill2)
    if neutral is None:
        return None
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
