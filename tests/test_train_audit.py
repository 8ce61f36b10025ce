"""Regression tests of the training / checkpoint / eval audit: config value checks, a second Ctrl-C
mid-step, masked (Bayer mosaic) structural losses, never-empty densification, eval's printed path,
the training background at render time, S3IM on tiny images."""
import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import run_fixture  # noqa: E402
from scenes import intrinsics, look_at_viewmat  # noqa: E402
from toy_scene import toy_scene  # noqa: E402

import le3d.train.trainer as trainer_mod  # noqa: E402
from le3d.data.types import Camera  # noqa: E402
from le3d.errors import Le3dError  # noqa: E402
from le3d.losses import s3im_loss  # noqa: E402
from le3d.model import GaussianModel  # noqa: E402
from le3d.run import load_run  # noqa: E402
from le3d.train import load_config, train  # noqa: E402
from le3d.train.config import apply_overrides  # noqa: E402
from le3d.train.densify import GaussianDensifier  # noqa: E402
from le3d.train.optim import build_optimizer  # noqa: E402

SMALL = {"iters": 40, "downscale": 1, "densify_from": 20, "densify_until": 50, "densify_every": 10,
         "opacity_reset_every": 40, "checkpoint_every": 0, "s3im_pixels": 512, "s3im_patch_height": 16,
         "sh_degree_interval": 20}


def _cfg(**kw):
    return apply_overrides(load_config("demo_cpu"), {**SMALL, **kw})


def test_yaml_exponent_floats_are_numbers(tmp_path):
    # PyYAML (YAML 1.1) reads `2e-4` as the string '2e-4'; training then died with a TypeError
    p = tmp_path / "c.yaml"
    p.write_text("base: demo_cpu\ngrad_threshold: 2e-4\nlr: {means: 3e-4}\nlr_final: {means: 3e-6}\n")
    c = load_config(str(p))
    assert c.grad_threshold == 0.0002 and isinstance(c.grad_threshold, float)
    assert c.lr["means"] == 0.0003 and c.lr_final["means"] == 0.000003


@pytest.mark.parametrize("override, words", [
    ({"iters": "12"}, "iters must be an integer"),
    ({"densify_every": 0}, "densify_every must be at least 1"),
    ({"s3im_patch_height": 0}, "s3im_patch_height must be at least 1"),
    ({"color_mode": "SH"}, "color_mode 'SH'"),
    ({"device": "gpu"}, "device 'gpu'"),
    ({"densify": "no"}, "densify must be true or false"),
    ({"lr": {"mean": 1e-3}}, "unknown parameter group 'mean'"),
    ({"lr_decay": {"means": "linear"}}, "lr_decay.means 'linear'"),
    ({"sh_degree": 5}, "sh_degree must be 0 to 3"),
])
def test_bad_config_values_are_one_line_errors(override, words):
    with pytest.raises(Le3dError, match=words):
        apply_overrides(load_config("demo_cpu"), override, "x.yaml")


def test_second_ctrl_c_mid_step_keeps_a_consistent_checkpoint(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    s = toy_scene(seed=2, exposures=[1.0, 0.5])
    cfg = _cfg(checkpoint_every=10)
    full = train(s, cfg, tmp_path / "full", seed=3, progress=False)
    orig = trainer_mod.update_lr

    def second_ctrl_c(opt, c, it, extent):  # lands after the optimiser step of iteration 25
        orig(opt, c, it, extent)
        if it == 25:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "update_lr", second_ctrl_c)
    part = train(s, cfg, tmp_path / "part", seed=3, progress=False)
    monkeypatch.setattr(trainer_mod, "update_lr", orig)
    state = json.loads((tmp_path / "part" / "state.json").read_text())
    assert part.status == "interrupted"
    assert (state["status"], state["iteration"], state["last_checkpoint"]) == ("interrupted", 20, "ckpt_0000020")
    cont = train(s, cfg, tmp_path / "part", seed=3, resume=True, progress=False)
    a, b = full.model.state_tensors(), cont.model.state_tensors()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _bayer_mask(H, W):
    m = torch.zeros(H, W, 3, dtype=torch.bool)
    m[0::2, 0::2, 0] = m[0::2, 1::2, 1] = m[1::2, 0::2, 1] = m[1::2, 1::2, 2] = True
    return m


