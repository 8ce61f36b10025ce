// CUDA loops of the convex-hull search (le3d/hull.h): one thread per convex. Replace the torch
// twin's [N, K, K, K] temporaries on the GPU, and (hull_slots_cuda) the centring, argsort and gathers
// that turn an edge matrix into parameter slots (a 0.58 ms sort of a 200k-convex step on an H200).
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

template <typename Pixel>
__global__ void hull_slots_kernel(int64_t N, int K, double tol, int slots, const Pixel* __restrict__ pixels,
                                  int64_t* __restrict__ slot_i, int64_t* __restrict__ slot_j,
                                  int64_t* __restrict__ n_edges, bool* __restrict__ ok) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  ok[n] = hull_slots_one<kHullMaxPointsCuda>(pixels + n * K * 2, K, tol, slots, slot_i + n * slots,
                                             slot_j + n * slots, n_edges + n);
}

}  // namespace

std::vector<torch::Tensor> hull_slots_cuda(const torch::Tensor& pix, double tol, int64_t slots) {
  TORCH_CHECK(pix.is_cuda() && (pix.scalar_type() == torch::kFloat32 || pix.scalar_type() == torch::kFloat64) &&
                  pix.dim() == 3 && pix.size(2) == 2,
              "hull_slots_cuda: pixels must be a CUDA float32/float64 tensor [N, K, 2]");
  const at::cuda::OptionalCUDAGuard guard(pix.device());
  const auto p = pix.contiguous();  // float32 or float64: hull_slots_one centres them in double itself
  const int64_t N = p.size(0);
  const int K = static_cast<int>(p.size(1));
  TORCH_CHECK(K <= kHullMaxPointsCuda, "hull_slots_cuda: at most 8 points per convex");
  TORCH_CHECK(slots >= K, "hull_slots_cuda: slots must be >= the points per convex");
  auto index_opts = p.options().dtype(torch::kInt64);
  auto slot_i = torch::empty({N, slots}, index_opts), slot_j = torch::empty({N, slots}, index_opts);
  auto n_edges = torch::empty({N}, index_opts);
  auto ok = torch::empty({N}, p.options().dtype(torch::kBool));
  if (N > 0) {
    const dim3 grid(static_cast<unsigned>((N + 127) / 128)), block(128);
    const auto stream = at::cuda::getCurrentCUDAStream();
    if (p.scalar_type() == torch::kFloat32)
      hull_slots_kernel<<<grid, block, 0, stream>>>(N, K, tol, static_cast<int>(slots), p.data_ptr<float>(),
                                                   slot_i.data_ptr<int64_t>(), slot_j.data_ptr<int64_t>(),
                                                   n_edges.data_ptr<int64_t>(), ok.data_ptr<bool>());
    else
      hull_slots_kernel<<<grid, block, 0, stream>>>(N, K, tol, static_cast<int>(slots), p.data_ptr<double>(),
                                                   slot_i.data_ptr<int64_t>(), slot_j.data_ptr<int64_t>(),
                                                   n_edges.data_ptr<int64_t>(), ok.data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {slot_i, slot_j, n_edges, ok};
}

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
