"""`le3d render`: every output format from a tiny trained RUN, camera paths, settings JSON, bad flags."""
from __future__ import annotations

import json

import numpy as np
import pytest
import run_fixture
import torch

from le3d.cli import main


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return run_fixture.get_tiny_run(tmp_path_factory)

FORMATS = {"exr": ".exr", "png": ".png", "png16": ".png", "jpg": ".jpg", "mp4": ".mp4", "hdr-mp4": ".mp4"}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_render_each_format(tiny_run, tmp_path, fmt):
    from le3d.io import images

    if fmt == "mp4" and not images.ffmpeg_has_encoder("libx264"):
        pytest.skip("bundled ffmpeg has no libx264")
    if fmt == "hdr-mp4" and not images.ffmpeg_has_encoder("libx265"):
        pytest.skip("bundled ffmpeg has no libx265")
    out = tmp_path / fmt
    assert main(["render", str(tiny_run), "--out", str(out), "--format", fmt, "--quiet", "--exposure", "1"]) == 0
    meta = json.loads((out / "render.json").read_text())
    assert meta["format"] == fmt and meta["exposure_ev"] == 1.0 and meta["tonemap"] == "aces"
    files = [out / f for f in meta["files"]]
    assert files and all(f.suffix == FORMATS[fmt] and f.stat().st_size > 0 for f in files)
    if fmt in ("mp4", "hdr-mp4"):
        assert len(files) == 1
    else:
        assert len(files) == meta["num_views"] == 2  # the synth scene's test views
    if fmt == "exr":
        img = images.read_exr(files[0])
        assert img.shape == (16, 24, 3) and torch.isfinite(img).all()
    if fmt == "png16":
        assert images.read_png16(files[0]).dtype == np.uint16


