"""The CUDA rasterizer's kernels run on the CPU (tests/simt: a SIMT emulator), as a stand-in for
le3d._C.rasterize_forward_cpu / rasterize_backward_cpu with the same signatures, so that the tests that
hold the CPU backend to the PyTorch reference can hold the GPU kernels' plumbing (batches in shared
memory, barriers, warp votes, reduce-scatters, atomics) to it too, on a machine without a GPU.

`use_simt_kernels(monkeypatch)` routes le3d's compiled rasterizer Function through them. The library is
built with the host compiler on first use (a few seconds), cached under build/simt by a hash of its
sources.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sysconfig
from pathlib import Path

import torch

from le3d.raster.constants import TILE_SIZE

ROOT = Path(__file__).resolve().parents[1]
UNITS = [ROOT / "tests/simt/rasterize_simt.cpp", ROOT / "tests/simt/simt_selftest.cpp"]
SOURCES = [*UNITS, ROOT / "tests/simt/simt.h", ROOT / "csrc/cuda/rasterize_kernels.cuh",
           *sorted((ROOT / "csrc/include/le3d").glob("*.h"))]
_LIBS: dict = {}  # ucontext (bool) -> the loaded library
_ACTIVE = {"ucontext": False}  # which one the rasterizer stand-ins call


def _defines(ucontext: bool) -> list[str]:
    return ["-DSIMT_UCONTEXT"] if ucontext else []


def _library_path(ucontext: bool) -> Path:
    """Where the build of the current sources goes (a hash of them and of the defines in its name)."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES) + " ".join(_defines(ucontext)).encode())
    return ROOT / "build" / "simt" / f"rasterize_simt_{digest.hexdigest()[:16]}.so"


def build_library(ucontext: bool = False) -> ctypes.CDLL:
    """The emulated kernels' library; ucontext=True: fibers switched by swapcontext, the portable path
    (the default switches with x86-64 assembly where it can)."""
    if ucontext in _LIBS:
        return _LIBS[ucontext]
    defines = _defines(ucontext)
    out = _library_path(ucontext)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in set(out.parent.glob("rasterize_simt_*.so")) - {_library_path(False), _library_path(True)}:
            stale.unlink(missing_ok=True)  # built from older sources
        cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX").split()[0] or "c++"
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas",
               "-Wno-maybe-uninitialized", "-fvisibility=hidden", *defines, f"-I{ROOT / 'csrc/include'}", *map(str, UNITS), "-o", str(tmp)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        os.replace(tmp, out)
    lib = ctypes.CDLL(str(out))
    p, i, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
    lib.simt_bin.restype = i64
    lib.simt_bin.argtypes = [i, i, p, p, p, i, i, p, p, p, i]
    lib.simt_forward.restype = i
    lib.simt_forward.argtypes = [i, p, p, i, p, p, i, p, i, i, i, p, p, p, p, p, p, p, p, p, p, i]
    lib.simt_backward.restype = i
    lib.simt_backward.argtypes = [i, p, p, i, p, p, i, p, i, i, i, p, p, p, p, p, p, p, p, p, p, p, p, p, i]
    lib.simt_selftest.restype = i
    lib.simt_selftest.argtypes = [ctypes.c_char_p, p, i]
    _LIBS[ucontext] = lib
    return lib


def _active_library() -> ctypes.CDLL:
    return build_library(_ACTIVE["ucontext"])


def selftest(name: str, ucontext: bool = False) -> tuple[int, str]:
    """simt_selftest.cpp's check `name`: (0 passed / 1 the emulator raised / 2 a wrong value, message)."""
    err = ctypes.create_string_buffer(512)
    status = build_library(ucontext).simt_selftest(name.encode(), err, 512)
    return status, err.value.decode()


def _ptr(t: torch.Tensor | None):
    return None if t is None or t.numel() == 0 else ctypes.c_void_p(t.data_ptr())


def _check(status, err):
    if status:
        raise RuntimeError(err.value.decode())


def _inputs(params, features, depths, coords, background):
    """coords None: no distortion output (as the compiled entry points take it; [0] with no primitives is one)."""
    for t in (params, features, depths, background):
        assert t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()
    return params, features, depths, (coords.contiguous() if coords is not None else None), background


