"""Lens undistortion on load: the ideal pinhole image is cropped to what the photo covers, and its
camera's principal point moves with the crop (pixels from outside the photo were edge colour that
training and evaluation took as data: 1.6% of each fox view)."""
import numpy as np
import pytest
import torch

from le3d.data.imageops import undistort, valid_rectangle

W, H, F = 80, 60, 70.0
K = np.array([[F, 0, 41.0], [0, F, 29.5], [0, 0, 1.0]])


def _source(K_new, dist_k1, w, h):
    """Photo position of each output pixel centre, by the radial formula written out (k1 only)."""
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = (jj - K_new[0, 2]) / F, (ii - K_new[1, 2]) / F
    radial = 1 + dist_k1 * (x * x + y * y)
    return x * radial * F + K[0, 2], y * radial * F + K[1, 2]


def test_pincushion_crop_holds_only_photo_pixels_and_is_as_large_as_it_can_be():
    """k1 > 0 pulls the border from outside the photo: the output keeps only pixels whose source lies
    in the photo, and growing the crop by one row or column on any side would take in one that does not."""
    k1 = 0.3
    img = torch.zeros(H, W, 3)
    img[..., 2] = 1.0
    img[0, :, 0] = img[-1, :, 0] = img[:, 0, 0] = img[:, -1, 0] = 1.0  # a red ring: the photo's edge
    out, K_new = undistort(img, K, [k1, 0, 0, 0])
    h, w = out.shape[:2]
    assert h < H and w < W and out.shape[2] == 3
    u, v = _source(K_new, k1, w, h)
    assert (u >= 0).all() and (u <= W).all() and (v >= 0).all() and (v <= H).all()
    # Border padding made red bands; only pixels within one pixel of the ring can see red now.
    near_ring = (u < 1.5) | (u > W - 1.5) | (v < 1.5) | (v > H - 1.5)
    red = out[..., 0].numpy() > 0.05
    assert not (red & ~near_ring).any()
    for dl, dt, dr, db in ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)):
        K_grown = K_new.copy()
        K_grown[0, 2] += dl
        K_grown[1, 2] += dt
        u, v = _source(K_grown, k1, w + dl + dr, h + dt + db)
        assert not ((u >= 0) & (u <= W) & (v >= 0) & (v <= H)).all()


def test_crop_keeps_the_geometry():
    """A dot painted where a 3D point lands in the distorted photo ends up where the cropped pinhole
    camera projects that point."""
    k1 = 0.25
    p = np.array([0.4, -0.25, 1.0])  # camera coordinates: normalised (0.4, -0.25)
    r2 = p[0] ** 2 + p[1] ** 2
    u_photo, v_photo = p[0] * (1 + k1 * r2) * F + K[0, 2], p[1] * (1 + k1 * r2) * F + K[1, 2]
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    dot = np.exp(-((jj - u_photo) ** 2 + (ii - v_photo) ** 2) / (2 * 1.5 ** 2))
    img = torch.from_numpy(np.repeat(dot[..., None], 3, -1)).float()
    out, K_new = undistort(img, K, [k1, 0, 0, 0])
    o = out[..., 0].numpy()
    h, w = o.shape
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    centroid = np.array([(o * jj).sum(), (o * ii).sum()]) / o.sum()
    expected = K_new[:2, :2] @ p[:2] + K_new[:2, 2]
    np.testing.assert_allclose(centroid, expected, atol=0.15)
    assert K_new[0, 2] < K[0, 2] and K_new[1, 2] < K[1, 2]  # the crop's corner moved in


def test_barrel_distortion_and_none_keep_the_size():
    """k1 < 0 samples inside the photo everywhere: nothing to crop; no distortion: the image as is."""
    img = torch.rand(H, W, 3)
    out, K_new = undistort(img, K, [-0.2, 0, 0, 0])
    assert out.shape == img.shape and np.array_equal(K_new, K)
    out, K_new = undistort(img, K, [0, 0, 0, 0])
    assert out is img and np.array_equal(K_new, K)


def test_valid_rectangle():
    valid = torch.ones(6, 7, dtype=torch.bool)
    valid[0, 3] = valid[4:, 0] = False
    assert valid_rectangle(valid) == (1, 1, 6, 7)  # left column (2 invalid) first, then the top row
    t, l, b, r = valid_rectangle(torch.zeros(3, 3, dtype=torch.bool))
    assert b == t and r == l  # empty


