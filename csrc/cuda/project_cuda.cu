// CUDA loop of the fused Gaussian projection: one thread per Gaussian (math in project_gaussian.h).
// viewmat and K are read on the device by every thread, so a render needs no host sync here.
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>

#include "le3d/project_api.h"

namespace le3d {
namespace {

constexpr int kThreads = 256;

__global__ void project_forward_kernel(const ProjectionArgs a, const ProjectionOutputs out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.N) return;
  const Camera cam = load_camera(a.viewmat, a.K, a.width, a.height, a.near, a.far);
  project_gaussian_forward(cam, a.means + 3 * i, a.quats + 4 * i, a.scales + 3 * i, a.opacities[i],
                           out.means2d + 2 * i, out.conics + 3 * i, out.depths + i, out.bounds + 4 * i,
                           out.radii + i);
}

__global__ void project_backward_kernel(const ProjectionArgs a, const ProjectionGradients g) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.N) return;
  const Camera cam = load_camera(a.viewmat, a.K, a.width, a.height, a.near, a.far);
  project_gaussian_backward(cam, a.means + 3 * i, a.quats + 4 * i, a.scales + 3 * i, g.d_means2d + g.means2d_stride * i,
                            g.d_conics + g.conics_stride * i, g.d_depths[i], g.d_means + 3 * i, g.d_quats + 4 * i,
                            g.d_scales + 3 * i, g.d_viewmat ? g.d_viewmat + kViewmatGrads * i : nullptr);
}

int blocks_for(int64_t N) { return static_cast<int>((N + kThreads - 1) / kThreads); }

}  // namespace

void project_forward_loop_cuda(const ProjectionArgs& args, const ProjectionOutputs& out) {
  project_forward_kernel<<<blocks_for(args.N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args, out);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void project_backward_loop_cuda(const ProjectionArgs& args, const ProjectionGradients& grads) {
  project_backward_kernel<<<blocks_for(args.N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args, grads);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace le3d
