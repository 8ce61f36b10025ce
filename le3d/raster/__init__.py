"""The tile rasterizer: projection (torch), footprints, compositing; reference and compiled backends."""
from le3d.raster.gaussians import rasterize_gaussians
from le3d.raster.types import RenderOutput

__all__ = ["rasterize_gaussians", "RenderOutput"]
