"""Colour science shared by the RAW pipeline (le3d.raw.isp) and post-processing (le3d.post).

Everything is torch. Matrices are float32 [3, 3] and act on column vectors (``y = M @ x``); to apply
one to an image ``[..., 3]`` use :func:`apply_matrix`.

Facts used (references: IEC 61966-2-1 for sRGB, the DNG specification 1.6 chapter 6 for camera
colour, Lindbloom's tables for Bradford, CIE 15:2004 for the daylight locus, Kim et al. 2002 for
the Planckian locus):
- sRGB primaries with a D65 white (x, y) = (0.3127, 0.3290).
- DNG ``ColorMatrix`` maps CIE XYZ (of the calibration illuminant, white Y = 1) to camera native RGB;
  ``ForwardMatrix`` maps white-balanced camera RGB to XYZ relative to D50 (the ICC PCS).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "srgb_oetf", "srgb_eotf", "XYZ_TO_SRGB", "SRGB_TO_XYZ", "BRADFORD", "WHITE_XY", "EXIF_ILLUMINANTS",
    "ILLUMINANT_CCT", "bradford", "cct_to_xy", "xy_to_cct", "illuminant_cct", "xy_to_xyz", "illuminant_xyz",
    "camera_to_srgb",
    "forward_matrix_to_srgb", "apply_matrix", "luminance",
]

# ---------------------------------------------------------------------------------------------
# transfer functions


def srgb_oetf(x: torch.Tensor) -> torch.Tensor:
    """Linear -> sRGB-encoded (IEC 61966-2-1). Defined for any real input: odd-symmetric below 0
    so negative (noisy) values survive a round trip; values above 1 are extrapolated, not clipped."""
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    a = x.abs()
    y = torch.where(a <= 0.0031308, 12.92 * a, 1.055 * a.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)
    return torch.sign(x) * y


def srgb_eotf(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded -> linear, the exact inverse of :func:`srgb_oetf`."""
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    a = x.abs()
    y = torch.where(a <= 0.04045, a / 12.92, ((a.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)
    return torch.sign(x) * y


# ---------------------------------------------------------------------------------------------
# chromaticities and matrices

WHITE_XY = {
    "A": (0.44757, 0.40745),
    "D50": (0.34567, 0.35850),
    "D55": (0.33242, 0.34743),
    "D65": (0.31270, 0.32900),
    "D75": (0.29902, 0.31485),
    "E": (1 / 3, 1 / 3),
    "F2": (0.37208, 0.37529),
    "F11": (0.38052, 0.37713),
}

# EXIF LightSource / DNG CalibrationIlluminant codes -> a white of WHITE_XY (or a CCT in kelvin).
EXIF_ILLUMINANTS = {
    1: "D65",  # "daylight": treated as D65 (as Adobe does)
    2: "F2",  # fluorescent (cool white)
    3: "A",  # tungsten
    4: "D65",  # flash: approximately daylight
    9: "D65",  # fine weather
    10: "D65",  # cloudy (approximated)
    11: "D75",  # shade
    12: 6430.0,  # daylight fluorescent (CCT)
    13: 5000.0,  # day white fluorescent
    14: 4150.0,  # cool white fluorescent
    15: 3450.0,  # white fluorescent
    17: "A",  # standard light A
    18: 4874.0,  # standard light B
    19: 6774.0,  # standard light C
    20: "D55",
    21: "D65",
    22: "D75",
    23: "D50",
    24: 3200.0,  # ISO studio tungsten
}

_SRGB_TO_XYZ64 = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=torch.float64,
)
_XYZ_TO_SRGB64 = torch.linalg.inv(_SRGB_TO_XYZ64)
SRGB_TO_XYZ = _SRGB_TO_XYZ64.float()  # linear sRGB (D65) -> XYZ (D65 white has Y = 1)
XYZ_TO_SRGB = _XYZ_TO_SRGB64.float()  # XYZ (D65) -> linear sRGB

_BRADFORD64 = torch.tensor(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]], dtype=torch.float64
)
BRADFORD = _BRADFORD64.float()  # XYZ -> Bradford cone response


