"""Input checks run before any kernel: one clear ValueError naming the argument.

Shape, dtype and device checks are immediate. Value checks (NaN/inf, positive focal lengths, ...)
need the tensors' values; on a GPU each one read back alone is a host-device synchronisation, and
the eleven of a render cost more than the 20k-Gaussian render itself. So they are collected in a
`ValueChecks` and read back together, once, in registration order: with a compiled backend all of
them in one pass of the extension's `value_checks` (one kernel launch on a GPU, csrc/value_checks.cpp),
otherwise with their torch twins here.
"""
from __future__ import annotations

import functools
import numbers

import torch

from le3d._ext import loaded_extension
from le3d.errors import InputError
from le3d.raster.constants import MAX_CHANNELS, NEARFAR_MAX_K

# check kinds, as csrc/include/le3d/value_checks.h numbers them
CHECK_FINITE, CHECK_POSITIVE, CHECK_ROWS_NONZERO, CHECK_FOCALS_POSITIVE = 0, 1, 2, 3
_MAX_COMPILED_CHECKS = 16  # kMaxValueChecks


def check_ok_torch(kind: int, t: torch.Tensor, row: int = 1) -> torch.Tensor:
    """The torch twin of one compiled check: a 0-d bool tensor, True when the check passes."""
    if kind == CHECK_FINITE:
        return torch.isfinite(t).all()
    if kind == CHECK_POSITIVE:
        return (t > 0).all()
    if kind == CHECK_ROWS_NONZERO:
        return ((t * t).reshape(-1, row).sum(-1) > 0).all()
    if kind == CHECK_FOCALS_POSITIVE:
        return (t[0, 0] > 0) & (t[1, 1] > 0)
    raise ValueError(f"unknown check kind {kind}")


class ValueChecks:
    """Device-side conditions read back with one synchronisation; raises for the first false one."""

    def __init__(self):
        # (kind, tensor, row length, message), in registration order
        self._entries: list[tuple[int, torch.Tensor, int, str]] = []

    def finite(self, name: str, t: torch.Tensor):
        if t.numel():
            self._entries.append((CHECK_FINITE, t.detach(), 1, f"{name}: contains NaN or inf"))

    def positive(self, t: torch.Tensor, message: str):
        """Every element > 0 (NaN fails)."""
        if t.numel():
            self._entries.append((CHECK_POSITIVE, t.detach(), 1, message))

    def rows_nonzero(self, t: torch.Tensor, message: str):
        """Every row (last dimension) has a sum of squares > 0, e.g. every quaternion a norm."""
        if t.numel():
            self._entries.append((CHECK_ROWS_NONZERO, t.detach(), t.shape[-1], message))

    def focals_positive(self, K: torch.Tensor, message: str):
        """K [3, 3]: K[0,0] > 0 and K[1,1] > 0."""
        self._entries.append((CHECK_FOCALS_POSITIVE, K.detach(), 1, message))

    def raise_first_failure(self, compiled: bool = False):
        """compiled: answer the checks with the extension (when it is loaded and can take them)."""
        entries, self._entries = self._entries, []
        if not entries:
            return
        failed = self._failed_compiled(entries) if compiled else None
        if failed is None:
            failed = self._failed_torch(entries)
        for (_, _, _, message), bad in zip(entries, failed):  # registration order
            if bad:
                raise InputError(message)

    @staticmethod
    def _failed_compiled(entries) -> list[bool] | None:
        ext = loaded_extension()
        tensors = [t for _, t, _, _ in entries]
        one_kind = len({(t.device, t.dtype) for t in tensors}) == 1
        if (ext is None or not one_kind or len(entries) > _MAX_COMPILED_CHECKS
                or tensors[0].dtype not in (torch.float32, torch.float64)
                or (tensors[0].is_cuda and not ext.with_cuda)):
            return None
        flags = ext.value_checks(tensors, [kind for kind, _, _, _ in entries], [row for _, _, row, _ in entries])
        return [bool(f) for f in flags.tolist()]

    @staticmethod
    def _failed_torch(entries) -> list[bool]:
        device = entries[0][1].device
        oks = [check_ok_torch(kind, t, row) for kind, t, row, _ in entries]
        return [not ok for ok in torch.stack([ok.to(device) for ok in oks]).tolist()]


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
                 distortion_coord, n: int, device: torch.device, checks: ValueChecks, primitives: dict):
    """Checks the arguments every rasterizer shares; returns the background (zeros by default).

    Value checks join `checks` (the caller reads them back). `primitives`: the footprint's own
    tensors by argument name, first the one whose dtype every other tensor argument must share (the
    compiled kernels take one dtype; the first argument that differs is named)."""
    check_tensor("features", features, (n, None), device, checks=checks)
    C = features.shape[1]
    if not 1 <= C <= MAX_CHANNELS:
        raise InputError(f"features: 1 to {MAX_CHANNELS} channels supported, got {C}")
    check_tensor("viewmat", viewmat, (4, 4), device, checks=checks)
    check_tensor("K", K, (3, 3), device, checks=checks)
    checks.focals_positive(K, "K: focal lengths K[0,0] and K[1,1] must be positive")
    check_image_size(width, height)
    if background is not None:
        check_tensor("background", background, (C,), device, checks=checks)
    for name, v in (("near", near), ("far", far)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InputError(f"{name}: expected a number, got {v!r}")
    if not (0 < near < far):
        raise InputError(f"near/far: need 0 < near < far, got near={near}, far={far}")
    if isinstance(nearfar_k, bool) or not isinstance(nearfar_k, int) or not 0 <= nearfar_k <= NEARFAR_MAX_K:
        raise InputError(f"nearfar_k: expected an int in 0..{NEARFAR_MAX_K}, got {nearfar_k!r}")
    if distortion_coord is not None:
        check_tensor("distortion_coord", distortion_coord, (n,), device, checks=checks)
    check_one_dtype({**primitives, "features": features, "viewmat": viewmat, "K": K, "background": background,
                     "distortion_coord": distortion_coord})
    return background if background is not None else default_background(features.shape[1], features.dtype, device)


def check_one_dtype(tensors: dict):
    """Every tensor (None: absent) has the first one's dtype; else an InputError naming the first that differs."""
    present = [(name, t) for name, t in tensors.items() if t is not None]
    first_name, first = present[0]
    for name, t in present[1:]:
        if t.dtype != first.dtype:
            raise InputError(f"{name}: dtype {t.dtype}, but {first_name} is {first.dtype}; "
                             "every tensor argument needs the same floating dtype")


@functools.lru_cache(maxsize=16)
def default_background(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Zeros [channels], made once per (channels, dtype, device) and shared by every render without a
    background: a fresh one was a fill kernel per render on a GPU. Nothing writes to it (the backends read
    the background; its gradient is a new tensor). Made outside inference mode, so that a first render
    under torch.inference_mode() (the viewer) does not leave a tensor that training renders cannot save
    for their backward."""
    with torch.inference_mode(False):
        return torch.zeros(channels, dtype=dtype, device=device)
