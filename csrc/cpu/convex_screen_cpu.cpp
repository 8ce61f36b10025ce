// The gradient-free half of the convex projection on the CPU, one loop per convex instead of some
// forty small torch ops (their twins in convex_splat/projection.py, hull_slots_torch and
// screen_bounds_torch, serve other devices and the tests): which hull edge goes in which parameter
// slot, and the screen bound around the hull with every edge pushed out.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "le3d/hull.h"
#include "le3d/hull_api.h"

namespace le3d {

std::vector<torch::Tensor> hull_slots_cpu(const torch::Tensor& centred, double tol, int64_t slots) {
  TORCH_CHECK(centred.device().is_cpu() && centred.scalar_type() == torch::kFloat64 && centred.dim() == 3 &&
                  centred.size(2) == 2,
              "hull_slots_cpu: points must be a CPU float64 tensor [N, K, 2] (centred per convex)");
  const auto p = centred.contiguous();
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  TORCH_CHECK(K <= 16 && slots >= K, "hull_slots_cpu: at most 16 points per convex, and slots >= K");
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto slot_i = torch::zeros({N, slots}, opts), slot_j = torch::zeros({N, slots}, opts);
  auto n_edges = torch::zeros({N}, opts);
  auto ok = torch::zeros({N}, torch::kBool);
  const double* P = p.data_ptr<double>();
  int64_t* SI = slot_i.data_ptr<int64_t>();
  int64_t* SJ = slot_j.data_ptr<int64_t>();
  int64_t* NE = n_edges.data_ptr<int64_t>();
  bool* OK = ok.data_ptr<bool>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    bool edge[16 * 16] = {};
    OK[n] = hull_edges_one<16>(P + n * K * 2, K, tol, edge);
    // target[i]: the first j with an edge i -> j (0 if none); vertices with an outgoing edge take the
    // first slots in index order, the others follow (the twin's stable argsort), slots past K are 0.
    int target[16], order[16], count = 0;
    for (int i = 0; i < K; ++i) {
      target[i] = 0;
      for (int j = K - 1; j >= 0; --j)
        if (edge[i * K + j]) target[i] = j;
    }
    for (int i = 0; i < K; ++i)
      if (edge[i * K + target[i]]) order[count++] = i;
    NE[n] = count;
    for (int i = 0, rest = count; i < K; ++i)
      if (!edge[i * K + target[i]]) order[rest++] = i;
    for (int s = 0; s < K; ++s) {
      SI[n * slots + s] = order[s];
      SJ[n * slots + s] = target[order[s]];
    }
    for (int s = K; s < slots; ++s) SJ[n * slots + s] = target[0];
  }
  return {slot_i, slot_j, n_edges, ok};
}

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
