"""Finds the compiled extension le3d._C, building it just in time when it is missing.

Order: the ahead-of-time build (pip install / setup.py), else a JIT build cached under
$LE3D_CACHE (default ~/.cache/le3d), else None with one warning that says why and how to fix
it; callers then fall back to the PyTorch reference.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings

_lock = threading.Lock()
_state: dict = {}


def _source_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources_digest(spec: dict) -> str:
    h = hashlib.sha1()
    files = list(spec["sources"])
    for inc in spec["include_dirs"]:
        for dirpath, _, names in os.walk(inc):
            files += [os.path.join(dirpath, n) for n in names]
    for path in sorted(files):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(repr(sorted((k, v) for k, v in spec.items() if k != "sources")).encode())
    return h.hexdigest()[:12]


def _jit_build():
    import torch
    from torch.utils.cpp_extension import load

    from le3d._build import extension_spec

    root = _source_root()
    if not os.path.isdir(os.path.join(root, "csrc")):
        raise RuntimeError("csrc/ not found next to the package (installed without sources)")
    spec = extension_spec(root)
    cache = os.environ.get("LE3D_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "le3d"))
    build_dir = os.path.join(cache, f"ext-{torch.__version__}-{_sources_digest(spec)}")
    os.makedirs(build_dir, exist_ok=True)
    print(
        f"le3d: building the {'CPU+CUDA' if spec['with_cuda'] else 'CPU'} rasterizer extension "
        f"(first use only, about a minute; cached in {build_dir}) ...",
        file=sys.stderr,
        flush=True,
    )
    return load(
        name="le3d_C",
        sources=spec["sources"],
        extra_include_paths=spec["include_dirs"],
        extra_cflags=spec["cxx_flags"] + [f"-D{d}" for d in spec["defines"]],
        extra_cuda_cflags=spec["nvcc_flags"] + [f"-D{d}" for d in spec["defines"]],
        extra_ldflags=spec["link_flags"],
        build_directory=build_dir,
        with_cuda=spec["with_cuda"],
        verbose=False,
    )


def load_extension():
    """Return the extension module, or None (after one warning) when it cannot be had."""
    with _lock:
        if "module" in _state:
            return _state["module"]
        module, error = None, None
        if os.environ.get("LE3D_DISABLE_EXTENSION") == "1":
            error = "disabled by LE3D_DISABLE_EXTENSION=1"
        else:
            try:
                from le3d import _C as module  # ahead-of-time build
            except ImportError:
                try:
                    module = _jit_build()
                except Exception as exc:  # noqa: BLE001 - any build failure means: fall back
                    error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        if module is None:
            warnings.warn(
                f"le3d: compiled rasterizer unavailable ({error}); using the slow PyTorch reference. "
                "Fix: install a C++17 compiler and run `pip install --no-build-isolation -e .` "
                "(see README, 'Install').",
                RuntimeWarning,
                stacklevel=2,
            )
        _state["module"] = module
        _state["error"] = error
        return module


def use_extension(module) -> None:
    """Make `module` (a build of le3d._C loaded by the caller) what the raster functions call from now on.
    For tools that compare two builds in one process (scripts/ab_cpu_builds.py)."""
    with _lock:
        _state["module"] = module
        _state["error"] = None


def loaded_extension():
    """The extension module if it has been loaded already, else None (never builds or warns)."""
    return _state.get("module")


def extension_error() -> str | None:
    load_extension()
    return _state.get("error")
