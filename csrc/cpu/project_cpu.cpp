// CPU loop of the fused Gaussian projection: one iteration per Gaussian (math in project_gaussian.h).
#include <torch/extension.h>

#include "le3d/project_api.h"

namespace le3d {

std::vector<torch::Tensor> project_gaussians_forward_cpu(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far) {
  check_projection_inputs({means, quats, scales, opacities, viewmat, K}, "project_gaussians_forward_cpu");
  TORCH_CHECK(means.device().is_cpu(), "project_gaussians_forward_cpu: CPU tensors expected");
  ProjectionOutputs out(means);
  const Camera cam = load_camera(viewmat.data_ptr<float>(), K.data_ptr<float>(), static_cast<int>(width),
                                 static_cast<int>(height), static_cast<float>(near), static_cast<float>(far));
  const float *m = means.data_ptr<float>(), *q = quats.data_ptr<float>(), *s = scales.data_ptr<float>();
  const float* o = opacities.data_ptr<float>();
  float *m2 = out.means2d.data_ptr<float>(), *con = out.conics.data_ptr<float>();
  float *dep = out.depths.data_ptr<float>(), *bnd = out.bounds.data_ptr<float>();
  int* rad = out.radii.data_ptr<int>();
  const int64_t N = means.size(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i)
    project_gaussian_forward(cam, m + 3 * i, q + 4 * i, s + 3 * i, o[i], m2 + 2 * i, con + 3 * i, dep + i,
                             bnd + 4 * i, rad + i);
  return out.list();
}

std::vector<torch::Tensor> project_gaussians_backward_cpu(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad) {
  check_projection_inputs({means, quats, scales, viewmat, K, d_means2d, d_conics, d_depths},
                          "project_gaussians_backward_cpu");
  TORCH_CHECK(means.device().is_cpu(), "project_gaussians_backward_cpu: CPU tensors expected");
  ProjectionGrads grads(means, viewmat_grad);
  const Camera cam = load_camera(viewmat.data_ptr<float>(), K.data_ptr<float>(), static_cast<int>(width),
                                 static_cast<int>(height), static_cast<float>(near), static_cast<float>(far));
  const float *m = means.data_ptr<float>(), *q = quats.data_ptr<float>(), *s = scales.data_ptr<float>();
  const float *gm2 = d_means2d.data_ptr<float>(), *gcon = d_conics.data_ptr<float>();
  const float* gdep = d_depths.data_ptr<float>();
  float *dm = grads.d_means.data_ptr<float>(), *dq = grads.d_quats.data_ptr<float>();
  float* ds = grads.d_scales.data_ptr<float>();
  float* dv = viewmat_grad ? grads.d_viewmat.data_ptr<float>() : nullptr;
  const int64_t N = means.size(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i)
    project_gaussian_backward(cam, m + 3 * i, q + 4 * i, s + 3 * i, gm2 + 2 * i, gcon + 3 * i, gdep[i], dm + 3 * i,
                              dq + 4 * i, ds + 3 * i, dv ? dv + kViewmatGrads * i : nullptr);
  return grads.list();
}

}  // namespace le3d
