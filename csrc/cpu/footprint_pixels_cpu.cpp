// The per-pixel footprint functions the CUDA kernels run (footprint_gaussian.h / footprint_convex.h,
// scalar, one pixel at a time), run on the host for their tests: the CPU backend evaluates footprints
// with its own row loops (footprint_rows.cpp), so without this the GPU's footprint math would be
// tested on a GPU only. The host build uses the C library's exp / log / division where the GPU uses
// its fast approximations (common.h); everything else is the same code.
#include <torch/extension.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "le3d/common.h"
#include "le3d/footprint_convex.h"
#include "le3d/footprint_gaussian.h"
#include "le3d/rasterize_api.h"

namespace le3d {
namespace {

// The CUDA backward takes a convex of at most kEdgesCommon edges through raw_alpha_backward_edges<kEdgesCommon>
// and puts other sums in the remaining slots: its slots must equal those of the full gradient, whose
// remaining slots are zero (of either sign).
template <typename Footprint>
void check_common_edges_gradient(const float* pixel_form, float px, float py, const typename Footprint::Eval& ev,
                                 float grad_raw, const float* full) {
  if constexpr (std::is_same_v<Footprint, ConvexFootprint>) {
    if (Footprint::edges(pixel_form) > Footprint::kEdgesCommon) return;
    constexpr int kCommonSlots = Footprint::kHeader + 3 * Footprint::kEdgesCommon;
    float common[kCommonSlots];
    Footprint::template raw_alpha_backward_edges<Footprint::kEdgesCommon>(pixel_form, px, py, ev, grad_raw, common);
    for (int q = 0; q < Footprint::kParams; ++q) {
      const float want = q < kCommonSlots ? common[q] : 0.0f;
      TORCH_CHECK(full[q] == want, "footprint_pixels_cpu: the ",
                  Footprint::kEdgesCommon, "-edge gradient differs from the full one in slot ", q, " (", want,
                  " vs ", full[q], ")");
    }
  }
}

// The kernels' branch-free backward runs the gradient in every lane,
// with d_raw = 0 where the pair is not composited: from a value-initialised record (a lane that did not
// evaluate) and from the record the evaluation left (any pixel), it must write exact zeros, not NaN.
template <typename Footprint>
void check_zero_gradients(const float* pixel_form, float threshold, float px, float py) {
  constexpr int P = Footprint::kParams;
  typename Footprint::Eval blank{}, evaluated{};
  const float raw = Footprint::raw_alpha_eval(pixel_form, threshold, px, py, &evaluated);
  float grad[2][P];
  Footprint::raw_alpha_backward_eval(pixel_form, px, py, 0.0f, blank, 0.0f, grad[0]);
  Footprint::raw_alpha_backward_eval(pixel_form, px, py, raw, evaluated, 0.0f, grad[1]);
  check_common_edges_gradient<Footprint>(pixel_form, px, py, blank, 0.0f, grad[0]);
  check_common_edges_gradient<Footprint>(pixel_form, px, py, evaluated, 0.0f, grad[1]);
  for (int k = 0; k < 2; ++k)
    for (int q = 0; q < P; ++q)
      TORCH_CHECK(grad[k][q] == 0.0f, "footprint_pixels_cpu: a zero upstream gradient gave a non-zero gradient (",
                  grad[k][q], " in slot ", q, ", ", k == 0 ? "blank" : "evaluated", " record)");
}

template <typename Footprint>
void evaluate_pixels(const float* params, int N, int W, int H, const float* d_raw, float* raw, float* d_params) {
  constexpr int P = Footprint::kParams;
  for (int n = 0; n < N; ++n) {
    const float* p = params + static_cast<int64_t>(n) * P;
    float pixel_form[Footprint::kPixelParams];  // as the kernels' shared-memory row
    for (int q = 0; q < Footprint::kPixelParams; ++q) pixel_form[q] = Footprint::pixel_form_word(p, q);
    const float threshold = Footprint::pixel_skip_limit(p);
    float* g = d_params + static_cast<int64_t>(n) * P;
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        const float px = j + 0.5f, py = i + 0.5f;
        const int64_t at = (static_cast<int64_t>(n) * H + i) * W + j;
        // as the forward kernel: raw_alpha_fast; as the backward kernel: the kept evaluation, and a
        // gradient only where the compositor would use the pair (raw alpha >= 1/255)
        raw[at] = Footprint::raw_alpha_fast(pixel_form, threshold, px, py);
        typename Footprint::Eval ev;
        std::memset(static_cast<void*>(&ev), 0xff, sizeof(ev));  // NaN in every slot: reading one the
                                                                 // evaluation did not write poisons the test
        const float kept = Footprint::raw_alpha_eval(pixel_form, threshold, px, py, &ev);
        TORCH_CHECK(kept == raw[at], "footprint_pixels_cpu: raw_alpha_eval and raw_alpha_fast disagree");
        if (kept >= kAlphaMin) {
          float grad[P] = {};
          Footprint::raw_alpha_backward_eval(pixel_form, px, py, kept, ev, d_raw[at], grad);
          check_common_edges_gradient<Footprint>(pixel_form, px, py, ev, d_raw[at], grad);
          for (int q = 0; q < P; ++q) g[q] += grad[q];
        }
        check_zero_gradients<Footprint>(pixel_form, threshold, px, py);
      }
  }
}

}  // namespace

std::vector<torch::Tensor> footprint_pixels_cpu(const torch::Tensor& params, int64_t footprint, int64_t width,
                                                int64_t height, const torch::Tensor& d_raw) {
  TORCH_CHECK(params.device().is_cpu() && params.scalar_type() == torch::kFloat32 && params.dim() == 2,
              "footprint_pixels_cpu: params must be a float32 CPU tensor [N, P]");
  const int N = static_cast<int>(params.size(0)), W = static_cast<int>(width), H = static_cast<int>(height);
  TORCH_CHECK(d_raw.device().is_cpu() && d_raw.scalar_type() == torch::kFloat32 &&
                  d_raw.sizes() == torch::IntArrayRef({N, H, W}),
              "footprint_pixels_cpu: d_raw must be a float32 CPU tensor [N, H, W]");
  const auto p = params.contiguous(), g_up = d_raw.contiguous();
  auto raw = torch::zeros({N, H, W}, params.options()), d_params = torch::zeros_like(p);
  if (footprint == kFootprintGaussian) {
    TORCH_CHECK(p.size(1) == GaussianFootprint::kParams, "footprint_pixels_cpu: Gaussian params are [N, 6]");
    evaluate_pixels<GaussianFootprint>(p.data_ptr<float>(), N, W, H, g_up.data_ptr<float>(), raw.data_ptr<float>(),
                                       d_params.data_ptr<float>());
  } else {
    TORCH_CHECK(footprint == kFootprintConvex, "footprint_pixels_cpu: unknown footprint kind");
    TORCH_CHECK(p.size(1) == ConvexFootprint::kParams, "footprint_pixels_cpu: convex params are [N, 29]");
    evaluate_pixels<ConvexFootprint>(p.data_ptr<float>(), N, W, H, g_up.data_ptr<float>(), raw.data_ptr<float>(),
                                     d_params.data_ptr<float>());
  }
  return {raw, d_params};
}

}  // namespace le3d
