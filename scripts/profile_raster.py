#!/usr/bin/env python
"""Where a GPU rasterizer step spends its time: torch.profiler over a few forward+backward steps.

  python scripts/profile_raster.py --n 1000000 --size 1920x1080            # le3d CUDA, all outputs
  python scripts/profile_raster.py --n 1000000 --size 1920x1080 --gsplat   # gsplat 1.5 beside it
  python scripts/profile_raster.py --convex 200000:1280x720                 # and convexes

Prints the kernels (and CPU-side ops) with the most device time per step, on the scene of
scripts/bench_raster.py. Used by scripts/gpu_check.sh to say what to speed up next.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(__file__))
from bench_raster import convex_step, gsplat_step, le3d_step, make_scene  # noqa: E402


def profiled(fn, steps: int, averages: bool = True):
    """torch.profiler events of `steps` calls of fn (after one warm-up), device-synchronised: averaged
    by name, or (averages=False) every event in order."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    return prof.key_averages() if averages else prof.events()


def device_gaps(fn, steps: int, rows: int, title: str):
    """Where the GPU waits in a step: the device's busy time (kernels, copies, memsets) against the
    span from the first to the last of them, and the longest idle gaps between consecutive ones,
    named by the two activities around them (a host sync, or host work that launches too slowly).
    A step whose span is well above its busy time gains from fewer launches and syncs, not from
    faster kernels. (The profiler slows the host, so these gaps are upper bounds.)"""
    acts = [e for e in profiled(fn, steps, averages=False) if e.device_type == DeviceType.CUDA]
    acts.sort(key=lambda e: e.time_range.start)
    if not acts:
        return
    busy = sum(e.time_range.end - e.time_range.start for e in acts)
    span = acts[-1].time_range.end - acts[0].time_range.start
    gaps: dict = {}
    for a, b in zip(acts, acts[1:]):
        idle = b.time_range.start - a.time_range.end
        if idle > 0:
            key = (a.name[:40], b.name[:40])
            total, count = gaps.get(key, (0.0, 0))
            gaps[key] = (total + idle, count + 1)
    print(f"\n{title}: device busy {busy / steps / 1e3:.3f} ms of a {span / steps / 1e3:.3f} ms span per step "
          f"({len(acts) // steps} device activities per step); longest idle gaps, per step:")
    for (before, after), (total, count) in sorted(gaps.items(), key=lambda kv: -kv[1][0])[:rows]:
        print(f"  {total / steps / 1e3:8.3f} ms  x{count // steps:<3} after {before} / before {after}")


def top_cpu_ops(fn, steps: int, rows: int, title: str):
    """Host-side time per step: what a small scene's step waits on besides kernels (launches, syncs)."""
    events = sorted(profiled(fn, steps), key=lambda e: e.self_cpu_time_total, reverse=True)
    print(f"\n{title}: host time by op (self), per step")
    for e in events[:rows]:
        print(f"  {e.self_cpu_time_total / steps / 1e3:8.3f} ms  x{e.count // steps:<4} {e.key[:90]}")


def top_kernels(fn, steps: int, rows: int, title: str):
    # kernels carry device time themselves; the CPU-side ops that launched them carry none ("self")
    events = [e for e in profiled(fn, steps) if e.self_device_time_total > 0]
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    # (an autograd Function's row repeats the time of the kernel it launched, so no total is printed)
    print(f"\n{title}: device time per step ({steps} steps)")
    for e in events[:rows]:
        print(f"  {e.self_device_time_total / steps / 1e3:8.3f} ms  x{e.count // steps:<4} {e.key[:90]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=14)
    ap.add_argument("--gsplat", action="store_true", help="profile gsplat's rasterization() too")
    ap.add_argument("--convex", default=None, metavar="N:WxH",
                    help="also profile convexes (6 points each) at this size, e.g. 200000:1280x720")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("profile_raster.py needs a CUDA device")
    w, h = (int(v) for v in args.size.split("x"))
    scene = make_scene(args.n, w, h, "cuda")
    top_kernels(lambda: le3d_step(scene, w, h, "cuda", True), args.steps, args.rows,
                f"le3d cuda, all outputs, {args.n} Gaussians {w}x{h}, forward+backward")
    top_kernels(lambda: le3d_step(scene, w, h, "cuda", True, regularizers=False), args.steps, args.rows,
                "le3d cuda, RGB+D only")
    if args.gsplat:
        top_kernels(lambda: gsplat_step(scene, w, h, True), args.steps, args.rows, "gsplat 1.5 RGB+ED")
    small = make_scene(20000, 256, 256, "cuda")
    top_cpu_ops(lambda: le3d_step(small, 256, 256, "cuda", True), 10, args.rows,
                "le3d cuda, 20000 Gaussians 256x256, all outputs, forward+backward")
    device_gaps(lambda: le3d_step(small, 256, 256, "cuda", True, regularizers=False), 10, 8,
                "le3d cuda, 20000 Gaussians 256x256, RGB+D only, forward+backward")
    if args.gsplat:
        device_gaps(lambda: gsplat_step(small, 256, 256, True), 10, 8, "gsplat 1.5 RGB+ED, 20000 Gaussians 256x256")
    if args.convex:
        n, wh = args.convex.split(":")
        cw, ch = (int(v) for v in wh.split("x"))
        convex_scene = make_scene(int(n), cw, ch, "cuda")
        step = lambda: convex_step(convex_scene, cw, ch, "cuda", True)  # noqa: E731
        title = f"le3d cuda convexes, {n} at {cw}x{ch}, all outputs, forward+backward"
        top_kernels(step, args.steps, args.rows, title)
        device_gaps(step, args.steps, 8, title)
        device_gaps(lambda: le3d_step(convex_scene, cw, ch, "cuda", True), args.steps, 8,
                    f"le3d cuda, {n} Gaussians at {cw}x{ch}, all outputs, forward+backward")


if __name__ == "__main__":
    main()
