"""The scene contract between loaders (le3d.data), the trainer, the renderer and the viewer.

Conventions (../DESIGN.md): OpenCV cameras, world-to-camera `viewmat` [4, 4], intrinsics `K` [3, 3],
pixel (i, j) centred at (j + 0.5, i + 0.5); images [H, W, C] float32, linear RAW values unclipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Camera:
    """A pinhole camera (images are undistorted on load)."""

    viewmat: torch.Tensor  # [4, 4] float32, world-to-camera, OpenCV axes
    K: torch.Tensor  # [3, 3] float32
    width: int
    height: int
    name: str = ""

    @property
    def center(self) -> torch.Tensor:
        """Camera centre in world coordinates [3]."""
        R, t = self.viewmat[:3, :3], self.viewmat[:3, 3]
        return -R.T @ t

    def scaled(self, factor: float) -> Camera:
        """The same camera for an image resized by `factor` (e.g. 0.25 for a 4x downscale)."""
        K = self.K.clone()
        K[:2] *= factor
        return Camera(self.viewmat.clone(), K, max(1, round(self.width * factor)),
                      max(1, round(self.height * factor)), self.name)


@dataclass
class Frame:
    """One training/test image with its camera and capture metadata."""

    camera: Camera
    image: torch.Tensor  # [H, W, 3] float32: linear camera RGB (raw scenes) or linear sRGB (ldr)
    exposure: float = 1.0  # exposure time x gain relative to the scene's reference exposure
    mask: torch.Tensor | None = None  # [H, W, 3] bool: measured values (Bayer mosaic training)
    depth: torch.Tensor | None = None  # [H, W] ground-truth view-space z, where known
    path: str = ""


@dataclass
class Scene:
    """What a loader returns; everything the trainer needs."""

    train: list[Frame]
    test: list[Frame]
    points: torch.Tensor  # [P, 3] SfM points (world)
    point_colors: torch.Tensor  # [P, 3] in [0, 1]
    kind: str = "raw"  # "raw": linear camera RGB; "ldr": images are linearised sRGB
    cam_to_srgb: torch.Tensor = field(default_factory=lambda: torch.eye(3))  # [3, 3] linear
    white_balance: torch.Tensor = field(default_factory=lambda: torch.ones(3))  # as-shot gains
    root: str = ""
    name: str = ""
    cam_to_xyz: torch.Tensor | None = None  # [3, 3] camera RGB -> XYZ (inverse ColorMatrix), raw scenes
    # the DNG colour profile of raw scenes, for white balances other than as-shot (the matrices of that
    # white): {color_matrix1, illuminant1, color_matrix2, illuminant2, forward_matrix1, forward_matrix2}
    # as JSON-able lists / EXIF codes (le3d.raw.dng.color_profile_of); None for LDR scenes
    color_profile: dict | None = None

    @property
    def cameras(self) -> list[Camera]:
        return [f.camera for f in self.train + self.test]
