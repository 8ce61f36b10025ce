"""Two builds of le3d._C timed in one process, their steps taking turns in a shuffled order each round.

On a shared VM the speed drifts by 10% or more between runs a minute apart, which swamps a change of a
few per cent when each build is timed in its own process; here both see the same machine conditions.

  python scripts/ab_cpu_builds.py OLD.so NEW.so [--size 200000:1280x720] [--rounds 8] [--scene garden]

OLD.so / NEW.so: copies of le3d/_C*.so from two builds (e.g. a git worktree of the old commit built with
`LE3D_BUILD_CUDA=0 python setup.py build_ext --inplace`). Steps: forward+backward of the bench_raster.py
scenes (Gaussians with every output, convexes), CPU backend; prints medians and new/old ratios.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import torch  # noqa: F401  (loads the libraries the extension links against)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import bench_raster  # noqa: E402

import le3d._ext as ext  # noqa: E402


def load_build(path: str, label: str):
    """The extension at path as a module of its own (a second copy loaded under the same name would be
    handed the first one back by Python's extension cache)."""
    spec = importlib.util.spec_from_file_location(f"{label}._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--size", default="200000:1280x720", help="N:WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--scene", default="random", choices=sorted(bench_raster.SCENES))
    args = parser.parse_args()
    n, wh = args.size.split(":")
    n, (w, h) = int(n), map(int, wh.split("x"))
    builds = {"old": load_build(args.old, "old_build"), "new": load_build(args.new, "new_build")}
    scene = bench_raster.SCENES[args.scene](n, w, h, "cpu")
    steps = {"gaussians": lambda: bench_raster.le3d_step(scene, w, h, "cpu", True),
             "convexes": lambda: bench_raster.convex_step(scene, w, h, "cpu", True)}

    def on(build, step):
        def run():
            ext.use_extension(builds[build])  # what le3d's raster functions call (load_extension)
            steps[step]()
        return run

    times = bench_raster.time_interleaved({(b, s): on(b, s) for b in builds for s in steps}, args.rounds, "cpu",
                                          shuffle_seed=0)
    print(f"{args.scene} {args.size}, CPU backend, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
    for step in steps:
        old, new = (times[(b, step)] for b in ("old", "new"))
        print(f"  {step:9s}  old {1000 * old:8.1f} ms   new {1000 * new:8.1f} ms   new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
