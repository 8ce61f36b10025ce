"""The le3d browser viewer: a viser server with one render thread and one set of settings per client.

    from viewer.server import ViewerServer
    from viewer.source import load_source
    v = ViewerServer(load_source("RUN"), host="127.0.0.1", port=8080)
    v.serve_forever()

Each connected browser gets its own GUI (client.gui), camera and `RenderWorker`; renders are sent
as JPEG background images. Any exception while rendering is shown in that client's page; the
server keeps running.
"""
from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import viser

from le3d.color import CCT_RANGE_K
from le3d.post.refocus import focus_depth_at
from le3d.post.tonemap import TONEMAPPERS
from viewer.camera import camera_to_viser, quat_to_rotmat, render_size, viser_to_camera
from viewer.render import MODES, Frame, ViewSettings, hdr_linear_srgb, render_frame
from viewer.worker import RenderWorker

__all__ = ["ViewerServer", "ClientSession"]

TONEMAP_PARAMS = {  # name -> [(param, min, max, step, default)]; a default of 0 means the mapper's own (auto)
    "reinhard": [("white", 0.0, 32.0, 0.5, 0.0)],  # 0: the image's peak, as `le3d render --tonemap reinhard`
    "aces": [("pre_scale", 0.1, 2.0, 0.05, 0.6)],
    "hable": [("white", 1.0, 32.0, 0.2, 11.2), ("exposure_bias", 0.5, 4.0, 0.1, 2.0)],
}
CURVE_X = (0.05, 0.18, 1.0, 4.0)
CURVE_Y = (0.05, 0.18, 0.8, 1.0)


