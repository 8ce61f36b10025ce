"""scripts/ab_cpu_builds.py: two builds of le3d._C timed in one process. It swaps the module the raster
functions call with le3d._ext.use_extension, so that swap must take, and the script must run end to end."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import le3d._ext as ext

ROOT = Path(__file__).resolve().parents[1]


def test_use_extension_swaps_what_the_raster_functions_load():
    before = ext.load_extension()
    stand_in = object()
    try:
        ext.use_extension(stand_in)
        assert ext.load_extension() is stand_in and ext.loaded_extension() is stand_in
    finally:
        ext.use_extension(before)
    assert ext.load_extension() is before


def test_ab_script_times_two_builds():
    build = ext.load_extension()
    assert build is not None, ext.extension_error()
    so = build.__file__
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "ab_cpu_builds.py"), so, so,
                          "--size", "300:48x32", "--rounds", "2"],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    rows = [line.split() for line in out.splitlines() if "new/old" in line]
    assert [r[0] for r in rows] == ["gaussians", "convexes"]
    assert all(float(r[-1]) > 0 for r in rows)
