"""One tiny trained RUN shared by the render/export/API tests (built once per pytest process).

Usage in a test module:
    from run_fixture import tiny_run  # noqa: F401  (a session-scoped fixture)
"""
from __future__ import annotations

import pytest

_CACHE: dict[str, object] = {}


def make_tiny_run(base):
    """synth (12 views, 96x64 packed, downscale 4 -> 24x16) + 10 training iterations; returns RUN path."""
    if "run" in _CACHE:
        return _CACHE["run"]
    from le3d.cli import main

    scene, run = base / "scene", base / "run"
    assert main(["synth", str(scene), "--views", "12", "--width", "96", "--height", "64", "--seed", "0"]) == 0
    assert main(["train", str(scene), "--out", str(run), "--config", "demo_cpu", "--iters", "10",
                 "--device", "cpu", "--seed", "0", "--quiet"]) == 0
    _CACHE["run"] = run
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("tiny_run"))
