// Front-to-back compositing of one pixel, forward and backward, shared by both backends.
//
// For contributors k = 1..n in depth order: a_k = min(0.99, raw_k) (skipped when < 1/255),
// T_k = prod_{j<k} (1 - a_k), w_k = a_k T_k, and the pixel stops before T would drop below 1e-4.
// Outputs: colour sum w f + T_final bg; alpha 1 - T_final; depth sum w z;
// distortion D = 2 |S|, S = sum_k w_k (u_k W_<k - U_<k) (= sum_{i,j} w_i w_j |u_i - u_j| when u is
// monotone in depth); near/far = w-weighted mean depth of the first/last k contributors.
#pragma once
#include <cstdint>

#include "le3d/common.h"

namespace le3d {

// Where a pixel keeps the weights and depths of its last k contributors (for far_depth): slot s is
// at w[s * stride] and z[s * stride]. The CPU points it at arrays on its stack (stride 1); the CUDA
// kernel at shared memory (stride = threads per block, so a warp's accesses hit distinct banks),
// because per-thread arrays indexed at run time live in local memory, which cost the forward
// kernel two thirds of its time at nearfar_k = 4 on an H100.
struct RingBuffer {
  float* w;
  float* z;
  int stride;
};

struct PixelForward {
  float T = 1.0f;
  float W = 0.0f, U = 0.0f, S = 0.0f, depth = 0.0f;
  int n = 0;
  int last = 0;  // one past the last contributor's index within its tile's list (0: none)
  float near_wz = 0.0f, near_w = 0.0f;
  RingBuffer ring;
  int ring_slot = 0;  // n % k, kept as a counter (no integer division per contributor)

  LE3D_HD explicit PixelForward(RingBuffer ring_buffer) : ring(ring_buffer) {}

  enum Step { kSkip = 0, kAdded = 1, kDone = 2 };

  // Composites one primitive. On kAdded, *w_out is its weight; colour is accumulated by the caller.
  // kDistortion = false (no distortion output: u is 0) skips the distortion's running sums, which the
  // render then neither outputs nor saves; the backward must then use step<false>.
  template <bool kDistortion = true>
  LE3D_HD int add(float raw_alpha, float z, float u, int nearfar_k, int list_index, float* w_out) {
    const float a = raw_alpha < kAlphaMax ? raw_alpha : kAlphaMax;
    if (!(a >= kAlphaMin)) return kSkip;
    const float next_T = T * (1.0f - a);
    if (next_T < kTransmittanceMin) return kDone;
    const float w = a * T;
    if (kDistortion) {
      S += w * (u * W - U);
      W += w;
      U += w * u;
    }
    depth += w * z;
    if (nearfar_k > 0) {
      if (n < nearfar_k) {
        near_wz += w * z;
        near_w += w;
      }
      ring.w[ring_slot * ring.stride] = w;
      ring.z[ring_slot * ring.stride] = z;
      ring_slot = ring_slot + 1 == nearfar_k ? 0 : ring_slot + 1;
    }
    n += 1;
    last = list_index + 1;
    T = next_T;
    *w_out = w;
    return kAdded;
  }

  LE3D_HD float distortion() const { return 2.0f * (S < 0.0f ? -S : S); }
  LE3D_HD float near_depth() const { return near_w > 0.0f ? near_wz / near_w : 0.0f; }
  LE3D_HD float far_weight(int k) const {
    const int m = n < k ? n : k;
    float sw = 0.0f;
    for (int i = 0; i < m; ++i) sw += ring.w[i * ring.stride];
    return sw;
  }
  LE3D_HD float far_depth(int k) const {
    const int m = n < k ? n : k;
    float swz = 0.0f, sw = 0.0f;
    for (int i = 0; i < m; ++i) {
      swz += ring.w[i * ring.stride] * ring.z[i * ring.stride];
      sw += ring.w[i * ring.stride];
    }
    return sw > 0.0f ? swz / sw : 0.0f;
  }

