"""le3d: radiance fields for dark and HDR scenes (RAW training, Gaussian and convex splatting)."""
from __future__ import annotations

__version__ = "0.1.0"

from le3d.raster import RenderOutput, rasterize_gaussians  # noqa: E402
from le3d.raster.backends import backend_info  # noqa: E402
from le3d.run import load_run  # noqa: E402

__all__ = ["__version__", "RenderOutput", "rasterize_gaussians", "backend_info", "load_run"]
