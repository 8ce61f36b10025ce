

import numpy as np
import pytest

from le3d.data.colmap import (
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    qvec_to_rotmat,
    read_model,
    rotmat_to_qvec,
    write_model,
)
from le3d.errors import Le3dError


def _model():
    rng = np.random.default_rng(0)
    cams = {1: ColmapCamera(1, "OPENCV", 640, 480, np.array([500.0, 510.0, 320.5, 240.25, 0.01, -0.002, 1e-4, 2e-4])),
            2: ColmapCamera(2, "SIMPLE_RADIAL", 320, 240, np.array([250.0, 160.0, 120.0, 0.03]))}
    imgs = {}
    for k in range(1, 4):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] > 0 else -q
        imgs[k] = ColmapImage(k, q, rng.normal(size=3), 1 + k % 2, f"img {k}.png",
                              rng.uniform(0, 300, (5, 2)), np.array([1, -1, 2, 3, -1]))
    pts = rng.normal(size=(7, 3))
    return ColmapModel(cams, imgs, pts, rng.integers(0, 255, (7, 3)).astype(np.uint8), rng.uniform(0, 1, 7),
                       np.arange(1, 8))


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip(tmp_path, binary):
    m = _model()
    write_model(m, tmp_path, binary=binary)
    r = read_model(tmp_path)
    for k, c in m.cameras.items():
        assert r.cameras[k].model == c.model and (r.cameras[k].width, r.cameras[k].height) == (c.width, c.height)
        np.testing.assert_allclose(r.cameras[k].params, c.params)
    for k, im in m.images.items():
        assert r.images[k].name == im.name
        np.testing.assert_allclose(r.images[k].qvec, im.qvec)
        np.testing.assert_allclose(r.images[k].xys, im.xys)
        np.testing.assert_array_equal(r.images[k].point3D_ids, im.point3D_ids)
    np.testing.assert_allclose(r.points, m.points)
    np.testing.assert_array_equal(r.colors, m.colors)
    K, dist = r.cameras[1].intrinsics()
    assert K[0, 0] == 500 and K[1, 2] == 240.25 and dist[3] == 2e-4


def test_quaternion_conversion():
    rng = np.random.default_rng(3)
    for _ in range(10):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] > 0 else -q
        R = qvec_to_rotmat(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(rotmat_to_qvec(R), q, atol=1e-9)


def test_reads_pycolmap_binary(tmp_path):
    import pycolmap  # a dev dependency (pyproject [dev]): missing, the test fails rather than skips
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera(model="PINHOLE", width=100, height=80, params=[90.0, 91.0, 50.0, 40.0], camera_id=1)
    rec.add_camera_with_trivial_rig(cam) if hasattr(rec, "add_camera_with_trivial_rig") else rec.add_camera(cam)
    pose = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([0.1, 0.2, 0.3, np.sqrt(1 - 0.14)])), np.array([1.0, 2.0, 3.0]))
    img = pycolmap.Image(name="a.png", camera_id=1, image_id=1)
    rec.add_image_with_trivial_frame(img, pose)
    rec.add_point3D(np.array([0.5, 0.5, 4.0]), pycolmap.Track(), np.array([10, 20, 30], np.uint8))
    rec.write_binary(str(tmp_path))
    m = read_model(tmp_path)
    assert m.cameras[1].model == "PINHOLE" and m.cameras[1].width == 100
    np.testing.assert_allclose(m.images[1].tvec, [1, 2, 3])
    R = m.images[1].viewmat()[:3, :3]
    np.testing.assert_allclose(R, rec.images[1].cam_from_world().rotation.matrix(), atol=1e-9)
    np.testing.assert_allclose(m.points, [[0.5, 0.5, 4.0]])


def test_bad_model(tmp_path):
    with pytest.raises(Le3dError, match="no cameras"):
        read_model(tmp_path)
    write_model(_model(), tmp_path, binary=True)
    data = (tmp_path / "images.bin").read_bytes()
    (tmp_path / "images.bin").write_bytes(data[:50])
    with pytest.raises(Le3dError, match="truncated"):
        read_model(tmp_path)


@pytest.mark.parametrize("full,packed", [((4001, 3000), (2000, 1500)), ((4000, 3001), (2000, 1500)),
                                         ((1001, 750), (500, 375))])
def test_packed_camera_is_exactly_half_the_sensor_camera(full, packed):
    """A packed Bayer image's pixel (i, j) is the sensor's 2x2 cell at (2i, 2j), also where the sensor's
    width or height is odd and packing drops the last column or row: its K is the sensor K halved."""
    from types import SimpleNamespace

    from le3d.data.rawnerf import _camera

    K = np.array([[3000.0, 0, 2000.5], [0, 2990.0, 1500.25], [0, 0, 1]])
    camera = SimpleNamespace(width=full[0], height=full[1], intrinsics=lambda: (K, np.zeros(4)))
    Kp, _ = _camera(SimpleNamespace(cameras={1: camera}), SimpleNamespace(camera_id=1, name="x"), *packed, 1)
    np.testing.assert_allclose(Kp[:2], K[:2] / 2)
    # a point at sensor u = 3800 (a cell's centre: pixels 3799 and 3800) lands at packed u = 1900
    x = (3800.0 - K[0, 2]) / K[0, 0]
    assert Kp[0, 0] * x + Kp[0, 2] == pytest.approx(1900.0)
