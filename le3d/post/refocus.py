"""Post-capture refocus from a rendered depth map (thin lens, occlusion-aware, pure torch).

Thin-lens model
---------------
A point at depth ``z`` seen through a lens focused at ``z_f`` images to a disc (the circle of
confusion) of radius, in pixels,

    c(z) = A * |1/z_f - 1/z|,

where ``A`` (``aperture``) folds together the aperture diameter, the focal length in pixels and the
sensor distance (for a lens of focal length f, f-number N and focal length in pixels f_px,
A = f_px * f / (2 N) * z_f / (z_f - f), in pixel-depth units). The CoC is *linear in disparity*
d = 1/z, which is why the algorithm below works in disparity.

Algorithm: layered compositing in disparity ("LCD")
----------------------------------------------------
1. Signed CoC per pixel s = A (d - d_f) (positive in front of the focus plane). Quantise s into
   uniform layers of width ``layer_step`` pixels, centred on s = 0, so that the focus plane has a
   layer of its own and a surface there stays sharp. Each pixel belongs to exactly one layer (hard
   assignment, so a pixel is never split into semi-transparent copies that would let the background
   leak through a sharp foreground). Each layer uses the mean |s| of its pixels as its blur radius,
   so a fronto-parallel plane is blurred by exactly its own CoC. At most ``max_layers`` layers span
   the 0.1%-99.9% range of s (the step widens if they must); the pixels beyond it (a floater near
   the camera, a few stray depths) take one extra layer on each side, so that they neither widen
   every layer nor cost more layers. Pixels whose colour is not finite are left out of every layer
   and returned as they are, so that a NaN or inf stays one pixel instead of spreading along the
   blur's rows.
2. Each non-empty layer is turned into a premultiplied RGBA image (colour * mask, mask) cropped to
   its bounding box plus the blur margin, and blurred with an anti-aliased *disc* (the true thin-lens
   PSF, not a Gaussian). The disc filter is computed exactly per row with prefix sums: for each row
   offset dy the disc is a horizontal box of half-width sqrt(R^2 - dy^2) (R = r + 0.5), evaluated as
   a difference of linearly interpolated row prefix sums (fractional edges give the anti-aliasing),
   so the cost is O(r) per pixel instead of O(r^2) and is independent of the image content. Prefix
   sums are accumulated in float64 so that very bright HDR pixels do not destroy the precision of
   dark ones in the same row. Layers whose radius exceeds ``base_radius`` are blurred at a reduced
   resolution (area downsample by s = ceil(r / base_radius), blur with r / s, bilinear upsample):
   a disc blur of radius r is band-limited to ~1/r, so this costs little accuracy and makes the cost
   per layer ~O(HW r / s^2).
3. Layers are composited back to front with the "over" operator on premultiplied colour and alpha.
   Because each layer carries only its own pixels, a blurred background never picks up foreground
   colour (no halo of the sharp subject around it), and a blurred foreground correctly spills over an
   in-focus background. Finally colour is divided by the accumulated alpha, which removes the dark
   fringes that the holes left by occluders (and the image border) would otherwise cause.

Compared with LE3D (32 depth-histogram layers, each blurred with a Gaussian via FFT of the whole
padded frame, composited without renormalisation), this uses the physical disc PSF, linear-in-CoC
layers, no FFT, per-layer crops and multi-resolution blur; ``scripts/bench_post.py`` measures both.

All functions accept ``image [..., H, W, C]`` and ``depth [..., H, W]`` on CPU or CUDA. The output
is differentiable with respect to ``image`` (layer assignment is piecewise constant in depth).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["refocus", "focus_depth_at", "coc_radius", "disc_blur", "disc_kernel", "refocus_le3d_fft"]


def coc_radius(depth: torch.Tensor, focus_depth: float, aperture: float) -> torch.Tensor:
    """Thin-lens circle-of-confusion radius in pixels: aperture * |1/focus_depth - 1/depth|.
    Non-positive or non-finite depths are treated as infinitely far (1/z = 0)."""
    disp = _disparity(depth)
    return float(aperture) * (disp - 1.0 / float(focus_depth)).abs()


def _disparity(depth: torch.Tensor) -> torch.Tensor:
    valid = torch.isfinite(depth) & (depth > 0)
    return torch.where(valid, 1.0 / torch.where(valid, depth, torch.ones_like(depth)), torch.zeros_like(depth))


def focus_depth_at(depth: torch.Tensor, x: int, y: int, window: int = 2) -> float:
    """Depth to focus on when the user picks pixel (x = column, y = row): the median of the valid
    depths in a (2 window + 1)^2 neighbourhood (robust to picking right on an edge). For a batched
    depth ``[..., H, W]`` the first image is used."""
    d = depth.reshape(-1, depth.shape[-2], depth.shape[-1])[0]
    H, W = d.shape
    if not (0 <= x < W and 0 <= y < H):
        raise ValueError(f"focus pixel ({x}, {y}) is outside the {W}x{H} depth map")
    patch = d[max(0, y - window): y + window + 1, max(0, x - window): x + window + 1].flatten()
    patch = patch[torch.isfinite(patch) & (patch > 0)]
    if patch.numel() == 0:
        raise ValueError(f"no valid depth around pixel ({x}, {y})")
    return float(patch.median().item())


# ------------------------------------------------------------------------------------------------
# disc blur (exact per row, prefix sums)


def disc_kernel(radius: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """The normalised 2D kernel that :func:`disc_blur` applies (for inspection and tests)."""
    R = float(radius) + 0.5
    n = int(math.ceil(R)) + 1
    k = torch.zeros(2 * n + 1, 2 * n + 1, dtype=torch.float64)
    xs = torch.arange(-n, n + 1, dtype=torch.float64)
    for dy in range(-n, n + 1):
        if abs(dy) >= R:
            continue
        h = math.sqrt(R * R - dy * dy)
        # overlap of pixel [x-0.5, x+0.5] with [-h, h]
        k[dy + n] = ((torch.minimum(xs + 0.5, torch.tensor(h)) - torch.maximum(xs - 0.5, torch.tensor(-h)))
                     .clamp_min(0.0))
    return (k / k.sum()).to(device=device, dtype=dtype)


def _disc_blur_full(x: torch.Tensor, radius: float, accum_dtype: torch.dtype) -> torch.Tensor:
    """Disc blur of x [N, K, H, W] (zero outside the image), radius in pixels, at full resolution."""
    N, K, H, W = x.shape
    R = float(radius) + 0.5
    ndy = int(math.ceil(R))
    pad = ndy + 2
    xa = x.to(accum_dtype)
    P = torch.zeros(N, K, H, W + 1 + 2 * pad, dtype=accum_dtype, device=x.device)
    P[..., pad + 1: pad + 1 + W] = xa.cumsum(-1)
    P[..., pad + 1 + W:] = P[..., pad + W: pad + W + 1]  # constant extension on the right

    def prefix_at(c: float) -> torch.Tensor:
        """F(x + c) for x = 0..W-1 where F(t) is the integral of the row over [-0.5, t - 0.5]."""
        i0 = math.floor(c)
        f = c - i0
        a = P[..., pad + i0: pad + i0 + W]
        if f < 1e-12:
            return a
        b = P[..., pad + i0 + 1: pad + i0 + 1 + W]
        return torch.lerp(a, b, f)

    out = torch.zeros(N, K, H, W, dtype=accum_dtype, device=x.device)
    area = 0.0
    for dy in range(ndy + 1):
        if dy >= R:
            break
        h = math.sqrt(R * R - dy * dy)
        box = prefix_at(h + 0.5) - prefix_at(-h + 0.5)
        if dy == 0:
            out += box
            area += 2 * h
        elif dy < H:
            out[..., : H - dy, :] += box[..., dy:, :]
            out[..., dy:, :] += box[..., : H - dy, :]
            area += 4 * h
        else:
            area += 4 * h
    return (out / area).to(x.dtype)


def disc_blur(x: torch.Tensor, radius: float, base_radius: float = 8.0,
              accum_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Blur ``x [N, K, H, W]`` with an anti-aliased disc of ``radius`` pixels (zero padding).

    Radii above ``base_radius`` are processed at 1/s resolution with s = ceil(radius / base_radius)."""
    if radius < 1e-3:
        return x
    s = int(math.ceil(radius / base_radius)) if base_radius > 0 else 1
    if s <= 1:
        return _disc_blur_full(x, radius, accum_dtype)
    N, K, H, W = x.shape
    Hp, Wp = -(-H // s) * s, -(-W // s) * s
    xp = F.pad(x, (0, Wp - W, 0, Hp - H))
    small = F.avg_pool2d(xp, kernel_size=s, stride=s)
    small = _disc_blur_full(small, radius / s, accum_dtype)
    up = F.interpolate(small, size=(Hp, Wp), mode="bilinear", align_corners=False)
    return up[..., :H, :W]


# ------------------------------------------------------------------------------------------------
# refocus


def refocus(image: torch.Tensor, depth: torch.Tensor, focus_depth: float, aperture: float, *,
            layer_step: float = 1.0, max_layers: int = 64, base_radius: float = 8.0,
            max_radius: float | None = None, accum_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Synthetic defocus of a linear HDR ``image [..., H, W, C]`` given ``depth [..., H, W]``.

    ``focus_depth`` is the in-focus depth (same units as ``depth``; see :func:`focus_depth_at`),
    ``aperture`` the A of c = A |1/z_f - 1/z| (CoC radius in pixels). ``layer_step`` is the CoC width
    of one disparity layer in pixels (smaller = more layers, more accurate on slanted surfaces),
    capped at ``max_layers``. ``max_radius`` clamps the CoC. Returns an image of the same shape.
    See the module docstring for the algorithm."""
    if image.shape[:-1] != depth.shape:
        raise ValueError(f"refocus: image {tuple(image.shape)} and depth {tuple(depth.shape)} disagree")
    if aperture <= 0:
        return image
    if not (focus_depth > 0 and math.isfinite(focus_depth)):
        raise ValueError(f"refocus: focus_depth must be a positive finite depth, got {focus_depth}")
    H, W, C = image.shape[-3:]
    img = image.reshape(-1, H, W, C).permute(0, 3, 1, 2)  # N, C, H, W
    dep = depth.reshape(-1, H, W)
    s = float(aperture) * (_disparity(dep).to(torch.float64) - 1.0 / float(focus_depth))
    if max_radius is not None:
        s = s.clamp(-max_radius, max_radius)
    finite = torch.isfinite(image.reshape(-1, H, W, C)).all(dim=-1)  # N, H, W: the pixels that take part
    if bool(finite.all()):
        finite = None  # the usual case: nothing to leave out
    idx, L = _layer_indices(s, finite, layer_step, max_layers)
    flat = idx.flatten()
    counts = torch.bincount(flat, minlength=L).cpu()
    mean_abs_s = (torch.bincount(flat, weights=s.abs().flatten(), minlength=L).cpu() / counts.clamp_min(1)).tolist()
    counts = counts.tolist()

    acc = torch.zeros(img.shape[0], C + 1, H, W, dtype=img.dtype, device=img.device)
    for l in range(L - 1):  # increasing signed CoC = far to near = back to front (L - 1: left out)
        if counts[l] == 0:
            continue
        r = mean_abs_s[l]
        m = idx == l  # N, H, W
        margin = int(math.ceil(r)) + 2
        rows = torch.nonzero(m.any(dim=0).any(dim=1)).flatten()
        cols = torch.nonzero(m.any(dim=0).any(dim=0)).flatten()
        y0, y1 = max(0, rows[0].item() - margin), min(H, rows[-1].item() + 1 + margin)
        x0, x1 = max(0, cols[0].item() - margin), min(W, cols[-1].item() + 1 + margin)
        mc = m[:, None, y0:y1, x0:x1].to(img.dtype)
        crop = img[..., y0:y1, x0:x1]
        if finite is not None:  # 0 x inf would be NaN: zero the left-out pixels first
            crop = torch.where(finite[:, None, y0:y1, x0:x1], crop, torch.zeros_like(crop))
        layer = torch.cat([crop * mc, mc], dim=1)
        if r >= 1e-3:
            layer = disc_blur(layer, r, base_radius=base_radius, accum_dtype=accum_dtype)
        a = layer[:, C:].clamp(0.0, 1.0)
        new = acc[..., y0:y1, x0:x1] * (1.0 - a) + layer
        if new.requires_grad:
            acc = acc.clone()  # keep the version autograd saved; only paid when differentiating
        acc[..., y0:y1, x0:x1] = new
    alpha = acc[:, C:]
    ok = alpha > 1e-6 if finite is None else (alpha > 1e-6) & finite[:, None]
    out = torch.where(ok, acc[:, :C] / torch.where(ok, alpha, torch.ones_like(alpha)), img)
    return out.permute(0, 2, 3, 1).reshape(image.shape)


def _layer_indices(s: torch.Tensor, finite: torch.Tensor | None, layer_step: float, max_layers: int):
    """Each pixel's layer (0..L-2 back to front; L-1: a pixel left out, where ``finite`` is False) and
    L, for signed CoCs s. Layers of one step centred on s = 0 (the focus plane's own layer); the step is
    ``layer_step``, or wider where ``max_layers`` of them would not cover the 0.1%-99.9% range of s; the
    pixels beyond that range take one extra layer on each side."""
    valid = s.flatten() if finite is None else s[finite]
    if valid.numel() == 0:
        return torch.zeros_like(s, dtype=torch.long), 1
    sample = valid[:: max(1, valid.numel() // 65536)]  # quantile of a strided sample: cheap at 4K
    q_lo, q_hi = torch.quantile(sample, torch.tensor([0.001, 0.999], dtype=sample.dtype,
                                                     device=sample.device)).tolist()
    lo, hi = min(q_lo, 0.0), max(q_hi, 0.0)
    step = max(float(layer_step), 1e-6, (hi - lo) / max(1, int(max_layers)))
    first, last = math.floor(lo / step + 0.5), math.floor(hi / step + 0.5)
    idx = (s / step + (0.5 - (first - 1))).floor_().clamp_(0, last - first + 2).long()
    left_out = last - first + 3
    if finite is not None:
        idx = torch.where(finite, idx, torch.full_like(idx, left_out))
    return idx, left_out + 1


# ------------------------------------------------------------------------------------------------
# baseline: a faithful small re-implementation of LE3D's refocus, for the benchmark


def refocus_le3d_fft(image: torch.Tensor, depth: torch.Tensor, focus_depth: float, aperture: float, *,
                     num_bins: int = 32) -> torch.Tensor:
    """LE3D-style refocus (re-implemented from the paper's viewer description, for comparison only).

    LE3D renders a 32-bin depth histogram (an MPI of per-bin weights) between near and far, turns it
    into premultiplied layers, blurs *every* layer with a Gaussian whose kernel size is 2 floor(r) + 1
    (OpenCV's sigma rule 0.3 ((k - 1) / 2 - 1) + 0.8) by multiplying FFTs of the whole frame padded
    by the largest kernel, and composites front over back without renormalisation. Here the
    histogram is the one-hot bin of the depth map (bins uniform in depth, as LE3D), and the per-bin
    radius uses the same thin-lens CoC as :func:`refocus` at the bin centre so both produce the same
    amount of blur. ``image [H, W, C]``, ``depth [H, W]``."""
    H, W, C = image.shape
    img = image.permute(2, 0, 1)
    valid = torch.isfinite(depth) & (depth > 0)
    near = depth[valid].min().item()
    far = depth[valid].max().item()
    span = max(far - near, 1e-12)
    b = ((depth - near) / span * num_bins).floor().clamp(0, num_bins - 1).long()
    hists = F.one_hot(b, num_bins).permute(2, 0, 1).to(image.dtype)  # bins, H, W
    centres = near + (torch.arange(num_bins, dtype=torch.float64) + 0.5) / num_bins * span
    radii = (float(aperture) * (1.0 / centres - 1.0 / float(focus_depth)).abs()).tolist()
    ks = [2 * int(math.floor(r)) + 1 for r in radii]
    kmax = max(ks)
    Hp, Wp = H + kmax - 1, W + kmax - 1
    kernels = []
    for k in ks:
        if k == 1:
            g2 = torch.zeros(1, 1, dtype=image.dtype, device=image.device)
            g2[0, 0] = 1
        else:
            sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
            t = torch.arange(k, dtype=image.dtype, device=image.device) - (k - 1) / 2
            g = torch.exp(-0.5 * (t / sigma) ** 2)
            g = g / g.sum()
            g2 = g[:, None] * g[None, :]
        p0 = (kmax - k) // 2
        g2 = F.pad(g2, (p0, kmax - k - p0, p0, kmax - k - p0))
        kernels.append(torch.fft.rfft2(g2, s=(Hp, Wp)))
    kf = torch.stack(kernels)[:, None]  # bins, 1, Hp, Wp'

    def blur(x):  # x: bins, K, H, W
        pt, pl = (Hp - H) // 2, (Wp - W) // 2
        xp = F.pad(x, (pl, Wp - W - pl, pt, Hp - H - pt))
        return torch.fft.irfft2(torch.fft.rfft2(xp) * kf, s=(Hp, Wp))[..., -H:, -W:]

    mpi = blur(hists[:, None] * img[None])  # bins, C, H, W
    hb = blur(hists[:, None])
    out = torch.zeros_like(img)
    for i in reversed(range(num_bins)):  # far (large depth) first, near last
        out = mpi[i] + out * (1 - hb[i])
    return out.permute(1, 2, 0)