def rasterize_forward_simt(params, footprint, features, depths, coords, bounds, background, width, height,
                           nearfar_k):
    lib, err = _active_library(), ctypes.create_string_buffer(512)
    params, features, depths, coords, background = _inputs(params, features, depths, coords, background)
    N, C, W, H = params.shape[0], features.shape[1], width, height
    tiles = -(-W // TILE_SIZE) * -(-H // TILE_SIZE)
    offsets = torch.empty(tiles + 1, dtype=torch.int32)
    args = (footprint, N, _ptr(params), _ptr(bounds.contiguous()), _ptr(depths), W, H)
    M = lib.simt_bin(*args, None, None, err, 512)
    _check(M < 0, err)
    ids = torch.empty(max(M, 1), dtype=torch.int32)
    _check(lib.simt_bin(*args, _ptr(offsets), _ptr(ids), err, 512) != M, err)
    # NaN-filled: a pixel the kernel does not write fails the comparison with the reference. As the compiled
    # backends do, only the render's own outputs exist (rasterize_api.h, PixelOutputs).
    nan = dict(dtype=torch.float32)
    image = torch.full((H, W, C), float("nan"), **nan)
    present = (True, True, coords is not None, nearfar_k > 0, nearfar_k > 0)  # alpha, depth, distortion, near, far
    maps = [torch.full((H, W) if p else (0,), float("nan"), **nan) for p in present]
    aux = torch.full((H, W, lib.simt_aux_dim(coords is not None, nearfar_k)), float("nan"), **nan)
    _check(lib.simt_forward(footprint, _ptr(params), _ptr(features), C, _ptr(depths), _ptr(coords),
                            coords is not None, _ptr(background), W, H, nearfar_k, _ptr(offsets), _ptr(ids), _ptr(image),
                            *[_ptr(m) for m in maps], _ptr(aux), err, 512), err)
    return [image, *maps, aux, offsets, ids[:M]]


def rasterize_backward_simt(params, footprint, features, depths, coords, bounds, background, width, height,
                            nearfar_k, near, far, aux, offsets, ids, d_image, d_alpha, d_depth, d_distortion, d_near,
                            d_far):
    lib, err = _active_library(), ctypes.create_string_buffer(512)
    params, features, depths, coords, background = _inputs(params, features, depths, coords, background)
    N, P, C = params.shape[0], params.shape[1], features.shape[1]
    ups = [d_image, d_alpha, d_depth, d_distortion if coords is not None else None, d_near, d_far]
    up_data = (ctypes.c_void_p * 6)(*[(g.data_ptr() if g is not None and g.numel() else None) for g in ups])
    strides = []
    for g in ups:
        s = list(g.stride()) if g is not None and g.numel() else [0, 0]
        strides += (s + [0])[:3]
    up_strides = (ctypes.c_int64 * 18)(*strides)
    g_params, g_features = torch.zeros(N, P), torch.zeros(N, C)
    g_depths, g_coords, g_background = torch.zeros(N), torch.zeros(N), torch.zeros(C)
    _check(lib.simt_backward(footprint, _ptr(params), _ptr(features), C, _ptr(depths), _ptr(coords),
                             coords is not None, _ptr(background), width, height, nearfar_k, _ptr(near), _ptr(far), _ptr(aux),
                             _ptr(offsets), _ptr(ids), up_data, up_strides, _ptr(g_params), _ptr(g_features),
                             _ptr(g_depths), _ptr(g_coords), _ptr(g_background), err, 512), err)
    return [g_params, g_features, g_depths, g_coords, g_background]


def use_simt_kernels(monkeypatch, ucontext: bool = False):
    """Routes le3d's compiled rasterizer on CPU tensors (backend="cpu") through the emulated CUDA kernels
    (ucontext: those of build_library(ucontext=True))."""
    from le3d.raster import tile_function

    build_library(ucontext)
    monkeypatch.setitem(_ACTIVE, "ucontext", ucontext)
    monkeypatch.setattr(tile_function, "_kernels", lambda device: (rasterize_forward_simt, rasterize_backward_simt))
