"""RAW captures: DNG reading/writing, Bayer handling, the camera pipeline (ISP) and noise."""
from le3d.raw.bayer import (
    channel_mask,
    demosaic_bilinear,
    masked_full,
    mosaic_from_rgb,
    pack,
    unpack,
)
from le3d.raw.dng import RawFrame, read_dng
from le3d.raw.dng_write import write_dng

__all__ = ["RawFrame", "read_dng", "write_dng", "pack", "unpack", "masked_full", "channel_mask",
           "demosaic_bilinear", "mosaic_from_rgb"]
