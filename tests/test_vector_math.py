"""The CPU backend's vectorisable exp and log (csrc/cpu/vector_math.h) against float64."""
from __future__ import annotations

import pytest
import torch

from le3d._ext import load_extension

ext = load_extension()
pytestmark = pytest.mark.skipif(ext is None, reason="le3d extension not built")


def test_exp_relative_error_over_the_whole_range():
    x = torch.cat([torch.linspace(-87.0, 88.0, 400_001), torch.randn(100_000) * 3])
    e, _ = ext.vector_math_cpu(x)
    exact = torch.exp(x.double())
    rel = ((e.double() - exact).abs() / exact).max().item()
    assert rel < 1.5e-7, rel


def test_exp_edges():
    e, _ = ext.vector_math_cpu(torch.tensor([0.0, -87.5, -1e30, 1e30, 88.0]))
    assert e[0].item() == 1.0  # exp(0) exactly 1: the largest edge of a convex weighs exactly 1
    assert e[1].item() == 0.0 and e[2].item() == 0.0  # below the range: 0
    assert torch.isfinite(e[3]) and e[3].item() > 1e38  # above: large and finite
    assert abs(e[4].item() / torch.exp(torch.tensor(88.0, dtype=torch.float64)).item() - 1) < 1.5e-7


def test_log_error_on_positive_floats():
    x = torch.cat([torch.logspace(-37, 38, 200_001), torch.linspace(1.0, 8.0, 100_001)])
    _, lg = ext.vector_math_cpu(x)
    exact = torch.log(x.double())
    err = ((lg.double() - exact).abs() / exact.abs().clamp(min=1.0)).max().item()
    assert err < 1.5e-7, err
    _, one = ext.vector_math_cpu(torch.tensor([1.0]))
    assert one.item() == 0.0
