"""The PyTorch reference rasterizer: every pixel against every primitive, autograd for gradients.

Written for clarity; it is the oracle the C++ and CUDA backends are tested against. It has no
tiles: a footprint's screen bound only marks culled primitives, so tile bookkeeping cannot hide
errors. Memory is O(N H W): meant for small scenes and tests.
"""
from __future__ import annotations

import torch

from le3d.raster.constants import (
    ALPHA_MAX,
    ALPHA_MIN,
    CONVEX_HEADER,
    CONVEX_MAX_EDGES,
    FOOTPRINT_CONVEX,
    FOOTPRINT_GAUSSIAN,
    TRANSMITTANCE_MIN,
)


def pixel_centres(width: int, height: int, like: torch.Tensor, x0: int = 0, y0: int = 0):
    """(px [1, 1, W], py [1, H, 1]) pixel centres (j + 0.5, i + 0.5) of a window starting at (x0, y0)."""
    px = torch.arange(x0, x0 + width, dtype=like.dtype, device=like.device) + 0.5
    py = torch.arange(y0, y0 + height, dtype=like.dtype, device=like.device) + 0.5
    return px.view(1, 1, width), py.view(1, height, 1)


def gaussian_raw_alpha(params: torch.Tensor, width: int, height: int, x0: int = 0, y0: int = 0) -> torch.Tensor:
    """[N, 6] -> [N, H, W] unclamped o * exp(-0.5 d^T conic d) (twin of footprint_gaussian.h)."""
    px, py = pixel_centres(width, height, params, x0, y0)
    p = params[:, :, None, None]
    dx, dy = p[:, 0] - px, p[:, 1] - py
    power = -(0.5 * (p[:, 2] * dx * dx + p[:, 4] * dy * dy) + p[:, 3] * dx * dy)
    return torch.where(power <= 0, p[:, 5] * torch.exp(power.clamp(max=0)), torch.zeros_like(power))


def convex_raw_alpha(params: torch.Tensor, width: int, height: int, x0: int = 0, y0: int = 0) -> torch.Tensor:
    """[N, 29] -> [N, H, W] o * sigmoid(-sigma phi) (twin of footprint_convex.h)."""
    px, py = pixel_centres(width, height, params, x0, y0)
    n_edges = params[:, 0].long().clamp(0, CONVEX_MAX_EDGES)
    delta, s, sigma, o = (params[:, i, None, None] for i in range(1, 5))
    edges = params[:, CONVEX_HEADER:].reshape(-1, CONVEX_MAX_EDGES, 3)[:, :, :, None, None]
    L = edges[:, :, 0] * px[:, None] + edges[:, :, 1] * py[:, None] + edges[:, :, 2]  # [N, E, H, W]
    active = torch.arange(CONVEX_MAX_EDGES, device=params.device)[None, :] < n_edges[:, None]
    scaled = torch.where(active[:, :, None, None], (delta * s)[:, None] * L, torch.full_like(L, -torch.inf))
    # Fewer than 3 edges: no footprint. Keep phi finite there so no NaN reaches the gradients.
    valid = (n_edges >= 3)[:, None, None]
    scaled = torch.where(valid[:, None], scaled, torch.zeros_like(scaled))
    phi = torch.logsumexp(scaled, dim=1) / delta
    raw = o * torch.sigmoid(-sigma * phi)
    return torch.where(valid, raw, torch.zeros_like(raw))


RAW_ALPHA = {FOOTPRINT_GAUSSIAN: gaussian_raw_alpha, FOOTPRINT_CONVEX: convex_raw_alpha}


