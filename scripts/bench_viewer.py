"""Server-side viewer frame time: render + post-processing (+ JPEG encode) of one frame, as the viewer does it.

    python scripts/bench_viewer.py RUN [--width 1280 --height 720] [--device cpu]
    python scripts/bench_viewer.py --gaussians 1000000 --width 1920 --height 1080 --device cuda

Without RUN, a synthetic cloud of N random Gaussians (LDR colours) in front of the camera is used.
Prints median times over --frames frames after --warmup frames, per render mode.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from viewer.camera import camera_to_viser, viser_to_camera  # noqa: E402
from viewer.render import ViewSettings, render_frame  # noqa: E402
from viewer.source import GaussianSource, load_source  # noqa: E402


def synthetic(n: int, device: str, seed: int = 0) -> GaussianSource:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.5, 1.0, 1.0]) + torch.tensor([0.0, 0.0, 5.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.02 * (1e5 / n) ** (1 / 3) + 0.002
    opac = torch.rand(n, generator=g) * 0.8 + 0.1
    colors = torch.rand(n, 3, generator=g)
    return GaussianSource(means, quats, scales, opac, colors, name=f"random-{n}").to(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="RUN folder or .ply (default: synthetic Gaussians)")
    ap.add_argument("--gaussians", type=int, default=100000)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--modes", default="colour,depth", help="comma-separated render modes")
    ap.add_argument("--refocus", type=float, default=0.0, help="aperture for the colour mode (0: off)")
    args = ap.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    src = load_source(args.run, device) if args.run else synthetic(args.gaussians, device)
    if src.cameras:
        v = camera_to_viser(src.cameras[0])
        cam = viser_to_camera(v["wxyz"], v["position"], v["fov"], args.width, args.height)
    else:
        cam = viser_to_camera([1.0, 0, 0, 0], [0.0, 0.0, 0.0], math.radians(50), args.width, args.height)
    print(f"{src.num_primitives:,} primitives, {args.width}x{args.height}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""))
    try:
        from viser._scene_api import _encode_image_binary  # the JPEG encoder set_background_image uses
    except ImportError:  # viser not installed (e.g. a bare GPU machine): same JPEG through imageio
        import imageio.v3 as iio

        def _encode_image_binary(rgb, fmt, jpeg_quality):
            return iio.imwrite("<bytes>", rgb, extension=".jpeg", quality=jpeg_quality)

        print("viser not installed: JPEG time measured with imageio instead of viser's encoder")

    for mode in args.modes.split(","):
        s = ViewSettings(mode=mode)
        if args.refocus > 0 and mode == "colour":
            s.post.aperture, s.post.focus_depth = args.refocus, 5.0
        rs, ps, js = [], [], []
        for i in range(args.warmup + args.frames):
            f = render_frame(src, cam, s)
            t0 = time.perf_counter()
            _encode_image_binary(f.rgb, "jpeg", jpeg_quality=s.jpeg_quality)
            jpeg = (time.perf_counter() - t0) * 1e3
            if i >= args.warmup:
                rs.append(f.render_ms)
                ps.append(f.post_ms)
                js.append(jpeg)
        r, p, j = statistics.median(rs), statistics.median(ps), statistics.median(js)
        print(f"{mode:10s} render {r:8.2f} ms  post {p:7.2f} ms  -> {1e3 / (r + p):7.1f} FPS "
              f"(render+post)   jpeg {j:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
