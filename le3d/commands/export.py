"""`le3d export RUN --ply OUT.ply`: a standard 3DGS PLY (or .splat) for common Gaussian viewers.

The view-dependent colour (LE3D's colour MLP, or SH in linear camera RGB) is baked into display-sRGB
SH of degree --sh-degree by least squares over sampled directions, after the chosen exposure, white
balance, colour matrix and tone mapping. The fit error is printed and saved next to the output
(OUT.ply.json)."""
from __future__ import annotations

NAME = "export"
HELP = "export a trained Gaussian RUN to a standard 3DGS PLY or .splat (colour MLP baked into SH)"


def add_arguments(parser) -> None:
    parser.add_argument("run", help="RUN folder written by `le3d train`")
    parser.add_argument("--ply", metavar="OUT.ply", help="write a standard 3DGS PLY here")
    parser.add_argument("--splat", metavar="OUT.splat", help="write a 32-byte-per-Gaussian .splat here")
    parser.add_argument("--out", help="output file, with --format")
    parser.add_argument("--format", choices=("ply", "splat"), default=None,
                        help="format of --out (default: from its extension)")
    parser.add_argument("--exposure", type=float, default=0.0, metavar="EV", help="exposure change in stops")
    parser.add_argument("--tonemap", default="aces", metavar="NAME", help="tone mapper (default aces)")
    parser.add_argument("--wb", default="asshot", metavar="asshot|none|TEMP_K[,TINT]", help="white balance")
    parser.add_argument("--sh-degree", type=int, default=3, choices=(0, 1, 2, 3),
                        help="SH degree (default 3; Inria's 3DGS tools load a lower degree only when told it, "
                             "e.g. --sh_degree 1)")
    parser.add_argument("--bake-dirs", type=int, default=256, help="directions sampled per Gaussian (default 256)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--checkpoint", help="checkpoint name in RUN/checkpoints (default: latest model)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary line")


def run(args) -> int:
    import json
    import math
    import time
    from pathlib import Path

    import torch

    from le3d.commands.render import parse_wb
    from le3d.errors import Le3dError
    from le3d.io.ply import bake_run, save_ply
    from le3d.io.splat import save_splat
    from le3d.post import TONEMAPPERS, PostSettings
    from le3d.run import load_run

    targets = []
    if args.ply:
        targets.append(("ply", Path(args.ply)))
    if args.splat:
        targets.append(("splat", Path(args.splat)))
    if args.out:
        fmt = args.format or {".ply": "ply", ".splat": "splat"}.get(Path(args.out).suffix.lower())
        if fmt is None:
            raise Le3dError(f"--out {args.out}: cannot tell the format from the extension; "
                            "name it .ply or .splat, or pass --format ply|splat")
        targets.append((fmt, Path(args.out)))
    elif args.format:
        raise Le3dError("--format needs --out")
    if not targets:
        raise Le3dError("nothing to write: pass --ply OUT.ply, --splat OUT.splat or --out FILE")
    for _, p in targets:
        if p.exists() and not args.overwrite:
            raise Le3dError(f"{p}: already exists (pass --overwrite to replace it)")
        if p.exists() and p.is_dir():
            raise Le3dError(f"{p}: is a folder")
        if not p.parent.resolve().is_dir():
            raise Le3dError(f"{p}: folder {p.parent} does not exist")
    if args.tonemap not in TONEMAPPERS:
        raise Le3dError(f"--tonemap {args.tonemap!r}: unknown tone mapper; choose one of {', '.join(sorted(TONEMAPPERS))}")
    if not math.isfinite(args.exposure) or abs(args.exposure) > 64:
        raise Le3dError(f"--exposure {args.exposure}: must be a finite number of stops, -64..64")
    if args.bake_dirs < (args.sh_degree + 1) ** 2:
        raise Le3dError(f"--bake-dirs {args.bake_dirs}: need at least {(args.sh_degree + 1) ** 2} for degree {args.sh_degree}")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Le3dError("--device cuda: no CUDA device available (use --device cpu)")
    settings = PostSettings(exposure_ev=args.exposure, white_balance=parse_wb(args.wb), tonemap=args.tonemap)
    t0 = time.time()
    run_ = load_run(args.run, device, checkpoint=args.checkpoint)
    try:
        cloud, stats = bake_run(run_, settings, sh_degree=args.sh_degree, n_dirs=args.bake_dirs,
                                progress=not args.quiet)
    except ValueError as e:
        raise Le3dError(f"baking colours: {e}") from None
    meta = {"run": str(run_.path), "iteration": run_.state.get("iteration"), "exposure_ev": args.exposure,
            "white_balance": args.wb, "tonemap": args.tonemap, "bake": stats, "seconds": None}
    for fmt, p in targets:
        (save_ply(p, cloud) if fmt == "ply" else save_splat(p, cloud))
        meta["seconds"] = round(time.time() - t0, 3)
        Path(str(p) + ".json").write_text(json.dumps({**meta, "format": fmt}, indent=2))
    if not args.quiet:
        print(f"le3d export: {cloud.num_gaussians} Gaussians -> {', '.join(str(p) for _, p in targets)}; "
              f"SH-{args.sh_degree} bake error (display sRGB) RMSE {stats['rmse']:.4f} "
              f"(PSNR {stats['psnr_db']:.1f} dB), held-out RMSE {stats['heldout_rmse']:.4f}, "
              f"max {stats['max_abs_error']:.3f}")
    return 0