def _perfectly_fit_mosaic_trainer(tmp_path, **weights):
    """A toy-scene Trainer whose targets are its own initial renders on the measured Bayer sites (0 at
    the unmeasured ones, masked out): the data is fitted exactly before the first step."""
    torch.set_num_threads(1)
    s = toy_scene(seed=1)
    cfg = _cfg(iters=1, densify=False, distortion_weight=0.0, nearfar_weight=0.0, **weights)
    tr = trainer_mod.Trainer(s, cfg, tmp_path / "r", seed=0, progress=False)
    tr.initialise()
    mask = _bayer_mask(*s.train[0].image.shape[:2])
    with torch.no_grad():
        for i, f in enumerate(tr.frames):
            tr.images[i] = tr.model.render(f.camera, background=torch.zeros(3)).image * f.exposure * mask
            tr.masks[i] = mask
    return tr


@pytest.mark.parametrize("term", ["s3im", "ssim"])
def test_masked_values_stay_out_of_structural_terms(tmp_path, monkeypatch, term):
    """Targets = the model's own renders on the measured mosaic sites (0 elsewhere): a perfect fit of
    the data, so S3IM loss must be 0 and SSIM 1 (old code: 0.714 and 0.375)."""
    w = {"s3im_weight": 0.5, "ssim_weight": 0.0} if term == "s3im" else {"s3im_weight": 0.0, "ssim_weight": 0.2}
    tr = _perfectly_fit_mosaic_trainer(tmp_path, **w)
    seen = {}
    fn = trainer_mod.s3im_loss if term == "s3im" else trainer_mod.ssim
    monkeypatch.setattr(trainer_mod, "s3im_loss" if term == "s3im" else "ssim",
                        lambda *a, **k: seen.setdefault(term, fn(*a, **k)))
    assert tr.step(1)
    expected = 0.0 if term == "s3im" else 1.0
    assert abs(float(seen[term].detach()) - expected) < 1e-5, float(seen[term].detach())


def test_pruning_never_empties_the_scene():
    cfg = _cfg(densify_from=10, densify_every=10, opacity_reset_every=0, prune_unseen=False)
    ops = torch.tensor([0.001, 0.002, 0.004, 0.003])  # all below prune_opacity 0.005
    m = GaussianModel().init_from_points(torch.rand(4, 3), torch.full((4, 3), 0.5), torch.full((4,), 0.01), ops)
    opt = build_optimizer(m.param_tensors(), cfg, 1.0)
    d = GaussianDensifier(cfg, 1.0, 1)
    d._ensure(4, torch.device("cpu"))  # no gradient statistics: nothing cloned or split
    d.step(m, opt, 10, torch.Generator().manual_seed(0))
    assert m.num_primitives == 1
    assert torch.allclose(torch.sigmoid(m.params["opacity_logits"]), torch.tensor([0.004]))


def test_eval_of_a_checkpoint_prints_the_file_it_wrote(tmp_path_factory):
    from le3d.cli import main

    run = run_fixture.get_tiny_run(tmp_path_factory)
    name = sorted(p.stem for p in (run / "checkpoints").glob("ckpt_*.json"))[-1]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["eval", str(run), "--checkpoint", name, "--no-renders"]) == 0
    printed = buf.getvalue().strip().splitlines()[-1].split("metrics in ")[1]
    assert printed == str(run / f"metrics_{name}.json") and Path(printed).is_file()


def test_load_run_renders_the_training_background(tmp_path):
    torch.set_num_threads(1)
    s = toy_scene(seed=1)
    train(s, _cfg(iters=1, background=0.7), tmp_path / "r", progress=False)
    V = look_at_viewmat((2.5, 0.0, 1.2), target=(10.0, 0.0, 1.2), up=(0.0, 0.0, -1.0))  # looks away: empty view
    out = load_run(tmp_path / "r").render(Camera(V, intrinsics(48, 32, 55.0), 48, 32, "away"), exposure=2.0)
    assert float(out.alpha.max()) == 0.0
    assert torch.allclose(out.image, torch.full_like(out.image, 1.4))  # background 0.7 x exposure 2


def test_s3im_on_fewer_pixels_than_a_patch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(5, 6, 3, generator=g), torch.rand(5, 6, 3, generator=g)  # 30 pixels < patch height 32
    assert abs(float(s3im_loss(x, x, g, 1024, 10, 32))) < 1e-6
    v = float(s3im_loss(x, y, g, 1024, 10, 32))
    assert 0.0 < v < 2.0


