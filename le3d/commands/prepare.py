"""`le3d prepare DIR`: previews + COLMAP poses for a folder of DNGs (pycolmap on CPU)."""
from __future__ import annotations

NAME = "prepare"
HELP = "decode a folder of DNGs, write sRGB previews and estimate camera poses with pycolmap (CPU)"


def add_arguments(parser) -> None:
    parser.description = (HELP + ". Writes DIR/images/*.png, DIR/colmap/database.db and DIR/sparse/0, "
                          "so that `le3d train DIR` loads DIR as a RAW scene.")
    parser.add_argument("dir", help="folder with .dng files (directly or in raw/)")
    parser.add_argument("--matcher", default="exhaustive", choices=("exhaustive", "sequential"),
                        help="exhaustive: all pairs (default); sequential: each frame with the next "
                             "--overlap frames in file-name order (fast, for video-like captures)")
    parser.add_argument("--overlap", type=int, default=10, metavar="N",
                        help="sequential matcher: frames matched after each frame (default 10)")
    parser.add_argument("--max-features", type=int, default=4096, metavar="N",
                        help="SIFT features per image (default 4096)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for COLMAP (default 0)")
    parser.add_argument("--threads", type=int, default=-1, help="CPU threads (default -1: all)")
    parser.add_argument("--verbose", action="store_true", help="show COLMAP's own log")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing sparse/0 and colmap/")


def _short_warnings() -> None:
    """Loader warnings (e.g. missing images) as one line, without the source location."""
    import sys
    import warnings

    warnings.showwarning = lambda msg, *a, **k: print(f"le3d prepare: warning: {msg}", file=sys.stderr)


def run(args) -> int:
    _short_warnings()
    from le3d.data.prepare import prepare

    r = prepare(args.dir, matcher=args.matcher, seed=args.seed, overwrite=args.overwrite, num_threads=args.threads,
                max_features=args.max_features, overlap=args.overlap, verbose=args.verbose)
    print(f"registered {r.n_registered} of {r.n_images} frames; {r.n_points} points; "
          f"mean reprojection error {r.reprojection_error:.3f} px; model in {r.model_dir}")
    if r.n_registered < r.n_images:
        print(f"warning: {r.n_images - r.n_registered} frames have no pose and will be skipped by `le3d train`; "
              "try --matcher exhaustive or more --max-features")
    return 0
