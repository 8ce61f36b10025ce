"""Random Gaussian scenes and cameras for rasterizer tests (seeded, small), and the shared real points."""
from __future__ import annotations

import math
from pathlib import Path

import torch

GARDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "garden" / "test_garden.npz"


def look_at_viewmat(eye, target=(0.0, 0.0, 0.0), up=(0.0, -1.0, 0.0), dtype=torch.float32):
    """World-to-camera [4,4] (OpenCV: x right, y down, z forward) looking from eye at target."""
    eye, target, up = (torch.tensor(v, dtype=torch.float64) for v in (eye, target, up))
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, up)
    if x.norm() < 1e-8:
        x = torch.linalg.cross(z, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z])
    V = torch.eye(4, dtype=torch.float64)
    V[:3, :3] = R
    V[:3, 3] = -R @ eye
    return V.to(dtype)


def intrinsics(width, height, fov_deg=60.0, dtype=torch.float32):
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)


def random_gaussians(n, C=3, seed=0, spread=1.0, scale=(0.02, 0.15), dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * spread
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    lo, hi = math.log(scale[0]), math.log(scale[1])
    scales = torch.exp(torch.rand(n, 3, generator=g, dtype=torch.float64) * (hi - lo) + lo)
    opacities = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    features = torch.rand(n, C, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (means, quats, scales, opacities, features)]


def camera(width, height, distance=3.0, dtype=torch.float32):
    """A camera for random-scene comparisons. Its K has fx != fy and an off-centre principal point, so
    that a backend which swaps fx and fy, or takes fx for the mean focal length, disagrees with another."""
    K = intrinsics(width, height, dtype=dtype)
    K[1, 1] *= 1.15
    K[0, 2] += 0.37
    K[1, 2] -= 0.61
    return look_at_viewmat((0.3, -0.2, -distance), dtype=dtype), K


def garden_points(path=GARDEN) -> dict:
    """The real SfM points and cameras of Mip-NeRF 360's garden (gsplat's test asset, ../shared/data):
    means [N, 3], colours [N, 3] in [0, 1], viewmats [3, 4, 4] (OpenCV world-to-camera), Ks [3, 3, 3],
    and the cameras' width and height (648 x 420)."""
    import numpy as np

    data = np.load(path)
    return dict(means=torch.from_numpy(data["means3d"]).float(),
                colours=torch.from_numpy(data["colors"]).float() / 255,
                viewmats=torch.from_numpy(data["viewmats"]).float(), Ks=torch.from_numpy(data["Ks"]).float(),
                width=int(data["width"]), height=int(data["height"]))
