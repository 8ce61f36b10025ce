"""Smooth 3D convex primitives (3D Convex Splatting) on le3d's tile rasterizer."""
from convex_splat.densify import ConvexDensifier
from convex_splat.model import ConvexSet
from convex_splat.rasterize import rasterize_convexes

__all__ = ["rasterize_convexes", "ConvexSet", "ConvexDensifier"]
