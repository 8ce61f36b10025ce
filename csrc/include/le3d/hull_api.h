// Convex-hull edges of projected convex points (CPU and CUDA loops over le3d/hull.h), used by
// convex_splat's projection.
#pragma once
#include <torch/extension.h>

#include <vector>

namespace le3d {

// centred [N, K, 2] float64 (each convex's points minus their mean), tol in pixels
// -> {edge [N, K, K] bool (i -> j is a hull edge), ok [N] bool (the edges form one cycle of >= 3)}.
std::vector<torch::Tensor> hull_edges_cpu(const torch::Tensor& centred, double tol);

#ifdef LE3D_WITH_CUDA
// The same on CUDA tensors (K <= 8).
std::vector<torch::Tensor> hull_edges_cuda(const torch::Tensor& centred, double tol);
#endif

}  // namespace le3d
