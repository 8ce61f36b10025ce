"""Cone Scatter initialisation (LE3D), vectorised and filtered by visibility.

LE3D scatters extra points uniformly in the volume of the cone the cameras look into, so that
regions SfM misses in the dark (sky, distant lights, textureless walls) get primitives. Geometry:
  apex = mean camera centre - mean viewing direction * (0.1 * near)   (slightly behind the mean camera)
  axis = mean viewing direction; half-angle = widest half field of view (diagonal) plus the largest
         angle between a camera's axis and the mean axis (so every frustum fits), capped at 85 deg
  depth along rays from the apex in [near, 10 * far], near/far = nearest/farthest SfM point from the apex
Improvements over LE3D: keep only points in front of and inside >= `min_views` training cameras, colour
them with the mean (exposure-normalised) pixel they project to, all without Python loops over points.
"""
from __future__ import annotations

import math

import torch


def project_points(points: torch.Tensor, cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """points [P,3] -> (u [M,P], v [M,P], z [M,P]) pixel coordinates and depth in each camera."""
    V = torch.stack([c.viewmat.to(torch.float32) for c in cameras])  # [M,4,4]
    K = torch.stack([c.K.to(torch.float32) for c in cameras])  # [M,3,3]
    pc = torch.einsum("mij,pj->mpi", V[:, :3, :3], points.float()) + V[:, None, :3, 3]
    z = pc[..., 2]
    zs = z.clamp_min(1e-9)
    u = K[:, None, 0, 0] * pc[..., 0] / zs + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * pc[..., 1] / zs + K[:, None, 1, 2]
    return u, v, z


def in_image(u, v, z, cameras, near: float = 1e-3) -> torch.Tensor:
    """[M, P] bool: in front of each camera (z > near) and inside its image (projections of project_points)."""
    W = torch.tensor([c.width for c in cameras], dtype=u.dtype)[:, None]
    H = torch.tensor([c.height for c in cameras], dtype=u.dtype)[:, None]
    return (z > near) & (u >= 0) & (u < W) & (v >= 0) & (v < H)


def world_per_pixel(points: torch.Tensor, cameras) -> torch.Tensor:
    """[P] world size of one pixel at each point in the training view that sees it largest: min over the
    cameras whose image it falls in of z / fx (inf where none does). Initial scales are capped by a few
    of these, so that no Gaussian starts screen-filling in the view nearest it."""
    u, v, z = project_points(points, cameras)
    fx = torch.tensor([float(c.K[0, 0]) for c in cameras], dtype=z.dtype)[:, None]
    return torch.where(in_image(u, v, z, cameras), z / fx, torch.full_like(z, float("inf"))).min(0).values


def sfm_surface_depths(sfm_points: torch.Tensor, cameras, blocks: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Per camera, (nearest, farthest, cell): the nearest and farthest SfM depth over each block's 3x3
    neighbourhood, with square blocks of `cell` pixels, `blocks` of them across the image's shorter
    side; (inf, -inf) where no SfM point projects. The nearest bounds the free space in front of the
    observed surface, the farthest the space hidden behind it."""
    out = []
    u, v, z = project_points(sfm_points, cameras) if len(sfm_points) else (None, None, None)
    for m, cam in enumerate(cameras):
        cell = max(1, min(int(cam.width), int(cam.height)) // blocks)
        hc, wc = -(-int(cam.height) // cell), -(-int(cam.width) // cell)
        near = torch.full((hc * wc,), float("inf"))
        far = torch.full((hc * wc,), float("-inf"))
        if u is not None:
            ins = in_image(u[m:m + 1], v[m:m + 1], z[m:m + 1], [cam])[0]
            idx = (v[m][ins] / cell).long() * wc + (u[m][ins] / cell).long()
            near.scatter_reduce_(0, idx, z[m][ins], "amin")
            far.scatter_reduce_(0, idx, z[m][ins], "amax")
        near = -torch.nn.functional.max_pool2d(-near.view(1, 1, hc, wc), 3, 1, 1).view(hc, wc)
        far = torch.nn.functional.max_pool2d(far.view(1, 1, hc, wc), 3, 1, 1).view(hc, wc)
        out.append((near, far, cell))
    return out


def carve_with_sfm(points: torch.Tensor, sfm_points: torch.Tensor, cameras, min_views: int = 2,
                   blocks: int = 4, margin: float = 0.1) -> torch.Tensor:
    """[P] bool: keep scattered points that no camera sees through to an SfM point (in front of the
    observed surface: free space, so a floater) and that >= min_views cameras see unoccluded
    (not behind every SfM point of the pixel block). Blocks without SfM points decide nothing, so
    dark regions SfM missed keep their scattered points: that is what Cone Scatter is for."""
    if len(points) == 0 or len(sfm_points) == 0:
        return torch.ones(len(points), dtype=torch.bool)
    surfaces = sfm_surface_depths(sfm_points, cameras, blocks)
    u, v, z = project_points(points, cameras)
    ins = in_image(u, v, z, cameras)
    free = torch.zeros(len(points), dtype=torch.bool)
    seen = torch.zeros(len(points), dtype=torch.long)
    for m, (near, far, cell) in enumerate(surfaces):
        hc, wc = near.shape
        i = (v[m] / cell).long().clamp(0, hc - 1)
        j = (u[m] / cell).long().clamp(0, wc - 1)
        zn, zf = near[i, j], far[i, j]
        free |= ins[m] & torch.isfinite(zn) & (z[m] < zn * (1 - margin))
        hidden = torch.isfinite(zf) & (z[m] > zf * (1 + margin))
        seen += (ins[m] & ~hidden).long()
    return ~free & (seen >= min_views)


def cone_scatter(points: torch.Tensor, cameras, n: int, generator: torch.Generator | None = None,
                 min_views: int = 2, max_rounds: int = 6, carve: bool = False) -> torch.Tensor:
    """Up to `n` points uniform in the cameras' cone volume, each inside >= min_views cameras
    (with `carve`, also consistent with the SfM points: see carve_with_sfm). min_views is capped at the
    number of cameras (a single view would otherwise keep nothing)."""
    if n <= 0 or not cameras:
        return torch.zeros(0, 3)
    min_views = max(1, min(min_views, len(cameras)))
    centers = torch.stack([c.center.float() for c in cameras])
    axes = torch.stack([c.viewmat[2, :3].float() for c in cameras])  # camera z axis in world
    axes = axes / axes.norm(dim=-1, keepdim=True)
    axis = axes.mean(0)
    axis = axis / axis.norm().clamp_min(1e-9) if axis.norm() > 1e-6 else axes[0]
    spread = torch.acos((axes @ axis).clamp(-1, 1)).max().item()
    half_fov = max(math.atan(math.hypot(c.width / (2 * float(c.K[0, 0])), c.height / (2 * float(c.K[1, 1]))))
                   for c in cameras)
    half_angle = min(math.radians(85.0), half_fov + spread)
    c0 = centers.mean(0)
    if len(points):
        d = (points.float() - c0).norm(dim=-1)
        near, far = max(d.min().item(), 1e-3), max(d.max().item(), 1e-2)
    else:
        near, far = 0.1, 10.0
    apex = c0 - axis * 0.1 * near
    lo, hi = near, 10.0 * far
    # orthonormal basis around the axis
    helper = torch.tensor([1.0, 0, 0]) if abs(axis[0]) < 0.9 else torch.tensor([0, 1.0, 0])
    e1 = torch.linalg.cross(axis, helper)
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(axis, e1)
    kept = []
    total = 0
    for _ in range(max_rounds):
        m = max(2 * (n - total), 1024)
        r = torch.rand(m, 3, generator=generator)
        t = (lo ** 3 + r[:, 0] * (hi ** 3 - lo ** 3)) ** (1.0 / 3.0)  # uniform in volume: pdf ~ t^2
        cos_t = 1 - r[:, 1] * (1 - math.cos(half_angle))  # uniform in solid angle
        sin_t = torch.sqrt((1 - cos_t ** 2).clamp_min(0))
        phi = 2 * math.pi * r[:, 2]
        dirs = (cos_t[:, None] * axis + sin_t[:, None] * (torch.cos(phi)[:, None] * e1 + torch.sin(phi)[:, None] * e2))
        pts = apex + t[:, None] * dirs
        u, v, z = project_points(pts, cameras)
        ok = in_image(u, v, z, cameras).sum(0) >= min_views
        if carve:
            ok &= carve_with_sfm(pts, points.float(), cameras, min_views)
        pts = pts[ok][: n - total]
        kept.append(pts)
        total += len(pts)
        if total >= n or len(pts) < 0.005 * m:  # done, or the SfM points already explain the cone
            break
    return torch.cat(kept) if kept else torch.zeros(0, 3)


def _gather(img: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """img[i, j] for an [H, W, C] image: a row gather of its flat view where it has one (faster), else
    advanced indexing (never a copy of the whole image)."""
    if img.is_contiguous():
        return img.view(-1, img.shape[-1]).index_select(0, i * img.shape[1] + j)
    return img[i, j]


def pixel_colors(points: torch.Tensor, frames, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean exposure-normalised pixel colour over the frames each point projects into -> ([P,3], count [P]:
    the frames it projects into). A gather of the P projected pixels per frame (never a copy of the images).
    Frames with a measured-value mask (Bayer mosaic: one measured channel per pixel, zeros elsewhere) give
    each channel the mean of its measured values in the 2x2 CFA quad holding the pixel (the packed image's
    colour there), not the unmeasured zeros."""
    P = points.shape[0]
    acc = torch.zeros(P, 3)
    wsum = torch.zeros(P, 3)  # measured values per channel (masked frames)
    cnt = torch.zeros(P)
    cams = [f.camera for f in frames]
    for s in range(0, P, chunk):
        u, v, z = project_points(points[s:s + chunk], cams)
        ins = in_image(u, v, z, cams)
        for m, f in enumerate(frames):
            pi = ins[m].nonzero().squeeze(1)
            H, W = f.image.shape[:2]
            j = u[m, pi].long().clamp_(0, W - 1)
            i = v[m, pi].long().clamp_(0, H - 1)
            e = max(float(f.exposure), 1e-12)
            if f.mask is None:
                vals = _gather(f.image, i, j).float() / e
            else:  # the 2x2 quad at even offsets (every channel of a 2x2 CFA), kept inside the image
                i0, j0 = (i - i % 2).clamp(max=max(H - 2, 0)), (j - j % 2).clamp(max=max(W - 2, 0))
                vals, w = torch.zeros(len(pi), 3), torch.zeros(len(pi), 3)
                for di in (0, 1):
                    for dj in (0, 1):
                        ii, jj = (i0 + di).clamp(max=H - 1), (j0 + dj).clamp(max=W - 1)
                        mk = _gather(f.mask, ii, jj).float()
                        vals += _gather(f.image, ii, jj).float() * mk
                        w += mk
                vals = vals / e
                wsum.index_add_(0, pi + s, w - 1)  # on top of the count below
            acc.index_add_(0, pi + s, vals)
            cnt.index_add_(0, pi + s, torch.ones(len(pi)))
    return acc / (cnt[:, None] + wsum).clamp_min(1), cnt


def _mean_color(f) -> torch.Tensor:
    """A frame's mean exposure-normalised colour [3] (measured values only where it has a mask)."""
    img = f.image.float() / max(float(f.exposure), 1e-12)
    if f.mask is None:
        return img.reshape(-1, 3).mean(0)
    return (img * f.mask).sum((0, 1)) / f.mask.sum((0, 1)).clamp_min(1)


def initial_points(scene, cone: bool = True, cone_factor: float = 5.0, min_views: int = 2,
                   generator: torch.Generator | None = None, carve: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(points [N,3], linear colours [N,3], is_scattered [N] bool) for a Scene."""
    pts = scene.points.float().reshape(-1, 3)
    cams = [f.camera for f in scene.train]
    extra = torch.zeros(0, 3)
    if cone:
        n = int(round(cone_factor * max(len(pts), 1000 if len(pts) == 0 else 0)))
        extra = cone_scatter(pts, cams, n, generator, min_views, carve=carve)
    allp = torch.cat([pts, extra])
    cols, cnt = pixel_colors(allp, scene.train)
    # points that no camera sees keep a grey level near the image mean
    if (cnt == 0).any():
        mean = torch.stack([_mean_color(f) for f in scene.train]).mean(0)
        cols[cnt == 0] = mean
    floor = max(cols[cnt > 0].mean().item() * 1e-3, 1e-6) if (cnt > 0).any() else 1e-6
    cols = cols.clamp_min(floor)
    scattered = torch.cat([torch.zeros(len(pts), dtype=torch.bool), torch.ones(len(extra), dtype=torch.bool)])
    return allp, cols, scattered
