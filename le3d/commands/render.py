"""`le3d render RUN --out DIR`: render views or a camera path with exposure / white balance / tone
mapping / refocus chosen now, to EXR, PNG, 16-bit PNG, JPEG, H.264 or HDR (PQ/HLG) HEVC video."""
from __future__ import annotations

import math

NAME = "render"
HELP = "render a trained RUN (test/train views or a camera path) to images or video with post settings"

FORMATS = ("exr", "png", "png16", "jpg", "mp4", "hdr-mp4")
DEFAULT_FPS, DEFAULT_FRAMES = 30.0, 120  # video rate; cameras on a path (a key-frame file may set its own)


def add_arguments(parser) -> None:
    parser.add_argument("run", help="RUN folder written by `le3d train`")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--views", default="test",
                        help="test | train | path:orbit | path:spiral | path:FILE.json (default test)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames of a path (default 120, or the key-frame file's 'frames')")
    parser.add_argument("--fps", type=float, default=None,
                        help="video frame rate (default 30, or the key-frame file's 'fps')")
    parser.add_argument("--exposure", type=float, default=0.0, metavar="EV", help="exposure change in stops")
    parser.add_argument("--tonemap", default="aces", metavar="NAME", help="tone mapper (default aces)")
    parser.add_argument("--wb", default="asshot", metavar="asshot|none|TEMP_K[,TINT]", help="white balance")
    focus = parser.add_mutually_exclusive_group()
    focus.add_argument("--focus-depth", type=float, metavar="Z", help="focus distance (view-space z)")
    focus.add_argument("--focus-pixel", metavar="X,Y", help="focus on the depth at pixel (column X, row Y)")
    parser.add_argument("--aperture", type=float, default=0.0, metavar="A",
                        help="blur strength: circle of confusion A*|1/z_f - 1/z| pixels (0 = pinhole)")
    parser.add_argument("--format", default="png", choices=FORMATS, help="output format (default png)")
    parser.add_argument("--hdr-transfer", default="pq", choices=("pq", "hlg"), help="hdr-mp4 transfer curve")
    parser.add_argument("--size", metavar="WxH", help="output size (default: the training resolution)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "cpu", "cuda"))
    parser.add_argument("--checkpoint", help="checkpoint name in RUN/checkpoints (default: latest model)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished render in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_wb(text: str):
    from le3d.color import CCT_RANGE_K
    from le3d.errors import Le3dError

    t = text.strip().lower()
    if t in ("asshot", "as_shot", "camera", "none", "raw"):
        return t
    try:
        parts = [float(p) for p in t.split(",")]
    except ValueError:
        raise Le3dError(f"--wb {text!r}: use asshot, none, TEMP_K or TEMP_K,TINT") from None
    lo, hi = CCT_RANGE_K  # what le3d.color.cct_to_xy's loci cover
    if len(parts) not in (1, 2) or not lo <= parts[0] <= hi:
        raise Le3dError(f"--wb {text!r}: temperature must be {lo:.0f}..{hi:.0f} K, optionally with ',TINT'")
    if len(parts) == 2 and not -150 <= parts[1] <= 150:  # Camera Raw's range
        raise Le3dError(f"--wb {text!r}: tint must be -150..150")
    return (parts[0], parts[1] if len(parts) == 2 else 0.0)


def parse_size(text: str | None):
    from le3d.errors import Le3dError

    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise Le3dError(f"--size {text!r}: expected WxH, e.g. 640x480") from None
    if w < 1 or h < 1 or w > 16384 or h > 16384:
        raise Le3dError(f"--size {text!r}: width and height must be 1..16384")
    return w, h


def resize_camera(cam, size):
    from le3d.data.types import Camera

    if size is None:
        return cam
    w, h = size
    K = cam.K.clone()
    K[0] *= w / cam.width
    K[1] *= h / cam.height
    return Camera(cam.viewmat.clone(), K, w, h, cam.name)


def build_settings(args):
    from le3d.errors import Le3dError
    from le3d.post import TONEMAPPERS, PostSettings

    if args.tonemap not in TONEMAPPERS:
        raise Le3dError(f"--tonemap {args.tonemap!r}: unknown tone mapper; choose one of {', '.join(sorted(TONEMAPPERS))}")
    if not math.isfinite(args.exposure) or abs(args.exposure) > 64:
        raise Le3dError(f"--exposure {args.exposure}: must be a finite number of stops, -64..64")
    if not (math.isfinite(args.aperture) and args.aperture >= 0):
        raise Le3dError(f"--aperture {args.aperture}: must be a finite number >= 0")
    if args.focus_depth is not None and not (math.isfinite(args.focus_depth) and args.focus_depth > 0):
        raise Le3dError(f"--focus-depth {args.focus_depth}: must be a finite depth > 0")
    fp = None
    if args.focus_pixel is not None:
        try:
            fp = tuple(int(v) for v in args.focus_pixel.split(","))
            assert len(fp) == 2
        except (ValueError, AssertionError):
            raise Le3dError(f"--focus-pixel {args.focus_pixel!r}: expected X,Y (integers)") from None
    if args.aperture > 0 and args.focus_depth is None and fp is None:
        raise Le3dError("--aperture > 0 needs --focus-depth or --focus-pixel")
    return PostSettings(exposure_ev=float(args.exposure), white_balance=parse_wb(args.wb), tonemap=args.tonemap,
                        focus_depth=args.focus_depth, focus_pixel=fp, aperture=float(args.aperture))


def check_out_dir(out, overwrite: bool):
    import os
    import tempfile
    from pathlib import Path

    from le3d.errors import Le3dError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise Le3dError(f"--out {out}: exists and is not a folder")
    if (out / "render.json").exists() and not overwrite:
        raise Le3dError(f"--out {out}: already holds a finished render (render.json); pass --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".le3d-write-test")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise Le3dError(f"--out {out}: folder is not writable ({e.strerror or e})") from None
    return out


def select_cameras(args, run):
    from le3d.camera_paths import load_keyframes, orbit, spiral
    from le3d.errors import Le3dError
    from le3d.render import load_cameras

    v = args.views
    fps = DEFAULT_FPS if args.fps is None else args.fps
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise Le3dError(f"--fps {args.fps}: must be a positive number")
    if v in ("test", "train"):
        cams, _ = load_cameras(run, v)
        if not cams:
            raise Le3dError(f"--views {v}: the scene has no {v} views")
        return cams, fps
    if not v.startswith("path:"):
        raise Le3dError(f"--views {v!r}: use test, train, path:orbit, path:spiral or path:FILE.json")
    kind = v[5:]
    if args.frames is not None and args.frames < 1:
        raise Le3dError(f"--frames {args.frames}: must be >= 1")
    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    cams, _ = load_cameras(run, "all")
    if not cams:
        raise Le3dError(f"{run.path}: the scene has no cameras to build a path from")
    if kind == "orbit":
        return orbit(cams, frames), fps
    if kind == "spiral":
        dr = run.config.get("scene", {}).get("depth_range")
        return spiral(cams, frames, tuple(dr) if dr else None), fps
    # a key-frame file sets its own frame count and rate; --frames / --fps given on the command line win
    cams_path, file_fps = load_keyframes(kind, cams, frames=args.frames)
    return cams_path, file_fps if args.fps is None else args.fps


def run(args) -> int:
    import json
    import time

    import torch
    from tqdm import tqdm

    from le3d.errors import Le3dError
    from le3d.io import images
    from le3d.render import post_process, post_process_linear, render_hdr
    from le3d.run import load_run

    settings = build_settings(args)
    size = parse_size(args.size)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Le3dError("--device cuda: no CUDA device available")
    if args.backend in ("cuda", "cpu") and args.backend != device:
        raise Le3dError(f"--backend {args.backend} renders on the {args.backend.upper()} but the RUN is loaded on "
                        f"the {device.upper()}: pass --device {args.backend}, or --backend auto")
    scene_run = load_run(args.run, device, checkpoint=args.checkpoint)
    cams, fps = select_cameras(args, scene_run)
    out = check_out_dir(args.out, args.overwrite)  # after the RUN and views load: no empty folder on their errors
    cams = [resize_camera(c, size) for c in cams]
    W, H = cams[0].width, cams[0].height
    if settings.focus_pixel is not None:
        x, y = settings.focus_pixel
        if not (0 <= x < W and 0 <= y < H):
            raise Le3dError(f"--focus-pixel {x},{y}: outside the {W}x{H} image")

    video = args.format in ("mp4", "hdr-mp4")
    ext = {"exr": "exr", "png": "png", "png16": "png", "jpg": "jpg"}.get(args.format)
    frames, files = [], []
    t0 = time.time()
    focus_used = settings.focus_depth
    for i, cam in enumerate(tqdm(cams, desc="render", unit="view", disable=args.quiet)):
        hdr, depth = render_hdr(scene_run, cam, backend=args.backend)
        s = settings
        if s.aperture > 0 and s.focus_pixel is not None:  # focus picked in the first frame, kept fixed
            if focus_used is None:
                from le3d.post.refocus import focus_depth_at
                try:
                    focus_used = focus_depth_at(depth, *s.focus_pixel)
                except ValueError as e:
                    raise Le3dError(f"--focus-pixel {args.focus_pixel}: {e}") from None
            from dataclasses import replace
            s = replace(s, focus_depth=focus_used, focus_pixel=None)
        try:
            if args.format in ("exr", "hdr-mp4"):
                img = post_process_linear(scene_run, hdr, s, depth)
            else:
                img = post_process(scene_run, hdr, s, depth)
        except ValueError as e:
            raise Le3dError(f"post-processing: {e}") from None
        img = img.float().cpu()
        if video:
            frames.append(img.numpy())
            continue
        name = cam.name or f"frame_{i:04d}"
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        name = name.rsplit(".", 1)[0] if name.lower().endswith((".dng", ".png", ".jpg", ".exr")) else name
        path = out / f"{i:04d}_{name}.{ext}"
        writer = {"exr": images.write_exr, "png": images.write_png8, "png16": images.write_png16,
                  "jpg": images.write_jpg}[args.format]
        writer(path, img, overwrite=True)
        files.append(path.name)
    if video:
        path = out / ("video.mp4")
        try:
            images.write_video(path, frames, fps=fps, hdr=args.hdr_transfer if args.format == "hdr-mp4" else None,
                               overwrite=True)
        except images.VideoEncoderUnavailable as e:
            raise Le3dError(f"--format {args.format}: {e}") from None
        files.append(path.name)
    meta = {"run": str(scene_run.path), "views": args.views, "num_views": len(cams), "format": args.format,
            "size": [W, H], "fps": fps if video else None, "exposure_ev": settings.exposure_ev,
            "white_balance": args.wb, "tonemap": settings.tonemap, "aperture": settings.aperture,
            "focus_depth": focus_used, "focus_pixel": list(settings.focus_pixel) if settings.focus_pixel else None,
            "hdr_transfer": args.hdr_transfer if args.format == "hdr-mp4" else None,
            "device": device, "backend": args.backend, "checkpoint": args.checkpoint,
            "iteration": scene_run.state.get("iteration"), "seconds": round(time.time() - t0, 3),
            "files": files}
    tmp = out / ".render.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(out / "render.json")
    if not args.quiet:
        print(f"le3d render: wrote {len(files)} file(s) ({len(cams)} views, {W}x{H}) to {out}")
    return 0
