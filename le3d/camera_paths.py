"""Camera paths for videos: orbit, LLFF spiral around the training poses, key frames from JSON.

All functions take and return le3d.data.Camera (OpenCV, world-to-camera viewmat). New cameras use the
intrinsics and size of the first input camera.

Key-frame JSON (`path:FILE.json`):
    {"frames": 120, "fps": 30,            # optional (defaults: 120 frames, 30 fps)
     "keyframes": [
        {"position": [x, y, z], "look_at": [x, y, z], "up": [0, -1, 0]},   # up optional
        {"c2w": [[...4x4 camera-to-world, OpenCV axes...]]},
        {"view": "name of a scene camera"}
     ]}
Positions are interpolated with a centripetal-free uniform Catmull-Rom spline, rotations by slerp.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from le3d.data.types import Camera
from le3d.errors import Le3dError


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def look_at(position, target, up, like: Camera, name: str = "") -> Camera:
    """Camera at `position` looking at `target` with world `up` (image y points along -up)."""
    p = torch.as_tensor(position, dtype=torch.float64)
    z = _normalize(torch.as_tensor(target, dtype=torch.float64) - p)
    u = torch.as_tensor(up, dtype=torch.float64)
    x = torch.linalg.cross(-u, z)
    if x.norm() < 1e-9:  # looking along up: pick any perpendicular
        x = torch.linalg.cross(torch.tensor([1.0, 0, 0], dtype=torch.float64), z)
        if x.norm() < 1e-9:
            x = torch.linalg.cross(torch.tensor([0, 1.0, 0], dtype=torch.float64), z)
    x = _normalize(x)
    y = torch.linalg.cross(z, x)
    return _from_c2w_rt(torch.stack([x, y, z], 1), p, like, name)


def _from_c2w_rt(R_c2w: torch.Tensor, center: torch.Tensor, like: Camera, name: str) -> Camera:
    V = torch.eye(4, dtype=torch.float64)
    V[:3, :3] = R_c2w.T
    V[:3, 3] = -R_c2w.T @ center
    return Camera(V.float(), like.K.clone().float(), like.width, like.height, name)


def _c2w(cam: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    V = cam.viewmat.double()
    R = V[:3, :3]
    return R.T, -R.T @ V[:3, 3]


def scene_frame(cameras: list[Camera]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean centre, world up, look-at target) of a set of cameras. The target is the point closest
    (least squares) to all optical axes, falling back to 1 unit ahead of the mean camera."""
    Rs, cs = zip(*(_c2w(c) for c in cameras))
    cs = torch.stack(cs)
    up = _normalize(-torch.stack([R[:, 1] for R in Rs]).mean(0))
    fwd = torch.stack([R[:, 2] for R in Rs])
    A = torch.zeros(3, 3, dtype=torch.float64)
    b = torch.zeros(3, dtype=torch.float64)
    for c, d in zip(cs, fwd):
        P = torch.eye(3, dtype=torch.float64) - torch.outer(d, d)
        A += P
        b += P @ c
    mean_c = cs.mean(0)
    target = mean_c + _normalize(fwd.mean(0))
    if len(cameras) >= 2 and torch.linalg.matrix_rank(A) == 3 and torch.linalg.cond(A) < 1e6:
        t = torch.linalg.solve(A, b)
        if ((t - cs) * fwd).sum(-1).mean() > 0:  # in front of the cameras
            target = t
    return mean_c, up, target


def orbit(cameras: list[Camera], n_frames: int = 120, turns: float = 1.0) -> list[Camera]:
    """A circle around the look-at target of `cameras`, in the plane perpendicular to their mean up,
    at their mean height and mean distance from the vertical axis through the target."""
    mean_c, up, target = scene_frame(cameras)
    cs = torch.stack([_c2w(c)[1] for c in cameras])
    rel = cs - target
    h = (rel @ up).mean()
    horiz = rel - (rel @ up)[:, None] * up
    radius = float(horiz.norm(dim=-1).mean())
    if radius < 1e-6:
        radius = float(rel.norm(dim=-1).mean()) or 1.0
    e1 = horiz.mean(0)
    if e1.norm() < 1e-6 * radius:
        e1 = horiz[0]
    e1 = _normalize(e1 - (e1 @ up) * up)
    e2 = torch.linalg.cross(up, e1)
    out = []
    for i in range(n_frames):
        t = 2 * math.pi * turns * i / n_frames
        p = target + h * up + radius * (math.cos(t) * e1 + math.sin(t) * e2)
        out.append(look_at(p, target, up, cameras[0], f"orbit_{i:04d}"))
    return out


