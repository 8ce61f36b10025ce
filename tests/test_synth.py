

import json

import numpy as np
import pytest
import torch

from le3d.data import load_scene
from le3d.errors import Le3dError
from le3d.synth.generate import generate


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "lamps"
    generate(out, n_views=9, width=80, height=60, seed=3, mixed_exposures=True, progress=False)
    return out


def test_layout_and_determinism(scene_dir, tmp_path):
    meta = json.loads((scene_dir / "scene.json").read_text())
    assert meta["test"] == ["frame_000", "frame_008"]
    assert len(list((scene_dir / "raw").glob("*.dng"))) == 9
    gt = np.load(scene_dir / "gt" / "frame_000.npy")
    assert gt.shape == (60, 80, 3)
    # HDR: lamps are far brighter than lit surfaces, > 16 stops above the darkest lit pixels
    pos = gt[gt > 0]
    assert pos.max() / np.percentile(pos, 1) > 2 ** 16
    with pytest.raises(Le3dError, match="already exists"):
        generate(scene_dir, n_views=9, width=80, height=60, seed=3, progress=False)
    other = tmp_path / "again"
    generate(other, n_views=9, width=80, height=60, seed=3, mixed_exposures=True, progress=False)
    assert (other / "raw" / "frame_004.dng").read_bytes() == (scene_dir / "raw" / "frame_004.dng").read_bytes()


def test_loader_on_synthetic(scene_dir):
    s = load_scene(scene_dir)
    assert [f.camera.name for f in s.test] == ["frame_000", "frame_008"]
    assert len(s.train) == 7 and s.kind == "raw"
    exps = sorted({round(f.exposure, 6) for f in s.train})
    assert exps[0] == pytest.approx(0.25) and exps[-1] == pytest.approx(4.0)
    f = s.test[0]
    gt = torch.from_numpy(np.load(scene_dir / "gt" / "frame_000.npy"))
    unsat = gt.max(-1).values < 0.5
    # noisy frame is unbiased around the clean ground truth (same units, exposure 1)
    assert abs(float((f.image - gt)[unsat].mean())) < 2e-3
    # poses: SfM points project in front of the camera at the GT depth
    c = f.camera
    X = s.points @ c.viewmat[:3, :3].T + c.viewmat[:3, 3]
    uv = X @ c.K.T
    u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
    ok = (X[:, 2] > 0) & (u >= 0) & (u < c.width) & (v >= 0) & (v < c.height)
    assert ok.sum() > 100
    d = f.depth[v[ok].long(), u[ok].long()]
    rel = ((d - X[ok, 2]).abs() / X[ok, 2])
    # visible points sit on the GT surface; occluded ones lie behind it, never in front
    assert float((rel < 0.02).float().mean()) > 0.4
    assert float((X[ok, 2] < 0.97 * d).float().mean()) < 0.05
    m = load_scene(scene_dir, bayer="mosaic")
    assert m.train[0].image.shape == (120, 160, 3) and m.train[0].mask.sum() == 120 * 160
    d2 = load_scene(scene_dir, downscale=2)
    assert d2.train[0].image.shape == (30, 40, 3) and d2.train[0].camera.K[0, 0] == pytest.approx(float(s.train[0].camera.K[0, 0]) / 2)


def test_bad_scene_sizes(scene_dir, tmp_path):
    import shutil

    from le3d.raw import write_dng

    bad = tmp_path / "bad"
    shutil.copytree(scene_dir, bad)
    write_dng(bad / "raw" / "frame_003.dng", np.zeros((40, 40), np.uint16), black_level=0, white_level=4095)
    with pytest.raises(Le3dError, match="frame_003.dng: image is 40x40"):
        load_scene(bad)


def test_scene_carries_camera_to_xyz(scene_dir):
    """Raw scenes carry inverse(ColorMatrix) so white balance by colour temperature is exact."""
    from le3d.raw import read_dng

    s = load_scene(scene_dir)
    raw = read_dng(next((scene_dir / "raw").glob("*.dng")))
    cm = torch.as_tensor(raw.color_matrix1, dtype=torch.float32)
    assert s.cam_to_xyz is not None
    assert torch.allclose(s.cam_to_xyz @ cm, torch.eye(3), atol=1e-4)


def test_sfm_dark_fraction_keeps_points_off_the_darkest_pixels(scene_dir, tmp_path):
    """--sfm-dark-fraction: the SfM points come only from the brighter pixels of each view, so their
    (preview) colours are brighter on average than with points on every surface."""
    dark = tmp_path / "dark"
    generate(dark, n_views=9, width=80, height=60, seed=3, mixed_exposures=True, progress=False,
             sfm_dark_fraction=0.6)
    everywhere, bright_only = load_scene(scene_dir), load_scene(dark)
    assert len(bright_only.points) == len(everywhere.points)
    assert bright_only.point_colors.float().mean() > 1.2 * everywhere.point_colors.float().mean()
    with pytest.raises(Le3dError, match="sfm-dark-fraction"):
        generate(tmp_path / "bad", n_views=9, width=80, height=60, sfm_dark_fraction=1.0, progress=False)
