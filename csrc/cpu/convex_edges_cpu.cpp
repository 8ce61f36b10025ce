// The hull edges of each convex as footprint parameters (unit outward normal n and offset c, so that
// L(q) = n.q + c), forward and backward, on the CPU: one loop per convex instead of a dozen torch ops
// and their autograd graph (twin: convex_splat.projection.edge_params_torch, used on other devices,
// in float64 and by the tests). Slot e holds the edge from point slot_i[e] to point slot_j[e].
#include <torch/extension.h>

#include <cmath>
#include <vector>

#include "le3d/hull_api.h"

namespace le3d {
namespace {

void check(const torch::Tensor& pix, const torch::Tensor& slot_i, const torch::Tensor& slot_j,
           const torch::Tensor& active) {
  TORCH_CHECK(pix.device().is_cpu() && pix.scalar_type() == torch::kFloat32 && pix.dim() == 3 && pix.size(2) == 2 &&
                  pix.is_contiguous(),
              "convex edges: pix must be a contiguous CPU float32 tensor [N, K, 2]");
  TORCH_CHECK(slot_i.scalar_type() == torch::kInt64 && slot_j.scalar_type() == torch::kInt64 &&
                  active.scalar_type() == torch::kBool && slot_i.is_contiguous() && slot_j.is_contiguous() &&
                  active.is_contiguous() && slot_i.sizes() == active.sizes() && slot_j.sizes() == active.sizes(),
              "convex edges: slot_i, slot_j [N, S] int64 and active [N, S] bool, contiguous");
}

}  // namespace

std::vector<torch::Tensor> convex_edges_forward_cpu(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                                    const torch::Tensor& slot_j, const torch::Tensor& active) {
  check(pix, slot_i, slot_j, active);
  const int64_t N = pix.size(0), K = pix.size(1), S = slot_i.size(1);
  auto edges = torch::empty({N, S, 3}, pix.options());
  auto start = torch::empty({N, S, 2}, pix.options());
  auto normal = torch::empty({N, S, 2}, pix.options());
  const float* P = pix.data_ptr<float>();
  const int64_t* SI = slot_i.data_ptr<int64_t>();
  const int64_t* SJ = slot_j.data_ptr<int64_t>();
  const bool* ACT = active.data_ptr<bool>();
  float* E = edges.data_ptr<float>();
  float* A = start.data_ptr<float>();
  float* NR = normal.data_ptr<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t e = 0; e < S; ++e) {
      const int64_t slot = n * S + e;
      const float* a = P + (n * K + SI[slot]) * 2;
      const float* b = P + (n * K + SJ[slot]) * 2;
      const bool on = ACT[slot];
      // An inactive slot gets the twin's placeholder direction (1, 0), so its normal is finite.
      const float dx = on ? b[0] - a[0] : 1.0f, dy = on ? b[1] - a[1] : 0.0f;
      const float ax = on ? a[0] : 0.0f, ay = on ? a[1] : 0.0f;
      const float length = std::sqrt(dx * dx + dy * dy);
      const float nx = dy / length, ny = -dx / length;
      const float c = -(nx * ax + ny * ay);
      E[slot * 3] = on ? nx : 0.0f;
      E[slot * 3 + 1] = on ? ny : 0.0f;
      E[slot * 3 + 2] = on ? c : 0.0f;
      A[slot * 2] = ax;
      A[slot * 2 + 1] = ay;
      NR[slot * 2] = nx;
      NR[slot * 2 + 1] = ny;
    }
  }
  return {edges, start, normal};
}

torch::Tensor convex_edges_backward_cpu(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                        const torch::Tensor& slot_j, const torch::Tensor& active,
                                        const torch::Tensor& d_edges) {
  check(pix, slot_i, slot_j, active);
  const auto g = d_edges.contiguous();
  TORCH_CHECK(g.scalar_type() == torch::kFloat32 && g.dim() == 3 && g.size(0) == pix.size(0) &&
                  g.size(1) == slot_i.size(1) && g.size(2) == 3,
              "convex edges backward: d_edges must be float32 [N, S, 3]");
  const int64_t N = pix.size(0), K = pix.size(1), S = slot_i.size(1);
  auto d_pix = torch::zeros_like(pix);
  const float* P = pix.data_ptr<float>();
  const int64_t* SI = slot_i.data_ptr<int64_t>();
  const int64_t* SJ = slot_j.data_ptr<int64_t>();
  const bool* ACT = active.data_ptr<bool>();
  const float* G = g.data_ptr<float>();
  float* D = d_pix.data_ptr<float>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t e = 0; e < S; ++e) {
      const int64_t slot = n * S + e;
      if (!ACT[slot]) continue;  // the placeholder edge passes no gradient
      const float* a = P + (n * K + SI[slot]) * 2;
      const float* b = P + (n * K + SJ[slot]) * 2;
      const float dx = b[0] - a[0], dy = b[1] - a[1];
      const float length = std::sqrt(dx * dx + dy * dy);
      const float nx = dy / length, ny = -dx / length;
      // c = -(n . a): dL/dn gets -a dL/dc, dL/da gets -n dL/dc.
      const float gc = G[slot * 3 + 2];
      const float gnx = G[slot * 3] - gc * a[0], gny = G[slot * 3 + 1] - gc * a[1];
      // n = u / |u| with u = (dy, -dx): dL/du = (dL/dn - n (n . dL/dn)) / |u|.
      const float along = nx * gnx + ny * gny;
      const float gux = (gnx - nx * along) / length, guy = (gny - ny * along) / length;
      // u = (dy, -dx) with d = b - a: dL/dd = (-dL/du_y, dL/du_x).
      const float gdx = -guy, gdy = gux;
      float* da = D + (n * K + SI[slot]) * 2;
      float* db = D + (n * K + SJ[slot]) * 2;
      db[0] += gdx;
      db[1] += gdy;
      da[0] += -gdx - gc * nx;
      da[1] += -gdy - gc * ny;
    }
  }
  return d_pix;
}

}  // namespace le3d
