"""Browser tests of the viewer: headless Debian Chromium (playwright, no browser download) against a
ViewerServer on 127.0.0.1 serving a small trained demo RUN.

Chromium: `apt-get install -y chromium` (Debian). Without it these tests are skipped, except under
CI=true where a missing Chromium fails. Screenshots go to test-artifacts/viewer/.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ports import free_port

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "viewer"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-unsafe-swiftshader"]
VIEWPORT = {"width": 1000, "height": 600}
CROP = (slice(170, 540), slice(60, 640))  # rows, cols of the page left of the GUI panel, below notifications


def _chromium() -> str:
    exe = os.environ.get("LE3D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if not exe:
        msg = "Debian chromium and Python playwright are needed for the browser tests (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe



def _wait(cond, timeout=30.0, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The suite's shared tiny trained RUN (synthetic dark scene, a few CPU iterations; tests/run_fixture.py)."""
    import run_fixture

    return run_fixture.get_tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def viewer(demo_run):
    from viewer.server import ViewerServer
    from viewer.source import load_source

    v = ViewerServer(load_source(demo_run, device="cpu"), host="127.0.0.1", port=free_port(), max_width=320,
                     settle_s=0.1, verbose=False, snapshot_dir=demo_run / "snapshots")
    yield v
    v.stop()


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_client(browser, viewer):
    """A new page connected to the viewer, and its server-side session (after its first full frame)."""
    before = set(viewer.sessions)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(viewer.url)
    new = _wait(lambda: sorted(set(viewer.sessions) - before), 30, "connection")
    s = viewer.sessions[new[0]]
    _wait(lambda: s.frames_sent >= 1 and s.last_frame is not None, 60, "first frame")
    page.get_by_text("FPS").first.wait_for(timeout=30000)
    return page, s


def full_frame_after(s, pred, timeout=30.0):
    """Wait until the session has sent a full-resolution frame whose settings satisfy pred."""
    def ok():
        f = s.last_frame
        return f is not None and f.settings is not None and pred(f) and f.camera.width == s.settings.max_width \
            and s.worker._pending is None
    _wait(ok, timeout, "frame with the new settings")
    time.sleep(0.6)  # let the browser decode and draw it


def shot(page, name) -> np.ndarray:
    import imageio.v3 as iio

    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return iio.imread(path)[..., :3].astype(np.float32)


