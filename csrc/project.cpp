// Entry points of the fused Gaussian projection: input checks, output allocation and the choice of
// loop by the tensors' device (the loops: cpu/project_cpu.cpp, cuda/project_cuda.cu).
#include <torch/extension.h>

#include <vector>

#include "le3d/dispatch.h"
#include "le3d/project_api.h"

namespace le3d {
namespace {

ProjectionArgs make_args(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                         const float* opacities, const torch::Tensor& viewmat, const torch::Tensor& K,
                         int64_t width, int64_t height, double near, double far) {
  return ProjectionArgs{means.size(0), means.data_ptr<float>(), quats.data_ptr<float>(), scales.data_ptr<float>(),
                        opacities, viewmat.data_ptr<float>(), K.data_ptr<float>(), static_cast<int>(width),
                        static_cast<int>(height), static_cast<float>(near), static_cast<float>(far)};
}

}  // namespace

std::vector<torch::Tensor> project_gaussians_forward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far) {
  check_loop_inputs("project_gaussians_forward", means, {&means, &quats, &scales, &opacities, &viewmat, &K});
  const int64_t N = means.size(0);
  auto means2d = torch::empty({N, 2}, means.options()), conics = torch::empty({N, 3}, means.options());
  auto depths = torch::empty({N}, means.options()), bounds = torch::empty({N, 4}, means.options());
  auto radii = torch::empty({N}, means.options().dtype(torch::kInt32));
  if (N > 0) {
    const auto args = make_args(means, quats, scales, opacities.data_ptr<float>(), viewmat, K, width, height, near,
                                far);
    const ProjectionOutputs out{means2d.data_ptr<float>(), conics.data_ptr<float>(), depths.data_ptr<float>(),
                                bounds.data_ptr<float>(), radii.data_ptr<int>()};
    run_loop(means, project_forward_loop_cpu, LE3D_CUDA_LOOP(project_forward_loop_cuda), args, out);
  }
  return {means2d, conics, depths, bounds, radii};
}

std::vector<torch::Tensor> project_gaussians_backward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad) {
  const char* who = "project_gaussians_backward";
  check_loop_inputs(who, means, {&means, &quats, &scales, &viewmat, &K, &d_depths});
  const int64_t N = means.size(0);
  for (const auto* g : {&d_means2d, &d_conics}) {  // rows contiguous, any row stride
    TORCH_CHECK(g->device() == means.device() && g->scalar_type() == torch::kFloat32, who,
                ": d_means2d and d_conics: float32 on the means' device");
    TORCH_CHECK(g->dim() == 2 && g->size(0) == N && (N == 0 || g->stride(1) == 1), who,
                ": d_means2d [N, 2] and d_conics [N, 3] with contiguous rows");
  }
  TORCH_CHECK(d_means2d.size(1) == 2 && d_conics.size(1) == 3, who, ": d_means2d [N, 2], d_conics [N, 3]");
  auto d_means = torch::empty_like(means), d_quats = torch::empty_like(quats), d_scales = torch::empty_like(scales);
  auto d_viewmat = torch::empty({viewmat_grad ? N : 0, kViewmatGrads}, means.options());
  if (N > 0) {
    const auto args = make_args(means, quats, scales, nullptr, viewmat, K, width, height, near, far);
    const ProjectionGradients grads{d_means2d.data_ptr<float>(),
                                    d_conics.data_ptr<float>(),
                                    d_depths.data_ptr<float>(),
                                    d_means2d.stride(0),
                                    d_conics.stride(0),
                                    d_means.data_ptr<float>(),
                                    d_quats.data_ptr<float>(),
                                    d_scales.data_ptr<float>(),
                                    viewmat_grad ? d_viewmat.data_ptr<float>() : nullptr};
    run_loop(means, project_backward_loop_cpu, LE3D_CUDA_LOOP(project_backward_loop_cuda), args, grads);
  }
  return {d_means, d_quats, d_scales, d_viewmat};
}

}  // namespace le3d
