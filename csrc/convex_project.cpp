// Entry points of the convex projection's compiled passes (le3d/convex_project_api.h): input checks,
// output allocation and the loop for the tensors' device (cpu/convex_project_cpu.cpp or
// cuda/convex_project_cuda.cu, both over le3d/convex_project.h). Twins: convex_splat/projection.py.
#include <torch/extension.h>

#include <vector>

#include "le3d/convex_project.h"
#include "le3d/convex_project_api.h"
#include "le3d/dispatch.h"

namespace le3d {
namespace {

// Runs the loop of step `op` (convex_loop_cpu / convex_loop_cuda, overloaded by the op's type).
template <typename Op>
void run(const torch::Tensor& like, const Op& op) {
  run_loop<const Op&>(like, convex_loop_cpu, LE3D_CUDA_LOOP(convex_loop_cuda), op);
}

// The fused projection's points [N, 3..8, 3] and camera, on one device.
void check_points_and_camera(const char* who, const torch::Tensor& points, const torch::Tensor& viewmat,
                             const torch::Tensor& K) {
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 3 && points.size(1) >= 3 && points.size(1) <= kConvexMaxPoints,
              who, ": points must be [N, K, 3] with 3 to 8 points per convex");
  TORCH_CHECK(viewmat.dim() == 2 && viewmat.size(0) == 4 && viewmat.size(1) == 4, who, ": viewmat must be [4, 4]");
  TORCH_CHECK(K.dim() == 2 && K.size(0) == 3 && K.size(1) == 3, who, ": K must be [3, 3]");
  check_loop_inputs(who, points, {&points, &viewmat, &K});
}

void check_slots(const char* who, const torch::Tensor& like, const torch::Tensor& slot_i,
                 const torch::Tensor& slot_j, const torch::Tensor& active) {
  TORCH_CHECK(slot_i.scalar_type() == torch::kInt64 && slot_j.scalar_type() == torch::kInt64 &&
                  active.scalar_type() == torch::kBool && active.dim() == 2 && active.size(0) == like.size(0) &&
                  slot_i.sizes() == active.sizes() && slot_j.sizes() == active.sizes(),
              who, ": slot_i, slot_j [N, S] int64 and active [N, S] bool");
  check_loop_inputs(who, like, {&slot_i, &slot_j, &active});
}

}  // namespace

std::vector<torch::Tensor> convex_edges_forward(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                                const torch::Tensor& slot_j, const torch::Tensor& active) {
  const char* who = "convex_edges_forward";
  TORCH_CHECK(pix.dim() == 3 && pix.size(2) == 2, who, ": pix must be [N, K, 2]");
  check_loop_inputs(who, pix, {&pix});
  check_slots(who, pix, slot_i, slot_j, active);
  const int64_t N = pix.size(0), S = slot_i.size(1);
  auto edges = torch::empty({N, S, 3}, pix.options());
  auto start = torch::empty({N, S, 2}, pix.options()), normal = torch::empty({N, S, 2}, pix.options());
  run(pix, ConvexEdgesForward{N, static_cast<int>(pix.size(1)), static_cast<int>(S), pix.data_ptr<float>(),
                              slot_i.data_ptr<int64_t>(), slot_j.data_ptr<int64_t>(), active.data_ptr<bool>(),
                              edges.data_ptr<float>(), start.data_ptr<float>(), normal.data_ptr<float>()});
  return {edges, start, normal};
}

torch::Tensor convex_edges_backward(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                    const torch::Tensor& slot_j, const torch::Tensor& active,
                                    const torch::Tensor& d_edges) {
  const char* who = "convex_edges_backward";
  TORCH_CHECK(pix.dim() == 3 && pix.size(2) == 2, who, ": pix must be [N, K, 2]");
  check_slots(who, pix, slot_i, slot_j, active);
  TORCH_CHECK(d_edges.dim() == 3 && d_edges.size(0) == pix.size(0) && d_edges.size(1) == slot_i.size(1) &&
                  d_edges.size(2) == 3,
              who, ": d_edges must be [N, S, 3]");
  check_loop_inputs(who, pix, {&pix, &d_edges});
  const int64_t N = pix.size(0), S = slot_i.size(1);
  auto d_pix = torch::zeros_like(pix);
  run(pix, ConvexEdgesBackward{N, static_cast<int>(pix.size(1)), static_cast<int>(S), pix.data_ptr<float>(),
                               slot_i.data_ptr<int64_t>(), slot_j.data_ptr<int64_t>(), active.data_ptr<bool>(),
                               d_edges.data_ptr<float>(), d_pix.data_ptr<float>()});
  return d_pix;
}

