"""Conversions between viser's browser camera and le3d's OpenCV `Camera`.

viser reports, per client, the camera pose as `wxyz` (camera-to-world rotation, quaternion w,x,y,z)
and `position` (camera centre, world), with camera axes in the OpenCV convention (+x right, +y down,
+z forward), the *vertical* field of view `fov` in radians and the canvas aspect (width / height).
"""
from __future__ import annotations

import math

import numpy as np
import torch

# One quaternion convention (w, x, y, z; w >= 0) for the whole project: the COLMAP reader's.
from le3d.data.colmap import qvec_to_rotmat as quat_to_rotmat  # noqa: E402
from le3d.data.colmap import rotmat_to_qvec as rotmat_to_quat  # noqa: E402
from le3d.data.types import Camera

__all__ = ["quat_to_rotmat", "rotmat_to_quat", "viser_to_camera", "camera_to_viser", "render_size"]


def render_size(aspect: float, max_width: int, max_height: int | None = None) -> tuple[int, int]:
    """(width, height) of a render with the canvas `aspect` that fits max_width x max_height."""
    aspect = float(aspect) if aspect and math.isfinite(aspect) and aspect > 0 else 16 / 9
    w = int(max_width)
    h = max(1, round(w / aspect))
    if max_height is not None and h > max_height:
        h = int(max_height)
        w = max(1, round(h * aspect))
    return max(1, w), h


def viser_to_camera(wxyz, position, fov: float, width: int, height: int, name: str = "viewer") -> Camera:
    """A pinhole Camera of `width` x `height` pixels for viser's camera state (fov = vertical, radians).
    Square pixels, principal point at the image centre."""
    R_c2w = quat_to_rotmat(wxyz)
    t = np.asarray(position, dtype=np.float64).reshape(3)
    V = np.eye(4)
    V[:3, :3] = R_c2w.T
    V[:3, 3] = -R_c2w.T @ t
    f = 0.5 * height / math.tan(0.5 * float(fov))
    K = np.array([[f, 0.0, 0.5 * width], [0.0, f, 0.5 * height], [0.0, 0.0, 1.0]])
    return Camera(torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32),
                  int(width), int(height), name)


def camera_to_viser(camera: Camera) -> dict:
    """viser pose and lens of an OpenCV Camera: wxyz, position, vertical fov (radians), aspect."""
    V = camera.viewmat.double().cpu().numpy()
    R_c2w = V[:3, :3].T
    pos = -R_c2w @ V[:3, 3]
    fy = float(camera.K[1, 1])
    fov = 2.0 * math.atan(0.5 * camera.height / fy)
    return {"wxyz": rotmat_to_quat(R_c2w), "position": pos, "fov": fov, "aspect": camera.width / camera.height}
