"""Cone Scatter speed: scatter + visibility filter + pixel colours for 100k points on CPU.

    python scripts/bench_init.py --scene /path/to/scene [--downscale 4] [--n 100000] [--carve]
"""
import argparse
import time

import torch

from le3d.data import load_scene
from le3d.init.cone import cone_scatter, pixel_colors
from le3d.init.knn import knn_scales

ap = argparse.ArgumentParser()
ap.add_argument("--scene", required=True)
ap.add_argument("--downscale", type=int, default=4)
ap.add_argument("--n", type=int, default=100000)
ap.add_argument("--carve", action="store_true", help="also carve with the SfM points (the training default)")
a = ap.parse_args()
s = load_scene(a.scene, downscale=a.downscale)
cams = [f.camera for f in s.train]
t0 = time.perf_counter()
pts = cone_scatter(s.points, cams, a.n, torch.Generator().manual_seed(0), carve=a.carve)
t1 = time.perf_counter()
cols, cnt = pixel_colors(pts, s.train)
t2 = time.perf_counter()
sc = knn_scales(pts)
t3 = time.perf_counter()
print(f"{len(pts)} points, {len(cams)} cameras, torch threads {torch.get_num_threads()}: scatter+filter {t1 - t0:.2f} s, "
      f"colours {t2 - t1:.2f} s, 3-NN scales {t3 - t2:.2f} s, total {t3 - t0:.2f} s")
