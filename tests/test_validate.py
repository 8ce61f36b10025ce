"""ValueChecks: deferred value checks read back at once, in registration order, through the torch
twins or the compiled `value_checks` (CPU loop, CUDA kernel), which must agree on every kind."""
from __future__ import annotations

import pytest
import torch

import convex_splat
import le3d
from le3d._ext import load_extension
from le3d.errors import InputError
from le3d.raster import validate
from le3d.raster.validate import (
    CHECK_FINITE,
    CHECK_FOCALS_POSITIVE,
    CHECK_POSITIVE,
    CHECK_ROWS_NONZERO,
    ValueChecks,
    check_ok_torch,
)


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


@pytest.mark.parametrize("compiled", [False, True])
def test_first_failure_in_registration_order(compiled):
    """Both routes (torch twins, the compiled one-pass op) name the first failed check in registration
    order, and a round's entries are gone after it raised."""
    if compiled:
        assert load_extension() is not None  # loaded, so raise_first_failure(compiled=True) takes that route
    checks = ValueChecks()
    checks.positive(torch.tensor([1.0]), "a")
    checks.finite("b", torch.tensor([float("nan")]))
    checks.positive(torch.tensor([0.0]), "c")
    with pytest.raises(InputError, match="^b: contains"):
        checks.raise_first_failure(compiled=compiled)
    checks.positive(torch.tensor([-1.0]), "c")
    checks.finite("d", torch.tensor([float("nan")]))
    with pytest.raises(InputError, match="^c$"):
        checks.raise_first_failure(compiled=compiled)
    checks.raise_first_failure(compiled=compiled)  # the failed round's entries are gone


def test_empty_tensors_and_no_checks():
    checks = ValueChecks()
    checks.finite("empty", torch.empty(0, 3))
    checks.raise_first_failure()


