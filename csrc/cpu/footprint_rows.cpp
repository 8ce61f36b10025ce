// Row loops of footprint_rows.h. Every inner loop runs over the kTileSize pixels of one row with no
// branches, so the compiler vectorises it; with GCC on x86-64 each function is compiled twice (AVX2,
// and the baseline x86-64 for older CPUs) and the loader picks the one the CPU runs.
// The formulas are those of footprint_gaussian.h / footprint_convex.h (the scalar versions, used by
// the CUDA kernels); tests/test_raster_gaussians.py and tests/test_convex_raster.py hold both to the
// PyTorch reference.
#include "footprint_rows.h"

#include <cmath>

#include "vector_math.h"

// The AVX2 clone is chosen from the CPU's features: "arch=x86-64-v3" (AVX2, FMA, ...) from GCC 12 on,
// plain "avx2" before (there "arch=..." clones test the CPU model, e.g. "haswell" is false on AMD).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define LE3D_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 6
#define LE3D_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LE3D_VECTOR_CLONES
#endif
// Vectorise this loop over a row's pixels: without it the compiler unrolls the 16 iterations
// completely and then often finds the straight-line code not worth vectorising.
#define LE3D_ROW_LOOP _Pragma("omp simd")
// Helpers of the cloned functions: inlined into each clone, so that they are compiled for its target
// too (a call would reach one version compiled for the baseline).
#if defined(__GNUC__)
#define LE3D_ROW_INLINE inline __attribute__((always_inline))
#else
#define LE3D_ROW_INLINE inline
#endif

namespace le3d {
namespace rows {
namespace {

constexpr int kW = kTileSize;

// Pixel-centre x of the row's pixels.
inline void centres_x(int x0, float* px) {
  LE3D_ROW_LOOP
  for (int c = 0; c < kW; ++c) px[c] = static_cast<float>(x0 + c) + 0.5f;
}

// A convex at one row of pixels, columns lo..hi-1 (a multiple of 8 lanes: the caller evaluates only
// the halves of the row it needs): v_e = delta s L_e and m = max_e v_e (distances()), then the edges'
// unnormalised softmax weights exp(v_e - m) in place of v_e, and their sum (weights()).
struct ConvexRow {
  float w[ConvexFootprint::kMaxEdges][kW];
  float m[kW], sum[kW];
  int lo = 0, hi = kW;

  void distances(const float* p, int E, const float* px, float py) {
    const float ds = p[1] * p[2];
    LE3D_ROW_LOOP
    for (int c = lo; c < hi; ++c) m[c] = -INFINITY;
    for (int e = 0; e < E; ++e) {
      const float* q = p + ConvexFootprint::kHeader + 3 * e;
      const float base = q[1] * py + q[2];
      LE3D_ROW_LOOP
      for (int c = lo; c < hi; ++c) {
        const float v = ds * (q[0] * px[c] + base);
        w[e][c] = v;
        m[c] = v > m[c] ? v : m[c];
      }
    }
  }

  // The pixels of the row that pass the early-out sigma m <= skip_above
  // (ConvexFootprint::surely_invisible fails): only they can have a non-zero alpha.
  RowMask candidates(float sigma, float skip_above) const {
    RowMask mask = 0;
    for (int c = lo; c < hi; ++c) mask |= static_cast<RowMask>(!(sigma * m[c] > skip_above)) << c;
    return mask;
  }

  void weights(int E) {
    LE3D_ROW_LOOP
    for (int c = lo; c < hi; ++c) sum[c] = 0.0f;
    for (int e = 0; e < E; ++e) {
      LE3D_ROW_LOOP
      for (int c = lo; c < hi; ++c) {
        const float x = vexp(w[e][c] - m[c]);
        w[e][c] = x;
        sum[c] += x;
      }
    }
  }
};

inline bool any_nonzero(const float* v) {
  int any = 0;
  _Pragma("omp simd reduction(| : any)")
  for (int c = 0; c < kW; ++c) any |= v[c] != 0.0f;
  return any != 0;
}

}  // namespace

LE3D_VECTOR_CLONES
void gaussian_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out) {
  float px[kW];
  centres_x(x0, px);
  const float a = p[2], b = p[3], cc = p[4], o = p[5];
  for (int r = r0; r <= r1; ++r) {
    if (!masks[r]) continue;
    const float dy = p[1] - (static_cast<float>(y0 + r) + 0.5f);
    float* row = out + r * kW;
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      const float dx = p[0] - px[c];
      const float power = -(0.5f * (a * dx * dx + cc * dy * dy) + b * dx * dy);
      const float value = o * vexp(power);
      row[c] = (power < threshold || power > 0.0f) ? 0.0f : value;
    }
  }
}

