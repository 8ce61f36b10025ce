"""autograd.Function over the fused Gaussian projection (C++ on CPU, CUDA on GPU).

One kernel per direction instead of the ~60 elementwise ops of the PyTorch twin
(le3d.raster.projection.project_gaussians, which tests compare this to and which the "torch"
backend, float64 and gradients w.r.t. K keep using). Gradients: means, quats, scales, viewmat
(optional); opacities move only the culling bound, which is not differentiated (their gradient
comes through the footprint parameters).
"""
from __future__ import annotations

import torch

from le3d._ext import load_extension


class ProjectGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmat, K, width: int, height: int, near: float,
                far: float):
        means2d, conics, depths, bounds, radii = load_extension().project_gaussians_forward(
            means, quats, scales, opacities, viewmat, K, width, height, near, far)
        ctx.save_for_backward(means, quats, scales, viewmat, K)
        ctx.config = (width, height, near, far)
        ctx.mark_non_differentiable(bounds, radii)
        ctx.set_materialize_grads(False)  # no zero-filled gradients for bounds and radii (two launches)
        return means2d, conics, depths, bounds, radii

    @staticmethod
    def backward(ctx, d_means2d, d_conics, d_depths, _d_bounds, _d_radii):
        means, quats, scales, viewmat, K = ctx.saved_tensors
        width, height, near, far = ctx.config

        def dense(g, shape):
            return means.new_zeros(shape) if g is None else g.contiguous()

        def rows(g, shape):  # contiguous rows suffice: the slices of the rasterizer's d params go in as they are
            return means.new_zeros(shape) if g is None else (g if g.stride(-1) == 1 else g.contiguous())

        n = means.shape[0]
        viewmat_grad = ctx.needs_input_grad[4]
        d_means, d_quats, d_scales, d_view_shares = load_extension().project_gaussians_backward(
            means, quats, scales, viewmat, K, width, height, near, far, rows(d_means2d, (n, 2)),
            rows(d_conics, (n, 3)), dense(d_depths, (n,)), viewmat_grad)
        d_viewmat = viewmat_grad_from_shares(d_view_shares, viewmat) if viewmat_grad else None
        return d_means, d_quats, d_scales, None, d_viewmat, None, None, None, None, None


def viewmat_grad_from_shares(shares: torch.Tensor, viewmat: torch.Tensor) -> torch.Tensor:
    """The [4, 4] viewmat gradient from per-primitive shares [N, 12] (dR row-major, then dt), as the
    compiled projections return them (summed here, in one reduction, rather than with atomics)."""
    total = shares.sum(0) if shares.shape[0] else shares.new_zeros(12)
    d_viewmat = torch.zeros_like(viewmat)
    d_viewmat[:3, :3] = total[:9].view(3, 3)
    d_viewmat[:3, 3] = total[9:]
    return d_viewmat


def project_gaussians_fused(means, quats, scales, opacities, viewmat, K, width: int, height: int,
                            near: float = 0.01, far: float = 1e10):
    """Same outputs as projection.project_gaussians (means2d, conics, depths, bounds, radii)."""
    return ProjectGaussians.apply(*(t.contiguous() for t in (means, quats, scales, opacities, viewmat, K)),
                                  width, height, float(near), float(far))