class ClientSession:
    """One browser: its settings, GUI handles, render worker and last frame."""

    def __init__(self, viewer: ViewerServer, client: viser.ClientHandle):
        self.viewer, self.client = viewer, client
        self.settings = ViewSettings(max_width=viewer.max_width)
        self.lock = threading.Lock()
        self.last_frame: Frame | None = None
        self.last_error: str | None = None
        self.frames_sent = 0
        self.focus_depth: float | None = None
        self.last_click = None
        self.closed = False
        self._fps = 0.0
        self._t_last = None
        self._click_mode = None
        self.worker = RenderWorker(self._render_job, self._report_error, settle_s=viewer.settle_s,
                                   name=f"le3d-render-{client.client_id}")
        self._build_gui()
        self._apply_initial_view()
        client.camera.on_update(lambda _cam: self.request(moving=True))
        self.request()

    # ---------------------------------------------------------------------------------- GUI
    def _build_gui(self):
        gui, src = self.client.gui, self.viewer.source
        self.stats_md = gui.add_markdown("connecting...")
        self.error_md = gui.add_markdown("", visible=False)
        with gui.add_folder("Scene"):
            self.info_md = gui.add_markdown(src.info)
            self.mode = gui.add_dropdown("Render mode", MODES, initial_value="colour")
            mw = int(self.viewer.max_width)
            self.max_w = gui.add_slider("Max width", min(64, mw), max(3840, mw), 16, mw)
            self.show_cams = gui.add_checkbox("Training cameras", False, disabled=not src.cameras)
            self.reset_btn = gui.add_button("Reset view")
            self.snap_btn = gui.add_button("Snapshot (EXR + PNG)")
        with gui.add_folder("Exposure and colour"):
            self.ev = gui.add_slider("Exposure (EV)", -10.0, 10.0, 0.1, 0.0)
            self.wb_mode = gui.add_dropdown("White balance", ("as shot", "temperature/tint", "neutral point"),
                                            initial_value="as shot")
            # the ranges `le3d render --wb TEMP_K,TINT` accepts
            self.kelvin = gui.add_slider("Temperature (K)", CCT_RANGE_K[0], CCT_RANGE_K[1], 1.0, 5500.0, visible=False)
            self.tint = gui.add_slider("Tint", -150.0, 150.0, 1.0, 0.0, visible=False)
            self.pick_wb = gui.add_button("Click a neutral point", visible=False)
            self.wb_md = gui.add_markdown("", visible=False)
        with gui.add_folder("Tone mapping"):
            self.tm = gui.add_dropdown("Tone mapper", tuple(n for n in TONEMAPPERS if n != "linear"),
                                       initial_value="aces")
            self.tm_params = {}
            for name, params in TONEMAP_PARAMS.items():
                for p, lo, hi, st, d in params:
                    self.tm_params[(name, p)] = gui.add_slider(f"{name}: {p}", lo, hi, st, d, visible=name == "aces")
            self.curve = [gui.add_slider(f"curve y @ {x:g}", 0.0, 1.0, 0.01, y, visible=False)
                          for x, y in zip(CURVE_X, CURVE_Y)]
        with gui.add_folder("Refocus"):
            self.aperture = gui.add_slider("Aperture", 0.0, 50.0, 0.5, 0.0)
            self.focus = gui.add_number("Focus depth", 1.0, min=1e-4, step=0.01)
            self.pick_focus = gui.add_button("Click to focus")
        self.live_widgets = None
        if self.viewer.live is not None:
            with gui.add_folder("Training"):
                self.live_md = gui.add_markdown("")
                self.pause_btn = gui.add_button("Pause training")
            self.pause_btn.on_click(lambda _e: self._toggle_pause())

        for h in [self.mode, self.max_w, self.ev, self.kelvin, self.tint, self.tm, self.aperture, self.focus,
                  *self.tm_params.values(), *self.curve]:
            h.on_update(lambda _e: self._settings_changed())
        self.wb_mode.on_update(lambda _e: self._wb_mode_changed())
        self.tm.on_update(lambda _e: self._tm_changed())
        self.show_cams.on_update(lambda _e: self._show_cameras(self.show_cams.value))
        self.reset_btn.on_click(lambda _e: self.reset_view())
        self.snap_btn.on_click(lambda _e: self._snapshot_clicked())
        self.pick_focus.on_click(lambda _e: self._arm_click("focus"))
        self.pick_wb.on_click(lambda _e: self._arm_click("neutral"))
        self._frustums = []
        self._neutral = None

    def _wb_mode_changed(self):
        m = self.wb_mode.value
        self.kelvin.visible = self.tint.visible = m == "temperature/tint"
        self.pick_wb.visible = self.wb_md.visible = m == "neutral point"
        self._settings_changed()

    def _tm_changed(self):
        name = self.tm.value
        for (n, _p), h in self.tm_params.items():
            h.visible = n == name
        for h in self.curve:
            h.visible = name == "curve"
        self._settings_changed()

    def _read_settings(self) -> ViewSettings:
        s = ViewSettings(max_width=int(self.max_w.value), preview_scale=self.viewer.preview_scale)
        p = s.post
        p.exposure_ev = float(self.ev.value)
        m = self.wb_mode.value
        if m == "temperature/tint":
            p.white_balance = (float(self.kelvin.value), float(self.tint.value))
        elif m == "neutral point" and self._neutral is not None:
            p.white_balance = tuple(self._neutral)
        else:
            p.white_balance = "asshot"
        p.tonemap = self.tm.value
        p.tonemap_params = {pn: float(h.value) for (n, pn), h in self.tm_params.items()
                            if n == p.tonemap and float(h.value) > 0}  # 0: the mapper's default
        if p.tonemap == "curve":
            ys = np.maximum.accumulate([float(h.value) for h in self.curve])
            p.tonemap_params = {"points": [(x, float(y)) for x, y in zip(CURVE_X, ys)]}
        p.aperture = float(self.aperture.value)
        p.focus_depth = float(self.focus.value) if p.aperture > 0 else None
        s.mode = self.mode.value
        return s

    def _settings_changed(self):
        with self.lock:
            self.settings = self._read_settings()
        self.request()

    # ------------------------------------------------------------------------------- camera
    def _apply_initial_view(self):
        v = self.viewer.initial_view
        if v is None:
            return
        cam = self.client.camera
        cam.wxyz, cam.position = v["wxyz"], v["position"]
        if "fov" in v:
            cam.fov = v["fov"]
        if "look_at" in v:
            cam.look_at = v["look_at"]

    def reset_view(self):
        with self.client.atomic():
            self._apply_initial_view()
        self.request()

    def current_camera(self, preview: bool, settings: ViewSettings):
        cam = self.client.camera
        w, h = render_size(cam.aspect, settings.max_width)
        if cam.image_width > 0 and cam.image_width < w:  # never render above the canvas resolution
            w, h = render_size(cam.aspect, cam.image_width)
        if preview:
            w, h = max(16, round(w * settings.preview_scale)), max(16, round(h * settings.preview_scale))
        return viser_to_camera(cam.wxyz, cam.position, cam.fov, w, h)

    def _show_cameras(self, show: bool):
        for f in self._frustums:
            f.remove()
        self._frustums = []
        if not show:
            return
        scale = 0.05 * max(self.viewer.source.extent, 1e-3)
        for i, c in enumerate(self.viewer.source.cameras):
            v = camera_to_viser(c)
            self._frustums.append(self.client.scene.add_camera_frustum(
                f"/train_cams/{i}", fov=v["fov"], aspect=v["aspect"], scale=scale, wxyz=v["wxyz"],
                position=v["position"], color=(255, 160, 40), thickness=1.5, thickness_units="screen"))

    # ------------------------------------------------------------------------------ render
    def request(self, moving: bool = False):
        self.worker.request(None, moving)

    def _render_job(self, _job, preview: bool):
        with self.lock:
            settings = self.settings.copy()
        if self.viewer.fault is not None:  # test hook: raise inside the render thread
            self.viewer.fault(self)
        camera = self.current_camera(preview, settings)
        frame = render_frame(self.viewer.source, camera, settings)
        if self.closed:
            return
        self.client.scene.set_background_image(frame.rgb, format="jpeg", jpeg_quality=settings.jpeg_quality)
        now = time.perf_counter()
        if self._t_last is not None:
            dt = now - self._t_last
            self._fps = 1.0 / dt if self._fps == 0 else 0.8 * self._fps + 0.2 / max(dt, 1e-6)
        self._t_last = now
        with self.lock:
            self.last_frame = frame
            self.frames_sent += 1
        if self.last_error is not None:
            self.last_error = None
            self.error_md.visible = False
        self.stats_md.content = (
            f"{camera.width}x{camera.height}{' (preview)' if preview else ''} · frame {frame.frame_ms:.1f} ms "
            f"(render {frame.render_ms:.1f} + post {frame.post_ms:.1f}) · {self._fps:.1f} FPS · #{self.frames_sent}")

    def _report_error(self, exc: BaseException):
        msg = f"{type(exc).__name__}: {exc}"
        self.last_error = msg
        self.viewer.log(f"client {self.client.client_id}: render error: {msg}\n{traceback.format_exc()}")
        try:
            self.error_md.content = f"**Render error:** `{msg}`"
            self.error_md.visible = True
            self.client.add_notification("Render error", msg, color="red", auto_close_seconds=10.0)
        except Exception:  # noqa: BLE001 - the client may have gone
            pass

    # ------------------------------------------------------------------------------- clicks
    def _arm_click(self, what: str):
        self._click_mode = what

        @self.client.scene.on_click()
        def _(event):
            self.client.scene.remove_click_callback()
            try:
                self.handle_click(what, *event.screen_pos)
            except Exception as exc:  # noqa: BLE001
                self._report_error(exc)

    def handle_click(self, what: str, u: float, v: float):
        """A click at normalised image coordinates (u, v) in [0, 1] (OpenCV: (0, 0) top-left)."""
        f = self.last_frame
        if f is None:
            raise RuntimeError("no frame rendered yet")
        self.last_click = (what, u, v, f.camera)
        H, W = f.depth.shape
        x, y = min(W - 1, max(0, int(u * W))), min(H - 1, max(0, int(v * H)))
        if what == "focus":
            d = focus_depth_at(f.depth, x, y)
            self.focus_depth = d
            self.focus.value = d
            if self.aperture.value <= 0:
                self.aperture.value = 8.0
        elif what == "neutral":
            from le3d.post.white_balance import pick_neutral

            self._neutral = pick_neutral(f.hdr, x, y).tolist()
            self.wb_md.content = "neutral camera RGB: " + ", ".join(f"{c:.4g}" for c in self._neutral)
        self._settings_changed()

    # ----------------------------------------------------------------------------- snapshot
    def _snapshot_clicked(self):
        try:
            paths = self.snapshot()
            self.client.add_notification("Snapshot saved", ", ".join(str(p) for p in paths), color="green",
                                         auto_close_seconds=8.0)
        except Exception as exc:  # noqa: BLE001
            self._report_error(exc)

    def snapshot(self) -> list[Path]:
        """Render the current view at full resolution; write HDR EXR (linear sRGB), PNG and settings JSON."""
        from le3d.io.images import write_png8

        with self.lock:
            settings = self.settings.copy()
        cam = self.current_camera(False, settings)
        frame = render_frame(self.viewer.source, cam, settings)
        out = Path(self.viewer.snapshot_dir)
        out.mkdir(parents=True, exist_ok=True)
        now = time.time()
        stem = out / (time.strftime("snapshot_%Y%m%d_%H%M%S", time.localtime(now)) + f"_{int(now * 1000) % 1000:03d}")
        paths = [write_png8(f"{stem}.png", frame.rgb.astype(np.float32) / 255.0)]
        try:
            from le3d.io.images import write_exr

            paths.append(write_exr(f"{stem}.exr", hdr_linear_srgb(frame, self.viewer.source).float().cpu()))
        except ImportError:
            self.viewer.log("snapshot: OpenEXR not installed; EXR skipped")
        meta = {"settings": _jsonable(dataclasses.asdict(settings)), "width": cam.width, "height": cam.height,
                "viewmat": cam.viewmat.tolist(), "K": cam.K.tolist(), "exr": "linear sRGB (D65), after white "
                "balance, exposure and refocus, before tone mapping"}
        Path(f"{stem}.json").write_text(json.dumps(meta, indent=1))
        paths.append(Path(f"{stem}.json"))
        return [Path(p) for p in paths]

    # -------------------------------------------------------------------------------- live
    def _toggle_pause(self):
        live = self.viewer.live
        live.paused = not live.paused
        self.viewer.refresh_live()

    def close(self):
        self.closed = True
        self.worker.stop(timeout=2.0)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return x