def xy_to_xyz(x, y) -> torch.Tensor:
    """Chromaticity (x, y) -> XYZ with Y = 1, float32 [..., 3] (scalars give [3])."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return torch.stack([x / y, torch.ones_like(x), (1 - x - y) / y], dim=-1).float()


def _xy_uv(x: float, y: float) -> tuple[float, float]:
    d = -2 * x + 12 * y + 3
    return 4 * x / d, 6 * y / d


def _uv_xy(u: float, v: float) -> tuple[float, float]:
    d = 2 * u - 8 * v + 4
    return 3 * u / d, 2 * v / d


CCT_RANGE_K = (1667.0, 25000.0)  # what the loci below cover; cct_to_xy clamps to it
_BLEND_K = (4000.0, 5000.0)  # Planckian below, daylight above, a smooth blend between


def _daylight_xy(t: float) -> tuple[float, float]:
    """CIE daylight locus (4000..25000 K)."""
    t = min(max(t, 4000.0), CCT_RANGE_K[1])
    if t <= 7000.0:
        x = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        x = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    return x, -3.000 * x * x + 2.870 * x - 0.275


def _planckian_xy(t: float) -> tuple[float, float]:
    """Planckian locus, Kim et al. (2002) cubic fits (1667..25000 K; x and y each have their own fit
    above 4000 K)."""
    t = min(max(t, CCT_RANGE_K[0]), CCT_RANGE_K[1])
    if t <= 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222.0:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000.0:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def _locus_xy(t: float) -> tuple[float, float]:
    """The Planckian locus up to 4000 K, the CIE daylight locus from 5000 K (6504 K is D65), and a
    smoothstep blend of the two between: switching at one temperature moved the white point by 0.0027
    in (u, v), 8 tint units, within a 1 K step of the slider."""
    lo, hi = _BLEND_K
    if t <= lo:
        return _planckian_xy(t)
    if t >= hi:
        return _daylight_xy(t)
    w = (t - lo) / (hi - lo)
    w = w * w * (3.0 - 2.0 * w)
    (xp, yp), (xd, yd) = _planckian_xy(t), _daylight_xy(t)
    return xp + w * (xd - xp), yp + w * (yd - yp)


def cct_to_xy(temperature_k: float, tint: float = 0.0) -> tuple[float, float]:
    """Correlated colour temperature (kelvin, clamped to 1667..25000) -> chromaticity (x, y).

    Uses the CIE daylight locus from 5000 K (so 6504 K is D65 to 4 decimals), the Planckian locus up
    to 4000 K, and a smooth blend of the two between. ``tint`` is in Adobe's units and direction (the DNG SDK's
    dng_temperature: kTintScale = -3000 along isotherms of negative slope): it moves the white point
    perpendicular to the locus in CIE 1960 (u, v) by ``tint / 3000`` towards the green side (+v).
    Balancing for a greener light turns the image magenta, so positive tint makes an image more
    magenta and negative more green, as Camera Raw's and Lightroom's Tint does.
    """
    t = float(temperature_k)
    x, y = _locus_xy(t)
    if tint == 0.0:
        return x, y
    u, v = _xy_uv(x, y)
    h = max(1.0, 0.01 * t)
    u1, v1 = _xy_uv(*_locus_xy(t - h))
    u2, v2 = _xy_uv(*_locus_xy(t + h))
    du, dv = u2 - u1, v2 - v1
    n = math.hypot(du, dv) or 1.0
    # normal pointing to the green side (+v side, above the locus): (-dv, du) oriented so that dv>0
    nu, nv = -dv / n, du / n
    if nv < 0:
        nu, nv = -nu, -nv
    offset = float(tint) / 3000.0
    return _uv_xy(u + offset * nu, v + offset * nv)


# Robertson (1968) isotemperature lines, as tabulated in Wyszecki & Stiles, "Color Science" (2nd ed.):
# (reciprocal temperature in mired = 1e6 / K, u, v of the Planckian locus in CIE 1960 UCS, slope dv/du
# of the isotemperature line through that point).
_ROBERTSON = (
    (0, 0.18006, 0.26352, -0.24341), (10, 0.18066, 0.26589, -0.25479), (20, 0.18133, 0.26846, -0.26876),
    (30, 0.18208, 0.27119, -0.28539), (40, 0.18293, 0.27407, -0.30470), (50, 0.18388, 0.27709, -0.32675),
    (60, 0.18494, 0.28021, -0.35156), (70, 0.18611, 0.28342, -0.37915), (80, 0.18740, 0.28668, -0.40955),
    (90, 0.18880, 0.28997, -0.44278), (100, 0.19032, 0.29326, -0.47888), (125, 0.19462, 0.30141, -0.58204),
    (150, 0.19962, 0.30921, -0.70471), (175, 0.20525, 0.31647, -0.84901), (200, 0.21142, 0.32312, -1.0182),
    (225, 0.21807, 0.32909, -1.2168), (250, 0.22511, 0.33439, -1.4512), (275, 0.23247, 0.33904, -1.7298),
    (300, 0.24010, 0.34308, -2.0637), (325, 0.24792, 0.34655, -2.4681), (350, 0.25591, 0.34951, -2.9641),
    (375, 0.26400, 0.35200, -3.5814), (400, 0.27218, 0.35407, -4.3633), (425, 0.28039, 0.35577, -5.3762),
    (450, 0.28863, 0.35714, -6.7262), (475, 0.29685, 0.35823, -8.5955), (500, 0.30505, 0.35907, -11.324),
    (525, 0.31320, 0.35968, -15.628), (550, 0.32129, 0.36011, -23.325), (575, 0.32931, 0.36038, -40.770),
    (600, 0.33724, 0.36051, -116.45),
)


def xy_to_cct(x: float, y: float) -> float:
    """Correlated colour temperature (kelvin) of the chromaticity (x, y): the temperature of the
    Planckian isotemperature line through it in CIE 1960 (u, v), by Robertson's method (the DNG SDK's
    too). Interpolates in mired between the two tabulated isotherms on either side of the point;
    clamped to ``CCT_RANGE_K`` (1667..25000 K, what ``cct_to_xy`` covers). Accurate to a few kelvin
    near the locus (D65 -> 6504 K, illuminant A -> 2856 K); meaningless far from it."""
    u, v = _xy_uv(float(x), float(y))
    m0 = d0 = None
    for mired, ui, vi, ti in _ROBERTSON:
        # signed distance from the isotherm v - vi = ti (u - ui); positive on its warmer (higher-mired) side
        d = ((v - vi) - ti * (u - ui)) / math.sqrt(1.0 + ti * ti)
        if d <= 0.0:  # the point lies between the previous isotherm and this one (or on this one)
            m = mired if d0 is None else m0 + (mired - m0) * d0 / (d0 - d)
            t = 1e6 / m if m > 0 else math.inf
            return min(max(t, CCT_RANGE_K[0]), CCT_RANGE_K[1])
        m0, d0 = mired, d
    return CCT_RANGE_K[0]  # warmer than the last isotherm (600 mired)


# Published CCTs of the named whites (CIE 15:2004; D illuminants at 1.4388/1.4380 x their nominal).
ILLUMINANT_CCT = {"A": 2856.0, "D50": 5003.0, "D55": 5503.0, "D65": 6504.0, "D75": 7504.0, "F2": 4230.0,
                  "F11": 4000.0}


def illuminant_cct(code) -> float | None:
    """CCT in kelvin of an EXIF LightSource / DNG CalibrationIlluminant code (17 = A -> 2856, 21 = D65
    -> 6504, ...; the codes of :data:`EXIF_ILLUMINANTS`, where "daylight" (1) is D65 as in
    :func:`illuminant_xyz`), or of a white named in :data:`ILLUMINANT_CCT`; None when unknown
    (0 = unknown, 255 = other, None)."""
    if isinstance(code, str):
        return ILLUMINANT_CCT.get(code.upper())
    if code is None or isinstance(code, bool):
        return None
    key = int(code)
    if key != code or key not in EXIF_ILLUMINANTS:
        return None
    white = EXIF_ILLUMINANTS[key]
    return ILLUMINANT_CCT.get(white) if isinstance(white, str) else float(white)


def illuminant_xyz(illuminant) -> torch.Tensor:
    """White XYZ (Y = 1) of an illuminant given as a name ('D65', 'D50', 'A', ...), an EXIF/DNG
    LightSource code (21 = D65, 23 = D50, 17 = A, ...), a CCT in kelvin (float > 1000), an
    (x, y) pair, or an XYZ triple."""
    if isinstance(illuminant, str):
        key = illuminant.upper()
        if key not in WHITE_XY:
            raise ValueError(f"unknown illuminant {illuminant!r}; known: {sorted(WHITE_XY)}")
        return xy_to_xyz(*WHITE_XY[key])
    if isinstance(illuminant, torch.Tensor) and illuminant.numel() in (2, 3):
        illuminant = illuminant.double().flatten().tolist()
    if isinstance(illuminant, (tuple, list)):
        if len(illuminant) == 2:
            return xy_to_xyz(*illuminant)
        if len(illuminant) == 3:
            return torch.tensor(illuminant, dtype=torch.float32)
    if isinstance(illuminant, (int, float)) and not isinstance(illuminant, bool):
        if isinstance(illuminant, int) and illuminant < 1000:
            if illuminant not in EXIF_ILLUMINANTS:
                raise ValueError(f"unsupported EXIF illuminant code {illuminant}")
            return illuminant_xyz(EXIF_ILLUMINANTS[illuminant])
        return xy_to_xyz(*cct_to_xy(float(illuminant)))
    raise ValueError(f"cannot interpret illuminant {illuminant!r}")


def bradford(src_white_xyz, dst_white_xyz) -> torch.Tensor:
    """Bradford chromatic adaptation [3, 3] mapping XYZ seen under `src` white to XYZ under `dst`.
    Whites may be XYZ triples or anything :func:`illuminant_xyz` accepts (e.g. 'D50')."""
    src = illuminant_xyz(src_white_xyz).double()
    dst = illuminant_xyz(dst_white_xyz).double()
    cone_src = _BRADFORD64 @ src
    cone_dst = _BRADFORD64 @ dst
    m = torch.linalg.inv(_BRADFORD64) @ torch.diag(cone_dst / cone_src) @ _BRADFORD64
    return m.float()


def camera_to_srgb(color_matrix_xyz_to_cam, illuminant="D65") -> torch.Tensor:
    """The [3, 3] matrix mapping white-balanced camera RGB to linear sRGB (D65).

    ``color_matrix_xyz_to_cam`` is a DNG ColorMatrix (XYZ -> camera native RGB) measured under
    ``illuminant`` (name, EXIF code, CCT or white XYZ). A scene neutral under that illuminant has
    camera response ``n = CM @ white``; white balancing divides by n. The chain is
    wb-camera -> camera (x n) -> XYZ (CM^-1) -> Bradford(illuminant -> D65) -> sRGB, so a
    white-balanced (1, 1, 1) maps exactly to sRGB (1, 1, 1). For illuminant D65 this is the
    classic dcraw/RawNeRF construction (rows of CM @ SRGB_TO_XYZ normalised to sum 1, inverted).
    """
    cm = torch.as_tensor(color_matrix_xyz_to_cam, dtype=torch.float64).reshape(3, 3)
    adapt = bradford("D65", illuminant).double()  # XYZ under D65 -> XYZ under the illuminant
    cam_from_srgb = cm @ adapt @ _SRGB_TO_XYZ64
    cam_from_srgb = cam_from_srgb / cam_from_srgb.sum(dim=1, keepdim=True)
    return torch.linalg.inv(cam_from_srgb).float()


def forward_matrix_to_srgb(forward_matrix) -> torch.Tensor:
    """DNG ForwardMatrix (white-balanced camera RGB -> XYZ D50) -> [3, 3] to linear sRGB (D65)."""
    fm = torch.as_tensor(forward_matrix, dtype=torch.float64).reshape(3, 3)
    m = _XYZ_TO_SRGB64 @ bradford("D50", "D65").double() @ fm
    # the DNG spec requires FM @ 1 = D50 white; renormalise so (1,1,1) -> (1,1,1) exactly
    m = m / (m @ torch.ones(3, dtype=torch.float64)).unsqueeze(1)
    return m.float()


def apply_matrix(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a [3, 3] colour matrix to an image [..., 3] (column-vector convention)."""
    matrix = torch.as_tensor(matrix, dtype=image.dtype, device=image.device)
    return image @ matrix.T


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Relative luminance Y of linear sRGB [..., 3] -> [...]."""
    w = SRGB_TO_XYZ[1].to(rgb.device, rgb.dtype)
    return rgb @ w
