// Python bindings of le3d._C: the tile rasterizer's forward and backward per backend, the fused
// Gaussian projection (one entry point per direction, any device), and the convex hull.
#include <torch/extension.h>

#include <thread>

#include "le3d/common.h"
#include "le3d/hull_api.h"
#include "le3d/project_api.h"
#include "le3d/rasterize_api.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {
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
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.def("project_gaussians_forward", &le3d::project_gaussians_forward);
  m.def("project_gaussians_backward", &le3d::project_gaussians_backward);
  m.def("hull_edges_cpu", &le3d::hull_edges_cpu);
  m.def("cpu_threads", &cpu_threads);
  m.attr("tile_size") = le3d::kTileSize;
  m.attr("nearfar_max_k") = le3d::kNearFarMaxK;
  m.attr("max_channels") = le3d::kMaxChannels;
}
