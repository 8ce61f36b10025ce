"""Projection of 3D Gaussians to screen-space footprints, in PyTorch (shared by every backend).

Per Gaussian, as 3DGS / gsplat: world -> camera with `viewmat`, covariance R S S^T R^T, EWA
Jacobian with gsplat's off-screen clamp, 2D covariance + 0.3 I, conic = its inverse.
The screen bound is exact rather than a fixed 3 sigma: alpha >= 1/255 only inside the ellipse
d^T S^-1 d <= 2 ln(255 o), whose box half-widths are sqrt(2 ln(255 o) S_xx), sqrt(2 ln(255 o) S_yy)
(at most 3.33 sigma, as gsplat's radius), so splats are never cut at the tile bound.
Autograd differentiates it, so gradients reach means, quats, scales, opacities and viewmat.
"""
from __future__ import annotations

import torch

from le3d.raster.constants import ALPHA_MIN, EPS2D

_BOUND_MARGIN_REL = 1e-3  # float-rounding slack on the exact bound
_BOUND_MARGIN_ABS = 1e-2  # pixels


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """[N, 4] (w, x, y, z), normalised here -> [N, 3, 3]."""
    w, x, y, z = torch.unbind(quats / quats.norm(dim=-1, keepdim=True), dim=-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


def culled_bounds(n: int, like: torch.Tensor) -> torch.Tensor:
    """Bounds that mark a primitive as culled (xmin > xmax)."""
    return like.new_tensor([1.0, 1.0, -1.0, -1.0]).expand(n, 4)


def bounds_in_image(bounds: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[N] bool: the box reaches at least one pixel centre of the image."""
    x0 = torch.ceil(bounds[:, 0] - 0.5).clamp(min=0)
    x1 = torch.floor(bounds[:, 2] - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(bounds[:, 1] - 0.5).clamp(min=0)
    y1 = torch.floor(bounds[:, 3] - 0.5).clamp(max=height - 1)
    return (x0 <= x1) & (y0 <= y1)


def project_gaussians(means, quats, scales, opacities, viewmat, K, width: int, height: int,
                      near: float = 0.01, far: float = 1e10):
    """Returns (means2d [N,2], conics [N,3], depths [N], bounds [N,4], radii [N] int32).

    depths is the view-space z of each mean (sort key and depth output); bounds mark culled
    Gaussians (z < near, z > far, opacity <= 1/255, or outside the image) with xmin > xmax.
    """
    R = viewmat[:3, :3]
    t = viewmat[:3, 3]
    means_c = means @ R.T + t
    # Camera-space covariance R M M^T R^T with M = rot(q) diag(s), as V V^T where V = R M. V^T =
    # M^T R^T is one [3N, 3] x [3, 3] product: batched 3x3 products (bmm) cost 40% of a 1M-Gaussian
    # training step on an H100 (cuBLAS launches many tiny GEMMs), this one GEMM does not.
    M = quat_to_rotmat(quats) * scales[:, None, :]
    Vt = (M.transpose(1, 2).reshape(-1, 3) @ R.T).reshape(-1, 3, 3)  # Vt[n, j, i] = V[n, i, j]
    z = means_c[:, 2]
    valid = (z >= near) & (z <= far)  # cull z < near or z > far (as gsplat's kernel)
    z_safe = torch.where(valid, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    tx = z_safe * torch.clamp(means_c[:, 0] / z_safe, min=-lim_x_neg, max=lim_x_pos)
    ty = z_safe * torch.clamp(means_c[:, 1] / z_safe, min=-lim_y_neg, max=lim_y_pos)
    # EWA Jacobian J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]]; cov2d = (J V)(J V)^T + 0.3 I,
    # with the two rows of J V written out (J is sparse), so no batched products either.
    inv_z = 1.0 / z_safe
    rows_v = Vt.transpose(1, 2)  # [N, 3 (row i of V), 3]
    u0 = (fx * inv_z)[:, None] * (rows_v[:, 0] - (tx * inv_z)[:, None] * rows_v[:, 2])
    u1 = (fy * inv_z)[:, None] * (rows_v[:, 1] - (ty * inv_z)[:, None] * rows_v[:, 2])
    a = (u0 * u0).sum(-1) + EPS2D
    b = (u0 * u1).sum(-1)
    c = (u1 * u1).sum(-1) + EPS2D
    det = (a * c - b * b).clamp(min=1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    means2d = torch.stack([fx * means_c[:, 0] / z_safe + cx, fy * means_c[:, 1] / z_safe + cy], dim=-1)

    with torch.no_grad():
        reach = 2.0 * torch.log((opacities.detach() / ALPHA_MIN).clamp(min=1.0))  # 2 ln(255 o)
        ext_x = torch.sqrt(reach * a.detach()) * (1 + _BOUND_MARGIN_REL) + _BOUND_MARGIN_ABS
        ext_y = torch.sqrt(reach * c.detach()) * (1 + _BOUND_MARGIN_REL) + _BOUND_MARGIN_ABS
        m = means2d.detach()
        bounds = torch.stack([m[:, 0] - ext_x, m[:, 1] - ext_y, m[:, 0] + ext_x, m[:, 1] + ext_y], -1)
        keep = valid & (opacities.detach() > ALPHA_MIN) & torch.isfinite(bounds).all(-1)
        keep &= bounds_in_image(bounds, width, height)
        bounds = torch.where(keep[:, None], bounds, culled_bounds(len(bounds), bounds))
        radii = torch.where(keep, torch.ceil(torch.maximum(ext_x, ext_y)), torch.zeros_like(ext_x)).int()
    return means2d, conics, z, bounds.float().contiguous(), radii


def gaussian_params(means2d, conics, opacities) -> torch.Tensor:
    """Packs the footprint parameters [N, 6] read by footprint_gaussian.h."""
    return torch.cat([means2d, conics, opacities[:, None]], dim=-1)


