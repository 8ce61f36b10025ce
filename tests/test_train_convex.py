"""`le3d train --primitive convex`: PSNR rises, checkpoint resume is bit-for-bit, eval and load_run work."""
import json

import pytest
import torch

from le3d.cli import main
from le3d.run import load_run
from le3d.train import load_config, train
from le3d.train.config import apply_overrides

SMALL = {"primitive": "convex", "downscale": 2, "densify_from": 20, "densify_until": 50, "densify_every": 10,
         "opacity_reset_every": 40, "checkpoint_every": 0, "s3im_pixels": 512, "s3im_patch_height": 16,
         "max_init_points": 1500, "max_primitives": 6000}


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_convex") / "scene"
    assert main(["synth", str(d), "--views", "10", "--width", "64", "--height", "48", "--seed", "0"]) == 0
    return d




def _psnr(run, frames):
    vals = []
    for f in frames:
        out = run.render(f.camera, exposure=f.exposure)
        mse = float(((out.image - f.image) ** 2).mean())
        vals.append(-10 * torch.log10(torch.tensor(mse / float(f.image.max()) ** 2)))
    return float(torch.stack(vals).mean())


def _train_cli(scene_dir, run, iters):
    args = ["train", str(scene_dir), "--out", str(run), "--config", "demo_cpu", "--primitive", "convex",
            "--iters", str(iters), "--downscale", "2", "--device", "cpu", "--seed", "0", "--quiet"]
    assert main(args) == 0


@pytest.mark.slow
def test_convex_training_raises_psnr_eval_and_load_run(scene_dir, tmp_path, one_thread):
    from le3d.data import load_scene

    scene = load_scene(str(scene_dir), downscale=2)
    _train_cli(scene_dir, tmp_path / "r0", 1)
    before = _psnr(load_run(tmp_path / "r0"), scene.train[:4])
    _train_cli(scene_dir, tmp_path / "r1", 120)
    run = load_run(tmp_path / "r1")
    after = _psnr(run, scene.train[:4])
    assert after > before + 3, (before, after)  # measured: 24.1 -> 28.1 dB (Gaussians: 21.9 -> 27.8)
    cfg = json.loads((tmp_path / "r1" / "config.json").read_text())
    assert cfg["train"]["primitive"] == "convex" and cfg["model"]["primitive"] == "convex"
    assert type(run.model).__name__ == "ConvexModel" and run.num_primitives == run.state["num_primitives"]
    out = run.render(scene.test[0].camera, depth_outputs=True)
    cam = scene.test[0].camera
    assert out.image.shape == (cam.height, cam.width, 3) and torch.isfinite(out.image).all()
    assert out.near_depth is not None and float(out.alpha.max()) > 0.5
    assert main(["eval", str(tmp_path / "r1")]) == 0
    m = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    assert m["srgb_psnr"] > 0 and m["num_primitives"] == run.num_primitives


def test_convex_resume_is_bit_for_bit(scene_dir, tmp_path, one_thread):
    from le3d.data import load_scene

    scene = load_scene(str(scene_dir), downscale=4)
    # densification at 30 and 40 (after the resume at 25; the grad statistics go through the checkpoint),
    # opacity reset at 40
    cfg = apply_overrides(load_config("demo_cpu"), {**SMALL, "iters": 45, "downscale": 4, "densify_from": 30})
    full = train(scene, cfg, tmp_path / "full", seed=3, progress=False)
    part = train(scene, cfg, tmp_path / "part", seed=3, progress=False, stop_after=25)
    assert part.status == "interrupted" and part.iteration == 25
    cont = train(scene, cfg, tmp_path / "part", seed=3, resume=True, progress=False)
    assert cont.iteration == 45 and cont.status == "finished"
    assert cont.model.num_primitives != part.model.num_primitives  # densified after the resume
    a, b = full.model.state_tensors(), cont.model.state_tensors()
    assert a.keys() == b.keys() and {"points", "log_delta", "log_sigma", "features", "f_dc"} <= a.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(full.gains.log_gains, cont.gains.log_gains)
    # the saved checkpoint reloads into the same model
    run = load_run(tmp_path / "part")
    for k, v in run.model.state_tensors().items():
        assert torch.equal(v, a[k]), k


def test_convex_sh_ldr_loss_runs(scene_dir, tmp_path, one_thread):
    """The 3DCS LDR recipe (SH colour, L1 + 0.2 D-SSIM) on convexes."""
    from le3d.data import load_scene

    scene = load_scene(str(scene_dir), downscale=4)
    cfg = apply_overrides(load_config("3dcs_ldr_cpu"), {**SMALL, "iters": 20, "downscale": 4})
    assert cfg.recon == "l1" and cfg.ssim_weight == 0.2 and cfg.color_mode == "sh"
    tr = train(scene, cfg, tmp_path / "sh", progress=False)
    assert tr.model.kind == "convex" and torch.isfinite(tr.model.params["sh"]).all()
