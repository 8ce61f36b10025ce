// The smooth-convex footprint (3D Convex Splatting, with normalised edge normals).
// Params (kParams floats): [0] number of hull edges E (<= kMaxEdges, stored as float),
// [1] delta (smoothness), [2] s (pixels -> world units at the convex's depth), [3] sigma
// (sharpness), [4] opacity o, then for each edge e < kMaxEdges: nx, ny, c with the signed
// distance L_e(q) = nx qx + ny qy + c in pixels (unit outward normal; negative inside).
// phi(q) = (1/delta) logsumexp_e(delta s L_e(q)); raw alpha = o * sigmoid(-sigma phi(q)).
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

struct ConvexFootprint {
  static constexpr int kMaxEdges = 8;
  static constexpr int kHeader = 5;
  static constexpr int kParams = kHeader + 3 * kMaxEdges;

  LE3D_HD static int edges(const float* p) {
    int e = static_cast<int>(p[0]);
    return e < 0 ? 0 : (e > kMaxEdges ? kMaxEdges : e);
  }

  // How many leading params can have a non-zero gradient: the header and the E active edges.
  LE3D_HD static int used_params(const float* p) { return kHeader + 3 * edges(p); }

  // L[e] = L_e(q) and v[e] = delta s L_e(q) for the E active edges; returns the max of v.
  LE3D_HD static float scaled_distances(const float* p, float px, float py, int E, float* L, float* v) {
    const float ds = p[1] * p[2];
    float m = -INFINITY;
    LE3D_UNROLL
    for (int e = 0; e < kMaxEdges; ++e) {  // unrolled to kMaxEdges: constant indices keep v in registers
      if (e >= E) break;
      const float* q = p + kHeader + 3 * e;
      L[e] = fmaf(q[0], px, fmaf(q[1], py, q[2]));
      v[e] = ds * L[e];
      m = fmaxf(m, v[e]);
    }
    return m;
  }

  // The early-out of a convex, once per convex and tile batch: alpha = o sigmoid(-sigma phi) is below
  // the compositor's 1/255 exactly when sigma phi > ln(255 o - 1), and phi >= m / delta
  // (m = max_e delta s L_e), so a pixel with sigma m > threshold delta needs no exponentials: the
  // compositor would skip it anyway. threshold = ln(255 o - 1) + 1e-3 (a margin for rounding), or -inf
  // when 255 o <= 1 (never visible).
  LE3D_HD static float skip_threshold(const float* p) {
    const float x = 255.0f * p[4] - 1.0f;
    return x > 0.0f ? logf(x) + 1e-3f : -INFINITY;
  }

  LE3D_HD static bool surely_invisible(const float* p, float threshold, float m) {
    return p[3] * m > threshold * p[1];
  }

  // False only when every point of box = {x_lo, y_lo, x_hi, y_hi} (a tile's pixel centres) is surely
  // invisible: the binning then leaves the tile out of this convex's list. The screen bound is a box
  // around the offset hull, so its corners reach tiles the rounded shape misses. Exact: for every
  // point of the box, m >= delta s L_e >= delta s min_box L_e for each edge e, and L_e's minimum over
  // a box is at a corner; a relative margin covers rounding.
  // (Unrolled to kMaxEdges: with p in registers, as the GPU binning keeps it, constant indices keep it there.)
  LE3D_HD static bool reaches_tile(const float* p, float threshold, const float* box) {
    const int E = edges(p);
    if (E < 3) return false;  // raw alpha is 0 everywhere
    const float ds = p[1] * p[2];
    LE3D_UNROLL
    for (int e = 0; e < kMaxEdges; ++e) {
      if (e >= E) break;
      const float* q = p + kHeader + 3 * e;
      const float L_min = fminf(q[0] * box[0], q[0] * box[2]) + fminf(q[1] * box[1], q[1] * box[3]) + q[2];
      const float slack = 1e-5f * (fabsf(q[0]) * fmaxf(fabsf(box[0]), fabsf(box[2])) +
                                   fabsf(q[1]) * fmaxf(fabsf(box[1]), fabsf(box[3])) + fabsf(q[2]));
      if (surely_invisible(p, threshold, ds * (L_min - slack))) return false;
    }
    return true;
  }

  // What the gradient needs from the forward evaluation at one pixel: the edge distances L_e, the
  // unnormalised softmax weights of the edges, 1 / their sum, phi and the coverage (E = 0: alpha was
  // 0, no gradient). The CUDA backward keeps one per convex-pixel pair between the alpha and the
  // gradient, so the gradient reads no edge parameter again (the CPU evaluates convexes a row at a
  // time in cpu/footprint_rows.cpp and keeps its own cache).
  struct Eval {
    float L[kMaxEdges];
    float w[kMaxEdges];
    float inv_sum, ph, coverage;
    int E;
  };

