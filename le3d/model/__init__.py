"""Scene models: Gaussians or smooth convexes with a shared colour MLP (LE3D) or SH colour (baselines),
exposure gains."""
from le3d.model.color_mlp import ColorMLP
from le3d.model.exposure import ExposureGains
from le3d.model.gaussians import GaussianModel
from le3d.model.sh import eval_sh, rgb_to_sh0

__all__ = ["ColorMLP", "ConvexModel", "ExposureGains", "GaussianModel", "eval_sh", "rgb_to_sh0"]


def __getattr__(name):  # ConvexModel imports convex_splat, which imports le3d.raster: load it on first use
    if name == "ConvexModel":
        from le3d.model.convexes import ConvexModel

        return ConvexModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
