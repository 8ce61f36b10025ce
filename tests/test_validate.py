"""ValueChecks: deferred value checks read back at once, in registration order, with finiteness
checked through sums (an overflowing sum of finite values must not be reported)."""
from __future__ import annotations

import pytest
import torch

from le3d.errors import InputError
from le3d.raster.validate import ValueChecks


def test_nan_and_inf_are_reported_with_the_name():
    for bad in (float("nan"), float("inf"), -float("inf")):
        checks = ValueChecks()
        checks.finite("good", torch.ones(4))
        t = torch.zeros(3, 2)
        t[1, 1] = bad
        checks.finite("means", t)
        with pytest.raises(InputError, match="means: contains NaN or inf"):
            checks.raise_first_failure()


def test_opposite_infinities_and_float64_are_caught():
    checks = ValueChecks()
    checks.finite("x", torch.tensor([float("inf"), -float("inf")]))  # sums to NaN
    with pytest.raises(InputError, match="x: contains"):
        checks.raise_first_failure()
    checks.finite("y", torch.tensor([1e300, float("nan")], dtype=torch.float64))
    with pytest.raises(InputError, match="y: contains"):
        checks.raise_first_failure()


def test_overflowing_sum_of_finite_values_passes():
    checks = ValueChecks()
    checks.finite("big", torch.full((1000,), 3e38))  # the float32 sum overflows to inf
    checks.finite("big64", torch.full((10,), 1e300, dtype=torch.float64))  # finite, but not in float32
    checks.raise_first_failure()  # no error


def test_first_failure_in_registration_order():
    checks = ValueChecks()
    checks.require(torch.tensor(True), "a")
    checks.finite("b", torch.tensor([float("nan")]))
    checks.require(torch.tensor(False), "c")
    with pytest.raises(InputError, match="^b: contains"):
        checks.raise_first_failure()
    checks.require(torch.tensor(False), "c")
    checks.finite("d", torch.tensor([float("nan")]))
    with pytest.raises(InputError, match="^c$"):
        checks.raise_first_failure()
    checks.raise_first_failure()  # the failed round's entries are gone


def test_empty_tensors_and_no_checks():
    checks = ValueChecks()
    checks.finite("empty", torch.empty(0, 3))
    checks.raise_first_failure()
