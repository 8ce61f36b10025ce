"""`le3d demo`: synthesise the default dark scene, train `demo_cpu`, evaluate, write renders and metrics."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from le3d.errors import Le3dError

NAME = "demo"
HELP = "synthesise a dark test scene, train the CPU demo config on it, evaluate and write renders"


def add_arguments(p):
    p.add_argument("--out", default="le3d-demo", help="output folder (default ./le3d-demo)")
    p.add_argument("--scene", default="lamps", help="synthetic scene name (default lamps)")
    p.add_argument("--config", default="demo_cpu", help="training config (default demo_cpu)")
    p.add_argument("--iters", type=int, default=None, help="override the config's iteration count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="start again from scratch in --out")
    p.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from le3d.commands.eval import evaluate
    from le3d.commands.train import load_scene_checked
    from le3d.synth.generate import generate
    from le3d.train import load_config, train
    from le3d.train.checkpoint import load_json
    from le3d.train.config import apply_overrides

    out = Path(args.out)
    scene_dir, run_dir = out / "scene", out / "run"
    if out.exists() and args.overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if (scene_dir / "scene.json").is_file():  # reused: it must be the scene asked for
        have = load_json(scene_dir / "scene.json")
        if (have.get("scene"), have.get("seed")) != (args.scene, args.seed):
            raise Le3dError(f"--out {out} holds scene {have.get('scene')!r} (seed {have.get('seed')}), not "
                            f"{args.scene!r} (seed {args.seed}); pass --overwrite to start again, or another --out")
    else:
        print(f"le3d demo: synthesising scene {args.scene!r} -> {scene_dir}")
        generate(scene_dir, args.scene, args.seed, overwrite=True, progress=not args.quiet)
    cfg = load_config(args.config)
    if args.iters is not None:
        cfg = apply_overrides(cfg, {"iters": args.iters})
    state = load_json(run_dir / "state.json") if (run_dir / "state.json").is_file() else {}
    if state.get("status") in ("finished", "running", "interrupted") and (run_dir / "config.json").is_file():
        saved = load_json(run_dir / "config.json")  # reused or resumed: it must be the training asked for
        have = (saved["train"].get("name"), saved["train"].get("iters"), saved.get("seed"))
        if have != (cfg.name, cfg.iters, args.seed):
            raise Le3dError(f"--out {out} holds a run of config {have[0]!r} ({have[1]} iterations, seed {have[2]}), "
                            f"not {cfg.name!r} ({cfg.iters} iterations, seed {args.seed}); pass --overwrite "
                            "to retrain, or another --out")
    scene = load_scene_checked(str(scene_dir), cfg.downscale)
    info = {"path": str(scene_dir.resolve()), "downscale": cfg.downscale}
    if state.get("status") == "finished":
        print(f"le3d demo: reusing the finished run in {run_dir} (use --overwrite to retrain)")
    else:
        resume = state.get("status") in ("running", "interrupted") and state.get("last_checkpoint")
        if run_dir.exists() and not resume:
            shutil.rmtree(run_dir)
        print(f"le3d demo: training {cfg.name} ({cfg.iters} iterations, {len(scene.train)} views "
              f"{scene.train[0].camera.width}x{scene.train[0].camera.height}) -> {run_dir}")
        if resume:
            from le3d.train.config import TrainConfig

            cfg = TrainConfig.from_dict(load_json(run_dir / "config.json")["train"])
        tr = train(scene, cfg, run_dir, seed=args.seed, scene_info=info, resume=bool(resume),
                   progress=not args.quiet)
        if tr.status != "finished":
            print(f"le3d demo: interrupted; run `le3d demo --out {out}` again to continue")
            return 130
    res = evaluate(run_dir, scene, write_renders=True)
    summary = {k: res.get(k) for k in ("raw_psnr", "srgb_psnr", "srgb_ssim", "depth_absrel", "num_primitives",
                                       "train_seconds", "render_fps")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("le3d demo: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))
    print(f"le3d demo: done in {time.time() - t0:.0f} s. Renders (prediction | ground truth, sRGB): "
          f"{run_dir / 'renders'}; metrics: {run_dir / 'metrics.json'}")
    if not res.get("srgb_psnr"):
        raise Le3dError(f"demo {out}: evaluation produced no metrics")
    return 0
