"""One tiny trained RUN shared by the render/export/API tests (built once per pytest process).

Usage in a test module:
    @pytest.fixture(scope="session")
    def tiny_run(tmp_path_factory):
        return run_fixture.get_tiny_run(tmp_path_factory)
"""
from __future__ import annotations

_CACHE: dict[str, object] = {}


def make_tiny_run(base):
    """synth (12 views, 96x64 packed, downscale 4 -> 24x16) + 10 training iterations; returns RUN path."""
    from le3d.cli import main

    scene, run = base / "scene", base / "run"
    assert main(["synth", str(scene), "--views", "12", "--width", "96", "--height", "64", "--seed", "0"]) == 0
    assert main(["train", str(scene), "--out", str(run), "--config", "demo_cpu", "--iters", "10",
                 "--downscale", "4", "--device", "cpu", "--seed", "0", "--quiet"]) == 0
    return run


def get_tiny_run(tmp_path_factory):
    """The cached tiny RUN of this pytest process (built on first use)."""
    if "run" not in _CACHE:
        _CACHE["run"] = make_tiny_run(tmp_path_factory.mktemp("tiny_run"))
    return _CACHE["run"]
