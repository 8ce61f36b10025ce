"""Global tone mappers: linear scene-referred RGB (>= 0, unbounded) -> linear display RGB in [0, 1].

Every mapper returns *linear* display values; the display encoding (the sRGB OETF) is applied
afterwards by :func:`le3d.post.pipeline.apply_post` (or :func:`tonemap_to_srgb`). All functions are
pure torch, elementwise or per-pixel, work on any ``[..., 3]`` tensor on any device, and are
differentiable almost everywhere.

Registry: ``TONEMAPPERS[name](x, **params)``; ``tonemap(x, name, **params)`` looks the name up.

Published curves (constants from the original publications, re-typed, not copied code):
- ``aces``: Krzysztof Narkowicz, "ACES Filmic Tone Mapping Curve" (2016):
  f(x) = x (2.51 x + 0.03) / (x (2.43 x + 0.59) + 0.14), saturated to [0, 1]. Narkowicz notes the
  fit expects an input pre-scaled by 0.6 to match the ACES RRT+ODT at the same exposure; we expose
  that as ``pre_scale`` (default 0.6) so ``pre_scale=1`` gives the bare published rational.
- ``aces_hill``: Stephen Hill's fit of the RRT+ODT (BakingLab "ACESFitted"): sRGB -> RRT_SAT input
  matrix, v (v + 0.0245786) - 0.000090537 over v (0.983729 v + 0.4329510) + 0.238081, output matrix.
- ``hable``: John Hable's Uncharted 2 filmic curve, A..F = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30,
  white point W = 11.2, exposure bias 2: f(2x) / f(W).
- ``reinhard``: extended Reinhard (Reinhard et al. 2002, eq. 4) with white point Lw:
  L (1 + L / Lw^2) / (1 + L), applied to luminance (colour ratios kept) or per channel.
- ``agx``: Troy Sobotka's AgX with the minimal polynomial fit of its default contrast sigmoid
  (Benjamin Wrensch, "Minimal AgX implementation", 2024): inset matrix, log2 encoding over
  [-12.47393, 4.026069] EV around 0.18, 6th-order polynomial, outset (inverse inset) matrix,
  display gamma 2.2 removed so the output is linear like the others.
- ``clip``: identity then clip to [0, 1].
- ``curve``: a monotone user curve through control points (Fritsch-Carlson monotone cubic).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from le3d.color import srgb_oetf

__all__ = [
    "TONEMAPPERS", "tonemap", "tonemap_to_srgb", "tm_clip", "tm_reinhard", "tm_aces", "tm_aces_hill",
    "tm_hable", "tm_agx", "tm_curve", "narkowicz_aces", "hable_partial", "reinhard_extended",
    "monotone_curve",
]

_LUMA = (0.2126729, 0.7151522, 0.0721750)  # Y row of sRGB -> XYZ (D65)


def _mat(rows, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=x.dtype, device=x.device)


def _apply(rows, x: torch.Tensor) -> torch.Tensor:
    return x @ _mat(rows, x).T


# ------------------------------------------------------------------------------------------------
# scalar curves (elementwise on any tensor)


def narkowicz_aces(x: torch.Tensor) -> torch.Tensor:
    """Narkowicz's rational ACES fit, unsaturated (x >= 0)."""
    return (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)


def hable_partial(x: torch.Tensor, A=0.15, B=0.50, C=0.10, D=0.20, E=0.02, F=0.30) -> torch.Tensor:
    """Hable's Uncharted 2 curve before white normalisation; hable_partial(0) == 0."""
    return (x * (A * x + C * B) + D * E) / (x * (A * x + B) + D * F) - E / F


def reinhard_extended(x: torch.Tensor, white: float) -> torch.Tensor:
    """Extended Reinhard: x (1 + x / white^2) / (1 + x); maps ``white`` to exactly 1."""
    return x * (1.0 + x / (white * white)) / (1.0 + x)


# ------------------------------------------------------------------------------------------------
# tone mappers on [..., 3] linear RGB (sRGB primaries) -> linear display RGB in [0, 1]


def _finite_or_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def tm_clip(x: torch.Tensor) -> torch.Tensor:
    """Linear, clipped to [0, 1] (the sRGB OETF is applied afterwards)."""
    return x.clamp(0.0, 1.0)


