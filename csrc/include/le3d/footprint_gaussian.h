// The 2D Gaussian footprint: alpha of one projected Gaussian at one pixel, and its gradient.
// Params (6 floats): mean x, mean y (pixels), conic a, b, c (inverse 2D covariance
// [[a, b], [b, c]]), opacity o.  raw alpha = o * exp(-(0.5 a dx^2 + b dx dy + 0.5 c dy^2)).
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

struct GaussianFootprint {
  static constexpr int kParams = 6;

  // How many leading params can have a non-zero gradient (all of them).
  LE3D_HD static int used_params(const float*) { return kParams; }

  // Unclamped alpha o * G(q); the caller applies the 0.99 clamp and the 1/255 skip.
  LE3D_HD static float raw_alpha(const float* p, float px, float py) {
    const float dx = p[0] - px, dy = p[1] - py;
    const float power = -(0.5f * (p[2] * dx * dx + p[4] * dy * dy) + p[3] * dx * dy);
    if (power > 0.0f) return 0.0f;  // only reachable through rounding of a degenerate conic
    return p[5] * pixel_exp(power);
  }

  // A bound on the exponent below which raw alpha < 1/255 for sure (with a 1e-3 margin against
  // rounding), so backends can skip expf for the many pixels in a tile that a splat barely misses.
  LE3D_HD static float skip_threshold(const float* p) {
    return p[5] > 0.0f ? -logf(255.0f * p[5]) - 1e-3f : INFINITY;
  }

  // The form the CUDA kernels' per-pixel loops read (ConvexFootprint's is pre-scaled): the params
  // themselves, and the skip threshold raw_alpha_fast takes.
  static constexpr int kPixelParams = kParams;
  LE3D_HD static float pixel_form_word(const float* p, int q) { return p[q]; }
  LE3D_HD static float pixel_skip_limit(const float* p) { return skip_threshold(p); }

  // raw_alpha, or 0 early when the exponent is below skip_threshold (same value otherwise).
  LE3D_HD static float raw_alpha_fast(const float* p, float threshold, float px, float py) {
    const float dx = p[0] - px, dy = p[1] - py;
    const float power = -(0.5f * (p[2] * dx * dx + p[4] * dy * dy) + p[3] * dx * dy);
    if (power < threshold || power > 0.0f) return 0.0f;
    return p[5] * pixel_exp(power);
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

  // The evaluation interface of ConvexFootprint: nothing beyond raw alpha is worth keeping here. The
  // gradient divides by o (0 for a Gaussian that is never visible): the kernels call it where the pair
  // is composited only.
  struct Eval {};
  static constexpr bool kBranchFreeBackward = false;
  LE3D_HD static float raw_alpha_eval(const float* p, float threshold, float px, float py, Eval*) {
    return raw_alpha_fast(p, threshold, px, py);
  }

  // Writes d(raw alpha)/d(params) * grad_raw into grad[0, kParams) (written, not added: the kernels'
  // per-pair gradients start from zero, and 0 + x costs an instruction per slot).
  // `raw` is raw_alpha(p, px, py) from the caller (> 0), so exp(power) = raw / o needs no expf.
  LE3D_HD static void raw_alpha_backward_eval(const float* p, float px, float py, float raw, const Eval&,
                                              float grad_raw, float* grad) {
    const float dx = p[0] - px, dy = p[1] - py;
    const float g = pixel_div(raw, p[5]);  // o >= raw > 0
    const float dpower = raw * grad_raw;  // d raw / d power = o g = raw
    grad[0] = dpower * -(p[2] * dx + p[3] * dy);
    grad[1] = dpower * -(p[4] * dy + p[3] * dx);
    grad[2] = dpower * -0.5f * dx * dx;
    grad[3] = dpower * -dx * dy;
    grad[4] = dpower * -0.5f * dy * dy;
    grad[5] = g * grad_raw;
  }
};

}  // namespace le3d