def test_loader_cameras_match_the_cropped_images(tmp_path):
    """transforms.json with k1: each frame's camera has the image's size and the shifted principal point."""
    from test_data_transforms import _write_scene

    from le3d.data import load_scene

    s = load_scene(_write_scene(tmp_path / "s", fl_x=30.0, k1=0.3), split="all")
    f = s.train[0]
    assert (f.camera.height, f.camera.width) == tuple(f.image.shape[:2])
    assert f.image.shape[0] < 30 and f.image.shape[1] < 40
    assert f.camera.K[0, 2].item() < 20.0 and f.camera.K[1, 2].item() < 15.0


def test_distortion_that_leaves_no_image_is_an_error():
    from le3d.errors import Le3dError

    with pytest.raises(Le3dError, match="no part of the"):  # even the centre pixel maps outside
        undistort(torch.rand(8, 8, 3), np.array([[2.0, 0, 4], [0, 2.0, 4], [0, 0, 1]]), [100.0, 0, 0, 0])


def test_raw_loader_crops_the_ground_truth_depth_with_the_image(tmp_path):
    """A RAW scene whose COLMAP camera has k1: a test view's GT depth is resampled (nearest: background
    inf must stay inf, not turn NaN) and cropped with its image, and the camera has their size."""
    import shutil

    from le3d.data import load_scene
    from le3d.data.colmap import read_model, write_model
    from le3d.data.rawnerf import _model_dir
    from le3d.synth.generate import generate

    root = tmp_path / "lamps"
    generate(root, n_views=9, width=80, height=60, seed=3, progress=False)
    model_dir = _model_dir(root)
    model = read_model(model_dir)
    for cam in model.cameras.values():
        Kc, _ = cam.intrinsics()
        cam.model, cam.params = "OPENCV", np.array([Kc[0, 0], Kc[1, 1], Kc[0, 2], Kc[1, 2], 0.2, 0.0, 0.0, 0.0])
    shutil.rmtree(model_dir)
    write_model(model, model_dir)
    gt = np.load(root / "gt" / "frame_000_depth.npy")
    s = load_scene(root)
    f = s.test[0]
    assert f.camera.name == "frame_000" and f.depth is not None
    assert tuple(f.depth.shape) == tuple(f.image.shape[:2]) == (f.camera.height, f.camera.width)
    assert f.image.shape[0] < gt.shape[0] and f.image.shape[1] < gt.shape[1]
    # nearest resampling: every depth is one of the ground truth's (bilinear would blend surfaces)
    assert np.isin(f.depth.numpy(), gt).all()


def test_nearest_mode_keeps_inf_and_values():
    """Depth maps hold inf for the background: bilinear weights of 0 times inf give NaN at pixel centres."""
    depth = torch.full((H, W, 1), 2.0)
    depth[:, W // 2:] = float("inf")
    depth[: H // 2, : W // 2] = 3.0
    out, _ = undistort(depth, K, [0.3, 0, 0, 0], mode="nearest")
    assert not torch.isnan(out).any() and np.isin(out.numpy(), [2.0, 3.0, np.inf]).all()
    assert torch.isinf(out).any()


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535)])
def test_read_ldr_table_is_the_srgb_curve(tmp_path, dtype, top):
    """read_ldr looks code values up in a table (20x faster than the curve per pixel at 1080p); the
    values must be the curve's, bit for bit."""
    import imageio.v3 as iio

    from le3d.color import srgb_eotf
    from le3d.data.imageops import read_ldr

    codes = np.linspace(0, top, 3 * 16 * 16).round().astype(dtype).reshape(16, 16, 3)
    codes[0, 0] = [0, 1, top]
    path = tmp_path / ("x.png" if dtype == np.uint8 else "x.tif")  # (Pillow writes no 16-bit RGB PNG)
    iio.imwrite(path, codes)
    got = read_ldr(path)
    expected = srgb_eotf(torch.from_numpy(codes.astype(np.float32)) / float(top))
    assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_downscale_larger_than_the_image_is_an_error():
    from le3d.data.imageops import downscale_area
    from le3d.errors import Le3dError

    with pytest.raises(Le3dError, match="smaller than one 100x100 block"):  # was a RuntimeError from avg_pool2d
        downscale_area(torch.rand(60, 80, 3), 100)
