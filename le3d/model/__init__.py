"""Scene models: Gaussians with a shared colour MLP (LE3D) or SH colour (baselines), exposure gains."""
from le3d.model.color_mlp import ColorMLP
from le3d.model.exposure import ExposureGains
from le3d.model.gaussians import GaussianModel
from le3d.model.sh import eval_sh, rgb_to_sh0

__all__ = ["ColorMLP", "ExposureGains", "GaussianModel", "eval_sh", "rgb_to_sh0"]
