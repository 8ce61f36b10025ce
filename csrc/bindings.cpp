// Python bindings of le3d._C: the tile rasterizer's forward and backward per backend, the fused
// Gaussian projection (one entry point per direction, any device), the convex hull and the convex
// projection (fused, and its steps; any device), the render's input value checks (any device).
#include <torch/extension.h>

#include <map>
#include <string>
#include <thread>

#include "le3d/common.h"
#include "le3d/convex_project_api.h"
#include "le3d/hull_api.h"
#include "le3d/project_api.h"
#include "le3d/rasterize_api.h"
#include "le3d/value_checks_api.h"
#include "cpu/vector_math.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {
// vexp and vlog of csrc/cpu/vector_math.h elementwise (float32 CPU tensor), for their accuracy test.
std::vector<torch::Tensor> vector_math_cpu(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32, "vector_math_cpu: float32 CPU tensor");
  auto in = x.contiguous();
  auto e = torch::empty_like(in), l = torch::empty_like(in);
  const float* src = in.data_ptr<float>();
  float* pe = e.data_ptr<float>();
  float* pl = l.data_ptr<float>();
  for (int64_t i = 0; i < in.numel(); ++i) {
    pe[i] = le3d::vexp(src[i]);
    pl[i] = le3d::vlog(src[i]);
  }
  return {e, l};
}

// Where a render's forward keeps each aux slot (common.h, AuxLayout), by name, for the scripts that read
// aux: present slots only, and "dim", the floats per pixel.
std::map<std::string, int> aux_layout(bool has_distortion, int64_t nearfar_k) {
  const le3d::AuxLayout layout(has_distortion, static_cast<int>(nearfar_k));
  std::map<std::string, int> slots{{"dim", layout.dim},
                                   {"transmittance", le3d::kAuxTransmittance},
                                   {"last_index", le3d::kAuxLastIndex},
                                   {"count", le3d::kAuxCount}};
  if (layout.distortion >= 0) {
    slots["weight_sum"] = layout.distortion + le3d::kAuxWeightSum;
    slots["coord_sum"] = layout.distortion + le3d::kAuxCoordSum;
    slots["distortion_signed"] = layout.distortion + le3d::kAuxDistortionSigned;
  }
  if (layout.nearfar >= 0) {
    slots["near_weight"] = layout.nearfar + le3d::kAuxNearWeight;
    slots["far_weight"] = layout.nearfar + le3d::kAuxFarWeight;
  }
  return slots;
}

int cpu_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "le3d compiled tile rasterizer (CPU always, CUDA when built with it)";
  m.def("rasterize_forward_cpu", &le3d::rasterize_forward_cpu);
  m.def("rasterize_backward_cpu", &le3d::rasterize_backward_cpu);
#ifdef LE3D_WITH_CUDA
  m.def("rasterize_forward_cuda", &le3d::rasterize_forward_cuda);
  m.def("rasterize_backward_cuda", &le3d::rasterize_backward_cuda);
  m.def("hull_edges_cuda", &le3d::hull_edges_cuda);
  m.def("hull_slots_cuda", &le3d::hull_slots_cuda);
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.def("project_gaussians_forward", &le3d::project_gaussians_forward);
  m.def("project_gaussians_backward", &le3d::project_gaussians_backward);
  m.def("hull_edges_cpu", &le3d::hull_edges_cpu);
  m.def("hull_slots_cpu", &le3d::hull_slots_cpu);
  m.def("convex_edges_forward", &le3d::convex_edges_forward);
  m.def("convex_edges_backward", &le3d::convex_edges_backward);
  m.def("convex_bounds", &le3d::convex_bounds);
  m.def("convex_project_forward", &le3d::convex_project_forward);
  m.def("convex_project_backward", &le3d::convex_project_backward);
  m.def("value_checks", &le3d::value_checks);
  m.def("cpu_threads", &cpu_threads);
  m.def("aux_layout", &aux_layout, py::arg("has_distortion"), py::arg("nearfar_k"));
  m.def("vector_math_cpu", &vector_math_cpu);
  m.def("footprint_pixels_cpu", &le3d::footprint_pixels_cpu);
  m.attr("tile_size") = le3d::kTileSize;
  m.attr("nearfar_max_k") = le3d::kNearFarMaxK;
  m.attr("max_channels") = le3d::kMaxChannels;
}
