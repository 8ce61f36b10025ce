"""What a new user runs from the README and `--help`: one-line errors that say what to do, flags that
do what their help says, progress on long work (found by walking through the documented commands)."""
from __future__ import annotations

import json
import types
import warnings

import pytest

from le3d.cli import main


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- le3d (cli.py) -------------------------------------------------------------------------------

def test_unknown_option_names_the_command_and_its_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", str(tmp_path / "s"), "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "le3d synth: error: unrecognized arguments: --bogus" in err
    assert "usage: le3d synth" in err  # the command's own usage, not `le3d [-h] [--version] COMMAND`


def test_warnings_print_as_one_line(monkeypatch, capsys):
    def run(args):
        warnings.warn("17 of 67 frames have no image file and are skipped", UserWarning, stacklevel=2)
        return 0

    fake = types.SimpleNamespace(NAME="fake", HELP="a command that warns", add_arguments=lambda p: None, run=run)
    monkeypatch.setattr("le3d.cli._command_modules", lambda: iter([fake]))
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["fake"]) == 0
    assert warnings.showwarning is before  # restored
    assert _err_lines(capsys) == ["le3d fake: warning: 17 of 67 frames have no image file and are skipped"]


# --- le3d synth ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, expect", [
    (["--iso", "0"], "--iso 0: must be positive"),
    (["--iso", "-5"], "--iso -5: must be positive"),
    (["--exposure-scale", "0"], "--exposure-scale 0.0: must be a finite number > 0"),
    (["--exposure-scale", "-1"], "--exposure-scale -1.0: must be a finite number > 0"),
    (["--exposure-scale", "nan"], "--exposure-scale nan: must be a finite number > 0"),
])
def test_synth_bad_iso_or_exposure_is_one_line(tmp_path, capsys, flags, expect):
    out = tmp_path / "s"
    assert main(["synth", str(out), "--views", "3", "--width", "11", "--height", "11", "--quiet", *flags]) == 2
    assert _err_lines(capsys) == [f"le3d synth: error: {expect}"]
    assert not out.exists()


def test_synth_smallest_size_loads(tmp_path, capsys):
    """`--width/--height` used to accept 8..10, whose 16..20-pixel mosaics LibRaw refuses to read back:
    `le3d train` then failed on the scene synth had just written."""
    assert main(["synth", str(tmp_path / "s10"), "--views", "3", "--width", "10", "--height", "40", "--quiet"]) == 2
    assert "must be at least 11x11" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "s11"), "--views", "3", "--width", "11", "--height", "11", "--quiet"]) == 0
    from le3d.raw import read_dng

    frame = read_dng(tmp_path / "s11" / "raw" / "frame_000.dng")
    assert tuple(frame.mosaic.shape[-2:]) == (22, 22)


