// 2D convex-hull edges of each convex's projected points (CPU loop over le3d/hull.h, which takes the
// same decisions as convex_splat.projection.hull_edges_torch). The torch version builds [N, K, K, K]
// temporaries (about 0.4 s for 200k convexes on two cores); this loop needs none.
#include <torch/extension.h>

#include <cmath>
#include <vector>

#include "le3d/hull.h"
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
  for (int64_t n = 0; n < N; ++n) OK[n] = hull_edges_one<16>(P + n * K * 2, K, tol, E + n * K * K);
  return {edge, ok};
}

}  // namespace le3d
