// Entry points of the fused Gaussian projection: input checks, output allocation and the choice of
// loop by the tensors' device (the loops: cpu/project_cpu.cpp, cuda/project_cuda.cu).
#include <torch/extension.h>

#include <type_traits>
#include <vector>

#include "le3d/project_api.h"
#ifdef LE3D_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace le3d {
namespace {

void check_inputs(const std::vector<torch::Tensor>& ts, const char* who) {
  const auto device = ts[0].device();
  for (const auto& t : ts) {
    TORCH_CHECK(t.device() == device, who, ": tensors must share one device");
    TORCH_CHECK(t.scalar_type() == torch::kFloat32, who, ": tensors must be float32");
    TORCH_CHECK(t.is_contiguous(), who, ": tensors must be contiguous");
  }
#ifndef LE3D_WITH_CUDA
  TORCH_CHECK(!ts[0].is_cuda(), who, ": this build of le3d has no CUDA backend");
#endif
}

ProjectionArgs make_args(const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
                         const float* opacities, const torch::Tensor& viewmat, const torch::Tensor& K,
                         int64_t width, int64_t height, double near, double far) {
  return ProjectionArgs{means.size(0), means.data_ptr<float>(), quats.data_ptr<float>(), scales.data_ptr<float>(),
                        opacities, viewmat.data_ptr<float>(), K.data_ptr<float>(), static_cast<int>(width),
                        static_cast<int>(height), static_cast<float>(near), static_cast<float>(far)};
}

// Runs the loop for the tensors' device: `cpu` on the CPU, `cuda` (nullptr in builds without CUDA,
// which check_inputs has already refused CUDA tensors for) on a GPU, under that GPU's guard.
template <typename Data>
using Loop = void (*)(const ProjectionArgs&, const Data&);
// Data is deduced from `data` alone (a null `cuda` pointer must not take part; C++17's stand-in for
// std::type_identity_t: torch 2.11 builds extensions as C++17).
template <typename T>
struct NotDeduced {
  using type = T;
};

template <typename Data>
void run_loop(const torch::Tensor& like, const ProjectionArgs& args, const Data& data, Loop<Data> cpu,
              typename NotDeduced<Loop<Data>>::type cuda) {
  if (!like.is_cuda()) return cpu(args, data);
#ifdef LE3D_WITH_CUDA
  const at::cuda::OptionalCUDAGuard guard(like.device());
  cuda(args, data);
#endif
}

#ifdef LE3D_WITH_CUDA
#define LE3D_CUDA_LOOP(loop) loop
#else
#define LE3D_CUDA_LOOP(loop) nullptr
#endif

}  // namespace

std::vector<torch::Tensor> project_gaussians_forward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far) {
  check_inputs({means, quats, scales, opacities, viewmat, K}, "project_gaussians_forward");
  const int64_t N = means.size(0);
  auto means2d = torch::empty({N, 2}, means.options()), conics = torch::empty({N, 3}, means.options());
  auto depths = torch::empty({N}, means.options()), bounds = torch::empty({N, 4}, means.options());
  auto radii = torch::empty({N}, means.options().dtype(torch::kInt32));
  if (N > 0) {
    const auto args = make_args(means, quats, scales, opacities.data_ptr<float>(), viewmat, K, width, height, near,
                                far);
    const ProjectionOutputs out{means2d.data_ptr<float>(), conics.data_ptr<float>(), depths.data_ptr<float>(),
                                bounds.data_ptr<float>(), radii.data_ptr<int>()};
    run_loop(means, args, out, project_forward_loop_cpu, LE3D_CUDA_LOOP(project_forward_loop_cuda));
  }
  return {means2d, conics, depths, bounds, radii};
}

std::vector<torch::Tensor> project_gaussians_backward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad) {
  check_inputs({means, quats, scales, viewmat, K, d_means2d, d_conics, d_depths}, "project_gaussians_backward");
  const int64_t N = means.size(0);
  auto d_means = torch::empty_like(means), d_quats = torch::empty_like(quats), d_scales = torch::empty_like(scales);
  auto d_viewmat = torch::empty({viewmat_grad ? N : 0, kViewmatGrads}, means.options());
  if (N > 0) {
    const auto args = make_args(means, quats, scales, nullptr, viewmat, K, width, height, near, far);
    const ProjectionGradients grads{d_means2d.data_ptr<float>(), d_conics.data_ptr<float>(),
                                    d_depths.data_ptr<float>(),  d_means.data_ptr<float>(),
                                    d_quats.data_ptr<float>(),   d_scales.data_ptr<float>(),
                                    viewmat_grad ? d_viewmat.data_ptr<float>() : nullptr};
    run_loop(means, args, grads, project_backward_loop_cpu, LE3D_CUDA_LOOP(project_backward_loop_cuda));
  }
  return {d_means, d_quats, d_scales, d_viewmat};
}

}  // namespace le3d
