"""Viewer audit: defects found driving `le3d view` as a user would, each pinned by a test.

Most tests drive `viewer.server.ClientSession` through a stand-in for viser's ClientHandle (its GUI
handles validate slider ranges as viser's `add_slider` does); no browser needed.
"""
from __future__ import annotations

import contextlib
import math
import types

import numpy as np
import pytest
import torch

from viewer.camera import viser_to_camera
from viewer.source import GaussianSource

# ------------------------------------------------------------------------------ fake viser client


class _Handle:
    def __init__(self, label, value=None, **kw):
        self.label, self._value, self.kw = label, value, kw
        self.visible, self.content, self._cbs = kw.get("visible", True), value, []

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):  # like viser: a changed value runs the update callbacks synchronously
        if v != self._value:
            self._value = v
            for cb in self._cbs:
                cb(None)

    def on_update(self, cb):
        self._cbs.append(cb)

    on_click = on_update

    def remove(self):
        pass


class _Gui:
    def __init__(self):
        self.h = {}

    def _add(self, label, value=None, **kw):
        self.h[label] = _Handle(label, value, **kw)
        return self.h[label]

    def add_markdown(self, content, **kw):
        return self._add(f"markdown {len(self.h)}", content, **kw)

    def add_dropdown(self, label, options, initial_value=None, **kw):
        return self._add(label, initial_value, options=tuple(options), **kw)

    def add_slider(self, label, min, max, step, initial_value, **kw):
        if not min <= initial_value <= max:  # viser's add_slider raises the same
            raise ValueError(f"add_slider: initial_value ({initial_value}) is outside of [{min}, {max}]")
        return self._add(label, initial_value, min=min, max=max, step=step, **kw)

    def add_number(self, label, initial_value, **kw):
        return self._add(label, initial_value, **kw)

    def add_checkbox(self, label, initial_value, **kw):
        return self._add(label, initial_value, **kw)

    def add_button(self, label, **kw):
        return self._add(label, None, **kw)

    @contextlib.contextmanager
    def add_folder(self, label, **kw):
        yield


class _Camera:
    def __init__(self, w, h):
        self.wxyz, self.position = np.array([1.0, 0, 0, 0]), np.zeros(3)
        self.look_at, self.fov = np.array([0.0, 0.0, 5.196]), math.radians(50)
        self.image_width, self.image_height = w, h

    @property
    def aspect(self):
        return self.image_width / self.image_height

    def on_update(self, cb):
        pass


class _Scene:
    def set_background_image(self, img, **kw):
        pass

    def add_camera_frustum(self, name, **kw):
        return _Handle(name)


class _Client:
    def __init__(self, w=96, h=64):
        self.client_id = 1
        self.gui, self.camera, self.scene = _Gui(), _Camera(w, h), _Scene()

    def atomic(self):
        return contextlib.nullcontext()

    def add_notification(self, *a, **k):
        pass


def _session(source, max_width=96):
    from viewer.server import ClientSession, _initial_view

    viewer = types.SimpleNamespace(source=source, max_width=max_width, preview_scale=0.35, settle_s=0.05,
                                   live=None, fault=None, snapshot_dir=None, initial_view=_initial_view(source),
                                   log=lambda m: None)
    return ClientSession(viewer, _Client())


def _blob_source(n=300, seed=0, cameras=()):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.5 + torch.tensor([0.0, 0.0, 4.0])
    src = GaussianSource(means, torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.1 + 0.05,
                         torch.rand(n, generator=g) * 0.5 + 0.4, torch.rand(n, 3, generator=g), name="blobs")
    src.cameras = list(cameras)
    return src


@pytest.fixture
def session():
    s = _session(_blob_source())
    yield s
    s.close()


# ------------------------------------------------------------------------------ white balance


def test_temperature_and_tint_sliders_cover_render_wb_range(session):
    """`le3d render --wb` accepts 1667..25000 K and tint -150..150; the viewer's sliders stopped at
    2000..12000 K and -100..100, so e.g. a 25000 K / +150 look could not be reproduced in the viewer."""
    g = session.client.gui.h
    k, t = g["Temperature (K)"], g["Tint"]
    assert (k.kw["min"], k.kw["max"]) == (1667, 25000)
    assert (t.kw["min"], t.kw["max"]) == (-150, 150)
    g["White balance"].value = "temperature/tint"
    k.value, t.value = 25000.0, 150.0
    assert session.settings.post.white_balance == (25000.0, 150.0)
    k.value, t.value = 1667.0, -150.0
    assert session.settings.post.white_balance == (1667.0, -150.0)
    g["White balance"].value = "as shot"  # and back to as shot
    assert session.settings.post.white_balance == "asshot"


