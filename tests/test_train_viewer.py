"""`le3d train --viewer`: the trainer drives the live viewer's protocol (pause, lock, stats)."""
import sys
import threading
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ports import free_port  # noqa: E402
from toy_scene import toy_scene  # noqa: E402

from le3d.train import load_config, train  # noqa: E402
from le3d.train.config import apply_overrides  # noqa: E402
from le3d.train.trainer import Trainer  # noqa: E402


def _cfg(iters):
    return apply_overrides(load_config("demo_cpu"), {"iters": iters, "downscale": 1, "checkpoint_every": 0,
                                                     "s3im_pixels": 256, "s3im_patch_height": 16})


class RecordingLive:
    """Stands in for viewer.live.LiveViewer and checks the trainer keeps its side of the protocol."""

    def __init__(self):
        self.lock = threading.RLock()
        self.waits, self.updates, self.steps_under_lock = 0, [], 0

    def wait_if_paused(self, should_stop=None):
        self.waits += 1

    def update(self, **stats):
        self.updates.append(stats)

    def stop(self):
        pass


def test_trainer_waits_locks_and_reports(tmp_path, monkeypatch):
    live = RecordingLive()
    original_step = Trainer.step

    def step(self, it):
        # RLock._is_owned is private; acquiring without blocking from another thread must fail
        got = []
        t = threading.Thread(target=lambda: got.append(live.lock.acquire(blocking=False)))
        t.start()
        t.join()
        if got == [False]:
            live.steps_under_lock += 1
        else:
            live.lock.release()
        return original_step(self, it)

    monkeypatch.setattr(Trainer, "step", step)
    tr = Trainer(toy_scene(seed=2), _cfg(6), tmp_path / "run", progress=False)
    tr.initialise()
    tr.write_config()
    tr.live = live
    assert tr.run() == "finished"
    assert live.waits == 6 and live.steps_under_lock == 6
    assert [u["iteration"] for u in live.updates] == [1, 2, 3, 4, 5, 6]
    assert all(u["iters"] == 6 and u["loss"] == u["loss"] for u in live.updates)  # finite losses


class PausedLive(RecordingLive):
    """A browser paused training before the first step and never resumes."""

    def wait_if_paused(self, should_stop=None):
        import time

        deadline = time.monotonic() + 20
        while not should_stop():
            assert time.monotonic() < deadline, "Ctrl-C did not end the paused wait"
            time.sleep(0.01)


def test_one_ctrl_c_stops_a_paused_run(tmp_path):
    """Ctrl-C while the browser has paused training stops and checkpoints at once (it used to wait
    for a resume, so a second Ctrl-C was needed)."""
    import os
    import signal

    tr = Trainer(toy_scene(seed=2), _cfg(6), tmp_path / "run", progress=False)
    tr.initialise()
    tr.write_config()
    tr.live = PausedLive()
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        assert tr.run() == "interrupted"
    finally:
        timer.cancel()
    assert tr.iteration == 0
    assert (tmp_path / "run" / "state.json").is_file()


def test_train_with_real_viewer_serves_and_stops(tmp_path, monkeypatch):
    port = free_port()
    seen = []

    def poll():
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as r:
                    seen.append(r.status)
                    return
            except OSError:
                threading.Event().wait(0.05)

    poller = threading.Thread(target=poll)
    original_step = Trainer.step

    def step(self, it):  # hold the first step until the page has been fetched (no timing races)
        if it == 1:
            poller.start()
            poller.join()
        return original_step(self, it)

    monkeypatch.setattr(Trainer, "step", step)
    tr = train(toy_scene(seed=3), _cfg(5), tmp_path / "run", progress=False, viewer=("127.0.0.1", port))
    assert tr.status == "finished"
    assert seen == [200], "the viewer page was served during training"


def test_live_and_trained_viewers_share_the_scene_colours(tmp_path):
    """The live viewer took the scene's cam_to_srgb and gains but not its camera -> XYZ matrix, so white
    balance by temperature failed there ("needs the scene's colour matrix") while the trained RUN's
    viewer rendered it. Both now take le3d.render's colour context."""
    import torch

    from le3d.post.pipeline import PostSettings, apply_post
    from le3d.run import load_run
    from viewer.live import TrainerSource
    from viewer.source import RunSource

    scene = toy_scene(seed=3)
    scene.cam_to_xyz = torch.tensor([[0.6, 0.3, 0.1], [0.25, 0.7, 0.05], [0.02, 0.1, 0.9]])
    tr = Trainer(scene, _cfg(2), tmp_path / "run", progress=False)
    tr.initialise()
    tr.write_config()
    assert tr.run() == "finished"
    live, trained = TrainerSource(tr, threading.RLock()), RunSource(load_run(tmp_path / "run"))
    for name in ("cam_to_srgb", "asshot_wb", "cam_to_xyz"):
        assert torch.allclose(getattr(live, name), getattr(trained, name)), name
    assert torch.allclose(live.cam_to_xyz, scene.cam_to_xyz)
    hdr = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(0))
    settings = PostSettings(white_balance=(3200.0, 0.0))
    out = apply_post(hdr, settings, live.cam_to_srgb, live.asshot_wb, None, cam_to_xyz=live.cam_to_xyz)
    assert torch.isfinite(out).all()