LE3D_VECTOR_CLONES
void gaussian_grad(const float* p, int x0, int y0, int r0, int r1, const float* raw, const float* d_raw,
                   float* grad) {
  constexpr int P = GaussianFootprint::kParams;
  float px[kW];
  centres_x(x0, px);
  float acc[P][kW] = {};
  const float a = p[2], b = p[3], cc = p[4], inv_o = 1.0f / p[5];
  for (int r = r0; r <= r1; ++r) {
    const float* dr = d_raw + r * kW;
    if (!any_nonzero(dr)) continue;
    const float* al = raw + r * kW;
    const float dy = p[1] - (static_cast<float>(y0 + r) + 0.5f);
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      const float dx = p[0] - px[c];
      const float dpower = al[c] * dr[c];  // d raw / d power = raw
      acc[0][c] -= dpower * (a * dx + b * dy);
      acc[1][c] -= dpower * (cc * dy + b * dx);
      acc[2][c] -= dpower * 0.5f * dx * dx;
      acc[3][c] -= dpower * dx * dy;
      acc[4][c] -= dpower * 0.5f * dy * dy;
      acc[5][c] += al[c] * inv_o * dr[c];
    }
  }
  for (int i = 0; i < P; ++i) {
    float s = 0.0f;
    for (int c = 0; c < kW; ++c) s += acc[i][c];
    grad[i] += s;
  }
}

