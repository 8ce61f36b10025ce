import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy_scene import toy_scene  # noqa: E402

from le3d.init import cone_scatter, initial_points, knn_scales, project_points  # noqa: E402


def test_cone_scatter_points_seen_by_two_cameras():
    s = toy_scene()
    cams = [f.camera for f in s.train]
    pts = cone_scatter(s.points, cams, 2000, torch.Generator().manual_seed(0), min_views=2)
    assert len(pts) == 2000
    u, v, z = project_points(pts, cams)
    W, H = cams[0].width, cams[0].height
    inside = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    assert bool((inside.sum(0) >= 2).all())


def test_initial_points_colours_and_flags():
    s = toy_scene()
    pts, cols, scattered = initial_points(s, cone=True, cone_factor=5.0, generator=torch.Generator().manual_seed(0))
    assert int((~scattered).sum()) == len(s.points)
    assert int(scattered.sum()) == 5 * len(s.points)
    assert bool((cols > 0).all()) and bool(torch.isfinite(cols).all())


def test_knn_scales():
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    s = knn_scales(pts, k=3)
    assert torch.allclose(s[0], torch.tensor((1 + 2 + 3) / 3))
