"""Backend choice ("auto" | "torch" | "cpu" | "cuda" | "gsplat") and the report of what is compiled."""
from __future__ import annotations

import os
import warnings

import torch

from le3d._ext import extension_error, load_extension
from le3d.errors import InputError
from le3d.raster.reference import rasterize_reference
from le3d.raster.tile_function import RasterizeTiles

BACKENDS = ("auto", "torch", "cpu", "cuda", "gsplat")  # gsplat: Gaussians only, see gsplat_backend.py
_warned_fallback = False


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    global _warned_fallback
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "gsplat":  # rasterize_gaussians handles it before getting here
        raise InputError("backend='gsplat' renders Gaussians only (le3d.rasterize_gaussians)")
    if backend == "auto":
        if dtype != torch.float32:
            return "torch"  # compiled kernels are float32; float64 (e.g. gradcheck) uses the reference
        ext = load_extension()
        if ext is not None and device.type == "cuda" and ext.with_cuda:
            return "cuda"
        if ext is not None and device.type == "cpu":
            return "cpu"
        if not _warned_fallback:
            warnings.warn(f"le3d: no compiled backend for {device.type}; using the slow PyTorch reference",
                          RuntimeWarning, stacklevel=3)
            _warned_fallback = True
        return "torch"
    if backend in ("cpu", "cuda"):
        if device.type != backend:
            raise InputError(f"backend={backend!r} but the tensors are on {device}")
        if dtype != torch.float32:
            raise InputError(f"backend={backend!r} needs float32 tensors, got {dtype}")
        if load_extension() is None:
            raise InputError(f"backend={backend!r}: compiled extension unavailable ({extension_error()})")
    return backend


def rasterize(params, footprint: int, features, depths, coords, bounds, background, width: int,
              height: int, nearfar_k: int, backend: str):
    """Dispatch to the reference or the compiled tile rasterizer (same outputs either way)."""
    if backend == "torch":
        return rasterize_reference(params, footprint, features, depths, coords, bounds, background,
                                   width, height, nearfar_k)
    contiguous = [t.contiguous() if t is not None else None for t in (params, features, depths, coords, background)]
    image, alpha, depth, distortion, near, far = RasterizeTiles.apply(
        *contiguous, bounds.contiguous(), footprint, width, height, nearfar_k
    )
    return (image, alpha, depth, distortion if coords is not None else None,
            near if nearfar_k else None, far if nearfar_k else None)


def backend_info() -> dict:
    """What this installation can run: torch, CUDA, compiled backends, threads."""
    ext = load_extension()
    compiled = []
    if ext is not None:
        compiled.append("cpu")
        if ext.with_cuda:
            compiled.append("cuda")
    return {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "compiled_backends": compiled,
        "extension_error": None if ext is not None else extension_error(),
        "cpu_threads": ext.cpu_threads() if ext is not None else torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }
