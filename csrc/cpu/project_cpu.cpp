// CPU loop of the fused Gaussian projection: one iteration per Gaussian (math in project_gaussian.h).
#include "le3d/project_api.h"

namespace le3d {

void project_forward_loop_cpu(const ProjectionArgs& a, const ProjectionOutputs& out) {
  const Camera cam = load_camera(a.viewmat, a.K, a.width, a.height, a.near, a.far);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.N; ++i)
    project_gaussian_forward(cam, a.means + 3 * i, a.quats + 4 * i, a.scales + 3 * i, a.opacities[i],
                             out.means2d + 2 * i, out.conics + 3 * i, out.depths + i, out.bounds + 4 * i,
                             out.radii + i);
}

void project_backward_loop_cpu(const ProjectionArgs& a, const ProjectionGradients& g) {
  const Camera cam = load_camera(a.viewmat, a.K, a.width, a.height, a.near, a.far);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.N; ++i)
    project_gaussian_backward(cam, a.means + 3 * i, a.quats + 4 * i, a.scales + 3 * i, g.d_means2d + g.means2d_stride * i,
                              g.d_conics + g.conics_stride * i, g.d_depths[i], g.d_means + 3 * i, g.d_quats + 4 * i,
                              g.d_scales + 3 * i, g.d_viewmat ? g.d_viewmat + kViewmatGrads * i : nullptr);
}

}  // namespace le3d
