"""White balance: as-shot, neutral patch, or colour temperature + tint via a Bradford CAT in XYZ.

Conventions (see ``le3d.color``): ``hdr`` is linear *camera-native* RGB (not white balanced).
``cam_to_srgb`` maps *white-balanced* camera RGB to linear sRGB (D65); for a DNG scene it is
``RawFrame.cam_to_srgb()``, built for the as-shot white (``le3d.raw.dng.dng_color``). ``asshot_wb``
are the per-channel camera gains of the as-shot white balance (``1 / AsShotNeutral`` normalised to
green = 1, like rawpy's ``camera_whitebalance``). ``cam_to_xyz`` is the camera-native -> CIE XYZ
matrix (``RawFrame.cam_to_xyz()``: the inverse of the ColorMatrix interpolated at the as-shot white).

Every mode returns one [3, 3] matrix ``M`` (camera native -> linear sRGB D65) to apply per pixel:
- with ``cam_to_xyz`` (the scene's colour matrix is known), all modes are a chromatic adaptation
  in XYZ: ``M = XYZ_TO_SRGB @ bradford(src_white, D65) @ cam_to_xyz`` where ``src_white`` is the
  XYZ of the camera neutral (as-shot neutral, picked patch) or of the illuminant (K, tint) scaled
  so that a camera neutral with green = 1 renders as sRGB (1, 1, 1) (D65 is the sRGB matrix's own
  white, ``SRGB_TO_XYZ @ (1, 1, 1)``). For a DNG scene, 'asshot' is then exactly the camera-space
  ``cam_to_srgb @ diag(asshot_wb)`` that the ISP previews and ``le3d eval`` apply;
- without it, 'asshot' and 'neutral patch' fall back to the classic camera-space gains
  ``cam_to_srgb @ diag(gains)`` (exact for the neutral itself); (K, tint) needs the colour matrix
  and raises a clear error.

With the scene's ``color_profile`` (its DNG tags ColorMatrix1/2, CalibrationIlluminant1/2,
ForwardMatrix1/2: :func:`color_profile_of`), every mode but 'none' follows the DNG specification for
the *requested* white: the camera neutral ``n`` of that white ('asshot': ``1 / asshot_wb``; a patch:
its RGB; (K, tint): ``CM(CCT) @ XYZ(cct_to_xy(K, tint))``, ``le3d.raw.dng.neutral_of_white_xy``)
picks the ColorMatrix / ForwardMatrix interpolated at that white's CCT, and
``M = dng_color(profile, n).cam_to_srgb @ diag(1 / n)`` (``n`` scaled to green = 1, so a neutral
with green = 1 renders as sRGB (1, 1, 1)). 'asshot' equals the path above (the scene's matrices were
built for that white); other whites no longer reuse the as-shot white's matrix. 'none' ignores the
profile. Without a profile (LDR scenes, RUNs written before it was stored) the paths above apply.
"""
from __future__ import annotations

import torch

from le3d.color import SRGB_TO_XYZ, XYZ_TO_SRGB, bradford, cct_to_xy, xy_to_xyz
from le3d.raw.dng import PROFILE_KEYS, color_profile_of, dng_color, neutral_of_white_xy

__all__ = ["WhiteBalance", "white_balance_matrix", "pick_neutral", "cam_to_xyz_from_color_matrix",
           "apply_color_matrix", "color_profile_of", "PROFILE_KEYS"]

WhiteBalance = str | tuple | list | torch.Tensor


def cam_to_xyz_from_color_matrix(color_matrix) -> torch.Tensor:
    """DNG ColorMatrix (XYZ -> camera native) -> camera native -> XYZ."""
    cm = torch.as_tensor(color_matrix, dtype=torch.float64).reshape(3, 3)
    return torch.linalg.inv(cm).float()


def _profile_matrix(white_balance: WhiteBalance, mode: str, arg, asshot_wb, profile: dict) -> torch.Tensor:
    """``dng_color(profile, n).cam_to_srgb @ diag(1 / n)`` for the camera neutral ``n`` of the
    requested white (see the module docstring)."""
    import numpy as np

    cm1, ill1, cm2, ill2, fm1, fm2 = (profile.get(k) for k in PROFILE_KEYS)
    if mode == "asshot":
        if asshot_wb is None:
            raise ValueError("white balance 'asshot' needs the as-shot gains (asshot_wb)")
        n = 1.0 / torch.as_tensor(asshot_wb, dtype=torch.float64).flatten().numpy()
    elif mode == "cct":
        n = neutral_of_white_xy(cct_to_xy(arg[0], arg[1]), cm1, ill1, cm2, ill2)
        if n is None or not np.all(n > 0):
            raise ValueError(f"white balance {white_balance!r}: the scene's colour profile gives that white "
                             f"no positive camera response ({None if n is None else n.tolist()})")
    else:
        n = arg.numpy()
    n = n / n[1]
    c2s = dng_color(cm1, ill1, cm2, ill2, fm1, fm2, n).cam_to_srgb.double()
    return (c2s @ torch.diag(torch.from_numpy(1.0 / n))).float()


