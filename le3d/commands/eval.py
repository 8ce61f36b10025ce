"""`le3d eval RUN`: held-out views -> RUN/metrics.json (+ RUN/renders/*.png)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from le3d.errors import Le3dError

NAME = "eval"
HELP = "evaluate a trained RUN on its held-out views (metrics.json, renders)"


def add_arguments(p):
    p.add_argument("run", help="RUN folder written by `le3d train`")
    p.add_argument("--scene", default=None, help="scene folder (default: the one the RUN was trained on)")
    p.add_argument("--checkpoint", default=None, help="evaluate checkpoints/NAME instead of the final model")
    p.add_argument("--no-renders", action="store_true", help="do not write renders/*.png")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to render (default: the GPU when there is one); metrics are computed on the CPU")
    p.add_argument("--seed", type=int, default=0, help="unused (evaluation is deterministic); for CLI uniformity")


def clean_ground_truth(scene, frame) -> torch.Tensor:
    """Linear GT at the reference exposure: the scene's clean gt/<stem>.npy when present (synthetic
    scenes), else the captured image divided by its exposure."""
    stem = Path(frame.path).stem if frame.path else frame.camera.name
    p = Path(scene.root) / "gt" / f"{stem}.npy" if scene.root else None
    if p is not None and p.is_file():
        gt = torch.from_numpy(np.load(p)).float()
        H, W = frame.image.shape[:2]
        if gt.shape[:2] != (H, W):
            f = gt.shape[0] // H
            if f * H != gt.shape[0] or f * W != gt.shape[1]:
                raise Le3dError(f"{p}: size {tuple(gt.shape[:2])} does not match the view {H}x{W}")
            gt = gt.reshape(H, f, W, f, -1).mean((1, 3))
        return gt
    return frame.image.float() / max(float(frame.exposure), 1e-12)


def evaluate(run_dir, scene=None, write_renders: bool = True, checkpoint: str | None = None,
             device: str = "cpu") -> dict:
    """Render the RUN's held-out views on ``device`` and score them (on the CPU) -> the metrics dict,
    also written to RUN/metrics.json (RUN/metrics_CHECKPOINT.json)."""
    from le3d.commands.train import load_scene_checked
    from le3d.metrics import depth_absrel, image_metrics
    from le3d.run import load_run
    from le3d.train.checkpoint import save_json

    run_dir = Path(run_dir)
    run = load_run(run_dir, device, checkpoint=checkpoint)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    if checkpoint:
        meta = json.loads((run_dir / "checkpoints" / f"{checkpoint}.json").read_text())
        run.state = {**run.state, "iteration": meta["iteration"], "train_seconds": meta["train_seconds"]}
    if scene is None:
        sc = run.config["scene"]
        if not sc.get("path"):
            raise Le3dError(f"run {run_dir}: config.json does not name its scene; pass --scene")
        scene = load_scene_checked(sc["path"], sc.get("downscale", 1))
    frames = scene.test
    if not frames:
        raise Le3dError(f"scene {scene.root}: no held-out (test) views to evaluate")
    wb, c2s = scene.white_balance, scene.cam_to_srgb
    per_view, times = [], []
    rdir = run_dir / "renders"
    for f in frames:
        sync()
        t0 = time.perf_counter()
        out = run.render(f.camera)
        sync()  # the GPU runs asynchronously: time the render, not its launch
        times.append(time.perf_counter() - t0)
        image, depth, alpha = out.image.cpu(), out.depth.cpu(), out.alpha.cpu()
        gt = clean_ground_truth(scene, f)
        m = image_metrics(image, gt, scene.kind, wb, c2s)
        if f.depth is not None:
            m["depth_absrel"] = depth_absrel(depth, alpha, f.depth.float())
        if write_renders:
            import imageio.v3 as iio

            rdir.mkdir(exist_ok=True)
            both = torch.cat([m["_srgb"], m["_srgb_gt"]], dim=1)
            iio.imwrite(rdir / f"{f.camera.name or len(per_view)}.png",
                        (both.clamp(0, 1) * 255 + 0.5).byte().numpy())
        m = {k: v for k, v in m.items() if not k.startswith("_")}
        m["view"] = f.camera.name
        per_view.append(m)
    keys = list(dict.fromkeys(k for v in per_view for k in v if k != "view"))  # all views' metrics, in order
    mean = {}
    for k in keys:
        vals = [v[k] for v in per_view if v.get(k) is not None and math.isfinite(v[k])]
        mean[k] = float(np.mean(vals)) if vals else None
    warm = times[1:] if len(times) > 1 else times
    result = {
        "run": str(run_dir), "scene": scene.root, "config": run.config["train"].get("name"),
        "num_test_views": len(frames), **mean,
        "num_primitives": run.num_primitives,
        "train_seconds": run.state.get("train_seconds"), "iterations": run.state.get("iteration"),
        "render_fps": 1.0 / max(float(np.mean(warm)), 1e-9), "device": str(device),
        "resolution": [frames[0].camera.width, frames[0].camera.height],
        "protocol": {"raw": "per-channel affine alignment to GT, PSNR peak = GT max",
                     "srgb": "WB gains -> cam_to_srgb -> clip -> sRGB OETF, shared exposure mapping the "
                             "GT 97th-percentile luminance to 0.5",
                     "depth": "AbsRel of sum(w z)/alpha where alpha > 0.5 and GT depth is finite"},
        "per_view": per_view,
    }
    save_json(run_dir / ("metrics.json" if not checkpoint else f"metrics_{checkpoint}.json"), result)
    return result


def run(args) -> int:
    scene = None
    if args.scene:
        from le3d.commands.train import load_scene_checked
        from le3d.run import load_run

        r = load_run(args.run)
        scene = load_scene_checked(args.scene, r.config["scene"].get("downscale", 1))
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Le3dError("--device cuda: no CUDA device available (use --device cpu)")
    res = evaluate(args.run, scene, not args.no_renders, args.checkpoint, device)
    fmt = {k: res.get(k) for k in ("raw_psnr", "srgb_psnr", "srgb_ssim", "depth_absrel", "num_primitives")}
    print("le3d eval: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in fmt.items() if v is not None))  # LDR scenes have no raw PSNR
    name = f"metrics_{args.checkpoint}.json" if args.checkpoint else "metrics.json"
    print(f"le3d eval: metrics in {Path(args.run) / name}")
    return 0
