// Compiled loops of the convex hull of each convex's projected points (CPU and CUDA, over
// le3d/hull.h). Each has a torch twin in convex_splat/projection.py. (The projection's other steps:
// le3d/convex_project_api.h.)
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

#ifdef LE3D_WITH_CUDA
// The same on CUDA tensors (K <= 8).
std::vector<torch::Tensor> hull_edges_cuda(const torch::Tensor& centred, double tol);
std::vector<torch::Tensor> hull_slots_cuda(const torch::Tensor& pix, double tol, int64_t slots);
#endif

}  // namespace le3d
