"""Audit of the initialisation (le3d/init) and of convex_splat's model/densification: regressions."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from scenes import intrinsics, look_at_viewmat  # noqa: E402

from convex_splat.densify import ConvexDensifier  # noqa: E402
from convex_splat.model import ConvexSet  # noqa: E402
from le3d.data.types import Camera, Frame, Scene  # noqa: E402
from le3d.init.cone import initial_points, pixel_colors  # noqa: E402
from le3d.raw.bayer import masked_full  # noqa: E402


def _cam(x: float, w: int = 8, h: int = 6, name: str = "c") -> Camera:
    return Camera(look_at_viewmat((x, 0.0, -3.0), (x, 0.0, 0.0)), intrinsics(w, h, 60.0), w, h, name)


def test_mosaic_frames_colour_points_with_measured_values_only():
    """Bayer-mosaic frames (bayer='mosaic': one measured channel per pixel, zeros elsewhere) of a flat
    object of linear colour (0.2, 0.4, 0.6) at exposure 2: every point's colour is (0.1, 0.2, 0.3),
    not the measured-or-zero average (R 0, G 0.27, B 0.2 before the fix)."""
    true = torch.tensor([0.2, 0.4, 0.6])
    frames = []
    for k, x in enumerate((-0.1, 0.0, 0.1)):
        _, mask = masked_full(torch.zeros(6, 8), "RGGB")
        frames.append(Frame(_cam(x, name=f"c{k}"), true.expand(6, 8, 3) * mask, 2.0, mask))
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.1, 0.3], [-0.2, -0.15, 0.1]])
    cols, cnt = pixel_colors(pts, frames)
    assert cnt.tolist() == [3.0, 3.0, 3.0]
    assert torch.allclose(cols, (true / 2).expand(3, 3), rtol=1e-6)
    sc = Scene(frames, [], pts, torch.zeros(3, 3), "raw", torch.eye(3), torch.ones(3), "", "mosaic")
    _, cols, _ = initial_points(sc, cone=False)
    assert torch.allclose(cols, (true / 2).expand(3, 3), rtol=1e-6)


def test_pixel_colors_pick_the_pixel_holding_the_projection():
    """Pixel j covers u in [j, j + 1) (centres at j + 0.5): a point projecting to u = 3.0 + eps reads
    column 3, one at 2.999 column 2; values are divided by the exposure."""
    cam = Camera(torch.eye(4), torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 1]]), 8, 6, "c")
    img = torch.arange(8.0).view(1, 8, 1).expand(6, 8, 3).contiguous()
    # u = 10 x / z, v = 10 y / z at z = 1
    pts = torch.tensor([[0.30001, 0.25, 1.0], [0.2999, 0.25, 1.0], [0.0, 0.0, 1.0]])
    cols, cnt = pixel_colors(pts, [Frame(cam, img, 4.0)])
    assert cols[:, 0].tolist() == [0.75, 0.5, 0.0]


def test_pixel_colors_never_copy_the_images():
    """Full-size views: colouring P points gathers P pixels per view; it must not materialise
    (exposure-normalised, stacked) copies of the images (+576 MB for these two 4000x3000 views before
    the fix, ~10 s on a 50-view full-size scene). Run in a child process to read its peak memory."""
    code = textwrap.dedent("""
        import resource, sys, torch
        sys.path.insert(0, sys.argv[1])
        from scenes import intrinsics, look_at_viewmat
        from le3d.data.types import Camera, Frame
        from le3d.init.cone import pixel_colors
        W, H = 4000, 3000
        frames = [Frame(Camera(look_at_viewmat((0.1 * k, 0.0, -3.0), (0.1 * k, 0.0, 0.0)), intrinsics(W, H, 60.0),
                               W, H), torch.tensor([0.1, 0.2, 0.3]).expand(H, W, 3), 2.0) for k in range(2)]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cols, cnt = pixel_colors(torch.zeros(10, 3), frames)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(grown, float(cols[0, 2]), float(cnt.min()))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True, timeout=120, check=True)
    grown_mb, blue, seen = (float(x) for x in out.stdout.split())
    assert seen == 2.0 and abs(blue - 0.15) < 1e-7
    assert grown_mb < 100, f"pixel_colors grew the peak memory by {grown_mb:.0f} MB"


