"""Quality benchmark: train + evaluate LE3D, the RawGS baseline and the ablations on a synthetic scene.

    python scripts/bench_quality.py --scene /path/to/synth_scene [--quick] [--configs demo_cpu rawgs_cpu ...]

Without --scene, synthesises the default dark scene (`le3d synth OUT --scene lamps --seed 0`) into --work.
Prints a Markdown table (sRGB PSNR/SSIM, raw PSNR, depth AbsRel, primitives, train seconds) and writes
bench_quality.json in --work. --quick trains only LE3D (demo_cpu) and RawGS (rawgs_cpu).
--fox PATH also trains the real LDR fox scene (../shared/data/fox) with 3dgs_ldr_cpu at --fox-downscale 16.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ALL = ["demo_cpu", "rawgs_cpu", "ablation_no_cone", "ablation_cone_no_carve", "ablation_sh_color", "ablation_no_distortion",
       "ablation_no_nearfar", "ablation_no_s3im"]


def main(argv=None) -> int:
    from le3d.cli import main as le3d

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=None)
    ap.add_argument("--work", default="bench-quality")
    ap.add_argument("--configs", nargs="*", default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
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
            assert le3d(["synth", scene, "--scene", "lamps", "--seed", str(a.seed), "--overwrite"]) == 0
    configs = a.configs or (ALL[:2] if a.quick else ALL)
    rows = {}
    jobs = [(c, c, scene, []) for c in configs]
    if a.fox:
        jobs.append(("fox (3dgs_ldr_cpu)", "3dgs_ldr_cpu", a.fox, ["--downscale", str(a.fox_downscale)]))
    for label, c, scene_path, extra in jobs:
        run = work / f"run_{c}" if scene_path == scene else work / "run_fox"
        args = ["train", scene_path, "--out", str(run), "--config", c, "--seed", str(a.seed), "--quiet",
                "--overwrite", *extra]
        if a.iters:
            args += ["--iters", str(a.iters)]
        if le3d(args) != 0 or le3d(["eval", str(run), "--no-renders"]) != 0:
            print(f"bench_quality: {label} failed", file=sys.stderr)
            continue
        rows[label] = json.loads((run / "metrics.json").read_text())
    keys = ["srgb_psnr", "srgb_ssim", "raw_psnr", "depth_absrel", "num_primitives", "train_seconds"]
    print("| config | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for c, m in rows.items():
        print(f"| {c} | " + " | ".join(f"{m[k]:.4g}" if isinstance(m.get(k), float) else str(m.get(k)) for k in keys) + " |")
    (work / "bench_quality.json").write_text(json.dumps({c: {k: m.get(k) for k in keys} for c, m in rows.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
