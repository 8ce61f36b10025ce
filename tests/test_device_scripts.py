"""The shell logic that decides, on a GPU machine, whether gpu_check.sh may use an extension prebuilt here
(scripts/device_prebuild.sh) instead of compiling: tested here, since the GPU machines are rarely lent and
a wrong answer would either waste their time compiling or test a build of other sources."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET = "cp312 torch 2.11.0+cu130 sm_90"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and sha256sum (coreutils)")


def copy_sources(dest: Path) -> Path:
    """What the stamp covers, plus the stamp script and a file it must ignore."""
    shutil.copytree(ROOT / "csrc", dest / "csrc")
    (dest / "le3d").mkdir(parents=True)
    shutil.copy(ROOT / "le3d" / "_build.py", dest / "le3d" / "_build.py")
    shutil.copy(ROOT / "setup.py", dest / "setup.py")
    (dest / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "source_stamp.sh", dest / "scripts" / "source_stamp.sh")
    (dest / "README.md").write_text("not a source\n")
    return dest


def stamp(tree: Path) -> str:
    return subprocess.run(["bash", str(ROOT / "scripts" / "source_stamp.sh"), str(tree)], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_source_stamp_follows_the_sources_only(tmp_path):
    a, b = copy_sources(tmp_path / "a"), copy_sources(tmp_path / "b")
    assert stamp(a) == stamp(b) == stamp(ROOT)
    assert len(stamp(a)) == 16
    (b / "README.md").write_text("edited\n")
    assert stamp(b) == stamp(a)
    kernels = b / "csrc" / "cuda" / "rasterize_kernels.cuh"
    kernels.write_text(kernels.read_text() + "\n// one more line\n")
    assert stamp(b) != stamp(a)
    c = copy_sources(tmp_path / "c")
    (c / "csrc" / "include" / "le3d" / "new_header.h").write_text("#pragma once\n")
    assert stamp(c) != stamp(a)


def gpu_check_function(name: str, device_target: str, *args) -> bool:
    """One of gpu_check.sh's shell functions, cut out of the script and run as it is there."""
    script = (ROOT / "scripts" / "gpu_check.sh").read_text()
    start = script.index(f"\n{name}() {{") + 1
    end = script.index("\n}\n", start) + 3
    call = " ".join(f'"{a}"' for a in args)
    program = f'cd "{ROOT}"\nDEVICE_TARGET="{device_target}"\n{script[start:end]}{name} {call}\n'
    return subprocess.run(["bash", "-c", program]).returncode == 0


def prebuilt_ok(prebuilt: Path, tree: Path, device_target: str) -> bool:
    return gpu_check_function("prebuilt_ok", device_target, prebuilt, tree)


def test_gpu_check_takes_a_prebuilt_extension_only_when_sources_and_machine_match(tmp_path):
    tree = copy_sources(tmp_path / "tree")
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    assert not prebuilt_ok(prebuilt, tree, TARGET)  # nothing there
    (prebuilt / "_C.cpython-312-x86_64-linux-gnu.so").write_bytes(b"")
    (prebuilt / "TARGET").write_text(TARGET + "\n")
    (prebuilt / "STAMP").write_text(stamp(tree) + "\n")
    assert prebuilt_ok(prebuilt, tree, TARGET)
    assert not prebuilt_ok(prebuilt, tree, "cp312 torch 2.11.0+cu130 sm_100")  # another GPU
    assert not prebuilt_ok(prebuilt, tree, "cp313 torch 2.12.0+cu130 sm_90")  # another Python and torch
    header = tree / "csrc" / "include" / "le3d" / "common.h"
    header.write_text(header.read_text() + "\n")
    assert not prebuilt_ok(prebuilt, tree, TARGET)  # the sources changed since the build
    (prebuilt / "STAMP").write_text(stamp(tree) + "\n")
    assert prebuilt_ok(prebuilt, tree, TARGET)
    (prebuilt / "_C.cpython-312-x86_64-linux-gnu.so").unlink()
    assert not prebuilt_ok(prebuilt, tree, TARGET)  # stamps without the library


def test_gpu_check_takes_gsplats_prebuilt_module_only_for_this_machine_and_version(tmp_path):
    def ok(device_target, version="1.5.3"):
        return gpu_check_function("gsplat_prebuilt_ok", device_target, tmp_path, version)

    assert not ok(TARGET)  # nothing there
    (tmp_path / "csrc.so").write_bytes(b"")
    assert not ok(TARGET)  # a module without its target
    (tmp_path / "TARGET").write_text(f"{TARGET} gsplat 1.5.3\n")
    assert ok(TARGET)
    assert not ok(TARGET, "1.5.2")  # another gsplat
    assert not ok("cp312 torch 2.11.0+cu130 sm_100")  # another GPU
    (tmp_path / "csrc.so").unlink()
    assert not ok(TARGET)  # a target without the module