def pick_neutral(hdr: torch.Tensor, x: int, y: int, window: int = 2) -> torch.Tensor:
    """Mean camera RGB [3] of a (2 window + 1)^2 patch centred on pixel (x = column, y = row) of
    ``hdr [..., H, W, 3]`` (first image of a batch): the neutral for ``white_balance=<that rgb>``."""
    img = hdr.reshape(-1, *hdr.shape[-3:])[0]
    H, W, _ = img.shape
    if not (0 <= x < W and 0 <= y < H):
        raise ValueError(f"neutral patch pixel ({x}, {y}) is outside the {W}x{H} image")
    patch = img[max(0, y - window): y + window + 1, max(0, x - window): x + window + 1]
    rgb = patch.reshape(-1, 3).mean(0)
    if bool((rgb <= 0).any()):
        raise ValueError(f"neutral patch at ({x}, {y}) has a non-positive channel {rgb.tolist()}; pick a lit grey")
    return rgb


def _classify(wb) -> tuple[str, object]:
    if wb is None or (isinstance(wb, str) and wb.lower() in ("asshot", "as_shot", "camera")):
        return "asshot", None
    if isinstance(wb, str):
        if wb.lower() in ("none", "raw"):
            return "none", None
        raise ValueError(f"unknown white balance {wb!r}: use 'asshot', (kelvin, tint) or a neutral RGB triple")
    vals = torch.as_tensor(wb, dtype=torch.float64).flatten()
    if vals.numel() == 2:
        return "cct", (float(vals[0]), float(vals[1]))
    if vals.numel() == 1 and float(vals[0]) > 1000:
        return "cct", (float(vals[0]), 0.0)
    if vals.numel() == 3:
        if bool((vals <= 0).any()):
            raise ValueError(f"neutral RGB must be positive, got {vals.tolist()}")
        return "neutral", vals
    raise ValueError(f"cannot interpret white balance {wb!r}")


def white_balance_matrix(white_balance: WhiteBalance = "asshot", *, cam_to_srgb=None, asshot_wb=None,
                         cam_to_xyz=None, color_profile=None) -> torch.Tensor:
    """[3, 3] float32 matrix taking camera-native linear RGB to white-balanced linear sRGB (D65).

    ``white_balance``: 'asshot' | 'none' | (kelvin, tint) | neutral camera RGB (3 numbers, e.g. from
    :func:`pick_neutral`). ``color_profile``: the scene's DNG tags (:func:`color_profile_of`), so that
    the colour matrices are those of the requested white. See the module docstring for the colour
    model."""
    mode, arg = _classify(white_balance)
    profile = color_profile_of(color_profile)
    if profile is not None and mode != "none":
        return _profile_matrix(white_balance, mode, arg, asshot_wb, profile)
    if cam_to_xyz is not None:
        c2x = torch.as_tensor(cam_to_xyz, dtype=torch.float64).reshape(3, 3)
        if mode == "none":
            return (XYZ_TO_SRGB.double() @ c2x).float()
        if mode == "cct":
            white = xy_to_xyz(*cct_to_xy(arg[0], arg[1])).double()
            n = torch.linalg.solve(c2x, white)  # camera response to that white
            src = white / n[1]
        else:
            if mode == "asshot":
                if asshot_wb is None:
                    raise ValueError("white balance 'asshot' needs the as-shot gains (asshot_wb)")
                n = 1.0 / torch.as_tensor(asshot_wb, dtype=torch.float64).flatten()
            else:
                n = arg
            n = n / n[1]
            src = c2x @ n
        dst = SRGB_TO_XYZ.double().sum(1)  # sRGB (1, 1, 1): D65 as the matrix has it, so a neutral -> 1
        cat = bradford(src, dst).double()
        return (XYZ_TO_SRGB.double() @ cat @ c2x).float()
    if cam_to_srgb is None:
        raise ValueError("white balance needs cam_to_srgb (or cam_to_xyz)")
    c2s = torch.as_tensor(cam_to_srgb, dtype=torch.float64).reshape(3, 3)
    if mode == "none":
        return c2s.float()
    if mode == "cct":
        raise ValueError("white balance by colour temperature needs the scene's colour matrix (cam_to_xyz); "
                         "only 'asshot' or a neutral patch work with cam_to_srgb alone")
    if mode == "asshot":
        if asshot_wb is None:
            raise ValueError("white balance 'asshot' needs the as-shot gains (asshot_wb)")
        gains = torch.as_tensor(asshot_wb, dtype=torch.float64).flatten()
    else:
        gains = arg[1] / arg
    return (c2s @ torch.diag(gains)).float()


def apply_color_matrix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x [..., 3] @ m.T`` on x's device and dtype."""
    return x @ m.to(device=x.device, dtype=x.dtype).T