def tm_reinhard(x: torch.Tensor, white: float | None = None, mode: str = "luminance") -> torch.Tensor:
    """Extended Reinhard with white point ``white`` (scene value that maps to display 1).

    ``white=None`` uses the image's maximum finite luminance (per leading batch element) as in the
    paper: one NaN or inf pixel must not turn every other one into NaN.
    ``mode="luminance"`` tone maps Y and scales RGB by Y'/Y (hue and saturation kept, then clipped);
    ``mode="rgb"`` applies the curve per channel (desaturates highlights)."""
    x = x.clamp_min(0.0)
    if mode == "rgb":
        if white is None:
            xf = _finite_or_zero(x)
            white = xf.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-6) if x.dim() >= 3 else xf.max()
        return reinhard_extended(x, white).clamp(0.0, 1.0)
    if mode != "luminance":
        raise ValueError(f"reinhard mode must be 'luminance' or 'rgb', got {mode!r}")
    y = x @ torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    if white is None:
        yf = _finite_or_zero(y)
        white = yf.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-6) if y.dim() >= 2 else yf.max()
    yd = reinhard_extended(y, white)
    scale = torch.where(y > 0, yd / y.clamp_min(1e-12), torch.ones_like(y))
    return (x * scale.unsqueeze(-1)).clamp(0.0, 1.0)


def tm_aces(x: torch.Tensor, pre_scale: float = 0.6) -> torch.Tensor:
    """Narkowicz 2016 ACES fit applied per channel to ``pre_scale * x``, saturated to [0, 1]."""
    return narkowicz_aces(x.clamp_min(0.0) * pre_scale).clamp(0.0, 1.0)


_ACES_IN = ((0.59719, 0.35458, 0.04823), (0.07600, 0.90834, 0.01566), (0.02840, 0.13383, 0.83777))
_ACES_OUT = ((1.60475, -0.53108, -0.07367), (-0.10208, 1.10813, -0.00605), (-0.00327, -0.07276, 1.07602))


def tm_aces_hill(x: torch.Tensor) -> torch.Tensor:
    """Stephen Hill's RRT+ODT fit (input matrix, rational fit, output matrix, saturate)."""
    v = _apply(_ACES_IN, x.clamp_min(0.0))
    a = v * (v + 0.0245786) - 0.000090537
    b = v * (0.983729 * v + 0.4329510) + 0.238081
    return _apply(_ACES_OUT, a / b).clamp(0.0, 1.0)


def tm_hable(x: torch.Tensor, white: float = 11.2, exposure_bias: float = 2.0) -> torch.Tensor:
    """Hable (Uncharted 2): hable_partial(bias * x) / hable_partial(white), saturated."""
    w = hable_partial(torch.tensor(float(white), dtype=torch.float64)).item()
    return (hable_partial(x.clamp_min(0.0) * exposure_bias) / w).clamp(0.0, 1.0)


# AgX inset matrix (rows act on column vectors of linear sRGB) and the log2 range around 0.18.
_AGX_INSET = (
    (0.842479062253094, 0.0784335999999992, 0.0792237451477643),
    (0.0423282422610123, 0.878468636469772, 0.0791661274605434),
    (0.0423756549057051, 0.0784336, 0.879142973793104),
)
_AGX_MIN_EV = -12.47393
_AGX_MAX_EV = 4.026069


def _agx_contrast(t: torch.Tensor) -> torch.Tensor:
    t2 = t * t
    t4 = t2 * t2
    return (15.5 * t4 * t2 - 40.14 * t4 * t + 31.96 * t4 - 6.868 * t2 * t + 0.4298 * t2
            + 0.1191 * t - 0.00232)


def tm_agx(x: torch.Tensor) -> torch.Tensor:
    """AgX base (no look): inset, log2 encode, sigmoid polynomial, outset, undo gamma 2.2."""
    v = _apply(_AGX_INSET, x.clamp_min(0.0))
    t = (torch.log2(v.clamp_min(2.0 ** _AGX_MIN_EV)) - _AGX_MIN_EV) / (_AGX_MAX_EV - _AGX_MIN_EV)
    t = t.clamp(0.0, 1.0)
    enc = _agx_contrast(t)
    inv = torch.linalg.inv(_mat(_AGX_INSET, x).double()).to(x.dtype)
    enc = (enc @ inv.T).clamp(0.0, 1.0)
    return enc.pow(2.2)


