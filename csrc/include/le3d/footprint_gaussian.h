// The 2D Gaussian footprint: alpha of one projected Gaussian at one pixel, and its gradient.
// Params (6 floats): mean x, mean y (pixels), conic a, b, c (inverse 2D covariance
// [[a, b], [b, c]]), opacity o.  raw alpha = o * exp(-(0.5 a dx^2 + b dx dy + 0.5 c dy^2)).
// The binning and the CPU backend read these params; the CUDA kernels' per-pixel loops read the
// pixel form (pixel_form_word below), pre-scaled once per tile batch.
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

struct GaussianFootprint {
  static constexpr int kParams = 6;

  // How many leading params can have a non-zero gradient (all of them).
  LE3D_HD static int used_params(const float*) { return kParams; }

  // A bound on the exponent below which raw alpha < 1/255 for sure (with a 1e-3 margin against
  // rounding), so backends can skip expf for the many pixels in a tile that a splat barely misses.
  LE3D_HD static float skip_threshold(const float* p) {
    return p[5] > 0.0f ? -logf(255.0f * p[5]) - 1e-3f : INFINITY;
  }

  // The CUDA kernels' per-pixel loops read a Gaussian in its pixel form, kPixelParams floats made once per
  // batch slot: the conic pre-scaled so that the exponent comes out in log2 units (exp2 is the GPU's
  // native op, and the scaled form takes fewer multiplications), and 1 / o for the gradient:
  //   [0] mean x  [1] mean y  [2] A = -a log2(e) / 2  [3] B = -b log2(e)  [4] C = -c log2(e) / 2
  //   [5] o  [6] 1 / o (0 when o <= 0)  [7] 0
  // power2(q) = A dx^2 + B dx dy + C dy^2 = log2 G(q), with (dx, dy) = mean - q.
  static constexpr int kPixelParams = 8;
  LE3D_HD static float pixel_form_word(const float* p, int q) {
    constexpr float kLog2e = 1.4426950408889634f;
    if (q < 2 || q == 5) return p[q];
    if (q == 3) return -kLog2e * p[3];
    if (q == 2 || q == 4) return -0.5f * kLog2e * p[q];
    if (q == 6) return p[5] > 0.0f ? pixel_div(1.0f, p[5]) : 0.0f;
    return 0.0f;
  }
  // skip_threshold in log2 units (+inf stays +inf: never visible)
  LE3D_HD static float pixel_skip_limit(const float* p) { return skip_threshold(p) * 1.4426950408889634f; }

  LE3D_HD static float power2(const float* pp, float dx, float dy) {
    return fmaf(dx, fmaf(pp[2], dx, pp[3] * dy), pp[4] * dy * dy);
  }

  // Unclamped alpha o G(q) from the pixel form, or 0 early when the exponent is below the skip limit
  // (pixel_skip_limit; the same value otherwise). The caller applies the 0.99 clamp and the 1/255 skip.
  LE3D_HD static float raw_alpha_fast(const float* pp, float limit, float px, float py) {
    const float power = power2(pp, pp[0] - px, pp[1] - py);
    if (power < limit || power > 0.0f) return 0.0f;  // > 0 only through rounding of a degenerate conic
    return pp[5] * pixel_exp2(power);
  }

  // False only when raw_alpha_fast is 0 at every point of box = {x_lo, y_lo, x_hi, y_hi} (a tile's
  // pixel centres): the binning then leaves the tile out of this Gaussian's list. The screen bound is
  // the box of the alpha >= 1/255 ellipse, so a tilted or elongated Gaussian's box reaches tiles
  // the ellipse misses. Exact: the quadratic form's minimum over the box is at the mean (inside) or
  // on an edge, where it is a parabola in one variable; a relative margin covers rounding.
  LE3D_HD static bool reaches_tile(const float* p, float threshold, const float* box) {
    const float mx = p[0], my = p[1], a = p[2], b = p[3], c = p[4];
    if (!(a > 0.0f && c > 0.0f)) return true;  // not a proper conic: keep the tile
    if (mx >= box[0] && mx <= box[2] && my >= box[1] && my <= box[3]) return true;
    // -b / c and -b / a: the same for every tile the binning tests, so its loops compute them once
    // (four divisions per tile were four calls of the GPU's division routine); a minimiser off by
    // rounding changes q by a second-order amount, far inside the slack below
    const float slope_y = -b / c, slope_x = -b / a;
    float q_min = INFINITY, scale = 0.0f;
    for (int side = 0; side < 4; ++side) {
      float dx, dy;
      if (side < 2) {  // the vertical edge x = box[0] or box[2]: the minimum over y is at dy = -b dx / c
        dx = box[side == 0 ? 0 : 2] - mx;
        dy = fminf(fmaxf(slope_y * dx, box[1] - my), box[3] - my);
      } else {  // the horizontal edge y = box[1] or box[3]
        dy = box[side == 2 ? 1 : 3] - my;
        dx = fminf(fmaxf(slope_x * dy, box[0] - mx), box[2] - mx);
      }
      const float q = 0.5f * (a * dx * dx + c * dy * dy) + b * dx * dy;
      if (q < q_min) {
        q_min = q;
        scale = 0.5f * (a * dx * dx + c * dy * dy) + fabsf(b * dx * dy);
      }
    }
    return -q_min >= threshold - 1e-5f * scale;  // the pixels skip where power = -q < threshold
  }

  // The evaluation interface of ConvexFootprint: nothing beyond raw alpha is worth keeping here.
  struct Eval {};
  LE3D_HD static float raw_alpha_eval(const float* pp, float limit, float px, float py, Eval*) {
    return raw_alpha_fast(pp, limit, px, py);
  }

  // Writes d(raw alpha)/d(params) * grad_raw into grad[0, kParams) (written, not added: the kernels'
  // per-pair gradients start from zero, and 0 + x costs an instruction per slot), from the pixel form.
  // `raw` is raw_alpha_fast there (so G = raw / o needs no exp). With grad_raw = 0 it writes zeros
  // (every term is 0 times a finite value; 1 / o is stored as 0 for o = 0): the kernels run it in every
  // lane of a warp, composited or not. In log2 units
  // d power / d mean x = -(a dx + b dy) = ln2 (2 A dx + B dy), and likewise for y.
  LE3D_HD static void raw_alpha_backward_eval(const float* pp, float px, float py, float raw, const Eval&,
                                              float grad_raw, float* grad) {
    constexpr float kLn2 = 0.6931471805599453f;
    const float dx = pp[0] - px, dy = pp[1] - py;
    const float dpower = raw * grad_raw;  // d raw / d power = o G = raw
    const float dmean = dpower * kLn2;
    grad[0] = dmean * fmaf(pp[2], dx + dx, pp[3] * dy);
    grad[1] = dmean * fmaf(pp[4], dy + dy, pp[3] * dx);
    grad[2] = dpower * -0.5f * dx * dx;
    grad[3] = dpower * -dx * dy;
    grad[4] = dpower * -0.5f * dy * dy;
    grad[5] = raw * pp[6] * grad_raw;  // G = raw / o
  }
};

}  // namespace le3d
