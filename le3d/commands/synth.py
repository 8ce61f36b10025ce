"""`le3d synth OUT`: write a synthetic dark RAW scene with ground truth (RawNeRF layout)."""
from __future__ import annotations

NAME = "synth"
HELP = "write a synthetic dark HDR scene (DNGs, COLMAP poses, ground truth) for tests and benchmarks"


def add_arguments(parser) -> None:
    from le3d.synth.scenes import SCENES

    parser.add_argument("out", help="output folder")
    parser.add_argument("--scene", default="lamps", choices=SCENES, help="scene name (default: lamps)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--views", type=int, default=40, help="number of camera poses (default 40)")
    parser.add_argument("--width", type=int, default=240, help="packed RGB width (mosaic is 2x; default 240)")
    parser.add_argument("--height", type=int, default=160, help="packed RGB height (default 160)")
    parser.add_argument("--cfa", default="RGGB", choices=("RGGB", "BGGR", "GRBG", "GBRG"))
    parser.add_argument("--iso", type=int, default=3200, help="ISO (sets the noise; default 3200)")
    parser.add_argument("--bits", type=int, default=14, choices=(12, 14), help="white level bits")
    parser.add_argument("--exposure-scale", type=float, default=1.0, help="multiply all exposure times")
    parser.add_argument("--mixed-exposures", action="store_true", help="cycle train exposures over 1/4x..4x")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def run(args) -> int:
    import time

    from le3d.synth.generate import generate

    t0 = time.time()
    meta = generate(args.out, scene=args.scene, seed=args.seed, n_views=args.views, width=args.width,
                    height=args.height, cfa=args.cfa, iso=args.iso, bits=args.bits,
                    mixed_exposures=args.mixed_exposures, exposure_scale=args.exposure_scale,
                    overwrite=args.overwrite)
    print(f"wrote {meta['n_views']} views ({len(meta['test'])} test) of '{meta['scene']}' to {args.out} "
          f"in {time.time() - t0:.1f} s")
    return 0
