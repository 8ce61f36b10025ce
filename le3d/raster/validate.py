"""Input checks run before any kernel: one clear ValueError naming the argument.

Shape, dtype and device checks are immediate. Value checks (NaN/inf, positive focal lengths, ...)
need the tensors' values; on a GPU each one read back alone is a host-device synchronisation, and
the eleven of a render cost more than the 20k-Gaussian render itself. So they are collected in a
`ValueChecks` and read back together, once, in registration order.
"""
from __future__ import annotations

import torch

from le3d.errors import InputError
from le3d.raster.constants import MAX_CHANNELS, NEARFAR_MAX_K


class ValueChecks:
    """Device-side conditions read back with one synchronisation; raises for the first false one.

    Finiteness is checked through each tensor's sum (one reduction per tensor instead of the four
    elementwise kernels and the reduction of isfinite().all(): a render checks eight tensors, and on a
    GPU each kernel launch costs host time). A sum is finite only if every element is; a non-finite
    sum of finite elements (overflow) is told apart by the exact check, run only then."""

    def __init__(self):
        # (0-d bool condition or None, tensor whose finiteness is checked or None, message), in order
        self._entries: list[tuple[torch.Tensor | None, torch.Tensor | None, str]] = []

    def require(self, condition: torch.Tensor, message: str):
        """condition: a 0-d bool tensor (any device)."""
        self._entries.append((condition, None, message))

    def finite(self, name: str, t: torch.Tensor):
        if t.numel():
            self._entries.append((None, t.detach(), f"{name}: contains NaN or inf"))

    def raise_first_failure(self):
        entries, self._entries = self._entries, []
        if not entries:
            return
        conditions = [cond for cond, _, _ in entries if cond is not None]
        tensors = [t for _, t, _ in entries if t is not None]
        device = (conditions or tensors)[0].device
        flags = []
        if conditions:
            flags.append(torch.stack([c.to(device) for c in conditions]))
        if tensors:  # one isfinite over the stacked sums (a sum that overflows float32 is rechecked)
            sums = [t.sum() for t in tensors]
            flags.append(torch.isfinite(torch.stack([v.to(device, torch.float32) for v in sums])))
        values = torch.cat(flags).tolist()
        cond_ok, finite_ok = iter(values[:len(conditions)]), iter(values[len(conditions):])
        for cond, t, message in entries:  # registration order
            ok = next(cond_ok) if cond is not None else next(finite_ok)
            if not ok and (t is None or not bool(torch.isfinite(t).all())):
                raise InputError(message)


def check_tensor(name: str, t, shape: tuple, device: torch.device | None = None, finite: bool = True,
                 checks: ValueChecks | None = None):
    """shape entries: an int (exact) or None (any). Floating dtype required.

    With `checks`, the finiteness check joins them (read back later); without, it runs now."""
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise InputError(f"{name}: expected shape {want}, got {list(t.shape)}")
    if device is not None and t.device != device:
        raise InputError(f"{name}: on {t.device}, but the primitives are on {device}")
    if finite:
        pending = checks if checks is not None else ValueChecks()
        pending.finite(name, t)
        if checks is None:
            pending.raise_first_failure()


def check_image_size(width, height):
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise InputError(f"{name}: expected a positive int, got {v!r}")


def check_common(features, viewmat, K, width, height, background, near, far, nearfar_k,
                 distortion_coord, n: int, device: torch.device, checks: ValueChecks, primitives: tuple = ()):
    """Checks the arguments every rasterizer shares; returns the background (zeros by default).

    Value checks join `checks` (the caller reads them back). `primitives`: the footprint's own
    tensors, which must share one dtype with features/viewmat/K."""
    check_tensor("features", features, (n, None), device, checks=checks)
    C = features.shape[1]
    if not 1 <= C <= MAX_CHANNELS:
        raise InputError(f"features: 1 to {MAX_CHANNELS} channels supported, got {C}")
    check_tensor("viewmat", viewmat, (4, 4), device, checks=checks)
    check_tensor("K", K, (3, 3), device, checks=checks)
    checks.require((K[0, 0].detach() > 0) & (K[1, 1].detach() > 0),
                   "K: focal lengths K[0,0] and K[1,1] must be positive")
    check_image_size(width, height)
    if background is not None:
        check_tensor("background", background, (C,), device, checks=checks)
    if not (0 < near < far):
        raise InputError(f"near/far: need 0 < near < far, got near={near}, far={far}")
    if not isinstance(nearfar_k, int) or not 0 <= nearfar_k <= NEARFAR_MAX_K:
        raise InputError(f"nearfar_k: expected an int in 0..{NEARFAR_MAX_K}, got {nearfar_k!r}")
    if distortion_coord is not None:
        check_tensor("distortion_coord", distortion_coord, (n,), device, checks=checks)
    dtypes = {t.dtype for t in (*primitives, features, viewmat, K)}
    if len(dtypes) != 1:
        raise InputError(f"inputs mix dtypes {sorted(map(str, dtypes))}; use one floating dtype")
    return background if background is not None else features.new_zeros(features.shape[1])