namespace {

// Keeps row r's phi, coverage and softmax sum for the gradient.
LE3D_ROW_INLINE void cache_row(RowCache* cache, int r, const float* phi, const float* coverage, const float* sum,
                               int lo = 0, int hi = kW) {
  LE3D_ROW_LOOP
  for (int c = lo; c < hi; ++c) {
    cache->phi[r][c] = phi[c];
    cache->coverage[r][c] = coverage[c];
    cache->sum[r][c] = sum[c];
  }
}

// phi = (reference + ln sum) / delta, coverage = sigmoid(-sigma phi) and out = o coverage over columns
// lo..hi-1 of a row (multiplying by 1 / delta: one division per pixel fewer, a rounding's difference).
LE3D_ROW_INLINE void convex_coverage(const float* reference, const float* sum, float delta, float sigma, float o,
                                     float* phi, float* coverage, float* out, int lo = 0, int hi = kW) {
  const float inv_delta = 1.0f / delta, sigma_over_delta = sigma / delta;
  LE3D_ROW_LOOP
  for (int c = lo; c < hi; ++c) {
    const float lse = reference[c] + vlog(sum[c]);
    phi[c] = lse * inv_delta;
    coverage[c] = 1.0f / (1.0f + vexp(sigma_over_delta * lse));
    out[c] = o * coverage[c];
  }
}

// Per pixel, with each pixel's own maximum as the logsumexp's reference: E exponentials per pixel.
// For any sharpness; convex_alpha uses it for convexes too sharp for the separable evaluation.
LE3D_ROW_INLINE void convex_alpha_per_pixel(const float* p, float threshold, int x0, int y0, int r0, int r1,
                                            RowMask* masks, float* out, RowCache* cache) {
  const int E = ConvexFootprint::edges(p);
  float px[kW];
  centres_x(x0, px);
  const float delta = p[1], sigma = p[3], o = p[4];
  const float skip_above = threshold * delta;  // the early-out of ConvexFootprint::surely_invisible
  constexpr RowMask kLeft = (RowMask{1} << (kW / 2)) - 1;
  ConvexRow row;
  for (int r = r0; r <= r1; ++r) {
    if (!masks[r]) continue;
    // Only the 8-pixel halves with wanted pixels: most convexes this sharp are a few pixels wide.
    row.lo = masks[r] & kLeft ? 0 : kW / 2;
    row.hi = masks[r] & ~kLeft ? kW : kW / 2;
    row.distances(p, E, px, static_cast<float>(y0 + r) + 0.5f);
    masks[r] &= row.candidates(sigma, skip_above);
    if (!masks[r]) continue;
    float* dst = out + r * kW;
    row.weights(E);
    float phi[kW], coverage[kW];
    convex_coverage(row.m, row.sum, delta, sigma, o, phi, coverage, dst, row.lo, row.hi);
    if (!cache) continue;
    cache_row(cache, r, phi, coverage, row.sum, row.lo, row.hi);
    for (int e = 0; e < E; ++e) {
      LE3D_ROW_LOOP
      for (int c = row.lo; c < row.hi; ++c) cache->pixel_weight[r][e][c] = row.w[e][c];
    }
  }
}

// The separable evaluation. Along a row, v_e(c) = delta s L_e = mid_e + slope_e (c - 7.5) with
// slope_e = delta s nx_e, so with one reference M per row,
//   exp(v_e(c) - M) = exp(mid_e - M) * exp(slope_e (c - 7.5)):
// per (convex, tile), E 8-lane exponentials (and divisions) for the columns and E for each 8 rows,
// instead of 2E per row (E per pixel). M is the row's largest v_e
// (every factor product <= 1). Exact in real arithmetic; in floats it needs the products to stay
// far from underflow where they matter: m(c) - M >= -15 delta s (m's slope is at most delta s, the
// normals being unit), so with delta s <= kMaxSeparableSlope every pixel's sum is >= e^-30, and a
// term lost to underflow (< e^-87 * e^15) is < e^-42 of it. Sharper convexes go per pixel.
constexpr float kMaxSeparableSlope = 2.0f;
static_assert(kW == 16, "the separable evaluation is written for 16-pixel rows (centre 7.5, two 8-lane halves)");

LE3D_ROW_INLINE void convex_alpha_separable(const float* p, float threshold, int x0, int y0, int r0, int r1,
                                            RowMask* masks, float* out, RowCache* cache) {
  constexpr int H = ConvexFootprint::kHeader;
  constexpr int kMaxE = ConvexFootprint::kMaxEdges;
  const int E = ConvexFootprint::edges(p);
  const float delta = p[1], ds = p[1] * p[2], sigma = p[3], o = p[4];
  const float skip_above = threshold * delta;
  // The factors for all 16 columns and the rows asked for, in vector loops. column[e][c] = exp(slope_e (c - 7.5)); row_factor[e][r] = exp(mid_e(r) - M(r)) where
  // mid_e(r) is v_e at the row's centre and M(r) = max_e (mid_e(r) + reach_e), reach_e = 7.5 |slope_e|,
  // the row's largest v; lower(r) = max_e (mid_e(r) - reach_e) <= every m(c) of the row.
  float slope[kMaxE], mid[kMaxE][kW], M[kW], lower[kW];
  // The factors go straight into the gradient's cache when there is one (a copy of E x 32 floats was 6% of
  // this function's time, as rep movsq).
  float local_column[kMaxE][kW], local_row_factor[kMaxE][kW];
  float(*column)[kW] = cache ? cache->column : local_column;
  float(*row_factor)[kW] = cache ? cache->row_factor : local_row_factor;
  const float x_mid = static_cast<float>(x0) + 8.0f;  // between the centres of columns 7 and 8
  // Rows are computed in 8-lane groups: only the groups that r0..r1 touch.
  const int row_lo = r0 & ~7, row_hi = (r1 | 7) + 1;
  LE3D_ROW_LOOP
  for (int r = row_lo; r < row_hi; ++r) {
    M[r] = -INFINITY;
    lower[r] = -INFINITY;
  }
  for (int e = 0; e < E; ++e) {
    const float* q = p + H + 3 * e;
    slope[e] = ds * q[0];
    const float reach = 7.5f * std::fabs(slope[e]), se = slope[e];
    const float base = ds * (q[0] * x_mid + q[2]), row_step = ds * q[1];
    // exp(se (c - 7.5)) for c = 8..15 is exp(se (j + 0.5)), j = c - 8, and for c = 7 - j its
    // reciprocal: one 8-lane exponential and one 8-lane division.
    float half[kW / 2];
    LE3D_ROW_LOOP
    for (int j = 0; j < kW / 2; ++j) half[j] = vexp(se * (static_cast<float>(j) + 0.5f));
    LE3D_ROW_LOOP
    for (int j = 0; j < kW / 2; ++j) {
      column[e][kW / 2 + j] = half[j];
      column[e][kW / 2 - 1 - j] = 1.0f / half[j];
    }
    LE3D_ROW_LOOP
    for (int r = row_lo; r < row_hi; ++r) {
      const float v = base + row_step * (static_cast<float>(y0 + r) + 0.5f);
      mid[e][r] = v;
      M[r] = v + reach > M[r] ? v + reach : M[r];  // (std::fmax is a libm call: no vectorising)
      lower[r] = v - reach > lower[r] ? v - reach : lower[r];
    }
  }
  for (int e = 0; e < E; ++e) {
    LE3D_ROW_LOOP
    for (int r = row_lo; r < row_hi; ++r) row_factor[e][r] = vexp(mid[e][r] - M[r]);
  }
  if (cache) cache->separable = true;  // the gradient forms the softmax weights from the factors (see RowCache)
  float sum[kW], reference[kW], phi[kW], coverage[kW];
  for (int r = r0; r <= r1; ++r) {
    if (!masks[r]) continue;
    // Every pixel surely invisible? (No per-pixel early-out here: computing each pixel's m cost more
    // than the rows it skipped; pixels below 1/255 are the compositor's to skip.)
    if (sigma * lower[r] > skip_above) {
      masks[r] = 0;
      continue;
    }
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      sum[c] = 0.0f;
      reference[c] = M[r];
    }
    for (int e = 0; e < E; ++e) {
      const float f = row_factor[e][r];
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) sum[c] += f * column[e][c];
    }
    convex_coverage(reference, sum, delta, sigma, o, phi, coverage, out + r * kW);
    if (cache) cache_row(cache, r, phi, coverage, sum);
  }
}

}  // namespace

