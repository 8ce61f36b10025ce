"""Input checks run before any kernel: one clear ValueError naming the argument."""
from __future__ import annotations

import torch

from le3d.errors import InputError
from le3d.raster.constants import MAX_CHANNELS, NEARFAR_MAX_K


def check_tensor(name: str, t, shape: tuple, device: torch.device | None = None, finite: bool = True):
    """shape entries: an int (exact) or None (any). Floating dtype required."""
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise InputError(f"{name}: expected shape {want}, got {list(t.shape)}")
    if device is not None and t.device != device:
        raise InputError(f"{name}: on {t.device}, but the primitives are on {device}")
    if finite and t.numel() and not bool(torch.isfinite(t).all()):
        raise InputError(f"{name}: contains NaN or inf")


def check_image_size(width, height):
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise InputError(f"{name}: expected a positive int, got {v!r}")


def check_common(features, viewmat, K, width, height, background, near, far, nearfar_k,
                 distortion_coord, n: int, device: torch.device, primitives: tuple = ()):
    """Checks the arguments every rasterizer shares; returns the background (zeros by default).

    `primitives`: the footprint's own tensors, which must share one dtype with features/viewmat/K."""
    check_tensor("features", features, (n, None), device)
    C = features.shape[1]
    if not 1 <= C <= MAX_CHANNELS:
        raise InputError(f"features: 1 to {MAX_CHANNELS} channels supported, got {C}")
    check_tensor("viewmat", viewmat, (4, 4), device)
    check_tensor("K", K, (3, 3), device)
    if float(K[0, 0].detach()) <= 0 or float(K[1, 1].detach()) <= 0:
        raise InputError("K: focal lengths K[0,0] and K[1,1] must be positive")
    check_image_size(width, height)
    if background is not None:
        check_tensor("background", background, (C,), device)
    if not (0 < near < far):
        raise InputError(f"near/far: need 0 < near < far, got near={near}, far={far}")
    if not isinstance(nearfar_k, int) or not 0 <= nearfar_k <= NEARFAR_MAX_K:
        raise InputError(f"nearfar_k: expected an int in 0..{NEARFAR_MAX_K}, got {nearfar_k!r}")
    if distortion_coord is not None:
        check_tensor("distortion_coord", distortion_coord, (n,), device)
    dtypes = {t.dtype for t in (*primitives, features, viewmat, K)}
    if len(dtypes) != 1:
        raise InputError(f"inputs mix dtypes {sorted(map(str, dtypes))}; use one floating dtype")
    return background if background is not None else features.new_zeros(features.shape[1])