def drawn_shot(page, name, differs_from: np.ndarray | None = None, timeout: float = 15.0) -> np.ndarray:
    """A screenshot taken once the browser has drawn the frame: the server having sent it is not enough
    (decoding and drawing take a moment, longer on a busy machine). Drawn means the crop is not blank
    (or, after a change, differs from the crop before it) and two shots 0.3 s apart agree. After the
    timeout the last shot is returned and the caller's assertion reports what it shows."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        img = shot(page, name)
        crop = img[CROP]
        if differs_from is None:
            drawn = crop.std() > 1.0
        else:
            drawn = np.abs(crop - differs_from).mean() > 0.5
        if drawn and previous is not None and np.abs(crop - previous).mean() < 0.05:
            return img
        if time.monotonic() > deadline:
            return img
        previous = crop if drawn else None
        time.sleep(0.3)


def brightness(img: np.ndarray) -> float:
    """Mean pixel value (0..255) of a screenshot crop."""
    return float(img.mean())


def row(page, label):
    return page.locator("label", has_text=label).first.locator("xpath=../../..")


def select(page, label, option):
    row(page, label).get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_connect_frame_not_blank(browser, viewer):
    page, s = open_client(browser, viewer)
    try:
        img = drawn_shot(page, "01_connected")
        crop = img[CROP]
        assert crop.std() > 1.0, "frame looks blank"
        assert page.get_by_text("Connected").count() >= 1
        # the page shows frame time and FPS
        assert page.get_by_text("FPS").count() >= 1
    finally:
        page.close()


def test_exposure_slider_brightens(browser, viewer):
    page, s = open_client(browser, viewer)
    try:
        base_crop = drawn_shot(page, "02_exposure_0ev")[CROP]
        base = brightness(base_crop)
        thumb = row(page, "Exposure (EV)").get_by_role("slider")
        thumb.focus()
        for _ in range(3):  # three small steps (+0.3 EV), then to the end of the slider (+10 EV)
            page.keyboard.press("ArrowRight")
        _wait(lambda: s.settings.post.exposure_ev > 0.25, 10, "slider steps")
        page.keyboard.press("End")
        full_frame_after(s, lambda f: f.settings.post.exposure_ev > 9.9)
        up_crop = drawn_shot(page, "02_exposure_plus10ev", differs_from=base_crop)[CROP]
        up = brightness(up_crop)
        assert abs(s.settings.post.exposure_ev - 10.0) < 1e-6
        assert up > 1.2 * base + 2, (base, up)
        page.keyboard.press("Home")
        full_frame_after(s, lambda f: f.settings.post.exposure_ev < -9.9)
        down = brightness(drawn_shot(page, "02_exposure_minus10ev", differs_from=up_crop)[CROP])
        assert down < base / 1.2, (base, down)
    finally:
        page.close()


def test_depth_mode_changes_frame(browser, viewer):
    page, s = open_client(browser, viewer)
    try:
        colour = drawn_shot(page, "03_mode_colour")[CROP]
        select(page, "Render mode", "depth")
        full_frame_after(s, lambda f: f.settings.mode == "depth")
        depth = drawn_shot(page, "03_mode_depth", differs_from=colour)[CROP]
        assert np.abs(depth - colour).mean() > 10.0
    finally:
        page.close()


def test_click_sets_focus_depth(browser, viewer):
    import torch

    from le3d.post.refocus import focus_depth_at
    from viewer.render import mean_depth

    page, s = open_client(browser, viewer)
    try:
        full_frame_after(s, lambda fr: True)
        f = s.last_frame
        H, W = f.depth.shape
        # a covered pixel in the left part of the canvas (not under the GUI panel)
        a = f.alpha.clone()
        a[:, int(W * 0.6):] = 0
        a[: int(H * 0.3)] = 0
        a[int(H * 0.9):] = 0
        iy, ix = np.unravel_index(int(torch.argmax(a)), a.shape)
        assert float(a[iy, ix]) > 0.5
        page.get_by_role("button", name="Click to focus").click()
        time.sleep(0.5)
        px, py = (ix + 0.5) / W * VIEWPORT["width"], (iy + 0.5) / H * VIEWPORT["height"]
        page.mouse.click(px, py)
        _wait(lambda: s.focus_depth is not None, 20, "focus depth from the click")
        # the depth of that pixel in an independent render of the same camera
        cam = s.last_click[3]  # the camera of the frame the user clicked on
        out = viewer.source.render(cam)
        expected = focus_depth_at(mean_depth(out), int(s.last_click[1] * cam.width), int(s.last_click[2] * cam.height))
        assert s.last_click[1:3] == pytest.approx((px / VIEWPORT["width"], py / VIEWPORT["height"]), abs=0.01)
        assert s.focus_depth == pytest.approx(expected, rel=0.02)
        full_frame_after(s, lambda fr: fr.settings.post.aperture > 0)
        assert s.settings.post.focus_depth == pytest.approx(s.focus_depth, rel=1e-4)
        shot(page, "04_refocused")
    finally:
        page.close()


def test_two_clients_independent(browser, viewer):
    p1, s1 = open_client(browser, viewer)
    p2, s2 = open_client(browser, viewer)
    try:
        assert s1 is not s2
        thumb = row(p2, "Exposure (EV)").get_by_role("slider")
        thumb.focus()
        p2.keyboard.press("End")
        full_frame_after(s2, lambda f: f.settings.post.exposure_ev > 9.9)
        assert s1.settings.post.exposure_ev == 0.0
        a, b = brightness(shot(p1, "05_client1")[CROP]), brightness(shot(p2, "05_client2_plus10ev")[CROP])
        assert b > 1.2 * a + 2, (a, b)
        # a slow client does not stall the other: client 2's render blocks for 5 s, client 1 keeps rendering
        n1 = s1.frames_sent
        slow_done = threading.Event()

        def slow(sess):
            if sess is s2:
                time.sleep(5.0)
                slow_done.set()
        viewer.fault = slow
        try:
            s2.request()
            time.sleep(0.2)
            s1.request()
            _wait(lambda: s1.frames_sent > n1, 10, "client 1 frame while client 2 is slow")
            assert not slow_done.is_set()
        finally:
            viewer.fault = None
    finally:
        p1.close()
        p2.close()


def test_render_error_shown_and_server_survives(browser, viewer):
    page, s = open_client(browser, viewer)
    try:
        def boom(sess):
            if sess is s:
                raise RuntimeError("injected render failure")
        viewer.fault = boom
        s.request()
        page.get_by_text("injected render failure").first.wait_for(timeout=20000)
        shot(page, "06_render_error")
        assert s.worker.alive
        viewer.fault = None
        n = s.frames_sent
        s.request()
        _wait(lambda: s.frames_sent > n, 30, "a frame after the error")
        assert s.last_error is None
        # and the server still accepts new clients
        p2, s2 = open_client(browser, viewer)
        p2.close()
    finally:
        viewer.fault = None
        page.close()


def test_live_training_panel_pause_resume(browser, demo_run):
    """`le3d train --viewer` path: the live viewer renders the trainer's model, shows stats, pauses."""
    from types import SimpleNamespace

    from le3d.run import load_run
    from viewer.live import start_live_viewer

    run = load_run(demo_run, device="cpu")
    trainer = SimpleNamespace(model=run.model, depth_range=tuple(run.config["scene"]["depth_range"]),
                              extent=run.config["scene"]["extent"],
                              scene=SimpleNamespace(kind=run.kind, cam_to_srgb=run.cam_to_srgb,
                                                    white_balance=run.white_balance, cameras=[], name="live"))
    live = start_live_viewer(trainer, host="127.0.0.1", port=free_port(), refresh_s=0.0, verbose=False)
    try:
        page, s = open_client(browser, live.server)
        live.update(iteration=7, iters=30, loss=0.0123, psnr=21.5)
        page.get_by_text("psnr: 21.5").first.wait_for(timeout=20000)
        page.get_by_role("button", name="Pause training").click()
        _wait(lambda: live.paused, 10, "pause")
        page.get_by_role("button", name="Resume training").wait_for(timeout=20000)
        shot(page, "07_live_paused")
        page.get_by_role("button", name="Resume training").click()
        _wait(lambda: not live.paused, 10, "resume")
        live.wait_if_paused()  # returns at once
        page.close()
    finally:
        live.stop()