def _scene_means(source) -> torch.Tensor | None:
    """[N, 3] primitive centres of a RUN, PLY or live-training source (None if it has none)."""
    for get in (lambda s: s.means, lambda s: s.run.model.means, lambda s: s.trainer.model.means):
        try:
            m = get(source)
        except AttributeError:
            continue
        if isinstance(m, torch.Tensor) and m.dim() == 2 and m.shape[-1] == 3:
            return m.detach()
    return None


def _look_distance(source, camera) -> float:
    """How far in front of `camera` the scene is: the median view depth of the primitives in front of it
    (the orbit pivot), else the scene radius."""
    m = _scene_means(source)
    if m is not None and m.shape[0] > 0:
        V = camera.viewmat.to(m)
        z = (m @ V[:3, :3].T + V[:3, 3])[:, 2]
        z = z[torch.isfinite(z) & (z > 0)]
        if z.numel() > 0:
            return float(z.median())
    return max(float(getattr(source, "extent", 1.0) or 1.0), 1e-3)


def _initial_view(source) -> dict | None:
    cams = getattr(source, "cameras", None) or []
    if cams:
        v = camera_to_viser(cams[0])
        # orbit around the scene in front of the camera, not around wherever the browser's default
        # look-at point happens to fall on the view axis
        look_at = v["position"] + _look_distance(source, cams[0]) * quat_to_rotmat(v["wxyz"])[:, 2]
        return {"wxyz": v["wxyz"], "position": v["position"], "fov": v["fov"], "look_at": look_at}
    c = getattr(source, "center", None)
    c = np.zeros(3) if c is None else np.asarray(c.cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64)
    r = max(float(getattr(source, "extent", 1.0)), 1e-3)
    return {"wxyz": np.array([1.0, 0, 0, 0]), "position": c + np.array([0.0, 0.0, -2.5 * r]), "look_at": c,
            "fov": math.radians(50)}


