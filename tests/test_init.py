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


def test_carving_drops_floaters_and_hidden_points_but_keeps_unexplored_space():
    """SfM sees a wall (z = 5) on the left half of three cameras: a scattered point in front of it is
    a floater (free space), one behind it is hidden from every camera; one on the right, where SfM
    found nothing, stays (the dark regions Cone Scatter exists for)."""
    from scenes import intrinsics, look_at_viewmat

    from le3d.data.types import Camera
    from le3d.init.cone import carve_with_sfm

    cams = [Camera(look_at_viewmat((x, 0.0, 0.0), (x, 0.0, 5.0)), intrinsics(64, 48, 60.0), 64, 48, f"c{i}")
            for i, x in enumerate((-0.3, 0.0, 0.3))]
    xs, ys = torch.meshgrid(torch.arange(-4.0, 0.0, 0.1), torch.arange(-3.0, 3.0, 0.1), indexing="ij")
    wall = torch.stack([xs.flatten(), ys.flatten(), torch.full((xs.numel(),), 5.0)], -1)
    scattered = torch.tensor([[-1.0, 0.0, 2.0], [-1.0, 0.0, 9.0], [2.5, 0.0, 7.0]])
    keep = carve_with_sfm(scattered, wall, cams, min_views=2)
    assert keep.tolist() == [False, False, True]
    # no SfM points: nothing to carve with, everything stays
    assert bool(carve_with_sfm(scattered, torch.zeros(0, 3), cams).all())
