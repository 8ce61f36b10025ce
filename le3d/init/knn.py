"""Initial Gaussian scales from the mean distance to the k nearest neighbours (3DGS)."""
from __future__ import annotations

import numpy as np
import torch


def knn_scales(points: torch.Tensor, k: int = 3) -> torch.Tensor:
    """[N,3] -> [N] mean distance to the k nearest other points (scipy cKDTree; O(N log N))."""
    n = points.shape[0]
    if n == 0:
        return points.new_zeros(0)
    if n == 1:
        return points.new_full((1,), 0.01)
    from scipy.spatial import cKDTree

    p = points.detach().double().cpu().numpy()
    k_eff = min(k, n - 1)
    d, _ = cKDTree(p).query(p, k=k_eff + 1)
    d = np.asarray(d)[:, 1:].reshape(n, k_eff)
    d = d.mean(1)
    pos = d[d > 0]
    floor = float(np.median(pos)) * 1e-2 if pos.size else 1e-3
    return torch.from_numpy(np.maximum(d, floor)).to(points.dtype)
