"""scripts/bench_raster.py's real scene (--scene garden): the garden's SfM points and first camera, its
intrinsics scaled to the benchmark's size, and the script end to end on it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_raster  # noqa: E402
from scenes import garden_points  # noqa: E402


def test_garden_scene_is_the_real_camera_at_the_benchmark_size():
    garden = garden_points()
    native = bench_raster.garden_scene(3000, garden["width"], garden["height"], "cpu")
    double = bench_raster.garden_scene(3000, 2 * garden["width"], 2 * garden["height"], "cpu")
    assert torch.equal(native["K"], garden["Ks"][0])
    assert torch.allclose(double["K"][:2], 2 * garden["Ks"][0][:2])
    assert torch.equal(double["K"][2], garden["Ks"][0][2])
    assert torch.equal(native["viewmat"], garden["viewmats"][0])
    # a seeded subset of the real points (the garden holds some twice), the same for both sizes
    assert torch.equal(native["means"], double["means"])
    assert (native["means"][:, None, :] == garden["means"][None, :, :]).all(-1).any(1).all()
    # the isolated points' metre-wide scales are capped: no Gaussian far beyond the typical one
    size = native["scales"].prod(-1) ** (1 / 3)
    assert size.max() < 10 * size.median()


def test_garden_scene_refuses_more_points_than_the_garden_has():
    total = garden_points()["means"].shape[0]
    with pytest.raises(SystemExit, match=str(total)):
        bench_raster.garden_scene(total + 1, 64, 48, "cpu")


def test_bench_raster_runs_the_garden_scene():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_raster.py"), "--scene", "garden",
                          "--sizes", "4000:162x105", "--repeats", "1", "--no-reference"],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    assert "ratio garden 4000 162x105: convex / gaussian fwd+bwd time" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("4000 162x105")]
    assert len(rows) == 2 and not any("ERROR" in r for r in rows), out
