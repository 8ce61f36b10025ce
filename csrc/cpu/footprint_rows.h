// One primitive over a band of pixel rows of one tile, for the CPU backend: the footprints of
// footprint_gaussian.h / footprint_convex.h rearranged so that the loops run over the 16 pixels of a
// row (and vectorise, with vector_math.h's exp/log), where the scalar versions run over one pixel.
// The CPU pays most of its time in these evaluations (a convex: E exponentials, a log and a sigmoid
// per pixel), so doing 8 pixels per instruction is what brings it near the Gaussian's cost.
//
// Layout: a tile's pixel (row r, column c) is at index r * kTileSize + c, its centre at
// (x0 + c + 0.5, y0 + r + 0.5) where (x0, y0) is the tile's first pixel. Only rows r0..r1 are read
// or written (the rows the primitive's screen bound reaches); values beyond the image are computed
// and ignored by the caller.
#pragma once
#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "le3d/common.h"
#include "le3d/footprint_convex.h"
#include "le3d/footprint_gaussian.h"

namespace le3d {

// A tile row's pixels as the bits of a mask: bit c is column c.
static_assert(kTileSize <= 32, "row masks hold a tile row in 32 bits");
using RowMask = uint32_t;

// Bits c0..c1.
inline RowMask columns_mask(int c0, int c1) {
  return static_cast<RowMask>((uint64_t{1} << (c1 + 1)) - (uint64_t{1} << c0));
}

// The pixels of a row whose raw alpha the compositor would take (>= 1/255; NaN is not), and those
// whose last contributor comes after list index k. Called for every row of every primitive in the
// tile loops: with SSE2 (every x86-64) four compares and four movemasks instead of 16 scalar ones.
inline RowMask visible_mask(const float* row_alpha) {
#if defined(__SSE2__)
  static_assert(kTileSize == 16, "four 4-lane compares per row");
  const __m128 min = _mm_set1_ps(kAlphaMin);
  RowMask mask = 0;
  for (int q = 0; q < 4; ++q)
    mask |= static_cast<RowMask>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(row_alpha + 4 * q), min))) << (4 * q);
  return mask;
#else
  RowMask mask = 0;
  for (int c = 0; c < kTileSize; ++c) mask |= static_cast<RowMask>(row_alpha[c] >= kAlphaMin) << c;
  return mask;
#endif
}

inline RowMask pending_mask(const int* row_last, int k) {
#if defined(__SSE2__)
  const __m128i kk = _mm_set1_epi32(k);
  RowMask mask = 0;
  for (int q = 0; q < 4; ++q) {
    const __m128i later = _mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row_last + 4 * q)), kk);
    mask |= static_cast<RowMask>(_mm_movemask_ps(_mm_castsi128_ps(later))) << (4 * q);
  }
  return mask;
#else
  RowMask mask = 0;
  for (int c = 0; c < kTileSize; ++c) mask |= static_cast<RowMask>(k < row_last[c]) << c;
  return mask;
#endif
}

namespace rows {

constexpr int kTilePixels = kTileSize * kTileSize;

// What a convex's gradient needs from its alpha evaluation, per pixel of the rows evaluated (rows, and
// 8-pixel halves of rows, that the alpha call skipped are not filled: their d_raw is 0, and the values
// left there by earlier primitives are finite and the sums positive, the cache starting with zeros and
// sums of 1, so the gradient's products with d_raw = 0 stay 0). The softmax weight of edge e
// at (r, c) is weight(e, r, c) / sum[r][c], with weight(e, r, c) = row_factor[e][r] * column[e][c]
// after the separable evaluation and pixel_weight[r][e][c] after the per-pixel one: the gradient
// forms it, and 1 / sum, only for the rows it needs (many evaluated rows get no gradient).
struct RowCache {
  bool separable = false;
  float row_factor[ConvexFootprint::kMaxEdges][kTileSize] = {};
  float column[ConvexFootprint::kMaxEdges][kTileSize] = {};
  float pixel_weight[kTileSize][ConvexFootprint::kMaxEdges][kTileSize] = {};
  float sum[kTileSize][kTileSize];
  float phi[kTileSize][kTileSize] = {};
  float coverage[kTileSize][kTileSize] = {};
  RowCache() {
    for (auto& row : sum)
      for (float& v : row) v = 1.0f;
  }
};

// out[pixel] = raw alpha (as Footprint::raw_alpha_fast: 0 where surely below 1/255) for rows r0..r1.
// masks[r]: on entry, the pixels of row r the caller will read; on return, those of them that were
// computed and may be visible (0: the row was skipped and left unwritten). The caller reads nothing
// else. A convex fills *cache when given (for convex_grad); the Gaussian's needs none.
void gaussian_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out);
void convex_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out,
                  RowCache* cache);

// grad[kParams] += sum over the rows' pixels of d_raw[pixel] * d(raw alpha)/d(params).
// Pixels with d_raw = 0 add nothing, and rows without a non-zero d_raw are skipped (the rows the
// alpha call skipped must have d_raw = 0). The Gaussian's reads its alpha (raw: no exponential
// needed), the convex's the cache its alpha call filled.
void gaussian_grad(const float* p, int x0, int y0, int r0, int r1, const float* raw, const float* d_raw,
                   float* grad);
void convex_grad(const float* p, int x0, int y0, int r0, int r1, const float* d_raw, const RowCache& cache,
                 float* grad);

}  // namespace rows

// The row functions of a footprint type, for the templated tile loops.
template <typename Footprint>
struct FootprintRows;

template <>
struct FootprintRows<GaussianFootprint> {
  static void alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out,
                    rows::RowCache* /*cache*/) {
    rows::gaussian_alpha(p, threshold, x0, y0, r0, r1, masks, out);
  }
  static void grad(const float* p, int x0, int y0, int r0, int r1, const float* raw, const float* d_raw,
                   const rows::RowCache& /*cache*/, float* grad) {
    rows::gaussian_grad(p, x0, y0, r0, r1, raw, d_raw, grad);
  }
};

template <>
struct FootprintRows<ConvexFootprint> {
  static void alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out,
                    rows::RowCache* cache) {
    rows::convex_alpha(p, threshold, x0, y0, r0, r1, masks, out, cache);
  }
  static void grad(const float* p, int x0, int y0, int r0, int r1, const float* /*raw*/, const float* d_raw,
                   const rows::RowCache& cache, float* grad) {
    rows::convex_grad(p, x0, y0, r0, r1, d_raw, cache, grad);
  }
};

}  // namespace le3d