def test_render_matches_python_api(tiny_run, tmp_path):
    from le3d.io.images import read_exr
    from le3d.post import PostSettings
    from le3d.render import load_cameras, post_process_linear, render_hdr
    from le3d.run import load_run

    out = tmp_path / "exr"
    assert main(["render", str(tiny_run), "--out", str(out), "--format", "exr", "--quiet", "--wb", "4500,5",
                 "--exposure", "2"]) == 0
    run = load_run(tiny_run)
    cam = load_cameras(run, "test")[0][0]
    hdr, depth = render_hdr(run, cam)
    ref = post_process_linear(run, hdr, PostSettings(exposure_ev=2.0, white_balance=(4500.0, 5.0)), depth)
    got = read_exr(out / json.loads((out / "render.json").read_text())["files"][0])
    torch.testing.assert_close(got, ref.float(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("views", ["path:orbit", "path:spiral"])
def test_paths_size_and_refocus(tiny_run, tmp_path, views):
    out = tmp_path / "p"
    assert main(["render", str(tiny_run), "--out", str(out), "--views", views, "--frames", "3", "--size", "48x32",
                 "--tonemap", "agx", "--aperture", "4", "--focus-pixel", "20,10", "--quiet"]) == 0
    meta = json.loads((out / "render.json").read_text())
    assert meta["num_views"] == 3 and meta["size"] == [48, 32] and len(meta["files"]) == 3
    assert meta["focus_depth"] is None or meta["focus_depth"] > 0


def test_keyframe_path(tiny_run, tmp_path):
    from le3d.render import load_cameras
    from le3d.run import load_run

    cams = load_cameras(load_run(tiny_run), "train")[0]
    spec = {"frames": 5, "fps": 10, "keyframes": [{"view": cams[0].name}, {"view": cams[3].name},
                                                  {"position": [0, 0, -4], "look_at": [0, 0, 0]}]}
    (tmp_path / "path.json").write_text(json.dumps(spec))
    out = tmp_path / "k"
    assert main(["render", str(tiny_run), "--out", str(out), "--views", f"path:{tmp_path / 'path.json'}",
                 "--quiet", "--format", "jpg"]) == 0
    assert json.loads((out / "render.json").read_text())["num_views"] == 5


def test_keyframes_interpolate_through_keys():
    from le3d.camera_paths import interpolate, look_at
    from le3d.data.types import Camera

    like = Camera(torch.eye(4), torch.tensor([[20.0, 0, 8], [0, 20, 8], [0, 0, 1]]), 16, 16)
    keys = [look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], like), look_at([3, 0, 0], [0, 0, 0], [0, -1, 0], like)]
    path = interpolate(keys, 5)
    torch.testing.assert_close(path[0].viewmat, keys[0].viewmat, atol=1e-5, rtol=0)
    torch.testing.assert_close(path[-1].viewmat, keys[1].viewmat, atol=1e-5, rtol=0)
    for c in path:  # still orthonormal
        R = c.viewmat[:3, :3]
        torch.testing.assert_close(R @ R.T, torch.eye(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("argv,msg", [
    (["--tonemap", "nope"], "unknown tone mapper"),
    (["--focus-pixel", "500,3", "--aperture", "2"], "outside the 24x16 image"),
    (["--focus-pixel", "a,b"], "expected X,Y"),
    (["--aperture", "2"], "needs --focus-depth or --focus-pixel"),
    (["--wb", "warm"], "--wb"),
    (["--wb", "1000"], "1667..25000 K"),  # beyond the loci cct_to_xy clamps to: it rendered as 1667 K
    (["--wb", "4000,400"], "tint must be"),
    (["--exposure", "nan"], "--exposure"),  # was a bare ValueError from the PNG writer
    (["--exposure", "130"], "--exposure"),
    (["--aperture", "inf", "--focus-depth", "1"], "--aperture"),
    (["--aperture", "nan", "--focus-depth", "1"], "--aperture"),  # was skipped silently
    (["--aperture", "2", "--focus-depth", "nan"], "--focus-depth"),
    (["--size", "12"], "--size"),
    (["--views", "sideways"], "--views"),
    (["--views", "path:/nonexistent/p.json"], "not found"),
])
def test_bad_flags(tiny_run, tmp_path, capsys, argv, msg):
    assert main(["render", str(tiny_run), "--out", str(tmp_path / "o"), "--quiet"] + argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_unwritable_and_overwrite(tiny_run, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["render", str(tiny_run), "--out", str(f / "sub"), "--quiet"]) == 2
    assert "not writable" in capsys.readouterr().err
    out = tmp_path / "o"
    assert main(["render", str(tiny_run), "--out", str(out), "--quiet", "--format", "jpg"]) == 0
    assert main(["render", str(tiny_run), "--out", str(out), "--quiet", "--format", "jpg"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["render", str(tiny_run), "--out", str(out), "--quiet", "--format", "jpg", "--overwrite"]) == 0
    assert main(["render", str(tmp_path / "norun"), "--out", str(tmp_path / "o2"), "--quiet"]) == 2


def test_command_line_frames_and_fps_win_over_the_keyframe_file(tiny_run, tmp_path):
    """An explicit --fps 30 was taken for "not given" (the file's 10 fps won) and --frames was ignored
    for a key-frame file; now what the command line says wins, and the file's values are the defaults."""
    from argparse import Namespace

    from le3d.commands.render import select_cameras
    from le3d.render import load_cameras
    from le3d.run import load_run

    run = load_run(tiny_run)
    cams = load_cameras(run, "train")[0]
    spec = {"frames": 5, "fps": 10, "keyframes": [{"view": cams[0].name}, {"view": cams[3].name}]}
    (tmp_path / "path.json").write_text(json.dumps(spec))
    views = f"path:{tmp_path / 'path.json'}"
    path, fps = select_cameras(Namespace(views=views, fps=30.0, frames=3), run)
    assert (len(path), fps) == (3, 30.0)
    path, fps = select_cameras(Namespace(views=views, fps=None, frames=None), run)
    assert (len(path), fps) == (5, 10.0)
    path, fps = select_cameras(Namespace(views="path:orbit", fps=None, frames=None), run)
    assert (len(path), fps) == (120, 30.0)


def test_failed_render_leaves_no_folder_and_backend_needs_its_device(tiny_run, tmp_path, capsys):
    """A bad RUN left an empty --out folder behind; --backend cuda on a RUN loaded on the CPU was the
    rasterizer's "tensors are on cpu" with no hint of --device."""
    out = tmp_path / "never"
    assert main(["render", str(tmp_path / "no-run"), "--out", str(out), "--quiet"]) == 2
    assert not out.exists()
    assert main(["render", str(tiny_run), "--out", str(out), "--device", "cpu", "--backend", "cuda", "--quiet"]) == 2
    assert "--device cuda" in capsys.readouterr().err and not out.exists()
