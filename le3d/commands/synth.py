"""`le3d synth OUT`: write a synthetic dark RAW scene (RawNeRF layout): rendered by the built-in ray
tracer (with ground truth), or "unprocessed" from a real LDR capture with `--from SRC`."""
from __future__ import annotations

NAME = "synth"
HELP = ("write a synthetic dark RAW scene (DNGs, COLMAP poses, previews): ray-traced with ground truth, "
        "or unprocessed from real sRGB photos with --from")

DESCRIPTION = """\
Write a dark RAW scene in the RawNeRF layout (raw/*.dng, images/*.png previews, sparse/0 COLMAP
poses, scene.json with the test split: every 8th frame), loadable by `le3d train`.

Two sources:
  le3d synth OUT [--scene lamps]        render a built-in HDR scene with the ray tracer; also writes
                                        ground-truth clean images and depth of the test views (gt/)
  le3d synth OUT --from SRC             "unprocess" a real LDR capture (transforms.json or COLMAP
                                        images/ + sparse/0) into dark noisy DNGs (Brooks et al. 2019):
                                        inverse sRGB, colour matrix and white balance, Bayer mosaic,
                                        darken, Poisson-Gaussian noise of --iso; true poses kept

Examples:
  le3d synth /tmp/lamps --views 24
  le3d synth /tmp/fox-dark --from ../shared/data/fox --downscale 4 --darken 3 --iso 3200
"""

# options that only apply to one source (default None: detect whether the user set them)
RENDER_ONLY = ("scene", "views", "width", "height", "exposure_scale", "mixed_exposures", "arc", "sfm_dark_fraction")
FROM_ONLY = ("downscale", "darken", "no_noise")


def add_arguments(parser) -> None:
    import argparse

    from le3d.synth.scenes import SCENES

    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("out", help="output folder (must not exist or be empty, unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files (default 0)")
    parser.add_argument("--cfa", default="RGGB", choices=("RGGB", "BGGR", "GRBG", "GBRG"),
                        help="Bayer pattern (default RGGB)")
    parser.add_argument("--iso", type=int, default=3200, help="ISO: sets the noise level (default 3200)")
    parser.add_argument("--bits", type=int, default=14, choices=(12, 14), help="white level bits (default 14)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    g = parser.add_argument_group("ray-traced scene (without --from)")
    g.add_argument("--scene", default=None, choices=SCENES, help="scene name (default: lamps)")
    g.add_argument("--views", type=int, default=None, help="number of camera poses (default 40)")
    g.add_argument("--width", type=int, default=None, help="packed RGB width; the mosaic is 2x (default 240)")
    g.add_argument("--height", type=int, default=None, help="packed RGB height (default 160)")
    g.add_argument("--arc", type=float, default=None,
                   help="spread the cameras over this many degrees of orbit (default 360: all around)")
    g.add_argument("--sfm-dark-fraction", type=float, default=None,
                   help="no SfM points from the darkest fraction of each view's pixels, as in a real night "
                        "capture (default 0: points on every surface)")
    g.add_argument("--exposure-scale", type=float, default=None, help="multiply all exposure times (default 1)")
    g.add_argument("--mixed-exposures", action="store_true", default=None,
                   help="cycle the train views' exposures over 1/4x..4x")
    g = parser.add_argument_group("unprocessed real capture (--from)")
    g.add_argument("--from", dest="source", default=None, metavar="SRC",
                   help="LDR scene to unprocess: a folder with transforms.json or images/ + sparse/0")
    g.add_argument("--downscale", type=int, default=None,
                   help="shrink the source photos by this factor first (default 4); the mosaic has "
                        "the downscaled size")
    g.add_argument("--darken", type=float, default=None,
                   help="stops below the photo's exposure (default 3: at ISO 3200 a mid-grey collects ~16 photo-electrons; 0 = the photo's white at sensor white)")
    g.add_argument("--no-noise", action="store_true", default=None,
                   help="write clean frames (the NoiseProfile tag still describes the ISO)")


def _short_warnings() -> None:
    """Loader warnings (e.g. missing images) as one line, without the source location."""
    import sys
    import warnings

    warnings.showwarning = lambda msg, *a, **k: print(f"le3d synth: warning: {msg}", file=sys.stderr)


def run(args) -> int:
    _short_warnings()
    import time

    from le3d.errors import Le3dError

    t0 = time.time()
    given = lambda names: ["--" + n.replace("_", "-") for n in names if getattr(args, n) is not None]  # noqa: E731
    if args.source is not None:
        bad = given(RENDER_ONLY)
        if bad:
            raise Le3dError(f"{', '.join(bad)}: only for ray-traced scenes, not with --from")
        from le3d.synth.unprocess import unprocess_scene

        ds = 4 if args.downscale is None else args.downscale
        if ds < 1:
            raise Le3dError(f"--downscale {ds}: must be a positive integer")
        meta = unprocess_scene(args.out, args.source, downscale=ds, seed=args.seed, cfa=args.cfa,
                               iso=args.iso, darken=3.0 if args.darken is None else args.darken, bits=args.bits,
                               noise=not args.no_noise, overwrite=args.overwrite, progress=not args.quiet)
        print(f"wrote {meta['n_views']} unprocessed views ({len(meta['test'])} test) of {args.source}, "
              f"{meta['mosaic_width']}x{meta['mosaic_height']} {meta['cfa']} mosaics, ISO {meta['iso']}, "
              f"{meta['darken_stops']:g} stops dark, to {args.out} in {time.time() - t0:.1f} s")
        return 0
    bad = given(FROM_ONLY)
    if bad:
        raise Le3dError(f"{', '.join(bad)}: only with --from SRC")
    from le3d.synth.generate import generate

    views = 40 if args.views is None else args.views
    meta = generate(args.out, scene=args.scene or "lamps", seed=args.seed, n_views=views,
                    width=240 if args.width is None else args.width, height=160 if args.height is None else args.height,
                    cfa=args.cfa, iso=args.iso, bits=args.bits, mixed_exposures=bool(args.mixed_exposures),
                    exposure_scale=1.0 if args.exposure_scale is None else args.exposure_scale,
                    arc_deg=360.0 if args.arc is None else args.arc, overwrite=args.overwrite,
                    sfm_dark_fraction=args.sfm_dark_fraction or 0.0, progress=not args.quiet)
    print(f"wrote {meta['n_views']} views ({len(meta['test'])} test) of '{meta['scene']}' to {args.out} "
          f"in {time.time() - t0:.1f} s")
    return 0
