// CUDA loop of the fused Gaussian projection: one thread per Gaussian (math in project_gaussian.h).
// viewmat and K are read on the device by every thread, so a render needs no host sync here.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include "le3d/project_api.h"

namespace le3d {
namespace {

constexpr int kThreads = 256;

__global__ void project_forward_kernel(int64_t N, const float* __restrict__ means, const float* __restrict__ quats,
                                       const float* __restrict__ scales, const float* __restrict__ opacities,
                                       const float* __restrict__ viewmat, const float* __restrict__ K, int width,
                                       int height, float near, float far, float* __restrict__ means2d,
                                       float* __restrict__ conics, float* __restrict__ depths,
                                       float* __restrict__ bounds, int* __restrict__ radii) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const Camera cam = load_camera(viewmat, K, width, height, near, far);
  project_gaussian_forward(cam, means + 3 * i, quats + 4 * i, scales + 3 * i, opacities[i], means2d + 2 * i,
                           conics + 3 * i, depths + i, bounds + 4 * i, radii + i);
}

__global__ void project_backward_kernel(int64_t N, const float* __restrict__ means, const float* __restrict__ quats,
                                        const float* __restrict__ scales, const float* __restrict__ viewmat,
                                        const float* __restrict__ K, int width, int height, float near, float far,
                                        const float* __restrict__ d_means2d, const float* __restrict__ d_conics,
                                        const float* __restrict__ d_depths, float* __restrict__ d_means,
                                        float* __restrict__ d_quats, float* __restrict__ d_scales,
                                        float* __restrict__ d_viewmat) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const Camera cam = load_camera(viewmat, K, width, height, near, far);
  project_gaussian_backward(cam, means + 3 * i, quats + 4 * i, scales + 3 * i, d_means2d + 2 * i, d_conics + 3 * i,
                            d_depths[i], d_means + 3 * i, d_quats + 4 * i, d_scales + 3 * i,
                            d_viewmat ? d_viewmat + kViewmatGrads * i : nullptr);
}

int blocks_for(int64_t N) { return static_cast<int>((N + kThreads - 1) / kThreads); }

}  // namespace

std::vector<torch::Tensor> project_gaussians_forward_cuda(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far) {
  check_projection_inputs({means, quats, scales, opacities, viewmat, K}, "project_gaussians_forward_cuda");
  TORCH_CHECK(means.is_cuda(), "project_gaussians_forward_cuda: CUDA tensors expected");
  const at::cuda::OptionalCUDAGuard guard(means.device());
  ProjectionOutputs out(means);
  const int64_t N = means.size(0);
  if (N > 0) {
    project_forward_kernel<<<blocks_for(N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        N, means.data_ptr<float>(), quats.data_ptr<float>(), scales.data_ptr<float>(), opacities.data_ptr<float>(),
        viewmat.data_ptr<float>(), K.data_ptr<float>(), static_cast<int>(width), static_cast<int>(height),
        static_cast<float>(near), static_cast<float>(far), out.means2d.data_ptr<float>(),
        out.conics.data_ptr<float>(), out.depths.data_ptr<float>(), out.bounds.data_ptr<float>(),
        out.radii.data_ptr<int>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return out.list();
}

std::vector<torch::Tensor> project_gaussians_backward_cuda(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad) {
  check_projection_inputs({means, quats, scales, viewmat, K, d_means2d, d_conics, d_depths},
                          "project_gaussians_backward_cuda");
  TORCH_CHECK(means.is_cuda(), "project_gaussians_backward_cuda: CUDA tensors expected");
  const at::cuda::OptionalCUDAGuard guard(means.device());
  ProjectionGrads grads(means, viewmat_grad);
  const int64_t N = means.size(0);
  if (N > 0) {
    project_backward_kernel<<<blocks_for(N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        N, means.data_ptr<float>(), quats.data_ptr<float>(), scales.data_ptr<float>(), viewmat.data_ptr<float>(),
        K.data_ptr<float>(), static_cast<int>(width), static_cast<int>(height), static_cast<float>(near),
        static_cast<float>(far), d_means2d.data_ptr<float>(), d_conics.data_ptr<float>(),
        d_depths.data_ptr<float>(), grads.d_means.data_ptr<float>(), grads.d_quats.data_ptr<float>(),
        grads.d_scales.data_ptr<float>(), viewmat_grad ? grads.d_viewmat.data_ptr<float>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return grads.list();
}

}  // namespace le3d
