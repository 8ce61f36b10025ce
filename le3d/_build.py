"""What goes into the compiled extension le3d._C: sources, flags, CUDA or not.

Shared by setup.py (ahead-of-time build) and le3d._ext (just-in-time build) so both build
the same thing. Must not import le3d (setup.py loads this file by path).
"""
from __future__ import annotations

import glob
import os
import shutil


def cuda_toolkit_root() -> str | None:
    """The CUDA toolkit's root folder (where bin/nvcc lives), or None."""
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if candidate and os.path.isfile(os.path.join(candidate, "bin", "nvcc")):
            return candidate
    nvcc = shutil.which("nvcc")
    if nvcc:
        root = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if os.path.isfile(os.path.join(root, "bin", "nvcc")):
            return root
    return None


def want_cuda() -> bool:
    """Decide whether to compile the CUDA backend (see setup.py for LE3D_BUILD_CUDA)."""
    mode = os.environ.get("LE3D_BUILD_CUDA", "auto").lower()
    if mode in ("0", "no", "false", "off"):
        return False
    import torch

    has_toolkit = torch.version.cuda is not None and cuda_toolkit_root() is not None
    if mode in ("1", "yes", "true", "on"):
        if not has_toolkit:
            raise RuntimeError(
                "LE3D_BUILD_CUDA=1 but no CUDA build of torch or no nvcc: install a CUDA torch "
                "and set CUDA_HOME to the toolkit root"
            )
        return True
    return has_toolkit and torch.cuda.is_available()


def extension_spec(root: str) -> dict:
    csrc = os.path.join(root, "csrc")
    with_cuda = want_cuda()
    if with_cuda:
        os.environ.setdefault("CUDA_HOME", cuda_toolkit_root())
    sources = sorted(glob.glob(os.path.join(csrc, "*.cpp")) + glob.glob(os.path.join(csrc, "cpu", "*.cpp")))
    if with_cuda:
        sources += sorted(glob.glob(os.path.join(csrc, "cuda", "*.cu")))
    openmp = ["-fopenmp"]
    return {
        "with_cuda": with_cuda,
        "sources": sources,
        "include_dirs": [os.path.join(csrc, "include")],
        # -fno-trapping-math: lets the CPU's row loops vectorise their selects (csrc/cpu/vector_math.h);
        # it changes no result (nothing here enables floating-point traps).
        "cxx_flags": ["-O3", "-fno-trapping-math", *openmp],
        # LE3D_PRECISE_GPU_MATH=1: the GPU's per-pixel loops use precise exp/log/division (common.h)
        "nvcc_flags": ["-O3", "-lineinfo"]
        + (["-DLE3D_PRECISE_GPU_MATH"] if os.environ.get("LE3D_PRECISE_GPU_MATH") == "1" else []),
        "link_flags": openmp,
        "defines": ["LE3D_WITH_CUDA"] if with_cuda else [],
    }