  // Raw alpha at one pixel (0 when surely invisible), and what its gradient needs in *ev.
  // threshold: skip_threshold(p).
  LE3D_HD static float evaluate(const float* p, float threshold, float px, float py, Eval* ev) {
    ev->E = 0;
    const int E = edges(p);
    if (E < 3) return 0.0f;
    const float m = scaled_distances(p, px, py, E, ev->L, ev->w);
    if (surely_invisible(p, threshold, m)) return 0.0f;
    float sum = 0.0f;
    LE3D_UNROLL
    for (int e = 0; e < kMaxEdges; ++e) {
      if (e >= E) break;
      // every edge's exponential, the largest's exp(0) = 1 too: on the GPU an exponential costs two
      // instructions, tracking which edge is the largest to skip one cost three per edge
      ev->w[e] = pixel_exp(ev->w[e] - m);
      sum += ev->w[e];
    }
    ev->ph = pixel_div(m + pixel_log(sum), p[1]);
    ev->coverage = pixel_div(1.0f, 1.0f + pixel_exp(p[3] * ev->ph));  // sigmoid(-sigma phi)
    ev->inv_sum = pixel_div(1.0f, sum);
    ev->E = E;
    return p[4] * ev->coverage;
  }

  LE3D_HD static float raw_alpha(const float* p, float px, float py) {
    Eval ev;
    return evaluate(p, skip_threshold(p), px, py, &ev);
  }

  LE3D_HD static float raw_alpha_fast(const float* p, float threshold, float px, float py) {
    Eval ev;
    return evaluate(p, threshold, px, py, &ev);
  }
  LE3D_HD static float raw_alpha_eval(const float* p, float threshold, float px, float py, Eval* ev) {
    return evaluate(p, threshold, px, py, ev);
  }

  // Writes d(raw alpha)/d(params) * grad_raw into grad[0, kParams) (every slot: the edge count's and the
  // unused edges' are 0), from the pixel's evaluation (of the params, only the header is read). Written,
  // not added: the kernels' per-pair gradients start from zero, and 0 + x costs an instruction per slot.
  // Straight-line over all kMaxEdges edges (weights past E read as 0): breaking out at E made the compiler
  // re-zero the remaining slots on every exit path.
  LE3D_HD static void raw_alpha_backward_eval(const float* p, float px, float py, float /*raw*/, const Eval& ev,
                                              float grad_raw, float* grad) {
    if (ev.E == 0) {  // raw alpha was 0 here: no gradient
      for (int q = 0; q < kParams; ++q) grad[q] = 0.0f;
      return;
    }
    const float delta = p[1], s = p[2], sigma = p[3], o = p[4];
    const float ph = ev.ph, coverage = ev.coverage;
    grad[0] = 0.0f;  // the edge count
    grad[4] = coverage * grad_raw;
    // d coverage / d phi = -sigma C (1 - C); d coverage / d sigma = -phi C (1 - C)
    const float dcov = o * grad_raw * coverage * (1.0f - coverage);
    const float dphi = -sigma * dcov;
    grad[3] = -ph * dcov;
    // phi = LSE(delta s L) / delta.  With softmax weights pi_e:
    // d phi / d L_e = s pi_e;  d phi / d s = sum pi_e L_e;  d phi / d delta = (s sum pi_e L_e - phi) / delta
    // (pi_e = w_e / sum: the 1 / sum is folded into the per-edge factor and the weighted sum)
    const float dL_per_w = dphi * s * ev.inv_sum;
    float weighted_wL = 0.0f;
    LE3D_UNROLL
    for (int e = 0; e < kMaxEdges; ++e) {  // unrolled: grad and ev.w stay in registers on the GPU
      const float w = e < ev.E ? ev.w[e] : 0.0f, L = e < ev.E ? ev.L[e] : 0.0f;
      weighted_wL = fmaf(w, L, weighted_wL);
      const float dL = dL_per_w * w;
      float* g = grad + kHeader + 3 * e;
      g[0] = dL * px;
      g[1] = dL * py;
      g[2] = dL;
    }
    const float weighted_L = weighted_wL * ev.inv_sum;
    grad[2] = dphi * weighted_L;
    grad[1] = pixel_div(dphi * (s * weighted_L - ph), delta);
  }
};

}  // namespace le3d
