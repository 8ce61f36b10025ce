"""Per-exposure learnable RGB gains for multi-exposure captures (LE3D).

Each distinct training exposure gets an RGB gain (stored as a log); the gain of the longest
exposure is frozen at 1 to fix the scale. The prediction for a frame is
radiance * exposure * gain(exposure); unseen exposures (test views) use gain 1.
"""
from __future__ import annotations

import torch
from torch import nn


class ExposureGains(nn.Module):
    def __init__(self, exposures: list[float]):
        super().__init__()
        keys = sorted({round(float(e), 9) for e in exposures})
        self.keys = keys
        self.log_gains = nn.Parameter(torch.zeros(len(keys), 3))
        self.frozen = len(keys) - 1  # the longest exposure

    def gain(self, exposure: float) -> torch.Tensor:
        key = round(float(exposure), 9)
        if key not in self.keys or len(self.keys) < 2:
            return self.log_gains.new_ones(3)
        i = self.keys.index(key)
        if i == self.frozen:
            return self.log_gains.new_ones(3)
        return torch.exp(self.log_gains[i])