def composite(raw_alpha, depths, features, background, coords=None, nearfar_k: int = 0):
    """Front-to-back compositing of [N, H, W] raw alphas in order of depth (stable by index).

    Returns (image [H,W,C], alpha, depth, distortion or None, near or None, far or None).
    The distortion here is the exact pairwise sum_ij w_i w_j |u_i - u_j|, computed in u-order.
    """
    N, H, W = raw_alpha.shape
    C = features.shape[1]
    if N == 0:
        zero = raw_alpha.new_zeros(H, W)
        image = background.expand(H, W, C).clone()
        return image, zero, zero, (zero if coords is not None else None), *(
            (zero, zero) if nearfar_k else (None, None))
    order = torch.argsort(depths, stable=True)
    a = raw_alpha[order].clamp(max=ALPHA_MAX)
    a = torch.where(a >= ALPHA_MIN, a, torch.zeros_like(a))
    # A pixel stops before T would drop below 1e-4; T only decreases, so this is a prefix.
    included = torch.cumprod(1 - a, dim=0) >= TRANSMITTANCE_MIN
    a = a * included
    trans = torch.cumprod(1 - a, dim=0)
    T_before = torch.cat([torch.ones_like(trans[:1]), trans[:-1]], dim=0)
    w = a * T_before  # [N, H, W]
    T_final = trans[-1]
    f, z = features[order], depths[order]
    image = torch.einsum("nhw,nc->hwc", w, f) + T_final[..., None] * background
    depth = (w * z[:, None, None]).sum(0)
    distortion = None
    if coords is not None:
        u = coords[order]
        by_u = torch.argsort(u, stable=True)
        wu, uu = w[by_u], u[by_u][:, None, None]
        W_before = torch.cumsum(wu, 0) - wu
        U_before = torch.cumsum(wu * uu, 0) - wu * uu
        distortion = 2 * (wu * (uu * W_before - U_before)).sum(0)
    near = far = None
    if nearfar_k > 0:
        contributes = a > 0
        position = torch.cumsum(contributes.int(), 0)  # 1-based among contributors
        count = position[-1]
        zz = z[:, None, None]

        def mean_depth(mask):
            mw = (w * mask).sum(0)
            return torch.where(mw > 0, (w * mask * zz).sum(0) / mw.clamp(min=1e-30), torch.zeros_like(mw))

        near = mean_depth(contributes & (position <= nearfar_k))
        far = mean_depth(contributes & (position > count - nearfar_k))
    return image, 1 - T_final, depth, distortion, near, far


# Above this many primitive-pixel pairs the reference works block by block (memory is O(N H W)).
FULL_IMAGE_LIMIT = 1 << 22
BLOCK = 32


def rasterize_reference(params, footprint: int, features, depths, coords, bounds, background,
                        width: int, height: int, nearfar_k: int, block: int | None = None):
    """Reference twin of the compiled rasterizer (same arguments, same outputs).

    Small problems are evaluated on the whole image at once. Large ones (benchmarks) go block by
    block with only the primitives whose (conservative) bounds reach the block: exact, since a
    primitive adds nothing outside its bound, and the per-pixel maths is unchanged.
    """
    culled = ~(bounds[:, 0] <= bounds[:, 2])
    if block is None and params.shape[0] * width * height <= FULL_IMAGE_LIMIT:
        raw = RAW_ALPHA[footprint](params, width, height)
        raw = torch.where(culled[:, None, None], torch.zeros_like(raw), raw)
        return composite(raw, depths, features, background, coords, nearfar_k)
    block = block or BLOCK
    rows = []
    for y0 in range(0, height, block):
        bh = min(block, height - y0)
        cols = []
        for x0 in range(0, width, block):
            bw = min(block, width - x0)
            reach = (~culled & (bounds[:, 0] <= x0 + bw) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= y0 + bh)
                     & (bounds[:, 3] >= y0))
            idx = torch.nonzero(reach).squeeze(1)
            raw = RAW_ALPHA[footprint](params[idx], bw, bh, x0, y0)
            cols.append(composite(raw, depths[idx], features[idx], background,
                                  coords[idx] if coords is not None else None, nearfar_k))
        rows.append([torch.cat(parts, dim=1) if parts[0] is not None else None for parts in zip(*cols)])
    return tuple(torch.cat(parts, dim=0) if parts[0] is not None else None for parts in zip(*rows))
