"""Rasterizer rules shared with csrc/include/le3d/common.h (keep the two in step)."""

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0  # a primitive adds nothing to a pixel below this alpha
ALPHA_MAX = 0.99  # alpha clamp
TRANSMITTANCE_MIN = 1e-4  # a pixel stops before its transmittance would fall below this
NEARFAR_MAX_K = 16
MAX_CHANNELS = 64
EPS2D = 0.3  # added to 2D Gaussian covariances (as 3DGS / gsplat)

FOOTPRINT_GAUSSIAN = 0
FOOTPRINT_CONVEX = 1
GAUSSIAN_PARAMS = 6  # mean x, mean y, conic a, b, c, opacity
CONVEX_MAX_EDGES = 8
CONVEX_HEADER = 5  # edge count, delta, s, sigma, opacity
CONVEX_PARAMS = CONVEX_HEADER + 3 * CONVEX_MAX_EDGES