def test_snapshot_and_training_cameras(browser, viewer):
    import json

    page, s = open_client(browser, viewer)
    try:
        snap_dir = Path(viewer.snapshot_dir)
        before = set(snap_dir.glob("*")) if snap_dir.exists() else set()
        page.get_by_role("button", name="Snapshot (EXR + PNG)").click()
        new = _wait(lambda: {p.suffix for p in set(snap_dir.glob("*")) - before} >= {".png", ".json", ".exr"}
                    and sorted(set(snap_dir.glob("*")) - before), 30, "snapshot files")
        meta = json.loads(next(p for p in new if p.suffix == ".json").read_text())
        assert meta["width"] == s.settings.max_width and "exposure_ev" in meta["settings"]["post"]
        from le3d.io.images import read_exr

        hdr = read_exr(next(p for p in new if p.suffix == ".exr"))
        assert hdr.shape[:2] == (meta["height"], meta["width"]) and float(np.asarray(hdr).max()) > 0
        # training cameras: the checkbox adds one frustum per camera of the scene's COLMAP model
        n_images = len(list((Path(viewer.source.run.config["scene"]["path"]) / "images").glob("*.png")))
        assert len(viewer.source.cameras) == n_images >= 2
        row(page, "Training cameras").get_by_role("checkbox").check()
        _wait(lambda: len(s._frustums) == n_images, 20, "frustums")
        time.sleep(1.0)
        shot(page, "08_training_cameras")
    finally:
        page.close()


def test_white_balance_neutral_click_and_tone_mapper(browser, viewer):
    from le3d.post.white_balance import pick_neutral

    page, s = open_client(browser, viewer)
    try:
        select(page, "White balance", "neutral point")
        page.get_by_role("button", name="Click a neutral point").click()
        time.sleep(0.5)
        f = s.last_frame
        H, W = f.depth.shape
        a = f.alpha.clone()
        a[:, int(W * 0.6):] = 0
        a[: int(H * 0.3)] = 0
        iy, ix = np.unravel_index(int(a.argmax()), a.shape)
        page.mouse.click((ix + 0.5) / W * VIEWPORT["width"], (iy + 0.5) / H * VIEWPORT["height"])
        _wait(lambda: isinstance(s.settings.post.white_balance, tuple), 20, "neutral white balance")
        _, u, v, cam = s.last_click
        expected = pick_neutral(viewer.source.render(cam).image, int(u * cam.width), int(v * cam.height))
        assert np.allclose(s.settings.post.white_balance, expected.tolist(), rtol=1e-3)
        select(page, "Tone mapper", "curve")
        full_frame_after(s, lambda fr: fr.settings.post.tonemap == "curve")
        assert "points" in s.settings.post.tonemap_params and s.last_error is None
        shot(page, "09_neutral_wb_curve")
    finally:
        page.close()
