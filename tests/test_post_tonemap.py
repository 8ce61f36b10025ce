"""Tone mappers on real HDR values (../shared/data/hdr/albert.exr) and published reference values."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from le3d.color import srgb_oetf
from le3d.post.tonemap import (
    TONEMAPPERS,
    tm_aces,
    tm_aces_hill,
    tm_agx,
    tm_curve,
    tm_hable,
    tm_reinhard,
    tonemap,
)

EXR = Path(__file__).resolve().parents[2] / "shared/data/hdr/albert.exr"


@pytest.fixture(scope="module")
def hdr() -> torch.Tensor:
    if not EXR.is_file():
        pytest.fail(f"shared HDR test image missing: {EXR} (expected ../shared/data/hdr relative to the repo root)")
    from le3d.io.images import read_exr

    img = read_exr(EXR)[..., :3][::4, ::4].double()  # 256 x 256
    # albert.exr is a *greyscale* linear photo whose values lie in [6e-4, 0.92] (~10.5 stops, none
    # above 1). Push it 3 stops up (as the exposure control would) so the tone mappers see real
    # values well above 1, and tint it so that the colour paths (matrices, luminance) are exercised.
    return (img * 8.0 * torch.tensor([1.0, 0.85, 0.6], dtype=torch.float64)).contiguous()


def grey(v) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)[:, None].expand(-1, 3).contiguous()


NAMES = sorted(set(TONEMAPPERS))


def test_real_exr_is_linear_wide_range(hdr):
    assert hdr.min() > 0.0 and hdr.max() > 4.0 and (hdr.max() / hdr.min()).item() > 1000.0


@pytest.mark.parametrize("name", NAMES)
def test_zero_maps_to_zero_and_range(name, hdr):
    assert tonemap(torch.zeros(4, 3, dtype=torch.float64), name).abs().max().item() < 1e-12
    out = tonemap(hdr, name)
    assert out.shape == hdr.shape
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_monotone_on_real_luminances(name, hdr):
    # every luminance level present in the real image, as a grey ramp, sorted: outputs never decrease
    y = (hdr @ torch.tensor([0.2126729, 0.7151522, 0.0721750], dtype=torch.float64)).flatten()
    y = torch.unique(torch.cat([y, y * 16.0, y / 16.0]))  # also well above and below the capture
    out = tonemap(grey(y.tolist()), name)
    assert (out[1:] >= out[:-1] - 1e-9).all()


@pytest.mark.parametrize("name", NAMES)
def test_monotone_in_exposure_on_real_pixels(name, hdr):
    # brightening every real pixel by one stop never darkens its displayed luminance
    w = torch.tensor([0.2126729, 0.7151522, 0.0721750], dtype=torch.float64)
    lo = tonemap(hdr, name, white=8.0) if name == "reinhard" else tonemap(hdr, name)
    hi = tonemap(hdr * 2.0, name, white=8.0) if name == "reinhard" else tonemap(hdr * 2.0, name)
    assert ((hi @ w) >= (lo @ w) - 1e-6).all()


@pytest.mark.parametrize("name", ["reinhard", "aces", "aces_hill", "agx", "hable", "curve", "clip"])
def test_saturates_sensibly(name):
    out = tonemap(grey([1e3, 1e5]), name)
    assert (out >= 0.95).all() and (out <= 1.0).all()
    # mid grey stays in the lower-middle of the display range (no crushed or blown mid-tones)
    params = {"white": 16.0} if name == "reinhard" else {}  # default white = the image maximum
    mid = tonemap(grey([0.18]), name, **params)[0, 1].item()
    assert 0.08 < mid < 0.5


def test_aces_narkowicz_reference_values():
    # f(x) = x(2.51x + 0.03) / (x(2.43x + 0.59) + 0.14), computed by hand:
    # f(1) = 2.54 / 3.16, f(0.5) = 0.6425 / 1.0425
    out = tm_aces(grey([1.0, 0.5]), pre_scale=1.0)[:, 0]
    assert out[0].item() == pytest.approx(2.54 / 3.16, abs=1e-9)
    assert out[1].item() == pytest.approx(0.6425 / 1.0425, abs=1e-9)
    # default pre-scale 0.6 (Narkowicz's exposure match): f(0.6 * 1) = 0.6*1.536/(0.6*2.048+0.14)
    assert tm_aces(grey([1.0]))[0, 0].item() == pytest.approx(0.9216 / 1.3688, abs=1e-9)


def test_aces_hill_reference_value():
    # grey 1.0: both matrices have unit row sums (to 1e-5), so the fit acts on v = 1:
    # (1 * 1.0245786 - 0.000090537) / (0.983729 + 0.4329510 + 0.238081) = 1.024488063 / 1.654761
    out = tm_aces_hill(grey([1.0]))[0]
    assert out[1].item() == pytest.approx(1.024488063 / 1.654761, abs=1e-4)


def test_hable_reference_values():
    # Hable partial f(x) = (x(0.15x + 0.05) + 0.004) / (x(0.15x + 0.5) + 0.06) - 0.02/0.3
    # f(11.2) = 19.38 / 24.476 - 1/15 ; input 1 with exposure bias 2 -> f(2) = 0.704 / 1.66 - 1/15
    fw = 19.38 / 24.476 - 1 / 15
    f2 = 0.704 / 1.66 - 1 / 15
    assert tm_hable(grey([1.0]))[0, 0].item() == pytest.approx(f2 / fw, abs=1e-9)
    assert tm_hable(grey([5.6]))[0, 0].item() == pytest.approx(1.0, abs=1e-9)  # 2 * 5.6 = W


def test_reinhard_extended_reference_values():
    # L (1 + L / Lw^2) / (1 + L): white 4, L = 1 -> 1.0625 / 2; L = 4 -> 1
    out = tm_reinhard(grey([1.0, 4.0]), white=4.0, mode="rgb")[:, 0]
    assert out[0].item() == pytest.approx(0.53125, abs=1e-12)
    assert out[1].item() == pytest.approx(1.0, abs=1e-12)
    # luminance mode keeps a grey grey and gives the same value
    lum = tm_reinhard(grey([1.0]), white=4.0)[0]
    assert torch.allclose(lum, torch.full((3,), 0.53125, dtype=torch.float64), atol=1e-6)


def test_agx_mid_grey_pivot():
    # AgX's sigmoid pivots at log2(0.18) (t = 10 / 16.5 over its [-12.47, 4.03] EV range) where the
    # display-encoded output is ~0.5; linear output = 0.5^2.2 within the polynomial fit's error
    assert tm_agx(grey([0.18]))[0, 1].item() == pytest.approx(0.5 ** 2.2, abs=0.01)


def test_curve_through_control_points_and_monotone():
    pts = [(0.05, 0.02), (0.18, 0.3), (0.2, 0.31), (1.0, 0.9), (8.0, 1.0)]
    xs = grey([p[0] for p in pts])
    out = tm_curve(xs, points=pts)[:, 0]
    assert torch.allclose(out, torch.tensor([p[1] for p in pts], dtype=torch.float64), atol=1e-12)
    ramp = tm_curve(grey(torch.linspace(0, 10, 5001).tolist()), points=pts)[:, 0]
    assert (ramp[1:] >= ramp[:-1] - 1e-12).all()
    with pytest.raises(ValueError):
        tm_curve(xs, points=[(0.1, 0.5), (0.2, 0.4)])


def test_srgb_oetf_after_clip():
    out = srgb_oetf(tonemap(grey([0.0031308, 1.0, 3.0]), "clip"))[:, 0]
    assert out[0].item() == pytest.approx(0.04045, abs=1e-5)
    assert out[1].item() == pytest.approx(1.0, abs=1e-9) and out[2].item() == pytest.approx(1.0, abs=1e-9)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown tone mapper"):
        tonemap(grey([1.0]), "nope")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_tonemappers_run_on_cuda(hdr):
    for name in NAMES:
        cpu = tonemap(hdr.float(), name)
        gpu = tonemap(hdr.float().cuda(), name).cpu()
        assert torch.allclose(cpu, gpu, atol=1e-5)


@pytest.mark.parametrize("name", sorted(TONEMAPPERS))
def test_half_precision_lamps_do_not_become_nan(name):
    """Lamps 300-20000x brighter than mid grey are ordinary float16 values, but the rational curves
    square them (inf in float16, and inf / inf is NaN): tonemap computes in float32 for such inputs."""
    x = torch.tensor([0.0, 0.18, 1.0, 300.0, 1000.0, 20000.0]).repeat_interleave(3).reshape(-1, 3)
    half = tonemap(x.half(), name)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert torch.allclose(half.float(), tonemap(x, name), atol=2e-3)


@pytest.mark.parametrize("mode", ["luminance", "rgb"])
def test_reinhard_white_ignores_a_non_finite_pixel(mode):
    """The default white point is the image's largest finite value: one NaN pixel stays one pixel."""
    img = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0)) * 4
    broken, clean = img.clone(), img.clone()
    broken[3, 5] = float("nan")
    clean[3, 5] = 0.0  # the same finite pixels elsewhere, so the same white point
    out = tonemap(broken, "reinhard", mode=mode)
    others = torch.ones(16, 16, dtype=torch.bool)
    others[3, 5] = False
    assert torch.isfinite(out[others]).all()
    assert torch.allclose(out[others], tonemap(clean, "reinhard", mode=mode)[others])