std::vector<torch::Tensor> convex_bounds(const torch::Tensor& start, const torch::Tensor& normal,
                                         const torch::Tensor& slot_i, const torch::Tensor& slot_j,
                                         const torch::Tensor& active, const torch::Tensor& pix,
                                         const torch::Tensor& opacities, const torch::Tensor& sigma,
                                         const torch::Tensor& scale, const torch::Tensor& valid,
                                         const torch::Tensor& hull_ok, const torch::Tensor& n_edges, int64_t width,
                                         int64_t height, double margin_rel, double margin_abs, double miter_min) {
  const char* who = "convex_bounds";
  const int64_t N = start.size(0);
  TORCH_CHECK(start.dim() == 3 && start.size(2) == 2 && start.size(1) <= kConvexMaxPoints, who,
              ": start must be [N, S <= 8, 2]");
  TORCH_CHECK(normal.sizes() == start.sizes() && pix.dim() == 3 && pix.size(0) == N && pix.size(2) == 2, who,
              ": normal like start, pix [N, K, 2]");
  for (const auto* t : {&opacities, &sigma, &scale, &valid, &hull_ok, &n_edges})
    TORCH_CHECK(t->dim() == 1 && t->size(0) == N, who, ": opacities, sigma, scale, valid, hull_ok, n_edges: [N]");
  TORCH_CHECK(valid.scalar_type() == torch::kBool && hull_ok.scalar_type() == torch::kBool &&
                  n_edges.scalar_type() == torch::kInt64,
              who, ": valid and hull_ok bool, n_edges int64");
  check_loop_inputs(who, start, {&start, &normal, &pix, &opacities, &sigma, &scale, &valid, &hull_ok, &n_edges});
  check_slots(who, start, slot_i, slot_j, active);
  auto bounds = torch::empty({N, 4}, start.options());
  auto radii = torch::empty({N}, start.options().dtype(torch::kInt32));
  auto edge_count = torch::empty({N}, start.options());
  run(start, ConvexBounds{N, static_cast<int>(pix.size(1)), static_cast<int>(start.size(1)), start.data_ptr<float>(),
                          normal.data_ptr<float>(), slot_i.data_ptr<int64_t>(), slot_j.data_ptr<int64_t>(),
                          active.data_ptr<bool>(), pix.data_ptr<float>(), opacities.data_ptr<float>(),
                          sigma.data_ptr<float>(), scale.data_ptr<float>(), valid.data_ptr<bool>(),
                          hull_ok.data_ptr<bool>(), n_edges.data_ptr<int64_t>(), static_cast<int>(width),
                          static_cast<int>(height), static_cast<float>(margin_rel), static_cast<float>(margin_abs),
                          static_cast<float>(miter_min), bounds.data_ptr<float>(), radii.data_ptr<int>(),
                          edge_count.data_ptr<float>()});
  return {bounds, radii, edge_count};
}