# ------------------------------------------------------------------------------ tone mapping


def test_reinhard_default_matches_render_cli(session):
    """`le3d render --tonemap reinhard` uses Reinhard's white point = the frame's peak (tm_reinhard's
    default); the viewer sent white=4 instead, so the same settings gave a different image (up to 75
    levels of 255 on the demo RUN)."""
    from le3d.post.pipeline import PostSettings, apply_post
    from viewer.render import render_frame

    session.client.gui.h["Tone mapper"].value = "reinhard"
    assert session.settings.post.tonemap == "reinhard" and session.settings.post.tonemap_params == {}
    src, cam = session.viewer.source, viser_to_camera([1.0, 0, 0, 0], [0.0, 0, 0], math.radians(50), 48, 32)
    f = render_frame(src, cam, session.settings)
    # the CLI: PostSettings(tonemap="reinhard") on the same HDR (LDR source: identity colour matrices)
    ref = apply_post(f.hdr, PostSettings(tonemap="reinhard"), torch.eye(3), torch.ones(3), f.depth)
    assert np.abs(f.rgb.astype(int) - (ref * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()).max() <= 1
    # the peak maps to display white: some pixel reaches 255
    assert f.rgb.max() == 255
    # a fixed white point still works
    session.client.gui.h["reinhard: white"].value = 8.0
    assert session.settings.post.tonemap_params == {"white": 8.0}


# ------------------------------------------------------------------------------ max width


def test_max_width_beyond_slider_range_still_builds_the_gui():
    """`le3d view --max-width 4096` made every browser's session fail to build (viser: initial_value
    4096 outside [64, 3840]): a page with no image and no controls."""
    s = _session(_blob_source(), max_width=4096)
    try:
        assert s.client.gui.h["Max width"].value == 4096 and s.settings.max_width == 4096
    finally:
        s.close()


def test_view_rejects_bad_max_width_in_one_line(capsys):
    from le3d.cli import main

    assert main(["view", "/nonexistent.ply", "--max-width", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-width" in err[0]


# ------------------------------------------------------------------------------ port in use


def test_view_port_in_use_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    """viser quietly moves to the next free port; `le3d view --port P` then served elsewhere (a browser
    tab on P kept showing whatever else listens there) and the one-line error never happened."""
    import socket

    from le3d.cli import main
    from le3d.io import ply
    from viewer.server import ViewerServer

    src = _blob_source(n=20)
    ply.save_ply(tmp_path / "s.ply", ply.GaussianCloud(src.means, src.quats / src.quats.norm(dim=-1, keepdim=True),
                                                     src.scales, src.opacities, torch.zeros(20, 16, 3), 0))
    monkeypatch.setattr(ViewerServer, "serve_forever", lambda self: self.stop())  # never block
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = main(["view", str(tmp_path / "s.ply"), "--port", str(port), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0] and "--port" in err[0]


# ------------------------------------------------------------------------------ initial view


CAM_POS = np.array([0.5, 0.0, 0.0])  # off the origin: viser skips setting a position equal to its (0, 0, 0) default


def _forward_camera():
    """A camera at CAM_POS looking along world +z (OpenCV: identity rotation)."""
    return viser_to_camera([1.0, 0, 0, 0], CAM_POS, math.radians(50), 96, 64, "train0")


def test_initial_view_orbits_around_the_scene():
    """The initial view took the first training camera's pose but kept the browser's look-at distance
    (|(3, 3, 3)| = 5.2 in viser), so orbiting pivoted around an arbitrary point: on the demo RUN the
    scene sits 2.3 in front of the camera and a 30 degree orbit swung it to the edge of the frame."""
    from viewer.server import _initial_view

    src = _blob_source(cameras=[_forward_camera()])  # blobs centred at (0, 0, 4): 4 in front of the camera
    v = _initial_view(src)
    assert np.allclose(v["position"], CAM_POS, atol=1e-6)
    assert np.allclose(v["look_at"], [0.5, 0.0, 4.0], atol=0.15)
    s = _session(src)
    try:
        assert np.allclose(s.client.camera.look_at, v["look_at"])
    finally:
        s.close()