def _up_direction(source):
    cams = getattr(source, "cameras", None) or []
    if not cams:
        return None
    ups = [-c.viewmat[1, :3].double().numpy() for c in cams]  # camera -y axis in world (row 1 of R_w2c)
    u = np.mean(ups, axis=0)
    n = np.linalg.norm(u)
    return tuple(u / n) if n > 1e-6 else None


class ViewerServer:
    def __init__(self, source, host: str = "127.0.0.1", port: int = 8080, *, max_width: int = 1280,
                 preview_scale: float = 0.35, settle_s: float = 0.2, live=None, snapshot_dir=None,
                 verbose: bool = True):
        self.source, self.live = source, live
        self.max_width, self.preview_scale, self.settle_s = max_width, preview_scale, settle_s
        self.verbose = verbose
        self.fault = None  # optional callable(session) raised in render threads (tests)
        run_path = getattr(getattr(source, "run", None), "path", None)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else (Path(run_path) / "snapshots" if run_path
                                                                      else Path("snapshots"))
        self.initial_view = _initial_view(source)
        self.sessions: dict[int, ClientSession] = {}
        self._lock = threading.Lock()
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        up = _up_direction(source)
        if up is not None:
            self.server.scene.set_up_direction(up)
        self.server.on_client_connect(self._on_connect)
        self.server.on_client_disconnect(self._on_disconnect)
        self.host, self.port = host, self.server.get_port()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self, msg: str):
        if self.verbose:
            print(f"[le3d view] {msg}", flush=True)

    def _on_connect(self, client: viser.ClientHandle):
        try:
            s = ClientSession(self, client)
        except Exception as exc:  # noqa: BLE001
            self.log(f"client {client.client_id}: setup failed: {exc}\n{traceback.format_exc()}")
            return
        with self._lock:
            self.sessions[client.client_id] = s
        self.log(f"client {client.client_id} connected ({len(self.sessions)} open)")

    def _on_disconnect(self, client: viser.ClientHandle):
        with self._lock:
            s = self.sessions.pop(client.client_id, None)
        if s is not None:
            s.close()
        self.log(f"client {client.client_id} disconnected")

    def refresh_live(self):
        """Re-render every client (the live model changed) and update the training panel."""
        live = self.live
        with self._lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            if live is not None and getattr(s, "live_md", None) is not None:
                st = live.stats
                parts = [f"iteration **{st.get('iteration', 0)}** / {st.get('iters', '?')}"]
                for k in ("loss", "psnr"):
                    if st.get(k) is not None:
                        parts.append(f"{k}: {st[k]:.4g}")
                parts.append(f"{self.source.num_primitives:,} primitives")
                if live.paused:
                    parts.append("**paused**")
                s.live_md.content = "  \n".join(parts)
                s.pause_btn.label = "Resume training" if live.paused else "Pause training"
            s.request()

    def serve_forever(self):
        self.log(f"serving {self.url} (Ctrl-C to stop)")
        try:
            while not self._closed:
                time.sleep(0.5)
        finally:
            self.stop()

    def stop(self):
        if self._closed:
            return
        self._closed = True
        with self._lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close()
        self.server.stop()
