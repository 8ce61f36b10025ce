// CUDA loops of the convex projection's passes (le3d/convex_project_api.h): a thread per convex (or per
// edge slot), each running the per-convex function of le3d/convex_project.h that the CPU loops run.
// viewmat and K are read on the device by every thread, so these passes need no host sync.
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>

#include "le3d/convex_project.h"
#include "le3d/convex_project_api.h"

namespace le3d {
namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ int64_t convex_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }

// The edge steps run a thread per (convex, slot): index = n * S + e.
__global__ void edges_forward_kernel(const ConvexEdgesForward op) {
  const int64_t slot = convex_index();
  if (slot >= op.N * op.S) return;
  convex_edges_forward_slot(slot / op.S, static_cast<int>(slot % op.S), op.K, op.S, op.P, op.SI, op.SJ, op.ACT, op.E,
                            op.A, op.NR);
}

__global__ void edges_backward_kernel(const ConvexEdgesBackward op) {
  const int64_t slot = convex_index();
  if (slot >= op.N * op.S) return;
  convex_edges_backward_slot(slot / op.S, static_cast<int>(slot % op.S), op.K, op.S, op.P, op.SI, op.SJ, op.ACT,
                             op.G, op.D, [](float* at, float value) { atomicAdd(at, value); });
}

__global__ void bounds_kernel(const ConvexBounds op) {
  const int64_t n = convex_index();
  if (n >= op.N) return;
  convex_bound_one(n, op.K, op.S, op.A, op.NR, op.SI, op.SJ, op.ACT, op.PIX, op.O, op.SIGMA, op.SCALE, op.V, op.OK,
                   op.NE, op.width, op.height, op.margin_rel, op.margin_abs, op.miter_min, op.B, op.RADII, op.EC);
}

// The fused projection: a thread per convex runs every step (le3d/convex_project.h, end).
__global__ void project_forward_kernel(const ConvexProjectForward op) {
  const int64_t n = convex_index();
  if (n >= op.N) return;
  const PinholeCamera cam(op.viewmat, op.K);
  convex_project_forward_one(n, cam, op);
}

__global__ void project_backward_kernel(const ConvexProjectBackward op) {
  const int64_t n = convex_index();
  if (n >= op.N) return;
  const PinholeCamera cam(op.viewmat, op.K);
  convex_project_backward_one(n, cam, op);
}

// threads: one per convex, or (edge steps) one per slot
template <typename Op>
void launch(void (*kernel)(const Op), const Op& op, int64_t threads) {
  if (threads == 0) return;
  kernel<<<static_cast<int>((threads + kThreads - 1) / kThreads), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(op);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void convex_loop_cuda(const ConvexEdgesForward& op) { launch(edges_forward_kernel, op, op.N * op.S); }
void convex_loop_cuda(const ConvexEdgesBackward& op) { launch(edges_backward_kernel, op, op.N * op.S); }
void convex_loop_cuda(const ConvexBounds& op) { launch(bounds_kernel, op, op.N); }
void convex_loop_cuda(const ConvexProjectForward& op) { launch(project_forward_kernel, op, op.N); }
void convex_loop_cuda(const ConvexProjectBackward& op) { launch(project_backward_kernel, op, op.N); }

}  // namespace le3d
