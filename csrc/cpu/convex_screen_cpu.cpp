// The convex screen bound on the CPU: the box around the hull with every edge pushed out, one loop per
// convex instead of a dozen small torch ops (twin: convex_splat/projection.py screen_bounds_torch,
// used on other devices and by the tests).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "le3d/hull_api.h"

namespace le3d {

std::vector<torch::Tensor> convex_screen_bounds_cpu(const torch::Tensor& start, const torch::Tensor& normal,
                                                    const torch::Tensor& slot_i, const torch::Tensor& slot_j,
                                                    const torch::Tensor& active, const torch::Tensor& grow,
                                                    double margin_rel, double margin_abs, double miter_min) {
  TORCH_CHECK(start.device().is_cpu() && start.scalar_type() == torch::kFloat32 && start.dim() == 3 &&
                  start.size(2) == 2 && start.size(1) <= 16,
              "convex_screen_bounds_cpu: start must be a CPU float32 tensor [N, S <= 16, 2]");
  const auto a = start.contiguous(), nrm = normal.contiguous(), si = slot_i.contiguous(), sj = slot_j.contiguous();
  const auto act = active.contiguous(), g = grow.contiguous();
  TORCH_CHECK(nrm.sizes() == a.sizes() && nrm.scalar_type() == torch::kFloat32, "normal: like start");
  TORCH_CHECK(si.scalar_type() == torch::kInt64 && sj.scalar_type() == torch::kInt64 &&
                  act.scalar_type() == torch::kBool && g.scalar_type() == torch::kFloat32,
              "convex_screen_bounds_cpu: slots int64, active bool, grow float32");
  const int64_t N = a.size(0);
  const int S = static_cast<int>(a.size(1));
  auto bounds = torch::empty({N, 4}, a.options());
  const float* A = a.data_ptr<float>();
  const float* NR = nrm.data_ptr<float>();
  const int64_t* SI = si.data_ptr<int64_t>();
  const int64_t* SJ = sj.data_ptr<int64_t>();
  const bool* ACT = act.data_ptr<bool>();
  const float* G = g.data_ptr<float>();
  float* B = bounds.data_ptr<float>();
  const float rel = static_cast<float>(margin_rel), abs_margin = static_cast<float>(margin_abs);
  const float mmin = static_cast<float>(miter_min);
  constexpr float kInf = std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    // n_in_at[v]: the normal of the active edge ending at point v. Slot e's edge starts at point
    // slot_i[e], so its start vertex moves by the miter of that normal and its own.
    float n_in_at[16][2] = {};
    for (int e = 0; e < S; ++e) {
      if (!ACT[n * S + e]) continue;
      const int64_t v = SJ[n * S + e];
      n_in_at[v][0] += NR[(n * S + e) * 2];
      n_in_at[v][1] += NR[(n * S + e) * 2 + 1];
    }
    float lo[2] = {kInf, kInf}, hi[2] = {-kInf, -kInf};
    const float gn = G[n];
    for (int e = 0; e < S; ++e) {
      if (!ACT[n * S + e]) continue;
      const float* no = NR + (n * S + e) * 2;
      const float* ni = n_in_at[SI[n * S + e]];
      const float den = std::max(1.0f + (ni[0] * no[0] + ni[1] * no[1]), mmin);
      for (int d = 0; d < 2; ++d) {
        const float v = A[(n * S + e) * 2 + d] + gn * ((ni[d] + no[d]) / den);
        lo[d] = std::min(lo[d], v);
        hi[d] = std::max(hi[d], v);
      }
    }
    for (int d = 0; d < 2; ++d) {
      const float span = std::max(hi[d] - lo[d], 0.0f);
      const float grown = span * rel + abs_margin + gn * rel;
      B[n * 4 + d] = lo[d] - grown;
      B[n * 4 + 2 + d] = hi[d] + grown;
    }
  }
  return {bounds};
}

}  // namespace le3d
