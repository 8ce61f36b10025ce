#!/usr/bin/env python
"""Host overhead of a render: forward+backward of a tiny scene, where a step is all Python, dispatch,
allocation and (on a GPU) kernel launches, not pixels.

  python scripts/bench_host.py                  # CPU backend, one thread
  python scripts/bench_host.py --device cuda    # CUDA backend (launch-bound at this size)
  python scripts/bench_host.py --count-ops      # also what each step launches: computing torch ops, le3d._C calls

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


# aten ops that only make views or allocate (no kernel on a GPU); the rest compute (one launch or more)
_NO_KERNEL = set("""view as_strided detach empty empty_strided slice select expand unsqueeze reshape t transpose
alias resolve_conj resolve_neg narrow split unbind permute squeeze _reshape_alias lift_fresh empty_like new_empty
new_empty_strided""".split())


def kernel_ops(fn) -> tuple[int, int]:
    """One call of fn profiled on the CPU: (torch ops that compute, le3d._C calls). A torch op counts
    once, at its outermost computing call (a clone's inner copy_ is the clone's launch); le3d._C calls
    are counted apart, each launching one or a few kernels on a GPU."""
    from torch.profiler import ProfilerActivity, profile

    from le3d._ext import load_extension

    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:  # with_stack: pybind calls too
        fn()

    def computes(e):
        return e.name.startswith("aten::") and e.name[6:] not in _NO_KERNEL

    ext_functions = {f"<built-in method {name} of" for name in dir(load_extension())}
    torch_ops = compiled = 0
    for e in prof.events():
        compiled += " ".join(e.name.split()[:3]) + " of" in ext_functions
        if not computes(e):
            continue
        parent = e.cpu_parent
        while parent is not None and not computes(parent):
            parent = parent.cpu_parent
        torch_ops += parent is None
    return torch_ops, compiled


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", type=int, default=16, help="image width and height")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--count-ops", action="store_true",
                    help="also count each step's computing torch ops and le3d._C calls (CPU profile)")
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
        line = f"  {name:34s} {median_ms(fn, args.repeats, d):7.3f} ms"
        if args.count_ops:
            torch_ops, compiled = kernel_ops(fn)
            line += f"  {torch_ops:3d} torch ops, {compiled} le3d._C calls"
        print(line)


if __name__ == "__main__":
    main()
