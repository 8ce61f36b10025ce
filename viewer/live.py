"""The live viewer during training (`le3d train ... --viewer`).

Interface for the trainer (duck-typed; nothing here imports le3d.train):

    from viewer.live import start_live_viewer
    live = start_live_viewer(trainer, host="127.0.0.1", port=8080)
    for it in range(start, iters):
        live.wait_if_paused()            # blocks while a browser has paused training
        with live.lock:                  # the viewer renders under the same lock, never mid-step
            ... one optimisation step (incl. densification) ...
        live.update(iteration=it + 1, iters=iters, loss=float(loss), psnr=psnr_or_None)
    live.stop()                          # or keep serving after training: live.serve_forever()

`trainer` must provide: `trainer.model.render(camera, disparity_range=None)` and
`trainer.model.num_primitives`; `trainer.scene` with `kind`, `cam_to_srgb`, `white_balance` and
`cameras` (list of le3d Camera), optionally `cam_to_xyz` and `color_profile`; optional `trainer.depth_range` (near, far) and `trainer.extent`.
`update()` is cheap (it only schedules re-renders, at most `refresh_s` apart).
"""
from __future__ import annotations

import threading
import time

import torch

from le3d.render import scene_color_context
from viewer.source import SceneSource

__all__ = ["start_live_viewer", "LiveViewer", "TrainerSource"]


class TrainerSource(SceneSource):
    """Renders the trainer's current model (under the live lock, without gradients)."""

    def __init__(self, trainer, lock):
        super().__init__()
        self.trainer, self.lock = trainer, lock
        sc = trainer.scene
        self.kind = getattr(sc, "kind", "raw")
        self.use_colors(scene_color_context(sc.cam_to_srgb, sc.white_balance, getattr(sc, "cam_to_xyz", None),
                                            getattr(sc, "color_profile", None)))
        dr = getattr(trainer, "depth_range", None)
        self.depth_range = (float(dr[0]), float(dr[1])) if dr is not None else None
        self.extent = float(getattr(trainer, "extent", 1.0) or 1.0)
        self.cameras = list(getattr(sc, "cameras", []) or [])
        self.name = getattr(sc, "name", "training")

    def render(self, camera, distortion: bool = False):
        with self.lock, torch.no_grad():
            m = self.trainer.model
            if distortion and self.depth_range is not None:
                out = m.render(camera, disparity_range=self.depth_range)
            else:
                out = m.render(camera)
            for k in ("image", "alpha", "depth", "distortion"):  # detach from the live parameters
                v = getattr(out, k)
                if v is not None:
                    setattr(out, k, v.detach().clone())
            return out

    @property
    def num_primitives(self) -> int:
        return int(self.trainer.model.num_primitives)

    @property
    def info(self) -> str:
        return f"**{self.name}** (training, {self.kind})"


class LiveViewer:
    def __init__(self, trainer, host: str, port: int, refresh_s: float = 1.0, verbose: bool = True):
        from viewer.server import ViewerServer

        self.lock = threading.RLock()
        self.stats: dict = {}
        self.refresh_s = refresh_s
        self._paused = threading.Event()
        self._last_refresh = 0.0
        self.source = TrainerSource(trainer, self.lock)
        self.server = ViewerServer(self.source, host=host, port=port, live=self, verbose=verbose)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @paused.setter
    def paused(self, value: bool):
        (self._paused.set if value else self._paused.clear)()

    def wait_if_paused(self, poll_s: float = 0.1, should_stop=None) -> None:
        """Blocks while a browser has paused training; returns early once should_stop() is true
        (the trainer passes its Ctrl-C flag, so one Ctrl-C stops a paused run)."""
        while self._paused.is_set() and not (should_stop is not None and should_stop()):
            time.sleep(poll_s)

    def update(self, **stats):
        """Record training stats (iteration, iters, loss, psnr, ...) and refresh the browsers now and then."""
        self.stats.update(stats)
        now = time.monotonic()
        if now - self._last_refresh >= self.refresh_s:
            self._last_refresh = now
            self.server.refresh_live()

    def serve_forever(self):
        self.server.serve_forever()

    def stop(self):
        self.server.stop()


def start_live_viewer(trainer, host: str = "127.0.0.1", port: int = 8080, refresh_s: float = 1.0,
                      verbose: bool = True) -> LiveViewer:
    """Start the viewer on the trainer's live model (returns at once; the server runs in threads)."""
    v = LiveViewer(trainer, host, port, refresh_s=refresh_s, verbose=verbose)
    if verbose:
        print(f"le3d viewer: open {v.url} in a browser", flush=True)
    return v