def monotone_curve(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Fritsch-Carlson monotone cubic Hermite interpolation through (xs, ys) (xs strictly increasing,
    ys non-decreasing); constant beyond the last point, linear from (xs[0], ys[0]) down to 0 below."""
    n = xs.numel()
    h = xs[1:] - xs[:-1]
    delta = (ys[1:] - ys[:-1]) / h
    m = torch.zeros_like(ys)
    m[0] = delta[0]
    m[-1] = delta[-1]
    if n > 2:
        interior = torch.where(delta[:-1] * delta[1:] > 0,
                               2.0 / (1.0 / delta[:-1].clamp_min(1e-12) + 1.0 / delta[1:].clamp_min(1e-12)),
                               torch.zeros_like(delta[:-1]))  # harmonic mean keeps monotonicity
        m[1:-1] = interior
    # Fritsch-Carlson limiter: alpha^2 + beta^2 <= 9
    flat = delta == 0
    a = m[:-1] / torch.where(flat, torch.ones_like(delta), delta)
    b = m[1:] / torch.where(flat, torch.ones_like(delta), delta)
    s = torch.sqrt(a * a + b * b)
    tau = torch.where(s > 3.0, 3.0 / s, torch.ones_like(s))
    m_left = torch.where(flat, torch.zeros_like(delta), tau * a * delta)
    m_right = torch.where(flat, torch.zeros_like(delta), tau * b * delta)
    xc = x.clamp(xs[0].item(), xs[-1].item())
    k = (torch.searchsorted(xs.contiguous(), xc.contiguous(), right=True) - 1).clamp(0, n - 2)
    x0, y0, y1, hk = xs[k], ys[k], ys[k + 1], h[k]
    t = (xc - x0) / hk
    t2, t3 = t * t, t * t * t
    out = ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * hk * m_left[k]
           + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * hk * m_right[k])
    below = x < xs[0]
    if bool(xs[0] > 0):
        out = torch.where(below, ys[0] * (x.clamp_min(0.0) / xs[0]), out)
    else:
        out = torch.where(below, ys[0].expand_as(out), out)
    return out


def tm_curve(x: torch.Tensor, points: Sequence[Sequence[float]] = ((0.0, 0.0), (0.18, 0.18), (1.0, 0.8),
                                                                    (4.0, 1.0))) -> torch.Tensor:
    """User curve through control points ``[(x_scene, y_display_linear), ...]`` applied per channel.

    Points are sorted by x; y must be non-decreasing in x (else ValueError). (0, 0) is implied when
    the first point has x > 0. Inputs beyond the last point saturate at its y."""
    pts = sorted((float(a), float(b)) for a, b in points)
    if len(pts) < 2 and not (pts and pts[0][0] > 0):
        raise ValueError("curve tone mapper needs at least two control points")
    if pts[0][0] > 0:
        pts = [(0.0, 0.0)] + pts
    xs = torch.tensor([p[0] for p in pts], dtype=torch.float64)
    ys = torch.tensor([p[1] for p in pts], dtype=torch.float64)
    if bool((xs[1:] <= xs[:-1]).any()):
        raise ValueError(f"curve control points need distinct x values, got {pts}")
    if bool((ys[1:] < ys[:-1]).any()):
        raise ValueError(f"curve control points must be non-decreasing in y, got {pts}")
    xs = xs.to(device=x.device, dtype=x.dtype)
    ys = ys.to(device=x.device, dtype=x.dtype)
    return monotone_curve(x.clamp_min(0.0), xs, ys).clamp(0.0, 1.0)


TONEMAPPERS: dict[str, Callable[..., torch.Tensor]] = {
    "clip": tm_clip,
    "linear": tm_clip,
    "reinhard": tm_reinhard,
    "aces": tm_aces,
    "aces_hill": tm_aces_hill,
    "agx": tm_agx,
    "hable": tm_hable,
    "curve": tm_curve,
}


def tonemap(x: torch.Tensor, name: str = "aces", **params) -> torch.Tensor:
    """Tone map linear scene RGB ``[..., 3]`` with the named mapper -> linear display RGB in [0, 1]."""
    try:
        fn = TONEMAPPERS[name]
    except KeyError:
        raise ValueError(f"unknown tone mapper {name!r}; choose one of {sorted(TONEMAPPERS)}") from None
    if x.dtype in (torch.float16, torch.bfloat16):
        # the rational curves square their input: a lamp at 300 in float16 overflows x^2 to inf, and
        # inf / inf is NaN. Computed in float32, returned in the input's dtype.
        return fn(x.float(), **params).to(x.dtype)
    return fn(x, **params)


def tonemap_to_srgb(x: torch.Tensor, name: str = "aces", **params) -> torch.Tensor:
    """Tone map and apply the sRGB OETF: display-encoded sRGB in [0, 1]."""
    return srgb_oetf(tonemap(x, name, **params)).clamp(0.0, 1.0)
