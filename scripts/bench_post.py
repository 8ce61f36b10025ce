"""Benchmark le3d.post at 1920x1080 on CPU: tone mapping and refocus throughput, and refocus quality
against a faithful small re-implementation of LE3D's histogram/FFT refocus.

Usage: PYTHONPATH=. python scripts/bench_post.py [--repeats 5] [--threads N] [--device cpu|cuda]
Prints a table (median of repeats) and names the machine.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from le3d.post.refocus import refocus, refocus_le3d_fft
from le3d.post.tonemap import TONEMAPPERS, tonemap


def timed(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def scene(H: int, W: int, device: str):
    """A slanted background (depth 2..10 m left to right) with a textured foreground disc at 1 m."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    depth = 2.0 + 8.0 * xx
    fg = (xx - 0.35) ** 2 * (W / H) ** 2 + (yy - 0.5) ** 2 < 0.25 ** 2
    depth = torch.where(fg, torch.ones_like(depth), depth)
    img = torch.rand(H, W, 3, generator=g) * 0.5
    img = img + 20.0 * (torch.rand(H, W, 1, generator=g) > 0.999).float()  # HDR point lights
    img[fg] = torch.tensor([3.0, 0.2, 0.1])
    return img.to(device), depth.to(device)


def quality(H=240, W=320):
    """Two planes (near red, far green stripes), focus near, CoC 6 px on the far plane.
    Returns, per method, (red leaking into the background, mean |error| of the background against
    the far plane alone blurred by an area-sampled disc of the predicted CoC)."""
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    near = xx < W // 2
    depth = torch.where(near, 1.0, 4.0)
    img = torch.zeros(H, W, 3)
    img[..., 0] = torch.where(near, 5.0, 0.0)
    img[..., 1] = torch.where(near, 0.0, ((xx // 5) % 2).float() * 2 + 0.5)
    img[..., 2] = torch.where(near, 0.3, 0.7)
    A = 8.0
    r = A * 0.75
    R, ss = r + 0.5, 16
    n = math.ceil(R) + 1
    t = (torch.arange(ss * (2 * n + 1), dtype=torch.float64) + 0.5) / ss - (2 * n + 1) / 2
    ky, kx = torch.meshgrid(t, t, indexing="ij")
    k = ((kx ** 2 + ky ** 2) <= R * R).double().reshape(2 * n + 1, ss, 2 * n + 1, ss).mean((1, 3))
    k = (k / k.sum()).float()
    m = (~near).float()
    layer = torch.cat([(img * m[..., None]).permute(2, 0, 1), m[None]])[:, None]
    b = F.conv2d(layer, k[None, None], padding=k.shape[0] // 2)[:, 0]
    ref = (b[:3] / b[3:].clamp_min(1e-6)).permute(1, 2, 0)
    out = {}
    for name, fn in (("le3d.post.refocus", refocus), ("LE3D-style FFT (32 bins)", refocus_le3d_fft)):
        o = fn(img, depth, 1.0, A)
        out[name] = (o[~near][:, 0].abs().max().item(), (o - ref)[~near].abs().mean().item(),
                     (o - img)[near].abs().max().item())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--aperture", type=float, default=40.0, help="A; CoC radius up to A * (1 - 1/10) px")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    H, W = 1080, 1920
    dev = args.device
    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"{os.cpu_count()} logical CPUs | torch {torch.__version__} | {torch.get_num_threads()} threads | "
          f"device {dev}" + (f" ({torch.cuda.get_device_name()})" if dev == "cuda" else ""))
    img, depth = scene(H, W, dev)
    rows = []
    x = img * 4
    for name in sorted(TONEMAPPERS):
        s = timed(lambda: tonemap(x, name), args.repeats, dev)
        rows.append((f"tonemap {name}", s))
    for name, fn in (("refocus le3d.post (layered disparity, disc)", refocus),
                     ("refocus LE3D-style (32-bin histogram, FFT Gaussian)", refocus_le3d_fft)):
        fn(img[:64, :64], depth[:64, :64], 1.0, args.aperture)  # warm-up
        s = timed(lambda: fn(img, depth, 1.0, args.aperture), max(1, min(args.repeats, 3)), dev)
        rows.append((name, s))
    print(f"\n{'1920x1080, median of repeats':58s} {'ms':>9s} {'Mpix/s':>8s}")
    for name, s in rows:
        print(f"{name:58s} {s * 1e3:9.1f} {H * W / s / 1e6:8.1f}")
    print("\nrefocus quality (240x320 two planes, focus near, CoC 6 px on the far plane):")
    print(f"{'method':32s} {'red halo in bg':>15s} {'bg mean |err| vs disc':>22s} {'in-focus max |change|':>22s}")
    for name, (halo, err, infocus) in quality().items():
        print(f"{name:32s} {halo:15.4f} {err:22.4f} {infocus:22.4f}")


if __name__ == "__main__":
    main()
