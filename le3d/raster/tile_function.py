"""autograd.Function over the compiled tile rasterizer (one forward and one backward kernel).

Both footprints (Gaussian, convex) and both devices (CPU, CUDA) go through this one Function;
the footprint kind and device pick the kernel.
"""
from __future__ import annotations

import torch

from le3d._ext import load_extension


def _kernels(device: torch.device):
    ext = load_extension()
    if ext is None:
        raise RuntimeError("le3d: the compiled rasterizer is not available")
    if device.type == "cuda":
        if not ext.with_cuda:
            raise RuntimeError(
                "le3d: this build has no CUDA backend; rebuild with LE3D_BUILD_CUDA=1 "
                "(see README, 'GPU install')"
            )
        return ext.rasterize_forward_cuda, ext.rasterize_backward_cuda
    return ext.rasterize_forward_cpu, ext.rasterize_backward_cpu


class RasterizeTiles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, params, features, depths, coords, background, bounds, footprint: int, width: int,
                height: int, nearfar_k: int):
        forward_kernel, _ = _kernels(params.device)
        # coords None: no distortion output (the kernels take "none" explicitly; a [0] coordinate with no
        # primitives still has one)
        image, alpha, depth, distortion, near, far, aux, offsets, ids = forward_kernel(
            params, footprint, features, depths, coords, bounds, background, width, height, nearfar_k
        )
        ctx.save_for_backward(params, features, depths, coords, bounds, background, near, far, aux, offsets, ids)
        ctx.config = (footprint, width, height, nearfar_k, coords is not None)
        ctx.mark_non_differentiable(aux)
        ctx.set_materialize_grads(False)  # outputs outside the loss arrive as None, not zero-filled images
        return image, alpha, depth, distortion, near, far

    @staticmethod
    def backward(ctx, d_image, d_alpha, d_depth, d_distortion, d_near, d_far):
        params, features, depths, coords, bounds, background, near, far, aux, offsets, ids = ctx.saved_tensors
        footprint, width, height, nearfar_k, has_coords = ctx.config
        _, backward_kernel = _kernels(params.device)

        absent = near.new_empty(0)  # the kernels read an empty upstream gradient as zeros (composite.h)

        def upstream(g):  # any strides: the expanded gradient of out.sum() / out.mean() is read in place
            return absent if g is None else g

        d_params, d_features, d_depths, d_coords, d_background = backward_kernel(
            params, footprint, features, depths, coords, bounds, background, width, height, nearfar_k, near, far,
            aux, offsets, ids, upstream(d_image), upstream(d_alpha), upstream(d_depth), upstream(d_distortion),
            upstream(d_near), upstream(d_far),
        )
        return (d_params, d_features, d_depths, d_coords if has_coords else None, d_background,
                None, None, None, None, None)
