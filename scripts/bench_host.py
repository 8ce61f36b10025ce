#!/usr/bin/env python
"""Host overhead of a render: forward+backward of a tiny scene, where a step is all Python, dispatch,
allocation and (on a GPU) kernel launches, not pixels.

  python scripts/bench_host.py                  # CPU backend, one thread
  python scripts/bench_host.py --device cuda    # CUDA backend (launch-bound at this size)

On a GPU a small scene's step is about this cost (bench_raster.py at 20k/256²: host work); on the CPU
it shows what the Python side of a render costs, kernels aside. Medians over --repeats steps.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_raster import convex_step, le3d_step, make_scene, sync  # noqa: E402


def median_ms(fn, repeats: int, device: str) -> float:
    for _ in range(20):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", type=int, default=16, help="image width and height")
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    s, d = args.size, args.device
    scene = make_scene(args.n, s, s, d)
    cases = {
        "Gaussians, all outputs, fwd+bwd": lambda: le3d_step(scene, s, s, d, True),
        "Gaussians, RGB+D, fwd+bwd": lambda: le3d_step(scene, s, s, d, True, regularizers=False),
        "Gaussians, all outputs, fwd": lambda: le3d_step(scene, s, s, d, False),
        "convexes, all outputs, fwd+bwd": lambda: convex_step(scene, s, s, d, True),
    }
    print(f"{args.n} primitives at {s}x{s}, {d}, median of {args.repeats} steps")
    for name, fn in cases.items():
        print(f"  {name:34s} {median_ms(fn, args.repeats, d):7.3f} ms")


if __name__ == "__main__":
    main()
