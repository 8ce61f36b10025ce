"""Viewer logic without a browser: camera conversion, render worker scheduling, frames and modes."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch
from ports import free_port

from viewer.camera import camera_to_viser, quat_to_rotmat, render_size, rotmat_to_quat, viser_to_camera
from viewer.render import MODES, ViewSettings, coverage_count, render_frame
from viewer.source import GaussianSource, _read_3dgs_ply_dc
from viewer.worker import RenderWorker


def _random_rotation(g):
    q = torch.randn(4, generator=g, dtype=torch.float64)
    return quat_to_rotmat((q / q.norm()).numpy())


def test_quaternion_roundtrip():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        R = _random_rotation(g)
        assert np.allclose(quat_to_rotmat(rotmat_to_quat(R)), R, atol=1e-10)


def test_viser_camera_conversion_projects_like_opencv():
    # camera at (1, 2, 3) looking along world +x, image up = world +z (OpenCV: y down = world -z)
    R_c2w = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: cam x, y, z in world
    pos = np.array([1.0, 2.0, 3.0])
    fov = math.radians(60)
    cam = viser_to_camera(rotmat_to_quat(R_c2w), pos, fov, 640, 360)
    assert torch.allclose(cam.center.double(), torch.tensor(pos), atol=1e-5)
    assert cam.K[1, 1].item() == pytest.approx(180 / math.tan(math.radians(30)), rel=1e-6)
    assert cam.K[0, 0].item() == pytest.approx(cam.K[1, 1].item())
    # a point straight ahead projects to the image centre, a point above projects above the centre
    for p, expect_up in ((pos + [5.0, 0, 0], False), (pos + [5.0, 0, 1.0], True)):
        pc = cam.viewmat[:3, :3].double() @ torch.tensor(p) + cam.viewmat[:3, 3].double()
        assert pc[2] > 0
        uv = (cam.K.double() @ (pc / pc[2]))[:2]
        assert uv[0].item() == pytest.approx(320.0, abs=1e-6)
        assert (uv[1].item() < 180.0 - 1) if expect_up else (uv[1].item() == pytest.approx(180.0, abs=1e-6))
    # and back to viser
    v = camera_to_viser(cam)
    assert np.allclose(quat_to_rotmat(v["wxyz"]), R_c2w, atol=1e-6)
    assert np.allclose(v["position"], pos, atol=1e-5)
    assert v["fov"] == pytest.approx(fov, rel=1e-6)
    assert v["aspect"] == pytest.approx(640 / 360)


def test_render_size():
    assert render_size(16 / 9, 1280) == (1280, 720)
    assert render_size(2.0, 1000, 300) == (600, 300)
    assert render_size(float("nan"), 160)[0] == 160


def test_worker_latest_request_wins_and_full_res_after_settle():
    done = []
    gate = threading.Event()

    def render(job, preview):
        if job == "slow":
            gate.wait(5)
        done.append((job, preview))

    w = RenderWorker(render, lambda e: None, settle_s=0.1)
    try:
        w.request("slow", moving=True)
        time.sleep(0.05)
        for i in range(10):  # arrive while the slow render runs: only the last one survives
            w.request(i, moving=True)
        gate.set()
        t0 = time.time()
        while len(done) < 3 and time.time() - t0 < 5:
            time.sleep(0.01)
        time.sleep(0.3)
        assert done[0] == ("slow", True)
        assert done[1] == (9, True)
        assert done[2] == (9, False)  # re-rendered at full resolution once the camera stopped
        assert len(done) == 3
    finally:
        w.stop()


def test_worker_survives_errors():
    errors, ok = [], []

    def render(job, preview):
        if job == "bad":
            raise RuntimeError("boom")
        ok.append(job)

    w = RenderWorker(render, errors.append, settle_s=0.05)
    try:
        w.request("bad")
        time.sleep(0.2)
        w.request("good")
        t0 = time.time()
        while not ok and time.time() - t0 < 5:
            time.sleep(0.01)
        assert ok == ["good"] and len(errors) == 1 and isinstance(errors[0], RuntimeError)
        assert w.alive and w.errors == 1
    finally:
        w.stop()
    assert not w.alive


def _blob_source(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.5 + torch.tensor([0.0, 0.0, 4.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.1 + 0.05
    opac = torch.rand(n, generator=g) * 0.5 + 0.4
    colors = torch.rand(n, 3, generator=g)
    return GaussianSource(means, quats, scales, opac, colors, name="blobs")


def _camera(w=96, h=64):
    return viser_to_camera([1.0, 0, 0, 0], [0.0, 0.0, 0.0], math.radians(50), w, h)


@pytest.mark.parametrize("mode", MODES)
def test_render_frame_modes(mode):
    src = _blob_source()
    f = render_frame(src, _camera(), ViewSettings(mode=mode))
    assert f.rgb.shape == (64, 96, 3) and f.rgb.dtype == np.uint8
    assert f.rgb.std() > 1.0
    assert f.frame_ms > 0


def test_render_frame_exposure_and_refocus():
    src = _blob_source()
    cam = _camera()
    s0 = ViewSettings()
    s1 = ViewSettings()
    s1.post.exposure_ev = 2.0
    a, b = render_frame(src, cam, s0), render_frame(src, cam, s1)
    assert b.rgb.astype(float).mean() > a.rgb.astype(float).mean() + 5
    s2 = ViewSettings()
    s2.post.aperture, s2.post.focus_depth = 20.0, 2.0
    c = render_frame(src, cam, s2)
    assert np.abs(c.rgb.astype(float) - a.rgb.astype(float)).mean() > 1.0  # defocused


def test_coverage_count_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    m = torch.rand(50, 2, generator=g) * torch.tensor([40.0, 30.0])
    r = torch.randint(0, 6, (50,), generator=g)
    n = coverage_count(m, r, 40, 30)
    ref = torch.zeros(30, 40)
    for (x, y), rr in zip(m.tolist(), r.tolist()):
        if rr > 0:
            cx, cy = math.floor(x), math.floor(y)
            ref[max(0, cy - rr): cy + rr + 1, max(0, cx - rr): cx + rr + 1] += 1
    assert torch.equal(n, ref)


def test_read_3dgs_ply(tmp_path):
    n = 20
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
             "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n, len(names))).astype("<f4")
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
    header += "".join(f"property float {k}\n" for k in names) + "end_header\n"
    p = tmp_path / "scene.ply"
    p.write_bytes(header.encode() + data.tobytes())
    src = _read_3dgs_ply_dc(p)
    assert src.num_primitives == n
    assert torch.allclose(src.means, torch.tensor(data[:, :3]))
    assert torch.allclose(src.opacities, torch.sigmoid(torch.tensor(data[:, 9])))
    assert torch.allclose(src.colors, (0.5 + 0.28209479177387814 * torch.tensor(data[:, 6:9])).clamp_min(0))


def test_load_source_ply_roundtrip(tmp_path):
    from le3d.io import ply
    from viewer.source import load_source

    src = _blob_source(n=50)
    sh = torch.zeros(50, 16, 3)
    sh[:, 0] = (src.colors - 0.5) / 0.28209479177387814
    cloud = ply.GaussianCloud(src.means, src.quats / src.quats.norm(dim=-1, keepdim=True), src.scales,
                              src.opacities, sh, 3)
    ply.save_ply(tmp_path / "s.ply", cloud)
    loaded = load_source(tmp_path / "s.ply", device="cpu")
    assert loaded.num_primitives == 50 and loaded.sh_degree == 3
    assert torch.allclose(loaded.colors, src.colors, atol=1e-4)
    f = render_frame(loaded, _camera(), ViewSettings())
    assert f.rgb.std() > 1.0



def test_cli_view_serves_ply_and_rejects_bad_path(tmp_path):
    import os
    import subprocess
    import sys
    import urllib.request

    from le3d.io import ply
    src = _blob_source(n=50)
    cloud = ply.GaussianCloud(src.means, src.quats / src.quats.norm(dim=-1, keepdim=True), src.scales,
                              src.opacities, torch.zeros(50, 16, 3), 0)
    ply.save_ply(tmp_path / "s.ply", cloud)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = subprocess.run([sys.executable, "-m", "le3d.cli", "view", str(tmp_path / "nope")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "error" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "le3d.cli", "view", str(tmp_path / "s.ply"), "--port", str(port),
                          "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        t0, body = time.time(), None
        while time.time() - t0 < 90 and body is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            except OSError:
                assert p.poll() is None, p.stdout.read().decode()
                time.sleep(0.3)
        assert body is not None and b"<html" in body.lower()
    finally:
        p.terminate()
        p.wait(20)
