

import json
from pathlib import Path

import numpy as np
import pytest

from le3d.data import load_scene

FOX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fox"


@pytest.mark.skipif(not (FOX / "transforms.json").is_file(), reason="shared fox data not present")
def test_fox_transforms():
    meta = json.loads((FOX / "transforms.json").read_text())
    with pytest.warns(UserWarning, match="17 of 67 frames"):
        s = load_scene(FOX, downscale=8)
    assert len(s.train) + len(s.test) == 50 and len(s.test) == 7
    f = s.train[0]
    # 1080x1920 at 1/8 is 135x240, less the band (6-11 px at full size) that undistortion would take
    # from outside the photo
    assert 236 <= f.image.shape[0] < 240 and 132 <= f.image.shape[1] < 135 and s.kind == "ldr"
    assert (f.camera.height, f.camera.width) == tuple(f.image.shape[:2])
    assert f.camera.K[0, 0] == pytest.approx(meta["fl_x"] / 8, rel=1e-5)
    assert meta["cx"] / 8 - 12 / 8 < f.camera.K[0, 2] < meta["cx"] / 8
    # OpenGL c2w -> OpenCV viewmat: the camera centre is the translation of transform_matrix
    fm = next(x for x in meta["frames"] if Path(x["file_path"]).name == Path(f.path).name)
    np.testing.assert_allclose(f.camera.center.numpy(), np.array(fm["transform_matrix"])[:3, 3], atol=1e-4)
    # OpenCV +z looks along -z of the OpenGL frame
    np.testing.assert_allclose(f.camera.viewmat[2, :3].numpy(), -np.array(fm["transform_matrix"])[:3, 2], atol=1e-5)


def _write_scene(root: Path, n=10, reverse=False, **camera):
    """n small PNG frames (named 0000.png ...) and a transforms.json with the given camera keys."""
    import imageio.v3 as iio

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        iio.imwrite(root / f"{i:04d}.png", rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
        c2w = np.eye(4)
        c2w[:3, 3] = [0.1 * i, 0.0, 3.0]
        frames.append({"file_path": f"{i:04d}", "transform_matrix": c2w.tolist()})
    meta = dict(camera, frames=frames[::-1] if reverse else frames)
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize("camera,message", [
    ({"fl_x": 30.0, "camera_model": "OPENCV_FISHEYE", "k1": 0.1}, "OPENCV_FISHEYE is not supported"),
    ({"fl_x": 30.0, "camera_model": "EQUIRECTANGULAR"}, "EQUIRECTANGULAR is not supported"),
    ({"fl_x": 30.0, "is_fisheye": True}, "fisheye is not supported"),
    ({"fl_x": 30.0, "k4": 0.01}, "k4 is not supported"),
])
def test_lens_models_it_cannot_undistort_are_refused(tmp_path, camera, message):
    """Fisheye (nerfstudio's OPENCV_FISHEYE, instant-ngp's is_fisheye) and panoramic scenes were loaded
    as perspective ones with k1 k2 p1 p2 read as Brown-Conrady terms: about 10 px off, silently."""
    from le3d.errors import Le3dError

    with pytest.raises(Le3dError, match=message):
        load_scene(_write_scene(tmp_path / "s", **camera))


def test_k3_is_part_of_the_radial_term():
    """OpenCV's radial term 1 + k1 r^2 + k2 r^4 + k3 r^6 (k3 was dropped: 9 px off on a test scene)."""
    import torch

    from le3d.data.imageops import distort_normalized

    x, y = torch.tensor([0.3]), torch.tensor([0.4])  # r^2 = 0.25, r^6 = 1/64
    xd, yd = distort_normalized(x, y, [0.0, 0.0, 0.0, 0.0, 0.64])
    assert (xd.item(), yd.item()) == pytest.approx((0.3 * 1.01, 0.4 * 1.01))


def test_blender_style_scene_takes_the_focal_length_from_the_image_width(tmp_path):
    """NeRF-synthetic files give camera_angle_x and no w: the focal length uses the image's width."""
    s = load_scene(_write_scene(tmp_path / "s", camera_angle_x=0.8), split="all")
    assert s.train[0].camera.K[0, 0].item() == pytest.approx(0.5 * 40 / np.tan(0.4), rel=1e-6)
    assert s.train[0].camera.K[0, 2].item() == pytest.approx(20.0)


def test_split_every8_by_name_and_unknown_splits_refused(tmp_path):
    """'every8' holds out every 8th frame by file name, whatever order the file lists them in and even
    when it names test frames ('auto' takes those); an unknown split is an error."""
    from le3d.errors import Le3dError

    root = _write_scene(tmp_path / "s", n=10, reverse=True, fl_x=30.0)
    meta = json.loads((root / "transforms.json").read_text())
    meta["test_filenames"] = ["0003.png"]
    (root / "transforms.json").write_text(json.dumps(meta))
    assert [Path(f.path).name for f in load_scene(root, split="every8").test] == ["0000.png", "0008.png"]
    assert [Path(f.path).name for f in load_scene(root, split="auto").test] == ["0003.png"]
    with pytest.raises(Le3dError, match="split 'bogus'"):
        load_scene(root, split="bogus")