def spiral(cameras: list[Camera], n_frames: int = 120, depth_range: tuple[float, float] | None = None,
           rotations: float = 2.0, zrate: float = 0.5, percentile: float = 90.0) -> list[Camera]:
    """The LLFF/NeRF forward-facing spiral: around the average pose, radii from the `percentile` of
    the camera offsets, looking at the focal depth 1 / ((1-0.75)/near + 0.75/far)."""
    Rs, cs = zip(*(_c2w(c) for c in cameras))
    cs = torch.stack(cs)
    center = cs.mean(0)
    z = _normalize(torch.stack([R[:, 2] for R in Rs]).sum(0))
    down = torch.stack([R[:, 1] for R in Rs]).sum(0)
    x = _normalize(torch.linalg.cross(down, z))
    y = torch.linalg.cross(z, x)
    Ravg = torch.stack([x, y, z], 1)
    local = (cs - center) @ Ravg  # offsets in the average camera frame
    rads = torch.quantile(local.abs(), percentile / 100.0, dim=0).clamp_min(1e-6)
    if depth_range is None:
        zs = torch.stack([(torch.zeros(3, dtype=torch.float64) - c) @ R[:, 2] for R, c in zip(Rs, cs)])
        near, far = 0.5, max(2.0, float(zs.abs().mean()) * 2)
    else:
        near, far = depth_range
    focal = 1.0 / ((1 - 0.75) / near + 0.75 / far)
    target = center + focal * z
    out = []
    for i in range(n_frames):
        t = 2 * math.pi * rotations * i / n_frames
        off = torch.stack([torch.tensor(math.cos(t)), torch.tensor(-math.sin(t)),
                           torch.tensor(-math.sin(t * zrate))]).double() * rads
        p = center + Ravg @ off
        out.append(look_at(p, target, -y, cameras[0], f"spiral_{i:04d}"))
    return out


# ---- key frames ---------------------------------------------------------------------------------

def _rot_to_quat(R: torch.Tensor) -> torch.Tensor:
    from le3d.data.colmap import rotmat_to_qvec

    return torch.from_numpy(rotmat_to_qvec(R.detach().double().cpu().numpy()))


def _quat_to_rot(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = q
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])])


def _slerp(q0: torch.Tensor, q1: torch.Tensor, t: float) -> torch.Tensor:
    d = float(q0 @ q1)
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        return _normalize(q0 + t * (q1 - q0))
    th = math.acos(d)
    return (math.sin((1 - t) * th) * q0 + math.sin(t * th) * q1) / math.sin(th)


def interpolate(keys: list[Camera], n_frames: int) -> list[Camera]:
    """Smooth path through key cameras: Catmull-Rom positions, slerped rotations, n_frames in all."""
    if len(keys) == 1:
        return [Camera(keys[0].viewmat.clone(), keys[0].K.clone(), keys[0].width, keys[0].height,
                       f"key_{i:04d}") for i in range(n_frames)]
    Rs, cs = zip(*(_c2w(c) for c in keys))
    qs = [_rot_to_quat(R) for R in Rs]
    P = [cs[0]] + list(cs) + [cs[-1]]
    out = []
    segs = len(keys) - 1
    for i in range(n_frames):
        u = segs * i / max(1, n_frames - 1)
        k = min(int(u), segs - 1)
        t = u - k
        p0, p1, p2, p3 = P[k], P[k + 1], P[k + 2], P[k + 3]
        pos = 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                     + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)
        R = _quat_to_rot(_slerp(qs[k], qs[k + 1], t))
        out.append(_from_c2w_rt(R, pos, keys[0], f"key_{i:04d}"))
    return out


def load_keyframes(path, cameras: list[Camera], frames: int | None = None) -> tuple[list[Camera], float]:
    """Read a key-frame JSON (module doc) -> (interpolated cameras, fps). ``frames``: the number of
    cameras to interpolate, instead of the file's 'frames' (default 120)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise Le3dError(f"{path}: camera path file not found") from None
    except (OSError, ValueError) as e:
        raise Le3dError(f"{path}: cannot read camera path JSON ({e})") from None
    keys_in = spec.get("keyframes") if isinstance(spec, dict) else None
    if not keys_in:
        raise Le3dError(f"{path}: needs a non-empty 'keyframes' list")
    by_name = {c.name: c for c in cameras}
    _, up0, _ = scene_frame(cameras) if cameras else (None, torch.tensor([0, -1.0, 0]), None)
    keys = []
    for i, kf in enumerate(keys_in):
        try:
            if "view" in kf:
                if kf["view"] not in by_name:
                    raise Le3dError(f"{path}: keyframe {i}: no scene camera named {kf['view']!r}")
                keys.append(by_name[kf["view"]])
            elif "c2w" in kf:
                M = torch.as_tensor(kf["c2w"], dtype=torch.float64)
                if M.shape not in ((4, 4), (3, 4)):
                    raise Le3dError(f"{path}: keyframe {i}: c2w must be 3x4 or 4x4")
                keys.append(_from_c2w_rt(M[:3, :3], M[:3, 3], cameras[0], f"key{i}"))
            else:
                keys.append(look_at(kf["position"], kf["look_at"], kf.get("up", up0.tolist()), cameras[0], f"key{i}"))
        except (KeyError, TypeError, ValueError) as e:
            raise Le3dError(f"{path}: keyframe {i}: needs 'view', 'c2w' or 'position' + 'look_at' ({e})") from None
    n = int(spec.get("frames", 120)) if frames is None else int(frames)
    if n < 1:
        raise Le3dError(f"{path}: 'frames' must be >= 1")
    return interpolate(keys, n), float(spec.get("fps", 30.0))
