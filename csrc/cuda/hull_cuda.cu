// CUDA loop of the convex-hull edge search (le3d/hull.h): one thread per convex. Replaces the torch
// twin's [N, K, K, K] temporaries on the GPU.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include "le3d/hull.h"
#include "le3d/hull_api.h"

namespace le3d {
namespace {

constexpr int kHullMaxPointsCuda = 8;  // convexes have 3..8 points; keeps the per-thread arrays small

__global__ void hull_edges_kernel(int64_t N, int K, double tol, const double* __restrict__ points,
                                  bool* __restrict__ edge, bool* __restrict__ ok) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  ok[n] = hull_edges_one<kHullMaxPointsCuda>(points + n * K * 2, K, tol, edge + n * K * K);
}

}  // namespace

std::vector<torch::Tensor> hull_edges_cuda(const torch::Tensor& centred, double tol) {
  TORCH_CHECK(centred.is_cuda() && centred.scalar_type() == torch::kFloat64 && centred.dim() == 3 &&
                  centred.size(2) == 2,
              "hull_edges_cuda: points must be a CUDA float64 tensor [N, K, 2] (centred per convex)");
  const at::cuda::OptionalCUDAGuard guard(centred.device());
  const auto p = centred.contiguous();
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  TORCH_CHECK(K <= kHullMaxPointsCuda, "hull_edges_cuda: at most 8 points per convex");
  auto edge = torch::zeros({N, K, K}, p.options().dtype(torch::kBool));
  auto ok = torch::zeros({N}, p.options().dtype(torch::kBool));
  if (N > 0) {
    hull_edges_kernel<<<static_cast<int>((N + 127) / 128), 128, 0, at::cuda::getCurrentCUDAStream()>>>(
        N, K, tol, p.data_ptr<double>(), edge.data_ptr<bool>(), ok.data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {edge, ok};
}

}  // namespace le3d
