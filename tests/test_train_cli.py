"""`le3d train` from the command line: Ctrl-C saves and exits cleanly, resume, bad scenes, no overwrite."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

LE3D = [sys.executable, "-m", "le3d.cli"]


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    from le3d.cli import main

    d = tmp_path_factory.mktemp("train_cli") / "scene"
    assert main(["synth", str(d), "--views", "8", "--width", "48", "--height", "32", "--seed", "0"]) == 0
    return d


def _run(*args, timeout=300):
    return subprocess.run(LE3D + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_ctrl_c_saves_and_resumes(tiny_scene, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(LE3D + ["train", str(tiny_scene), "--out", str(run), "--config", "demo_cpu", "--iters",
                                 "100000", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "state.json").is_file():
        time.sleep(0.5)
    time.sleep(5)  # let a few iterations run
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted" in out and "Traceback" not in err
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["iteration"] > 0
    assert (run / "checkpoints" / f"{state['last_checkpoint']}.safetensors").is_file()
    assert (run / "model.safetensors").is_file()
    # refuses to start over without --overwrite, suggests --resume
    r = _run("train", tiny_scene, "--out", run, "--config", "demo_cpu")
    assert r.returncode == 2 and "--resume" in r.stderr
    # resume to two more iterations
    r = _run("train", tiny_scene, "--out", run, "--resume", "--iters", state["iteration"] + 2, "--quiet")
    assert r.returncode == 0, r.stderr
    state2 = json.loads((run / "state.json").read_text())
    assert state2["status"] == "finished" and state2["iteration"] == state["iteration"] + 2
    # the RUN's config says what it was trained to (it kept saying 100000)
    assert json.loads((run / "config.json").read_text())["train"]["iters"] == state["iteration"] + 2
    # a finished run is not overwritten
    r = _run("train", tiny_scene, "--out", run)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    # eval writes metrics.json
    r = _run("eval", run)
    assert r.returncode == 0, r.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert m["srgb_psnr"] > 0 and m["num_primitives"] > 0


def test_bad_scenes(tmp_path):
    r = _run("train", tmp_path / "missing", "--out", tmp_path / "r1")
    assert r.returncode == 2 and "missing" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    (bad / "raw").mkdir(parents=True)
    (bad / "raw" / "x.dng").write_bytes(b"not a dng")
    r = _run("train", bad, "--out", tmp_path / "r2")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run("train", empty, "--out", tmp_path / "r3")
    assert r.returncode == 2 and "empty" in r.stderr
    r = _run("train", empty, "--out", tmp_path / "r4", "--config", "nonexistent_config")
    assert r.returncode == 2 and "nonexistent_config" in r.stderr


def test_convex_flag_is_clear(tmp_path, tiny_scene):
    r = _run("train", tiny_scene, "--out", tmp_path / "rc", "--primitive", "convex", "--iters", "1")
    assert r.returncode in (0, 2), r.stderr
    assert "Traceback" not in r.stderr


def test_cpu_schedule_hint():
    from le3d.commands.train import cpu_schedule_hint
    from le3d.train.config import apply_overrides, load_config

    full_on_cpu = apply_overrides(load_config("le3d"), {"device": "cpu"})
    assert "demo_cpu" in cpu_schedule_hint(full_on_cpu)
    assert cpu_schedule_hint(load_config("demo_cpu")) is None
    assert cpu_schedule_hint(apply_overrides(full_on_cpu, {"iters": 100})) is None
