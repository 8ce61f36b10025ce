"""Shared pytest setup: the `cuda` marker skips without a GPU and a CUDA build of le3d._C."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/scenes.py and friends


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to oversubscribed CI cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