  // Writes the pixel's outputs and its aux slots (the caller writes the colour, which it accumulates
  // itself) into the [H, W] arrays at index pix. Only the render's outputs exist (`layout`, from the
  // render: a kernel that keeps the distortion's sums may serve a render without it): distortion with a
  // distortion coordinate, near and far with nearfar_k > 0 (the other pointers may be null).
  LE3D_HD void write_outputs(int64_t pix, float* alpha_out, float* depth_out, float* distortion_out,
                             float* near_out, float* far_out, float* aux_out, const AuxLayout& layout,
                             int nearfar_k) const {
    alpha_out[pix] = 1.0f - T;
    depth_out[pix] = depth;
    if (layout.distortion >= 0) distortion_out[pix] = distortion();
    if (nearfar_k > 0) {
      near_out[pix] = near_depth();
      far_out[pix] = far_depth(nearfar_k);
    }
    save(aux_out + pix * layout.dim, layout, nearfar_k);
  }

  // Fills the pixel's aux slots (layout.dim floats) for the backward pass.
  LE3D_HD void save(float* aux, const AuxLayout& layout, int nearfar_k) const {
    aux[kAuxTransmittance] = T;
    aux[kAuxLastIndex] = static_cast<float>(last);
    aux[kAuxCount] = static_cast<float>(n);
    if (layout.distortion >= 0) {
      aux[layout.distortion + kAuxWeightSum] = W;
      aux[layout.distortion + kAuxCoordSum] = U;
      aux[layout.distortion + kAuxDistortionSigned] = S;
    }
    if (layout.nearfar >= 0) {
      aux[layout.nearfar + kAuxNearWeight] = near_w;
      aux[layout.nearfar + kAuxFarWeight] = far_weight(nearfar_k);
    }
  }
};

// An upstream gradient image, [H, W] or [H, W, C], read through its strides (in elements): a loss of
// out.sum() or out.mean() hands back an expanded tensor (strides 0), which the kernels read in place
// rather than as a contiguous copy (a launch and an image per output). Null data is zero everywhere:
// the output took no part in the loss, or does not exist (distortion without coords, near/far without
// nearfar_k), which saves the caller a zero-filled image.
struct PixelGradMap {
  const float* data = nullptr;
  int64_t row = 0, col = 0, channel = 0;

  LE3D_HD float at(int y, int x, int c = 0) const {
    return data ? data[y * row + x * col + c * channel] : 0.0f;
  }
};

// The upstream gradients of a render's outputs (image [H, W, C], the others [H, W]).
struct UpstreamGrads {
  PixelGradMap image, alpha, depth, distortion, near, far;
};

// Upstream gradients of one pixel and the forward values the backward needs.
struct PixelGrads {
  float d_alpha = 0.0f, d_depth = 0.0f, d_distortion = 0.0f, d_near = 0.0f, d_far = 0.0f;
  float near = 0.0f, far = 0.0f;  // forward outputs

  // Pixel (y, x)'s values: upstream gradients from their maps, the forward's near / far from its
  // [H, W] arrays at pix = y W + x. Near and far, which exist only then, are read when nearfar_k > 0.
  LE3D_HD void load(int y, int x, int64_t pix, const UpstreamGrads& up, const float* near_in, const float* far_in,
                    int nearfar_k) {
    d_alpha = up.alpha.at(y, x);
    d_depth = up.depth.at(y, x);
    d_distortion = up.distortion.at(y, x);
    d_near = nearfar_k > 0 ? up.near.at(y, x) : 0.0f;
    d_far = nearfar_k > 0 ? up.far.at(y, x) : 0.0f;
    near = nearfar_k > 0 ? near_in[pix] : 0.0f;
    far = nearfar_k > 0 ? far_in[pix] : 0.0f;
  }
};

// Walks the contributors back to front (the caller iterates the tile list from aux's last index
// down and calls step() for every primitive; skipped ones return false).
struct PixelBackward {
  float T;         // transmittance before the current contributor, updated by step()
  float R;         // sum_{m>k} G_m w_m + dL/dT_final T_final
  float W_after = 0.0f, U_after = 0.0f;
  float W_total, U_total, sign_S;
  // The near and far weight sums as the gradient divides by them (by_weight): on the GPU their reciprocals,
  // once per pixel (four divisions per contributor were four calls of the GPU's division routine), on the
  // host the sums themselves (the exact division, which the CPU backend's results depend on bit for bit:
  // a rounding change alters a whole training run). Either is 0 where the sum is 0.
  float near_div, far_div;
  int position;    // 1-based position of the next contributor to visit, counting from the front
  int count, nearfar_k;

