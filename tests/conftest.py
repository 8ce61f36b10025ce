"""Shared pytest setup: the `cuda` marker skips without a GPU and a CUDA build of le3d._C."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/scenes.py and friends


def _cuda_backend_available() -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    from le3d._ext import load_extension

    ext = load_extension()
    return ext is not None and bool(ext.with_cuda)


def pytest_collection_modifyitems(config, items):
    if any("cuda" in item.keywords for item in items) and not _cuda_backend_available():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU and le3d built with LE3D_BUILD_CUDA=1")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)
