"""`le3d train SCENE --out RUN`: train a scene into a RUN folder (see le3d.run for the layout)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from le3d.errors import Le3dError

NAME = "train"
HELP = "train a scene (RAW or LDR) into a RUN folder"


def add_arguments(p):
    p.add_argument("scene", help="scene folder (RawNeRF layout, COLMAP images/, or transforms.json)")
    p.add_argument("--out", required=True, help="RUN folder to write")
    p.add_argument("--config", default=None, help="config name (demo_cpu, le3d, rawgs, ...) or YAML path; default le3d")
    p.add_argument("--primitive", choices=["gaussian", "convex"], default=None,
                   help="3D Gaussians or smooth convexes (3D Convex Splatting; overrides the config)")
    p.add_argument("--iters", type=int, default=None, help="number of iterations (overrides the config)")
    p.add_argument("--downscale", type=int, default=None, help="image downscale factor (overrides the config)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted RUN from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--viewer", action="store_true", help="watch (and pause) training live in the browser viewer")
    p.add_argument("--viewer-host", default="127.0.0.1", help="viewer address (default 127.0.0.1: this machine only)")
    p.add_argument("--viewer-port", type=int, default=8080)


def load_scene_checked(path: str, downscale: int):
    from le3d.data import load_scene

    try:
        scene = load_scene(path, downscale=downscale)
    except Le3dError:
        raise
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise Le3dError(f"scene {path}: cannot load ({type(exc).__name__}: {exc})") from None
    if not scene.train:
        raise Le3dError(f"scene {path}: no training views")
    for f in scene.train:
        if not bool(f.image.isfinite().all()):
            raise Le3dError(f"scene {path}: image {f.path or f.camera.name} contains NaN or inf")
    return scene


def run(args) -> int:
    from le3d.train import load_config, train
    from le3d.train.checkpoint import load_json
    from le3d.train.config import TrainConfig, apply_overrides

    out = Path(args.out)
    state_file = out / "state.json"
    if args.resume:
        if not state_file.is_file():
            raise Le3dError(f"run {out}: nothing to resume (state.json missing)")
        fixed = [flag for flag, v in (("--config", args.config), ("--primitive", args.primitive),
                                      ("--downscale", args.downscale)) if v is not None]
        if fixed:  # they were silently ignored: the RUN's model and images are its own
            raise Le3dError(f"run {out}: --resume continues with the RUN's own config; {', '.join(fixed)} "
                            "cannot change it (only --iters and --device can); start a new RUN instead")
        state = load_json(state_file)
        saved = load_json(out / "config.json")
        cfg = TrainConfig.from_dict(saved["train"])
        if args.iters is not None:
            cfg.iters = args.iters
        if args.device is not None:
            cfg.device = args.device
        if state.get("status") == "finished" and state.get("iteration", 0) >= cfg.iters:
            print(f"le3d train: {out} is already finished at iteration {state['iteration']}")
            return 0
        seed = saved.get("seed", args.seed)
        scene_path = saved["scene"].get("path", args.scene)
    else:
        if out.exists() and any(out.iterdir()):
            if not args.overwrite:
                st = load_json(state_file).get("status") if state_file.is_file() else "unknown"
                hint = "use --resume to continue it, or " if st in ("running", "interrupted") else ""
                raise Le3dError(f"run {out}: already exists (status {st}); {hint}use --overwrite to replace it")
            shutil.rmtree(out)
        cfg = load_config(args.config)
        ov = {k: v for k, v in {"primitive": args.primitive, "iters": args.iters, "downscale": args.downscale,
                                "device": args.device}.items() if v is not None}
        cfg = apply_overrides(cfg, ov, "command line")
        seed = args.seed
        scene_path = args.scene
    from le3d.train.trainer import pick_device

    pick_device(cfg)  # before the scene loads (tens of seconds for large scenes) and before --out exists
    if cfg.primitive == "convex":
        from le3d.train.trainer import create_model

        create_model(cfg)  # clear message if convex primitives are not available
    scene = load_scene_checked(scene_path, cfg.downscale)
    hint = cpu_schedule_hint(cfg)  # after the scene loaded: a bad scene stays a one-line error
    if hint:
        print(hint, file=sys.stderr)
    info = {"path": str(Path(scene_path).resolve()), "downscale": cfg.downscale}
    viewer = (args.viewer_host, args.viewer_port) if args.viewer else None
    tr = train(scene, cfg, out, seed=seed, scene_info=info, resume=args.resume, progress=not args.quiet,
               viewer=viewer)
    its = tr.iteration / max(tr.train_seconds, 1e-9)
    if tr.status == "interrupted":
        print(f"le3d train: interrupted at iteration {tr.iteration}; checkpoint saved in {out} "
              f"(continue with: le3d train {scene_path} --out {out} --resume)")
        return 130
    print(f"le3d train: finished {tr.iteration} iterations in {tr.train_seconds:.1f} s ({its:.1f} it/s), "
          f"{tr.model.num_primitives} primitives -> {out}")
    return 0


def cpu_schedule_hint(cfg) -> str | None:
    """A warning when a long GPU schedule is about to run on the CPU (the default config is `le3d`)."""
    from le3d.train.trainer import pick_device

    if cfg.iters < 5000 or pick_device(cfg).type != "cpu":
        return None
    return (f"le3d train: running the {cfg.iters}-iteration '{cfg.name}' schedule on the CPU will take hours; "
            "--config demo_cpu is the CPU schedule (300 iterations at downscale 4)")