def test_unprocess_refuses_mosaics_libraw_cannot_read(tmp_path, capsys):
    """`le3d synth --from SRC --downscale N` wrote unreadable DNGs when the downscaled photos were under
    22 pixels (the fox at --downscale 64: 16x28); it now says to use a smaller --downscale."""
    import numpy as np
    from PIL import Image

    src = tmp_path / "ldr"
    (src / "images").mkdir(parents=True)
    frames = []
    for i in range(3):
        Image.fromarray(np.full((30, 40, 3), 60 * i + 40, np.uint8)).save(src / "images" / f"{i}.png")
        c2w = np.eye(4)
        c2w[0, 3] = 0.1 * i
        frames.append({"file_path": f"images/{i}.png", "transform_matrix": c2w.tolist()})
    (src / "transforms.json").write_text(json.dumps({"fl_x": 40.0, "fl_y": 40.0, "cx": 20.0, "cy": 15.0,
                                                     "w": 40, "h": 30, "frames": frames}))
    assert main(["synth", str(tmp_path / "dark"), "--from", str(src), "--downscale", "2", "--quiet"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "image too small at downscale 2 (20x15; LibRaw reads no mosaic under 22x22)" in err[0]
    assert err[0].endswith("use a smaller --downscale")


def test_synth_quiet(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--views", "3", "--width", "11", "--height", "11", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "synth lamps" not in cap.err and "wrote 3 views" in cap.out


# --- le3d export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, expect", [
    (["--out", "{d}/scene.txt"], "--out {d}/scene.txt: cannot tell the format from the extension; "
                                 "name it .ply or .splat, or pass --format ply|splat"),
    (["--ply", "{d}/a.ply", "--exposure", "nan"], "--exposure nan: must be a finite number of stops, -64..64"),
    (["--ply", "{d}/a.ply", "--exposure", "100"], "--exposure 100.0: must be a finite number of stops, -64..64"),
])
def test_export_flag_errors_are_one_line(tmp_path, capsys, flags, expect):
    flags = [f.format(d=tmp_path) for f in flags]
    assert main(["export", str(tmp_path / "RUN"), *flags]) == 2
    assert _err_lines(capsys) == [f"le3d export: error: {expect.format(d=tmp_path)}"]
    assert list(tmp_path.iterdir()) == []


def test_export_device_cuda_without_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["export", str(tmp_path / "RUN"), "--ply", str(tmp_path / "a.ply"), "--device", "cuda"]) == 2
    assert _err_lines(capsys) == ["le3d export: error: --device cuda: no CUDA device available (use --device cpu)"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-iteration RUN of a 3-view 11x11 scene (a few seconds)."""
    base = tmp_path_factory.mktemp("walkthrough_run")
    assert main(["synth", str(base / "scene"), "--views", "3", "--width", "11", "--height", "11"]) == 0
    assert main(["train", str(base / "scene"), "--out", str(base / "run"), "--config", "demo_cpu", "--iters", "1",
                 "--downscale", "1", "--device", "cpu", "--quiet"]) == 0
    return base / "run"


def test_export_shows_bake_progress(tiny_run, tmp_path, capsys):
    """Baking takes ~1 ms a Gaussian on 2 CPU cores (a 1M-Gaussian RUN: ~15 minutes): show progress."""
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--ply", str(tmp_path / "a.ply"), "--sh-degree", "0",
                 "--bake-dirs", "16"]) == 0
    assert "bake SH" in capsys.readouterr().err
    assert main(["export", str(tiny_run), "--ply", str(tmp_path / "b.ply"), "--sh-degree", "0",
                 "--bake-dirs", "16", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""


# --- le3d demo -----------------------------------------------------------------------------------

def _fake_demo(out, scene="lamps", seed=0, run=None):
    (out / "scene").mkdir(parents=True)
    (out / "scene" / "scene.json").write_text(json.dumps({"scene": scene, "seed": seed}))
    if run:
        (out / "run").mkdir()
        (out / "run" / "state.json").write_text(json.dumps({"status": "finished", "iteration": run[1]}))
        (out / "run" / "config.json").write_text(json.dumps({"seed": seed, "train": {"name": run[0],
                                                                                      "iters": run[1]}}))


def test_demo_refuses_to_reuse_another_scene(tmp_path, capsys):
    _fake_demo(tmp_path / "d", scene="lamps")
    assert main(["demo", "--out", str(tmp_path / "d"), "--scene", "boxes", "--quiet"]) == 2
    assert _err_lines(capsys) == [f"le3d demo: error: --out {tmp_path / 'd'} holds scene 'lamps' (seed 0), not "
                                  "'boxes' (seed 0); pass --overwrite to start again, or another --out"]


def test_demo_refuses_to_reuse_another_training(tmp_path, capsys):
    _fake_demo(tmp_path / "d", run=("demo_cpu", 300))
    assert main(["demo", "--out", str(tmp_path / "d"), "--iters", "10", "--quiet"]) == 2
    assert _err_lines(capsys) == [f"le3d demo: error: --out {tmp_path / 'd'} holds a run of config 'demo_cpu' "
                                  "(300 iterations, seed 0), not 'demo_cpu' (10 iterations, seed 0); pass "
                                  "--overwrite to retrain, or another --out"]


# --- le3d eval -----------------------------------------------------------------------------------

def test_eval_prints_no_none_metrics(monkeypatch, tmp_path, capsys):
    """An LDR scene has no raw PSNR and no depth: the summary line used to print `raw_psnr None`."""
    result = {"raw_psnr": None, "srgb_psnr": 10.33, "srgb_ssim": 0.301, "depth_absrel": None,
              "num_primitives": 5000}
    monkeypatch.setattr("le3d.commands.eval.evaluate", lambda *a, **k: result)
    assert main(["eval", str(tmp_path / "RUN")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "le3d eval: srgb_psnr 10.33, srgb_ssim 0.301, num_primitives 5000"
