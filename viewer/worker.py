"""A per-client render thread with latest-request-wins scheduling and preview/full resolution.

`request(job, moving)` replaces any pending job (a slow render never builds a queue). While the
camera moves, jobs render at preview resolution; once no request has arrived for `settle_s` seconds
the last job is re-rendered at full resolution. Exceptions from `render` go to `on_error`; the
thread keeps running.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RenderWorker"]


class RenderWorker:
    def __init__(self, render: Callable[[object, bool], None], on_error: Callable[[BaseException], None],
                 settle_s: float = 0.2, name: str = "le3d-render"):
        self._render, self._on_error, self.settle_s = render, on_error, settle_s
        self._cv = threading.Condition()
        self._pending = None  # (job, preview)
        self._last_job = None
        self._need_full = False
        self._last_request = 0.0
        self._stop = False
        self.frames = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def request(self, job, moving: bool = False) -> None:
        with self._cv:
            self._pending = (job, moving)
            self._last_request = time.monotonic()
            self._cv.notify()

    def stop(self, timeout: float | None = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next(self):
        with self._cv:
            while not self._stop:
                if self._pending is not None:
                    job, preview = self._pending
                    self._pending = None
                    self._last_job, self._need_full = job, preview
                    return job, preview
                if self._need_full:
                    wait = self._last_request + self.settle_s - time.monotonic()
                    if wait <= 0:
                        self._need_full = False
                        return self._last_job, False
                    self._cv.wait(wait)
                else:
                    self._cv.wait()
            return None

    def _loop(self):
        while True:
            item = self._next()
            if item is None:
                return
            try:
                self._render(*item)
                self.frames += 1
            except BaseException as exc:  # noqa: BLE001 - the thread must survive any render error
                self.errors += 1
                try:
                    self._on_error(exc)
                except Exception:  # noqa: BLE001
                    pass
