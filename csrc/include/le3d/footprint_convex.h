// The smooth-convex footprint (3D Convex Splatting, with normalised edge normals).
// Params (kParams floats): [0] number of hull edges E (<= kMaxEdges, stored as float),
// [1] delta (smoothness), [2] s (pixels -> world units at the convex's depth), [3] sigma
// (sharpness), [4] opacity o, then for each edge e < kMaxEdges: nx, ny, c with the signed
// distance L_e(q) = nx qx + ny qy + c in pixels (unit outward normal; negative inside).
// phi(q) = (1/delta) logsumexp_e(delta s L_e(q)); raw alpha = o * sigmoid(-sigma phi(q)).
// The binning and the CPU backend read these params; the CUDA kernels' per-pixel loops read the
// pixel form (pixel_form_word below), pre-scaled once per tile batch.
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

  // The per-pixel loops (the CUDA kernels) read a convex in its pixel form, kPixelParams floats made once
  // per convex and tile batch by pixel_form_word, so that a pair spends no instruction on what is the same
  // for every pixel: the edges pre-scaled to v_e(q) = log2(e) delta s L_e(q) (two FMAs a pixel, and
  // exp2 / log2 are the GPU's native MUFU ops, with no conversion from base e), 1 / delta and the other
  // ratios the gradient needs. Edges past E are padded to v_e = -1e30 (exp2 gives 0 and 0 * v_e is 0),
  // so a pixel evaluates a fixed number of edges without a branch each.
  //   [0] E  [1] 1/delta  [2] s  [3] sigma  [4] o  [5, 29) the 8 edges' scaled (nx, ny, c)
  //   [29] sigma / delta  [30] ln2 / (delta s)  [31] ln2 / delta
  // The gradient is still of the (raw) params: the edges' is d alpha / d L_e times (qx, qy, 1).
  static constexpr int kPixelParams = 32;
  static constexpr int kEdgesCommon = 6;  // K = 6 points (the default) make at most 6 hull edges
  static constexpr float kPadEdge = -1e30f;

  // Word q (< kPixelParams) of the pixel form of the raw params p: a word at a time, so that the CUDA
  // kernels make a batch's rows with the whole block, each thread a few words (a thread per row would
  // make 32 lanes of a warp store to one shared-memory bank).
  LE3D_HD static float pixel_form_word(const float* p, int q) {
    constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
    const float delta = p[1], s = p[2];
    if (q == 1) return 1.0f / delta;
    if (q < kHeader) return p[q];
    if (q < kHeader + 3 * kMaxEdges) {
      if ((q - kHeader) / 3 < edges(p)) return p[q] * (kLog2e * delta * s);
      return (q - kHeader) % 3 == 2 ? kPadEdge : 0.0f;
    }
    if (q == kHeader + 3 * kMaxEdges) return p[3] / delta;
    if (q == kHeader + 3 * kMaxEdges + 1) return kLn2 / (delta * s);
    return kLn2 / delta;
  }

  // The skip limit of raw_alpha_fast / raw_alpha_eval for the raw params p: a pixel whose max_e v_e
  // exceeds it is surely invisible (surely_invisible in log2 units: sigma m > threshold delta with
  // m = ln2 max_e v_e); -inf when the convex is never visible (255 o <= 1, or fewer than 3 edges).
  LE3D_HD static float pixel_skip_limit(const float* p) {
    constexpr float kLn2 = 0.6931471805599453f;
    if (edges(p) < 3) return -INFINITY;
    return skip_threshold(p) * p[1] / (p[3] * kLn2);
  }

  // What the gradient needs from the forward evaluation at one pixel: the edges' unnormalised softmax
  // weights w_e (0 past E), 1 / their sum, sum_e w_e v_e, t = log2 sum_e 2^v_e (phi = ln2 t / delta)
  // and the coverage. The CUDA backward keeps one per convex-pixel pair between the alpha and the
  // gradient, so the gradient reads no edge parameter again (the CPU evaluates convexes a row at a time
  // in cpu/footprint_rows.cpp and keeps its own). Value-initialised, it stands for "no evaluation":
  // raw_alpha_backward_eval then writes zeros, as it does for any finite one with grad_raw = 0.
  struct Eval {
    float w[kMaxEdges];
    float inv_sum, weighted_v, t, coverage;
  };

  // Raw alpha at one pixel from the pixel form pp over its first kEdges edges (0 when surely
  // invisible), and what its gradient needs in *ev (left as it was when surely invisible).
  template <int kEdges>
  LE3D_HD static float evaluate_edges(const float* pp, float limit, float px, float py, Eval* ev) {
    float v[kEdges];
    float m = -INFINITY;
    LE3D_UNROLL
    for (int e = 0; e < kEdges; ++e) {
      const float* q = pp + kHeader + 3 * e;
      v[e] = fmaf(q[0], px, fmaf(q[1], py, q[2]));
      m = fmaxf(m, v[e]);
    }
    if (m > limit) return 0.0f;
    float sum = 0.0f, weighted_v = 0.0f;
    LE3D_UNROLL
    for (int e = 0; e < kEdges; ++e) {
      ev->w[e] = pixel_exp2(v[e] - m);
      sum += ev->w[e];
      weighted_v = fmaf(ev->w[e], v[e], weighted_v);
    }
    LE3D_UNROLL
    for (int e = kEdges; e < kMaxEdges; ++e) ev->w[e] = 0.0f;
    ev->t = m + pixel_log2(sum);
    // sigmoid(-sigma phi) = 1 / (1 + 2^(sigma t / delta))
    ev->coverage = pixel_div(1.0f, 1.0f + pixel_exp2(pp[29] * ev->t));
    ev->inv_sum = pixel_div(1.0f, sum);
    ev->weighted_v = weighted_v;
    return pp[4] * ev->coverage;
  }

  // The edge count picks the loop (the same for every pixel of the pair's warp: they walk one convex).
  LE3D_HD static float evaluate(const float* pp, float limit, float px, float py, Eval* ev) {
    return pp[0] <= static_cast<float>(kEdgesCommon) ? evaluate_edges<kEdgesCommon>(pp, limit, px, py, ev)
                                                     : evaluate_edges<kMaxEdges>(pp, limit, px, py, ev);
  }

  LE3D_HD static float raw_alpha_fast(const float* pp, float limit, float px, float py) {
    Eval ev;
    return evaluate(pp, limit, px, py, &ev);
  }
  LE3D_HD static float raw_alpha_eval(const float* pp, float limit, float px, float py, Eval* ev) {
    return evaluate(pp, limit, px, py, ev);
  }

  // Writes d(raw alpha)/d(raw params) * grad_raw into grad[0, kHeader + 3 kEdges) (every slot: the edge
  // count's and the unused edges' are 0), from the pixel form pp (its header) and the pixel's evaluation
  // (one that gave raw alpha > 0, or a value-initialised one; with grad_raw = 0 it writes zeros from
  // either, so the kernels run it in every lane of a warp, composited or not). Written, not added: the
  // kernels' per-pair gradients start from zero, and 0 + x costs an instruction per slot. Straight-line
  // over kEdges edges: kMaxEdges for any convex (the weights past the evaluated ones are 0), or
  // kEdgesCommon for one of at most that many edges, where it writes exactly the first slots of the
  // kMaxEdges version (footprint_pixels_cpu checks it) and the CUDA backward puts other sums in the rest.
  template <int kEdges>
  LE3D_HD static void raw_alpha_backward_edges(const float* pp, float px, float py, const Eval& ev,
                                               float grad_raw, float* grad) {
    static_assert(kEdges == kEdgesCommon || kEdges == kMaxEdges, "the evaluation's edge loops");
    const float inv_delta = pp[1], s = pp[2], sigma = pp[3], o = pp[4];
    const float coverage = ev.coverage;
    const float ph = ev.t * pp[31];  // phi = ln2 t / delta
    grad[0] = 0.0f;  // the edge count
    grad[4] = coverage * grad_raw;
    // d coverage / d phi = -sigma C (1 - C); d coverage / d sigma = -phi C (1 - C)
    const float dcov = o * grad_raw * coverage * (1.0f - coverage);
    const float dphi = -sigma * dcov;
    grad[3] = -ph * dcov;
    // phi = LSE(delta s L) / delta.  With softmax weights pi_e = w_e / sum:
    // d phi / d L_e = s pi_e;  d phi / d s = sum pi_e L_e;  d phi / d delta = (s sum pi_e L_e - phi) / delta,
    // sum pi_e L_e = (sum w_e v_e / sum) ln2 / (delta s)
    const float dL_per_w = dphi * s * ev.inv_sum;
    LE3D_UNROLL
    for (int e = 0; e < kEdges; ++e) {  // unrolled: grad and ev.w stay in registers on the GPU
      const float dL = dL_per_w * ev.w[e];
      float* g = grad + kHeader + 3 * e;
      g[0] = dL * px;
      g[1] = dL * py;
      g[2] = dL;
    }
    const float weighted_L = ev.weighted_v * ev.inv_sum * pp[30];
    grad[2] = dphi * weighted_L;
    grad[1] = dphi * (s * weighted_L - ph) * inv_delta;
  }

  // Into grad[0, kParams): raw_alpha_backward_edges over every edge slot.
  LE3D_HD static void raw_alpha_backward_eval(const float* pp, float px, float py, float /*raw*/, const Eval& ev,
                                              float grad_raw, float* grad) {
    raw_alpha_backward_edges<kMaxEdges>(pp, px, py, ev, grad_raw, grad);
  }
};

}  // namespace le3d
