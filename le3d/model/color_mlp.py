"""The shared colour MLP of LE3D: colour = exp(MLP([f, enc(view_dir)]) + f_dc), linear camera RGB.

tinycudann's FullyFusedMLP is used when it is installed and the inputs are on CUDA; the torch
fallback computes the same function (ReLU hidden layers, no bias, linear output), so weights are
interchangeable (tcnn stores the same matrices, padded, in one flat half-precision buffer).
"""
from __future__ import annotations

import math

import torch
from torch import nn

try:  # optional
    import tinycudann as _tcnn  # type: ignore
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _tcnn = None

LOG_MAX = 12.0  # exp() argument clamp: linear radiance up to ~1.6e5, far above any sensor range


def encode_dirs(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Frequency encoding of unit directions: [d, sin(2^k pi d), cos(2^k pi d)] for k < degree."""
    if degree <= 0:
        return dirs
    parts = [dirs]
    for k in range(degree):
        parts += [torch.sin((2.0 ** k) * math.pi * dirs), torch.cos((2.0 ** k) * math.pi * dirs)]
    return torch.cat(parts, dim=-1)


class ColorMLP(nn.Module):
    """[f (feature_dim), enc(dir)] -> hidden x layers (ReLU) -> 3 log-colour offsets."""

    def __init__(self, feature_dim: int = 16, hidden: int = 64, layers: int = 2, dir_degree: int = 0):
        super().__init__()
        self.feature_dim, self.hidden, self.layers, self.dir_degree = feature_dim, hidden, layers, dir_degree
        in_dim = feature_dim + 3 * (1 + 2 * dir_degree)
        dims = [in_dim] + [hidden] * layers + [3]
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():  # start near zero so colour = exp(f_dc) at initialisation
            self.linears[-1].weight.mul_(0.01)

    def forward(self, features: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, encode_dirs(dirs, self.dir_degree)], dim=-1)
        for k, lin in enumerate(self.linears):
            x = lin(x)
            if k < len(self.linears) - 1:
                x = torch.relu(x)
        return x

    @staticmethod
    def fused_available(device: torch.device) -> bool:
        return _tcnn is not None and device.type == "cuda"


def mlp_color(mlp: ColorMLP, features: torch.Tensor, f_dc: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """colour = exp(MLP([f, dir]) + f_dc), with the exponent clamped for safety."""
    return torch.exp((mlp(features, dirs) + f_dc).clamp(max=LOG_MAX))


def colour_head_config(color_mode: str, feature_dim: int, sh_degree: int, mlp: ColorMLP | None) -> dict:
    """The colour-head part of a model's saved config (shared by Gaussian and convex models)."""
    c = {"color_mode": color_mode, "feature_dim": feature_dim, "sh_degree": sh_degree}
    if mlp is not None:
        c.update(mlp_hidden=mlp.hidden, mlp_layers=mlp.layers, dir_degree=mlp.dir_degree)
    return c


def colour_head_kwargs(c: dict) -> dict:
    """Constructor keywords of the colour head from a saved config (defaults for older RUNs)."""
    return dict(color_mode=c["color_mode"], feature_dim=c.get("feature_dim", 16), mlp_hidden=c.get("mlp_hidden", 64),
                mlp_layers=c.get("mlp_layers", 2), dir_degree=c.get("dir_degree", 0), sh_degree=c.get("sh_degree", 3))
