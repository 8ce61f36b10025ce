"""Quality benchmark: train + evaluate LE3D, the RawGS baseline and the ablations on a synthetic scene.

    python scripts/bench_quality.py --scene /path/to/synth_scene [--seeds 0 1 2] [--quick] [--configs ...]

Without --scene, synthesises the default dark scene (`le3d synth OUT --scene lamps --seed 0`) into --work.
Each config is trained once per training seed; prints a Markdown table (mean ± std over the seeds when
there are several) of sRGB PSNR/SSIM, raw PSNR, depth AbsRel, primitives, train seconds and render FPS,
and writes bench_quality.json (every run's metrics) in --work. --quick trains only LE3D (demo_cpu) and
RawGS (rawgs_cpu). --fox PATH also trains the real LDR fox scene (../shared/data/fox) with 3dgs_ldr_cpu
at --fox-downscale 16.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ALL = ["demo_cpu", "demo_cpu_convex", "rawgs_cpu", "ablation_no_cone", "ablation_cone_no_carve",
       "ablation_sh_color", "ablation_no_distortion", "ablation_no_nearfar", "ablation_no_s3im"]
KEYS = ["srgb_psnr", "srgb_ssim", "raw_psnr", "depth_absrel", "num_primitives", "train_seconds", "render_fps"]


def summarise(values: list) -> str:
    """'mean ± std' over the seeds (just the value for one seed); '-' when a metric does not apply."""
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "-"
    large = max(abs(v) for v in values) >= 100
    fmt = (lambda v: f"{v:.0f}") if large else (lambda v: f"{v:.4g}")
    if len(values) == 1:
        return fmt(values[0])
    sd = statistics.stdev(values)
    return f"{fmt(statistics.mean(values))} ± {sd:.0f}" if large else f"{fmt(statistics.mean(values))} ± {sd:.2g}"


def markdown_table(runs: dict[str, list[dict]]) -> str:
    lines = ["| config | seeds | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 2) + "|"]
    for label, rs in runs.items():
        lines.append(f"| {label} | {len(rs)} | " + " | ".join(summarise([r[k] for r in rs]) for k in KEYS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from le3d.cli import main as le3d

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=None)
    ap.add_argument("--work", default="bench-quality")
    ap.add_argument("--configs", nargs="*", default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fox", default=None, help="path of the LDR fox scene (e.g. ../shared/data/fox)")
    ap.add_argument("--fox-downscale", type=int, default=16)
    a = ap.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    scene = a.scene
    if scene is None:
        scene = str(work / "scene")
        if not (Path(scene) / "scene.json").is_file():
            assert le3d(["synth", scene, "--scene", "lamps", "--seed", "0", "--overwrite"]) == 0
    configs = a.configs or (["demo_cpu", "rawgs_cpu"] if a.quick else ALL)
    jobs = [(c, c, scene, []) for c in configs]
    if a.fox:
        jobs.append(("fox (3dgs_ldr_cpu)", "3dgs_ldr_cpu", a.fox, ["--downscale", str(a.fox_downscale)]))
    runs: dict[str, list[dict]] = {}
    for seed in a.seeds:
        for label, c, scene_path, extra in jobs:
            run = work / f"run_{c if scene_path == scene else 'fox'}_s{seed}"
            args = ["train", scene_path, "--out", str(run), "--config", c, "--seed", str(seed), "--quiet",
                    "--overwrite", *extra]
            if a.iters:
                args += ["--iters", str(a.iters)]
            if le3d(args) != 0 or le3d(["eval", str(run), "--no-renders"]) != 0:
                print(f"bench_quality: {label} (seed {seed}) failed", file=sys.stderr)
                continue
            metrics = json.loads((run / "metrics.json").read_text())
            runs.setdefault(label, []).append({"seed": seed, **{k: metrics.get(k) for k in KEYS}})
    print(markdown_table(runs))
    (work / "bench_quality.json").write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
