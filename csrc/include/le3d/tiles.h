// Which tiles a primitive's screen bounds touch. Bounds are conservative pixel-space boxes
// (xmin, ymin, xmax, ymax) outside of which the primitive's alpha is below 1/255; xmin > xmax
// marks a culled primitive.
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

// An inclusive range of indices (pixels or tiles) in x and y; empty when x0 > x1 or y0 > y1.
struct IndexRect {
  int x0, y0, x1, y1;
  LE3D_HD bool empty() const { return x0 > x1 || y0 > y1; }
  LE3D_HD int count() const { return empty() ? 0 : (x1 - x0 + 1) * (y1 - y0 + 1); }
};
using PixelRect = IndexRect;
using TileRect = IndexRect;

// The pixels of the image inside bound b: pixel j has its centre at j + 0.5 and is inside when
// xmin <= j + 0.5 <= xmax. Empty for a culled (or NaN) bound and for one off the image.
LE3D_HD PixelRect pixel_rect(const float* b, int width, int height) {
  PixelRect r{1, 1, 0, 0};
  if (!(b[0] <= b[2]) || !(b[1] <= b[3])) return r;  // culled (or NaN)
  const float jx0 = ceilf(b[0] - 0.5f), jx1 = floorf(b[2] - 0.5f);
  const float jy0 = ceilf(b[1] - 0.5f), jy1 = floorf(b[3] - 0.5f);
  if (jx1 < 0.0f || jy1 < 0.0f || jx0 > width - 1.0f || jy0 > height - 1.0f || jx0 > jx1 || jy0 > jy1)
    return r;
  // (clamped as floats: a huge primitive's bound may not fit an int)
  r.x0 = static_cast<int>(fmaxf(jx0, 0.0f));
  r.y0 = static_cast<int>(fmaxf(jy0, 0.0f));
  r.x1 = static_cast<int>(fminf(jx1, width - 1.0f));
  r.y1 = static_cast<int>(fminf(jy1, height - 1.0f));
  return r;
}

// The tiles that pixels p fall in (p not empty).
LE3D_HD TileRect tiles_of(const PixelRect& p) {
  return TileRect{p.x0 / kTileSize, p.y0 / kTileSize, p.x1 / kTileSize, p.y1 / kTileSize};
}

// The tiles that bound b's pixels fall in.
LE3D_HD TileRect tile_rect(const float* b, int width, int height) {
  const PixelRect p = pixel_rect(b, width, height);
  return p.empty() ? p : tiles_of(p);
}

// The box spanned by the centres of tile (tx, ty)'s pixels inside the image:
// box = {x_lo, y_lo, x_hi, y_hi}. Footprints test it in reaches_tile() when primitives are binned.
LE3D_HD void tile_centre_box(int tx, int ty, int width, int height, float* box) {
  box[0] = tx * kTileSize + 0.5f;
  box[1] = ty * kTileSize + 0.5f;
  box[2] = ((tx + 1) * kTileSize < width ? (tx + 1) * kTileSize : width) - 0.5f;
  box[3] = ((ty + 1) * kTileSize < height ? (ty + 1) * kTileSize : height) - 0.5f;
}

}  // namespace le3d
