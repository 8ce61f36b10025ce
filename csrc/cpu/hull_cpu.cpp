// 2D convex-hull edges of each convex's projected points (CPU), the same decisions as
// convex_splat.projection.hull_edges_torch: the all-triples test, in double, with the same formulas in
// the same order of operations, so both give the same topology. The torch version builds [N, K, K, K]
// temporaries (about 0.4 s for 200k convexes on two cores); this loop needs none.
#include <torch/extension.h>

#include <cmath>
#include <vector>

#include "le3d/hull_api.h"

namespace le3d {

std::vector<torch::Tensor> hull_edges_cpu(const torch::Tensor& centred, double tol) {
  TORCH_CHECK(centred.device().is_cpu() && centred.scalar_type() == torch::kFloat64 && centred.dim() == 3 &&
                  centred.size(2) == 2,
              "hull_edges_cpu: points must be a CPU float64 tensor [N, K, 2] (centred per convex)");
  const auto p = centred.contiguous();
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  TORCH_CHECK(K <= 16, "hull_edges_cpu: at most 16 points per convex");
  auto edge = torch::zeros({N, K, K}, torch::kBool);
  auto ok = torch::zeros({N}, torch::kBool);
  const double* P = p.data_ptr<double>();
  bool* E = edge.data_ptr<bool>();
  bool* OK = ok.data_ptr<bool>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const double* q = P + n * K * 2;
    double X[16][16], G[16][16], len2[16][16], len[16][16];
    bool dup[16];
    for (int a = 0; a < K; ++a) {
      dup[a] = false;
      for (int b = 0; b < a; ++b) {
        const double d = std::fmax(std::fabs(q[2 * a] - q[2 * b]), std::fabs(q[2 * a + 1] - q[2 * b + 1]));
        if (d <= tol) dup[a] = true;
      }
      for (int b = 0; b < K; ++b) {
        X[a][b] = q[2 * a] * q[2 * b + 1] - q[2 * a + 1] * q[2 * b];
        G[a][b] = q[2 * a] * q[2 * b] + q[2 * a + 1] * q[2 * b + 1];
      }
    }
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        const double l2 = G[i][i] + G[j][j] - 2 * G[i][j];
        len2[i][j] = l2 > 0 ? l2 : 0;
        len[i][j] = std::sqrt(len2[i][j]);
      }
    bool* e = E + n * K * K;
    int out_deg[16] = {0}, in_deg[16] = {0}, edges = 0;
    for (int i = 0; i < K; ++i) {
      if (dup[i]) continue;
      for (int j = 0; j < K; ++j) {
        if (j == i || dup[j] || !(len[i][j] > tol)) continue;
        const double tol_len = tol * len[i][j];
        bool all_fine = true;
        for (int k = 0; k < K && all_fine; ++k) {
          if (k == i || k == j || dup[k]) continue;
          const double cross = X[i][j] + X[j][k] + X[k][i];
          const double dot = G[j][k] - G[i][k] - (G[i][j] - G[i][i]);
          const bool inside = cross > tol_len;
          const bool between = std::fabs(cross) <= tol_len && dot > 0 && dot < len2[i][j];
          all_fine = inside || between;
        }
        if (all_fine) {
          e[i * K + j] = true;
          ++out_deg[i];
          ++in_deg[j];
          ++edges;
        }
      }
    }
    bool cycle = edges >= 3;
    for (int a = 0; a < K && cycle; ++a) cycle = out_deg[a] == in_deg[a] && out_deg[a] <= 1;
    OK[n] = cycle;
  }
  return {edge, ok};
}

}  // namespace le3d
