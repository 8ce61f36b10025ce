// 2D convex-hull edges of each convex's projected points, as an edge matrix or as parameter slots
// (CPU loops over le3d/hull.h, which takes the same decisions as
// convex_splat.projection.hull_edges_torch). The torch version builds [N, K, K, K] temporaries (about
// 0.4 s for 200k convexes on two cores); these loops need none.
#include <torch/extension.h>

#include <cmath>
#include <vector>

#include "le3d/hull.h"
#include "le3d/hull_api.h"

namespace le3d {

namespace {

// The centred points [N, K <= 16, 2] as a contiguous CPU float64 tensor, or a clear error.
torch::Tensor checked_points(const torch::Tensor& centred, const char* who) {
  TORCH_CHECK(centred.device().is_cpu() && centred.scalar_type() == torch::kFloat64 && centred.dim() == 3 &&
                  centred.size(2) == 2 && centred.size(1) <= 16,
              who, ": points must be a CPU float64 tensor [N, K <= 16, 2] (centred per convex)");
  return centred.contiguous();
}

template <typename Pixel>
void slots_loop(const Pixel* P, int64_t N, int K, double tol, int S, int64_t* SI, int64_t* SJ, int64_t* NE, bool* OK) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) OK[n] = hull_slots_one<16>(P + n * K * 2, K, tol, S, SI + n * S, SJ + n * S, NE + n);
}

}  // namespace

std::vector<torch::Tensor> hull_edges_cpu(const torch::Tensor& centred, double tol) {
  const auto p = checked_points(centred, "hull_edges_cpu");
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  auto edge = torch::zeros({N, K, K}, torch::kBool);
  auto ok = torch::zeros({N}, torch::kBool);
  const double* P = p.data_ptr<double>();
  bool* E = edge.data_ptr<bool>();
  bool* OK = ok.data_ptr<bool>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) OK[n] = hull_edges_one<16>(P + n * K * 2, K, tol, E + n * K * K);
  return {edge, ok};
}

// The same decisions as parameter slots (see hull_api.h and hull_slots_one in hull.h, which centres
// the pixels in double itself); the twin is hull_slots_torch.
std::vector<torch::Tensor> hull_slots_cpu(const torch::Tensor& pix, double tol, int64_t slots) {
  TORCH_CHECK(pix.device().is_cpu() && (pix.scalar_type() == torch::kFloat32 || pix.scalar_type() == torch::kFloat64) &&
                  pix.dim() == 3 && pix.size(2) == 2 && pix.size(1) <= 16,
              "hull_slots_cpu: pixels must be a CPU float32/float64 tensor [N, K <= 16, 2]");
  const auto p = pix.contiguous();  // float32 or float64: hull_slots_one centres them in double itself
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  TORCH_CHECK(slots >= K, "hull_slots_cpu: slots must be >= the points per convex");
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto slot_i = torch::empty({N, slots}, opts), slot_j = torch::empty({N, slots}, opts);
  auto n_edges = torch::empty({N}, opts);
  auto ok = torch::empty({N}, torch::kBool);
  int64_t* SI = slot_i.data_ptr<int64_t>();
  int64_t* SJ = slot_j.data_ptr<int64_t>();
  int64_t* NE = n_edges.data_ptr<int64_t>();
  bool* OK = ok.data_ptr<bool>();
  const int S = static_cast<int>(slots);
  if (p.scalar_type() == torch::kFloat32)
    slots_loop(p.data_ptr<float>(), N, K, tol, S, SI, SJ, NE, OK);
  else
    slots_loop(p.data_ptr<double>(), N, K, tol, S, SI, SJ, NE, OK);
  return {slot_i, slot_j, n_edges, ok};
}

}  // namespace le3d
