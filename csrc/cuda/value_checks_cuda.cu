// CUDA kernel of the render's input value checks (le3d/value_checks.h): one launch for every check
// of a render, blockIdx.y picks the check and the blocks stride over its units.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "le3d/value_checks_api.h"

namespace le3d {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void value_checks_kernel(const ValueChecksArgs args, int* __restrict__ failed) {
  const ValueCheck& check = args.checks[blockIdx.y];
  const T* x = static_cast<const T*>(check.data);
  bool ok = true;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < check.units;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    ok &= value_unit_ok(x, i, check.kind, check.row);
  if (!ok) failed[blockIdx.y] = 1;  // every writer stores the same value
}

}  // namespace

void value_checks_cuda(const ValueChecksArgs& args, bool is_double, int* failed) {
  int64_t most = 1;
  for (int c = 0; c < args.count; ++c) most = std::max(most, args.checks[c].units);
  // a few units per thread; enough blocks to fill a large GPU on 1M-element tensors
  const int blocks = static_cast<int>(std::min<int64_t>((most + 4 * kThreads - 1) / (4 * kThreads), 1024));
  const dim3 grid(blocks, args.count);
  auto stream = at::cuda::getCurrentCUDAStream();
  if (is_double)
    value_checks_kernel<double><<<grid, kThreads, 0, stream>>>(args, failed);
  else
    value_checks_kernel<float><<<grid, kThreads, 0, stream>>>(args, failed);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace le3d
