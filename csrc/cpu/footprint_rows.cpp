// Row loops of footprint_rows.h. Every inner loop runs over the kTileSize pixels of one row with no
// branches, so the compiler vectorises it; with GCC on x86-64 each function is compiled twice (AVX2,
// and the baseline x86-64 for older CPUs) and the loader picks the one the CPU runs.
// The formulas are those of footprint_gaussian.h / footprint_convex.h (the scalar versions, used by
// the CUDA kernels); tests/test_raster_cpu.py and tests/test_convex_raster.py hold both to the
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

namespace le3d {
namespace rows {
namespace {

constexpr int kW = kTileSize;

// Pixel-centre x of the row's pixels.
inline void centres_x(int x0, float* px) {
  LE3D_ROW_LOOP
  for (int c = 0; c < kW; ++c) px[c] = static_cast<float>(x0 + c) + 0.5f;
}

// A convex at one row of pixels: v_e = delta s L_e and m = max_e v_e (distances()), then the edges'
// unnormalised softmax weights exp(v_e - m) in place of v_e, and their sum (weights()).
struct ConvexRow {
  float w[ConvexFootprint::kMaxEdges][kW];
  float m[kW], sum[kW];

  void distances(const float* p, int E, const float* px, float py) {
    const float ds = p[1] * p[2];
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) m[c] = -INFINITY;
    for (int e = 0; e < E; ++e) {
      const float* q = p + ConvexFootprint::kHeader + 3 * e;
      const float base = q[1] * py + q[2];
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) {
        const float v = ds * (q[0] * px[c] + base);
        w[e][c] = v;
        m[c] = v > m[c] ? v : m[c];
      }
    }
  }

  // Whether any pixel of the row passes the early-out sigma m <= skip_above
  // (ConvexFootprint::surely_invisible): a row that does not needs no exponential.
  bool any_visible(float sigma, float skip_above) const {
    int any = 0;
    _Pragma("omp simd reduction(| : any)")
    for (int c = 0; c < kW; ++c) any |= !(sigma * m[c] > skip_above);
    return any != 0;
  }

  void weights(int E) {
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) sum[c] = 0.0f;
    for (int e = 0; e < E; ++e) {
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) {
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
void gaussian_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, float* out) {
  float px[kW];
  centres_x(x0, px);
  const float a = p[2], b = p[3], cc = p[4], o = p[5];
  for (int r = r0; r <= r1; ++r) {
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

LE3D_VECTOR_CLONES
void convex_alpha(const float* p, float threshold, int x0, int y0, int r0, int r1, float* out, RowCache* cache) {
  const int E = ConvexFootprint::edges(p);
  if (E < 3) {
    for (int i = r0 * kW; i < (r1 + 1) * kW; ++i) out[i] = 0.0f;
    return;
  }
  float px[kW];
  centres_x(x0, px);
  const float delta = p[1], sigma = p[3], o = p[4];
  const float skip_above = threshold * delta;  // the early-out of ConvexFootprint::surely_invisible
  ConvexRow row;
  for (int r = r0; r <= r1; ++r) {
    float* dst = out + r * kW;
    row.distances(p, E, px, static_cast<float>(y0 + r) + 0.5f);
    if (!row.any_visible(sigma, skip_above)) {
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) dst[c] = 0.0f;
      continue;
    }
    row.weights(E);
    float phi[kW], coverage[kW];
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      phi[c] = (row.m[c] + vlog(row.sum[c])) / delta;
      coverage[c] = 1.0f / (1.0f + vexp(sigma * phi[c]));  // sigmoid(-sigma phi)
      dst[c] = sigma * row.m[c] > skip_above ? 0.0f : o * coverage[c];
    }
    if (!cache) continue;
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      cache->phi[r][c] = phi[c];
      cache->coverage[r][c] = coverage[c];
      row.sum[c] = 1.0f / row.sum[c];
    }
    for (int e = 0; e < E; ++e) {
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) cache->softmax[r][e][c] = row.w[e][c] * row.sum[c];
    }
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
  const float delta = p[1], s = p[2], sigma = p[3], o = p[4];
  float acc_header[H][kW] = {};
  float acc_edges[ConvexFootprint::kMaxEdges][3][kW] = {};
  float dphi[kW], weighted_L[kW];
  for (int r = r0; r <= r1; ++r) {
    const float* dr = d_raw + r * kW;
    if (!any_nonzero(dr)) continue;  // (a row without a visible pixel has no cache, and d_raw = 0)
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
    // phi = LSE(delta s L) / delta, softmax weights pi_e: d phi / d L_e = s pi_e,
    // d phi / d s = sum pi_e L_e, d phi / d delta = (s sum pi_e L_e - phi) / delta
    for (int e = 0; e < E; ++e) {
      const float* q = p + H + 3 * e;
      const float base = q[1] * py + q[2];
      const float* pi = cache.softmax[r][e];
      LE3D_ROW_LOOP
      for (int c = 0; c < kW; ++c) {
        const float L = q[0] * px[c] + base;
        weighted_L[c] += pi[c] * L;
        const float dL = dphi[c] * s * pi[c];
        acc_edges[e][0][c] += dL * px[c];
        acc_edges[e][1][c] += dL * py;
        acc_edges[e][2][c] += dL;
      }
    }
    LE3D_ROW_LOOP
    for (int c = 0; c < kW; ++c) {
      acc_header[2][c] += dphi[c] * weighted_L[c];
      acc_header[1][c] += dphi[c] * (s * weighted_L[c] - ph[c]) / delta;
    }
  }
  for (int i = 1; i < H; ++i) {
    float sum = 0.0f;
    for (int c = 0; c < kW; ++c) sum += acc_header[i][c];
    grad[i] += sum;
  }
  for (int e = 0; e < E; ++e)
    for (int j = 0; j < 3; ++j) {
      float sum = 0.0f;
      for (int c = 0; c < kW; ++c) sum += acc_edges[e][j][c];
      grad[H + 3 * e + j] += sum;
    }
}

}  // namespace rows
}  // namespace le3d
