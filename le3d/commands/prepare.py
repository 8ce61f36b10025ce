"""`le3d prepare DIR`: previews + COLMAP poses for a folder of DNGs (pycolmap on CPU)."""
from __future__ import annotations

NAME = "prepare"
HELP = "decode a folder of DNGs, write sRGB previews and estimate camera poses with pycolmap"


def add_arguments(parser) -> None:
    parser.add_argument("dir", help="folder with .dng files (directly or in raw/)")
    parser.add_argument("--matcher", default="exhaustive", choices=("exhaustive", "sequential"))
    parser.add_argument("--seed", type=int, default=0, help="random seed for COLMAP")
    parser.add_argument("--threads", type=int, default=-1, help="CPU threads (-1: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing sparse/0")


def run(args) -> int:
    from le3d.data.prepare import prepare

    r = prepare(args.dir, matcher=args.matcher, seed=args.seed, overwrite=args.overwrite, num_threads=args.threads)
    print(f"registered {r.n_registered} of {r.n_images} frames; {r.n_points} points; "
          f"mean reprojection error {r.reprojection_error:.3f} px; model in {r.model_dir}")
    return 0
