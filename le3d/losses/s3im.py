"""S3IM (stochastic structural similarity, ICCV 2023) adapted to splatting.

Sample B pixels of the rendered and target images, repeat R times (the first copy in sampled order,
the others randomly permuted), lay each copy out as a [patch_height, B / patch_height] virtual patch,
put the R patches side by side and compute SSIM with kernel 4 and stride 4. Loss = 1 - S3IM.
"""
from __future__ import annotations

import torch

from le3d.losses.ssim import ssim


def s3im_loss(pred: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None,
              num_pixels: int = 4096, repeats: int = 10, patch_height: int = 64, kernel: int = 4,
              stride: int = 4, data_range: float = 1.0) -> torch.Tensor:
    """pred/target [H,W,C] (or [P,C] pixel lists); returns 1 - S3IM."""
    C = pred.shape[-1]
    p, t = pred.reshape(-1, C), target.reshape(-1, C)
    n = p.shape[0]
    B = min(num_pixels, n)
    B = max(patch_height, B // patch_height * patch_height) if n >= patch_height else n
    ph = patch_height if B >= patch_height else B  # fewer pixels than a patch's height: one column of them
    idx0 = torch.randperm(n, generator=generator)[:B].to(p.device) if B < n else torch.arange(n, device=p.device)
    idxs = [idx0] + [idx0[torch.randperm(B, generator=generator).to(p.device)] for _ in range(repeats - 1)]
    idx = torch.cat(idxs)

    def patch(x):  # [R*B, C] -> [1, C, ph, R*B/ph]
        return x[idx].reshape(repeats, ph, B // ph, C).permute(3, 1, 0, 2).reshape(1, C, ph, repeats * (B // ph))

    return 1.0 - ssim(patch(p), patch(t), window=kernel, sigma=1.5, stride=stride, data_range=data_range)
