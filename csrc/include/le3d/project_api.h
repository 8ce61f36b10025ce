// Entry points of the fused Gaussian projection (math in project_gaussian.h), one per device.
// Inputs (float32, contiguous, one device): means [N,3], quats [N,4], scales [N,3], opacities [N],
// viewmat [4,4], K [3,3].
// forward -> {means2d [N,2], conics [N,3], depths [N], bounds [N,4], radii [N] int32}
// backward(..., d_means2d, d_conics, d_depths, viewmat_grad) -> {d_means, d_quats, d_scales,
//   d_viewmat [N,12] per-Gaussian shares (empty unless viewmat_grad)}
#pragma once
#include <torch/extension.h>

#include <vector>

#include "le3d/project_gaussian.h"

namespace le3d {

// Shape/dtype/device checks and output allocation shared by the CPU and CUDA entry points.
inline void check_projection_inputs(const std::vector<torch::Tensor>& ts, const char* who) {
  const auto device = ts[0].device();
  for (const auto& t : ts) {
    TORCH_CHECK(t.device() == device, who, ": tensors must share one device");
    TORCH_CHECK(t.scalar_type() == torch::kFloat32, who, ": tensors must be float32");
    TORCH_CHECK(t.is_contiguous(), who, ": tensors must be contiguous");
  }
}

struct ProjectionOutputs {
  torch::Tensor means2d, conics, depths, bounds, radii;
  explicit ProjectionOutputs(const torch::Tensor& means)
      : means2d(torch::empty({means.size(0), 2}, means.options())),
        conics(torch::empty({means.size(0), 3}, means.options())),
        depths(torch::empty({means.size(0)}, means.options())),
        bounds(torch::empty({means.size(0), 4}, means.options())),
        radii(torch::empty({means.size(0)}, means.options().dtype(torch::kInt32))) {}
  std::vector<torch::Tensor> list() const { return {means2d, conics, depths, bounds, radii}; }
};

struct ProjectionGrads {
  torch::Tensor d_means, d_quats, d_scales, d_viewmat;
  ProjectionGrads(const torch::Tensor& means, bool viewmat_grad)
      : d_means(torch::empty_like(means)), d_quats(torch::empty({means.size(0), 4}, means.options())),
        d_scales(torch::empty_like(means)),
        d_viewmat(torch::empty({viewmat_grad ? means.size(0) : 0, kViewmatGrads}, means.options())) {}
  std::vector<torch::Tensor> list() const { return {d_means, d_quats, d_scales, d_viewmat}; }
};

std::vector<torch::Tensor> project_gaussians_forward_cpu(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far);

std::vector<torch::Tensor> project_gaussians_backward_cpu(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad);

#ifdef LE3D_WITH_CUDA
std::vector<torch::Tensor> project_gaussians_forward_cuda(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far);

std::vector<torch::Tensor> project_gaussians_backward_cuda(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad);
#endif

}  // namespace le3d