LE3D_VECTOR_CLONES
void convex_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, RowMask* masks, float* out,
                  RowCache* cache) {
  if (ConvexFootprint::edges(p) < 3) {  // raw alpha is 0 everywhere
    for (int r = r0; r <= r1; ++r) masks[r] = 0;
    return;
  }
  if (p[1] * p[2] <= kMaxSeparableSlope)
    convex_alpha_separable(p, threshold, x0, y0, r0, r1, masks, out, cache);
  else
  {
    if (cache) cache->separable = false;
    convex_alpha_per_pixel(p, threshold, x0, y0, r0, r1, masks, out, cache);
  }
}

LE3D_VECTOR_CLONES
void convex_grad(const float* p, int x0, int y0, int r0, int r1, const float* d_raw, const RowCache& cache,
                 float* grad) {
  const int E = ConvexFootprint::edges(p);
  if (E < 3) return;
  constexpr int H = ConvexFootprint::kHeader;
  float px[kW];
  centres_x(x0, px);
  const float s = p[2], sigma = p[3], o = p[4], inv_delta = 1.0f / p[1];
  float acc_header[H][kW] = {};
  // Per edge, sums of dL * py and of dL per column (the nx gradient, sum dL * px, is the second times px at
  // the end: a column's px is the same in every row).
  float acc_y[ConvexFootprint::kMaxEdges][kW] = {}, acc_dL[ConvexFootprint::kMaxEdges][kW] = {};
  float dphi[kW], dphi_s[kW], weighted_L[kW];
  // Separable: weight(e, r, c) = row_factor[e][r] column[e][c], so the column factor comes out of the
  // sums over rows: acc_dL[e][c] = column[e][c] sum_r row_factor[e][r] dphi_s(r, c) (acc_y likewise,
  // with py), and weighted_L = sum_e row_factor[e][r] (col_L[e][c] + py col_ny[e][c]) with col_L =
  // column * (nx px + the edge's offset), col_ny = column * ny: 4 multiply-adds per edge and row
  // instead of 6.
  float col_L[ConvexFootprint::kMaxEdges][kW], col_ny[ConvexFootprint::kMaxEdges][kW];
  if (cache.separable) {
    for (int e = 0; e < E; ++e) {
      const float* q = p + H + 3 * e;
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) {
        col_L[e][c] = cache.column[e][c] * (q[0] * px[c] + q[2]);
        col_ny[e][c] = cache.column[e][c] * q[1];
      }
    }
  }
  for (int r = r0; r <= r1; ++r) {
    const float* dr = d_raw + r * kW;
    if (!any_nonzero(dr)) continue;  // (a row the alpha call skipped has no cache, and d_raw = 0)
    const float* ph = cache.phi[r];
    const float* coverage = cache.coverage[r];
    const float py = static_cast<float>(y0 + r) + 0.5f;
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      // d coverage / d phi = -sigma C (1 - C); d coverage / d sigma = -phi C (1 - C)
      const float dcov = o * dr[c] * coverage[c] * (1.0f - coverage[c]);
      dphi[c] = -sigma * dcov;
      acc_header[4][c] += coverage[c] * dr[c];
      acc_header[3][c] -= ph[c] * dcov;
      weighted_L[c] = 0.0f;
    }
    // phi = LSE(delta s L) / delta, softmax weights pi_e = weight_e / sum: d phi / d L_e = s pi_e,
    // d phi / d s = sum pi_e L_e, d phi / d delta = (s sum pi_e L_e - phi) / delta. The 1 / sum is
    // folded into dphi_s and applied to weighted_L after the edge loop.
    float inv_sum[kW];
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) inv_sum[c] = 1.0f / cache.sum[r][c];
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) dphi_s[c] = dphi[c] * s * inv_sum[c];
    if (cache.separable) {  // acc_dL and acc_y without the column factor (applied after the rows)
      for (int e = 0; e < E; ++e) {
        const float f = cache.row_factor[e][r], fy = f * py;
        LE3D_ROW_LOOP
        for (int c = 0; c < kW; ++c) {
          weighted_L[c] += f * col_L[e][c] + fy * col_ny[e][c];
          acc_dL[e][c] += f * dphi_s[c];
          acc_y[e][c] += fy * dphi_s[c];
        }
      }
    } else {
      for (int e = 0; e < E; ++e) {
        const float* q = p + H + 3 * e;
        const float base = q[1] * py + q[2];
        const float* weight = cache.pixel_weight[r][e];  // weight(e, r, c) (see RowCache)
        LE3D_ROW_LOOP
        for (int c = 0; c < kW; ++c) {
          const float L = q[0] * px[c] + base;
          weighted_L[c] += weight[c] * L;
          const float dL = dphi_s[c] * weight[c];
          acc_y[e][c] += dL * py;
          acc_dL[e][c] += dL;
        }
      }
    }
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      const float wl = weighted_L[c] * inv_sum[c];
      acc_header[2][c] += dphi[c] * wl;
      acc_header[1][c] += dphi[c] * (s * wl - ph[c]) * inv_delta;
    }
  }
  for (int i = 1; i < H; ++i) {
    float sum = 0.0f;
    for (int c = 0; c < kW; ++c) sum += acc_header[i][c];
    grad[i] += sum;
  }
  if (cache.separable) {
    for (int e = 0; e < E; ++e) {
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) {
        acc_dL[e][c] *= cache.column[e][c];
        acc_y[e][c] *= cache.column[e][c];
      }
    }
  }
  for (int e = 0; e < E; ++e) {
    float sum_x = 0.0f, sum_y = 0.0f, sum = 0.0f;
    for (int c = 0; c < kW; ++c) {
      sum_x += acc_dL[e][c] * px[c];
      sum_y += acc_y[e][c];
      sum += acc_dL[e][c];
    }
    grad[H + 3 * e] += sum_x;
    grad[H + 3 * e + 1] += sum_y;
    grad[H + 3 * e + 2] += sum;
  }
}

}  // namespace rows
}  // namespace le3d