def test_cone_scatter_with_a_single_camera_and_no_sfm_points():
    """min_views (default 2) is capped at the number of cameras: one view and no SfM points gave no
    point at all (the trainer then fails with 'no SfM points and no cone-scatter points')."""
    sc = Scene([Frame(_cam(0.0, 32, 24), torch.full((24, 32, 3), 0.1))], [], torch.zeros(0, 3), torch.zeros(0, 3),
               "raw", torch.eye(3), torch.ones(3), "", "one")
    pts, cols, scattered = initial_points(sc, cone=True, cone_factor=5.0, generator=torch.Generator().manual_seed(0))
    assert len(pts) == 5000 and bool(scattered.all())  # 5 x 1000 when there are no SfM points
    assert torch.allclose(cols, torch.full_like(cols, 0.1))


def test_prune_an_empty_convex_set():
    """0 convexes: nothing to prune (was IndexError from argmax over an empty tensor)."""
    cs = ConvexSet(torch.zeros(0, 6, 3), torch.ones(0), torch.ones(0), torch.full((0,), 0.5))
    assert ConvexDensifier().prune(cs, None) == 0
    assert len(cs) == 0


def test_from_state_dict_keeps_dtype_of_every_parameter():
    """A float64 state rebuilds a float64 set exactly (log_delta/log_sigma/opacity were float32)."""
    pts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0 / 3]], dtype=torch.float64)
    cs = ConvexSet.from_points(pts, k=4)
    with torch.no_grad():
        cs.log_delta += 1e-12  # not representable in float32 next to ~1.6
    state = {k: v.detach() for k, v in cs.state_dict().items()}
    back = ConvexSet.from_state_dict(state)
    for name in ConvexSet.BASE:
        assert getattr(back, name).dtype == torch.float64
        assert torch.equal(getattr(back, name), state[name])


def test_split_then_prune_keeps_adam_rows_with_their_convexes():
    """Adam rows follow their convexes through a split (children get zero rows) and a prune."""
    cs = ConvexSet.from_points(torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), k=4)
    opt = torch.optim.Adam([getattr(cs, n) for n in cs.per_primitive], lr=1e-3)
    for n in cs.per_primitive:  # grad of row r = r + 1: exp_avg = 0.1 (r + 1) after one step
        p = getattr(cs, n)
        p.grad = (torch.arange(4.0) + 1).view(-1, *[1] * (p.dim() - 1)).expand_as(p).clone()
    opt.step()
    with torch.no_grad():
        cs.opacity_logit[0] = -10.0  # pruned below
    dens = ConvexDensifier(max_count=100)
    assert dens.split(cs, opt, torch.tensor([False, False, True, False])) == 1
    assert len(cs) == 3 + 4
    assert dens.prune(cs, opt) == 1
    expect = torch.tensor([0.2, 0.4, 0.0, 0.0, 0.0, 0.0])  # rows 1 and 3, then the 4 children
    for n in cs.per_primitive:
        avg = opt.state[getattr(cs, n)]["exp_avg"]
        assert torch.allclose(avg.reshape(6, -1)[:, 0], expect), n


def test_world_per_pixel_takes_the_views_that_see_the_point_with_their_own_focal_length():
    """The initial scale cap paired each point's nearest depth over all cameras (also those whose image
    it falls outside) with the largest fx of any camera: here 1/1000 instead of 4/200."""
    from le3d.data.types import Camera
    from le3d.init.cone import world_per_pixel

    def cam(z_offset, f, name):
        V = torch.eye(4)
        V[2, 3] = z_offset  # camera at z = -z_offset, looking along +z
        return Camera(V, torch.tensor([[f, 0, 50.0], [0, f, 50.0], [0, 0, 1]]), 100, 100, name)

    near_wide = cam(4.0, 200.0, "a")  # sees the point at depth 4, 200 px focal length
    close_but_off = cam(1.0, 1000.0, "b")
    close_but_off.viewmat[0, 3] = 5.0  # shifted: the point projects at u = 1000 * 5 / 1 + 50, outside
    pts = torch.tensor([[0.0, 0.0, 0.0]])
    assert world_per_pixel(pts, [near_wide, close_but_off]).item() == pytest.approx(4.0 / 200.0)
    assert torch.isinf(world_per_pixel(pts, [close_but_off])).all()  # seen by none: no cap