def random_checked_tensors(seed: int, dtype):
    """Tensors of every check kind, about half of them spoiled by one bad value somewhere."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for kind in (CHECK_FINITE, CHECK_POSITIVE, CHECK_ROWS_NONZERO, CHECK_FOCALS_POSITIVE):
        for _ in range(3):
            n = int(torch.randint(1, 70000, (1,), generator=g))
            if kind == CHECK_FOCALS_POSITIVE:
                t = torch.eye(3, dtype=dtype) * 500
            elif kind == CHECK_ROWS_NONZERO:
                t = torch.randn(n, 4, generator=g, dtype=dtype)
            else:
                t = torch.rand(n, generator=g, dtype=dtype) + 0.5
            if torch.rand(1, generator=g) < 0.5:
                flat = t.view(-1)
                at = int(torch.randint(0, flat.numel(), (1,), generator=g))
                if kind == CHECK_FINITE:
                    flat[at] = [float("nan"), float("inf"), -float("inf")][at % 3]
                elif kind == CHECK_POSITIVE:
                    flat[at] = [0.0, -1.0, float("nan")][at % 3]
                elif kind == CHECK_ROWS_NONZERO:
                    t[at // 4] = 0.0
                else:
                    t[at % 2, at % 2] = -1.0 if at % 3 else 0.0
            cases.append((kind, t))
    return cases


def compiled_flags(cases, device):
    ext = load_extension()
    tensors = [t.to(device) for _, t in cases]
    rows = [t.shape[-1] if kind == CHECK_ROWS_NONZERO else 1 for kind, t in cases]
    return ext.value_checks(tensors, [kind for kind, _ in cases], rows).cpu().tolist()


def twin_flags(cases):
    return [int(not check_ok_torch(kind, t, t.shape[-1] if kind == CHECK_ROWS_NONZERO else 1)) for kind, t in cases]


def assert_compiled_matches_twin(device):
    for seed in range(6):
        for dtype in (torch.float32, torch.float64):
            cases = random_checked_tensors(seed, dtype)
            expected = twin_flags(cases)
            assert 0 < sum(expected) < len(expected)  # both outcomes are exercised
            for start in range(0, len(cases), 6):  # at most 16 checks per call
                chunk = cases[start:start + 6]
                assert compiled_flags(chunk, device) == expected[start:start + 6], (seed, dtype, start)


def test_compiled_checks_match_the_torch_twins_cpu():
    assert_compiled_matches_twin("cpu")


@pytest.mark.cuda
def test_compiled_checks_match_the_torch_twins_cuda():
    assert_compiled_matches_twin("cuda")


def test_compiled_checks_take_non_contiguous_tensors_and_finite_extremes():
    t = torch.full((8, 6), 3e38)
    t[2, 4] = float("nan")
    ext = load_extension()
    assert ext.value_checks([t[:, ::2], t[:, 1::2], torch.tensor([1e-45, 3.4e38])], [0, 0, 1], [1, 1, 1]).tolist() == [
        1, 0, 0]  # column 4 (even) has the NaN; denormals and the largest floats pass


def test_compiled_checks_refuse_bad_calls():
    ext = load_extension()
    with pytest.raises(RuntimeError, match="one device and dtype"):
        ext.value_checks([torch.ones(2), torch.ones(2, dtype=torch.float64)], [0, 0], [1, 1])
    with pytest.raises(RuntimeError, match="1 to 16 checks"):
        ext.value_checks([torch.ones(1)] * 17, [0] * 17, [1] * 17)
    with pytest.raises(RuntimeError, match="row length"):
        ext.value_checks([torch.ones(5)], [CHECK_ROWS_NONZERO], [4])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("render", ["gaussians", "convexes"])
def test_compiled_backends_answer_every_render_check_in_one_call(monkeypatch, render, backend):
    """A render on a compiled backend sends all of its checks through value_checks (not the twins),
    and each bad argument is still named."""
    def no_twins(entries):
        raise AssertionError("the torch twins ran for a compiled backend")

    monkeypatch.setattr(ValueChecks, "_failed_torch", staticmethod(no_twins))
    calls = []
    ext = load_extension()
    monkeypatch.setattr(validate, "loaded_extension", lambda: CountingExtension(ext, calls))
    n = 5
    view, K = torch.eye(4), torch.tensor([[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]])
    view[2, 3] = 4.0
    if render == "gaussians":
        args = dict(means=torch.randn(n, 3) * 0.3, quats=torch.randn(n, 4), scales=torch.full((n, 3), 0.1),
                    opacities=torch.full((n,), 0.5), features=torch.rand(n, 3), viewmat=view, K=K)
        fn, bad = le3d.rasterize_gaussians, ("quats", torch.zeros(n, 4), "quats: a quaternion has zero norm")
    else:
        args = dict(points=torch.randn(n, 6, 3) * 0.3, delta=torch.full((n,), 5.0), sigma=torch.full((n,), 5.0),
                    opacities=torch.full((n,), 0.5), features=torch.rand(n, 3), viewmat=view, K=K)
        fn, bad = convex_splat.rasterize_convexes, ("sigma", -torch.ones(n), "sigma: must be > 0")
    args = {k: v.to(backend) for k, v in args.items()}
    fn(**args, width=32, height=32, backend=backend, distortion_coord=torch.rand(n, device=backend))
    assert len(calls) == 1 and len(calls[0]) >= 10  # every value check of the render, in one call
    bad = (bad[0], bad[1].to(backend), bad[2])
    for name, value, message in (bad, ("K", args["K"] * -1, "K: focal lengths"),
                                 ("features", args["features"] * float("nan"), "features: contains NaN")):
        with pytest.raises(InputError, match=message):
            fn(**{**args, name: value}, width=32, height=32, backend=backend)


class CountingExtension:
    """The extension, with its value_checks calls recorded (the kinds of each call)."""

    def __init__(self, ext, calls):
        self._ext, self._calls, self.with_cuda = ext, calls, ext.with_cuda

    def value_checks(self, tensors, kinds, rows):
        self._calls.append(list(kinds))
        return self._ext.value_checks(tensors, kinds, rows)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_default_background_is_shared_and_survives_inference_mode(backend):
    """Renders without a background share one zeros tensor per (channels, dtype, device). One first made
    under torch.inference_mode() (the viewer) must still serve a training render's backward, and renders
    must leave it zero."""
    from scenes import camera, random_gaussians

    means, quats, scales, opac, feats = random_gaussians(30, C=5, seed=3)  # 5 channels: no other test's
    viewmat, K = camera(24, 20)
    validate.default_background.cache_clear()
    with torch.inference_mode():
        first = le3d.rasterize_gaussians(means, quats, scales, opac, feats, viewmat, K, 24, 20, backend=backend)
    leaves = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, feats)]
    out = le3d.rasterize_gaussians(*leaves, viewmat, K, 24, 20, backend=backend)
    (out.image.sum() + out.alpha.sum()).backward()  # an inference tensor here could not be saved for backward
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in leaves)
    explicit = le3d.rasterize_gaussians(means, quats, scales, opac, feats, viewmat, K, 24, 20, backend=backend,
                                        background=torch.zeros(5))
    assert torch.equal(out.image.detach(), explicit.image) and torch.equal(first.image, explicit.image)
    shared = validate.default_background(5, torch.float32, torch.device("cpu"))
    assert shared is validate.default_background(5, torch.float32, torch.device("cpu"))
    assert not shared.is_inference() and shared.eq(0).all()