@pytest.mark.parametrize("flags", [["--config", "le3d"], ["--primitive", "convex"], ["--downscale", "2"]])
def test_resume_refuses_flags_it_would_ignore(tmp_path_factory, capsys, flags):
    """--resume continued with the RUN's own config and silently dropped --config, --primitive and
    --downscale; now they are a one-line error and the RUN is untouched."""
    from le3d.cli import main

    run = run_fixture.get_tiny_run(tmp_path_factory)
    before = (run / "state.json").read_text()
    assert main(["train", "unused-scene", "--out", str(run), "--resume", *flags]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (before it: the fixture's progress bars)
    assert flags[0] in last and "start a new RUN" in last
    assert (run / "state.json").read_text() == before


def test_eval_means_every_metric_any_view_has(tmp_path_factory):
    """The metric names came from the first test view: when it had no GT depth, depth_absrel was left
    out of the means even though later views had one."""
    import dataclasses

    from le3d.commands.eval import evaluate
    from le3d.commands.train import load_scene_checked

    run = run_fixture.get_tiny_run(tmp_path_factory)
    sc = load_run(run).config["scene"]
    scene = load_scene_checked(sc["path"], sc["downscale"])
    with_depth = next(f for f in scene.test if f.depth is not None)
    scene.test = [dataclasses.replace(with_depth, depth=None), with_depth]
    res = evaluate(run, scene, write_renders=False)
    per_view = [v.get("depth_absrel") for v in res["per_view"]]
    assert per_view[0] is None and per_view[1] is not None
    assert res["depth_absrel"] == pytest.approx(per_view[1])


def test_mosaic_training_psnr_counts_measured_values_only(tmp_path):
    """The logged training PSNR compared the full-RGB prediction with the mosaic's unmeasured zeros:
    a perfect fit of every measured value logged 51 dB on this dark toy scene instead of an exact match."""
    tr = _perfectly_fit_mosaic_trainer(tmp_path, s3im_weight=0.0, ssim_weight=0.0)
    assert tr.step(1)
    assert tr.last_psnr > 80, tr.last_psnr


def test_unknown_checkpoint_names_the_ones_there_are(tmp_path_factory):
    run = run_fixture.get_tiny_run(tmp_path_factory)
    have = sorted(p.stem for p in (run / "checkpoints").glob("*.safetensors"))
    assert have
    with pytest.raises(Le3dError, match=f"no checkpoint 'nope'; it has {have[0]}"):
        load_run(run, checkpoint="nope")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_train_on_a_missing_gpu_fails_before_the_run_folder_exists(tmp_path, capsys):
    from le3d.cli import main

    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "no-scene"), "--out", str(out), "--device", "cuda", "--quiet"]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not out.exists()


def test_initialisation_says_what_it_does(tmp_path, capsys):
    """Cone-scatter initialisation ran for tens of seconds on full-size views with nothing printed."""
    torch.set_num_threads(1)
    train(toy_scene(seed=1), _cfg(iters=1, densify=False), tmp_path / "r", progress=True)
    out = capsys.readouterr().out
    assert "initialising from" in out and "initial primitives" in out


def test_eval_device_flag_cpu(tmp_path_factory):
    """`le3d eval` always rendered on the CPU (and said "device": "cpu"), even on a GPU machine."""
    from le3d.cli import main

    run = run_fixture.get_tiny_run(tmp_path_factory)
    assert main(["eval", str(run), "--device", "cpu", "--no-renders"]) == 0
    assert json.loads((run / "metrics.json").read_text())["device"] == "cpu"


@pytest.mark.cuda
def test_eval_on_the_gpu_matches_the_cpu(tmp_path_factory):
    from le3d.commands.eval import evaluate

    run = run_fixture.get_tiny_run(tmp_path_factory)
    cpu = evaluate(run, write_renders=False, device="cpu")
    gpu = evaluate(run, write_renders=False, device="cuda")
    assert gpu["device"] == "cuda"
    for k in ("raw_psnr", "srgb_psnr", "srgb_ssim", "depth_absrel"):
        if cpu.get(k) is not None:
            assert gpu[k] == pytest.approx(cpu[k], rel=2e-3, abs=1e-3), k
