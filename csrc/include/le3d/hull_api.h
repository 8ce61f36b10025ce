// Compiled loops of convex_splat's projection: the convex hull of the projected points (CPU and CUDA,
// over le3d/hull.h), and on the CPU the points to pixels, the hull's parameter slots, the edges as
// footprint parameters and the screen bound. Each has a torch twin in convex_splat/projection.py.
#pragma once
#include <torch/extension.h>

#include <vector>

namespace le3d {

// centred [N, K, 2] float64 (each convex's points minus their mean), tol in pixels
// -> {edge [N, K, K] bool (i -> j is a hull edge), ok [N] bool (the edges form one cycle of >= 3)}.
std::vector<torch::Tensor> hull_edges_cpu(const torch::Tensor& centred, double tol);

// The same decisions as parameter slots, from pixels [N, K, 2] float32 or float64 (centred inside as
// above): {slot_i, slot_j [N, slots] int64 (slot e holds the hull edge
// slot_i -> slot_j; hull vertices first in index order, then the other points, then zeros), n_edges [N]
// int64, ok [N] bool} (twin: convex_splat.projection.hull_slots_torch).
std::vector<torch::Tensor> hull_slots_cpu(const torch::Tensor& pix, double tol, int64_t slots);

// The convex screen bound: start [N, S, 2] (each slot's first point, pixels), normal [N, S, 2] (its
// edge's unit outward normal), slot_i / slot_j [N, S], active [N, S], grow [N] (pixels each edge is
// pushed out) -> {bounds [N, 4]} (twin: convex_splat.projection.screen_bounds_torch).
std::vector<torch::Tensor> convex_screen_bounds_cpu(const torch::Tensor& start, const torch::Tensor& normal,
                                                    const torch::Tensor& slot_i, const torch::Tensor& slot_j,
                                                    const torch::Tensor& active, const torch::Tensor& grow,
                                                    double margin_rel, double margin_abs, double miter_min);

// Hull edges as footprint parameters: pix [N, K, 2] float32, slot_i / slot_j / active [N, S] ->
// {edges [N, S, 3] (unit outward normal and offset; zero where inactive), start [N, S, 2] (each edge's
// first point), normal [N, S, 2]}; the backward maps d_edges [N, S, 3] to d_pix [N, K, 2]
// (twin: convex_splat.projection.edge_params_torch).
std::vector<torch::Tensor> convex_edges_forward_cpu(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                                    const torch::Tensor& slot_j, const torch::Tensor& active);
torch::Tensor convex_edges_backward_cpu(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                        const torch::Tensor& slot_j, const torch::Tensor& active,
                                        const torch::Tensor& d_edges);

// Points to camera and pixels: points [N, K, 3] float32, viewmat [4, 4], K [3, 3] -> {pix [N, K, 2],
// depth [N] (view z of the centroid), means2d [N, 2] (the centroid's projection), scale [N] (pixels to
// world units at that depth), valid [N] bool (every point beyond near, the centroid before far); culled
// convexes are projected with depth 1}. The backward maps d_pix, d_depth, d_means2d, d_scale to
// {d_points [N, K, 3], d_viewmat shares [N, 12] (R row-major, then t; empty unless viewmat_grad),
// d_tap [N, 2] = sum_k d_pix (a screen translation of each convex's points; empty unless tap_grad)}
// (twin: convex_splat.projection.project_points_torch).
std::vector<torch::Tensor> convex_points_forward_cpu(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                     const torch::Tensor& K, double near, double far);
std::vector<torch::Tensor> convex_points_backward_cpu(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                      const torch::Tensor& K, const torch::Tensor& valid,
                                                      const torch::Tensor& d_pix, const torch::Tensor& d_depth,
                                                      const torch::Tensor& d_means2d, const torch::Tensor& d_scale,
                                                      bool viewmat_grad, bool tap_grad);

#ifdef LE3D_WITH_CUDA
// The same on CUDA tensors (K <= 8).
std::vector<torch::Tensor> hull_edges_cuda(const torch::Tensor& centred, double tol);
#endif

}  // namespace le3d