std::vector<torch::Tensor> convex_project_forward(const torch::Tensor& points, const torch::Tensor& delta,
                                                  const torch::Tensor& sigma, const torch::Tensor& opacities,
                                                  const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
                                                  int64_t height, double near, double far, double tol,
                                                  double margin_rel, double margin_abs, double miter_min) {
  const char* who = "convex_project_forward";
  check_points_and_camera(who, points, viewmat, K);
  const int64_t N = points.size(0);
  const int P = static_cast<int>(points.size(1));
  for (const auto* t : {&delta, &sigma, &opacities})
    TORCH_CHECK(t->dim() == 1 && t->size(0) == N, who, ": delta, sigma and opacities must be [N]");
  check_loop_inputs(who, points, {&delta, &sigma, &opacities});
  const auto opts = points.options();
  auto params = torch::empty({N, ConvexFootprint::kParams}, opts);
  auto means2d = torch::empty({N, 2}, opts), depths = torch::empty({N}, opts), bounds = torch::empty({N, 4}, opts);
  auto radii = torch::empty({N}, opts.dtype(torch::kInt32));
  auto hull = torch::empty({N}, opts.dtype(torch::kInt64));
  if (N > 0)
    run(points, ConvexProjectForward{N, P, points.data_ptr<float>(), delta.data_ptr<float>(), sigma.data_ptr<float>(),
                                     opacities.data_ptr<float>(), viewmat.data_ptr<float>(), K.data_ptr<float>(),
                                     static_cast<int>(width), static_cast<int>(height), static_cast<float>(near),
                                     static_cast<float>(far), tol, static_cast<float>(margin_rel),
                                     static_cast<float>(margin_abs), static_cast<float>(miter_min),
                                     params.data_ptr<float>(), means2d.data_ptr<float>(), depths.data_ptr<float>(),
                                     bounds.data_ptr<float>(), radii.data_ptr<int>(), hull.data_ptr<int64_t>()});
  return {params, means2d, depths, bounds, radii, hull};
}

std::vector<torch::Tensor> convex_project_backward(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                   const torch::Tensor& K, const torch::Tensor& hull, double near,
                                                   double far, const torch::Tensor& d_params,
                                                   const torch::Tensor& d_means2d, const torch::Tensor& d_depths,
                                                   bool viewmat_grad, bool tap_grad) {
  const char* who = "convex_project_backward";
  check_points_and_camera(who, points, viewmat, K);
  const int64_t N = points.size(0);
  const int P = static_cast<int>(points.size(1));
  TORCH_CHECK(hull.dim() == 1 && hull.size(0) == N && hull.scalar_type() == torch::kInt64, who,
              ": hull must be the forward's [N] int64");
  TORCH_CHECK(d_params.dim() == 2 && d_params.size(0) == N && d_params.size(1) == ConvexFootprint::kParams &&
                  (N == 0 || d_params.stride(1) == 1) && d_params.device() == points.device() &&
                  d_params.scalar_type() == torch::kFloat32,
              who, ": d_params must be float32 [N, 29] with contiguous rows, on the points' device");
  const bool has_means2d = d_means2d.numel() > 0;
  TORCH_CHECK(!has_means2d || (d_means2d.dim() == 2 && d_means2d.size(0) == N && d_means2d.size(1) == 2), who,
              ": d_means2d must be [N, 2] or empty");
  TORCH_CHECK(d_depths.dim() == 1 && d_depths.size(0) == N, who, ": d_depths must be [N]");
  check_loop_inputs(who, points, {&hull, &d_means2d, &d_depths});
  auto d_points = torch::empty_like(points);
  auto d_delta = torch::empty({N}, points.options()), d_sigma = torch::empty({N}, points.options());
  auto d_opacities = torch::empty({N}, points.options());
  auto d_view = torch::empty({viewmat_grad ? N : 0, 12}, points.options());
  auto d_tap = torch::empty({tap_grad ? N : 0, 2}, points.options());
  if (N > 0)
    run(points, ConvexProjectBackward{N, P, points.data_ptr<float>(), viewmat.data_ptr<float>(), K.data_ptr<float>(),
                                      static_cast<float>(near), static_cast<float>(far), hull.data_ptr<int64_t>(),
                                      d_params.data_ptr<float>(), d_params.stride(0),
                                      has_means2d ? d_means2d.data_ptr<float>() : nullptr, d_depths.data_ptr<float>(),
                                      d_points.data_ptr<float>(), d_delta.data_ptr<float>(), d_sigma.data_ptr<float>(),
                                      d_opacities.data_ptr<float>(), viewmat_grad ? d_view.data_ptr<float>() : nullptr,
                                      tap_grad ? d_tap.data_ptr<float>() : nullptr});
  return {d_points, d_delta, d_sigma, d_opacities, d_view, d_tap};
}

}  // namespace le3d
