"""Initialisation: SfM points plus Cone Scatter (LE3D), colours from the images, k-NN scales."""
from le3d.init.cone import cone_scatter, initial_points, project_points
from le3d.init.knn import knn_scales

__all__ = ["cone_scatter", "initial_points", "knn_scales", "project_points"]