  LE3D_HD static float weight_divisor(float sum) {
#if LE3D_GPU_FAST_MATH
    return sum > 0.0f ? 1.0f / sum : 0.0f;
#else
    return sum > 0.0f ? sum : 0.0f;
#endif
  }
  LE3D_HD static float by_weight(float x, float divisor) {
#if LE3D_GPU_FAST_MATH
    return x * divisor;
#else
    return x / divisor;
#endif
  }

  // aux: the pixel's slots, laid out as `layout` (the render's) says; a render without a distortion
  // output reads its sums as 0 (its distortion gradient is 0 too: upstream_grads). dL/dT_final =
  // dL/dcolour . bg - dL/dalpha (the caller computes the colour part).
  LE3D_HD void init(const float* aux, const AuxLayout& layout, float dL_dT_final_colour, const PixelGrads& g,
                    int k) {
    T = aux[kAuxTransmittance];
    W_after = 0.0f;  // (the CPU reuses one PixelBackward per pixel of a tile across tiles)
    U_after = 0.0f;
    const bool distortion = layout.distortion >= 0;
    W_total = distortion ? aux[layout.distortion + kAuxWeightSum] : 0.0f;
    U_total = distortion ? aux[layout.distortion + kAuxCoordSum] : 0.0f;
    sign_S = distortion && aux[layout.distortion + kAuxDistortionSigned] < 0.0f ? -1.0f : 1.0f;
    count = static_cast<int>(aux[kAuxCount]);
    position = count;
    near_div = weight_divisor(k > 0 ? aux[layout.nearfar + kAuxNearWeight] : 0.0f);
    far_div = weight_divisor(k > 0 ? aux[layout.nearfar + kAuxFarWeight] : 0.0f);
    nearfar_k = k;
    R = (dL_dT_final_colour - g.d_alpha) * T;
  }

  // One primitive (back to front). colour_dot = dL/dcolour . f. Returns false for skipped ones.
  // On true: *d_raw = dL/d(raw alpha), *w_out = w (for the feature gradient w dL/dcolour),
  // *d_z and *d_u = dL/dz and dL/du of this primitive. kDistortion = false: no distortion output
  // (the forward ran add<false>; *d_u is 0).
  template <bool kDistortion = true>
  LE3D_HD bool step(float raw_alpha, float z, float u, float colour_dot, const PixelGrads& g,
                    float* d_raw, float* w_out, float* d_z, float* d_u) {
    const float a = raw_alpha < kAlphaMax ? raw_alpha : kAlphaMax;
    if (!(a >= kAlphaMin)) return false;
    const float inv_one_minus_a = pixel_div(1.0f, 1.0f - a);
    const float T_k = T * inv_one_minus_a;
    const float w = a * T_k;
    // dL/dw_k
    float G = colour_dot + g.d_depth * z;
    float du = 0.0f;
    if (kDistortion) {
      const float W_before = W_total - w - W_after;
      const float U_before = U_total - w * u - U_after;
      G += g.d_distortion * 2.0f * sign_S * ((u * W_before - U_before) + (U_after - u * W_after));
      du = g.d_distortion * 2.0f * sign_S * w * (W_before - W_after);
      W_after += w;
      U_after += w * u;
    }
    float dz = w * g.d_depth;
    if (nearfar_k > 0) {
      if (position <= nearfar_k && near_div > 0.0f) {
        G += by_weight(g.d_near * (z - g.near), near_div);
        dz += by_weight(g.d_near * w, near_div);
      }
      if (position > count - nearfar_k && far_div > 0.0f) {
        G += by_weight(g.d_far * (z - g.far), far_div);
        dz += by_weight(g.d_far * w, far_div);
      }
    }
    const float d_a = T_k * G - R * inv_one_minus_a;
    *d_raw = raw_alpha < kAlphaMax ? d_a : 0.0f;  // the clamp passes no gradient
    *w_out = w;
    *d_z = dz;
    *d_u = du;
    R += G * w;
    T = T_k;
    position -= 1;
    return true;
  }
};

}  // namespace le3d
