// The convex projection's compiled passes (math: le3d/convex_project.h): the fused projection (every step
// of a convex in one loop iteration or GPU thread, one pass per direction: what renders run) and the
// hull edges' and bound's steps alone (the step path of convex_splat.projection, taken when K needs a
// gradient). Their entry points (csrc/convex_project.cpp: checks, allocation, the loop for the tensors'
// device) and the loops, one per pass and device (cpu/convex_project_cpu.cpp: OpenMP over convexes;
// cuda/convex_project_cuda.cu: a thread per convex or slot). Each pass's arguments travel as one struct of
// sizes and raw pointers (memory of the tensors' device; viewmat and K too, read on the device, so the
// GPU path needs no sync).
#pragma once
#include <torch/extension.h>

#include <cstdint>
#include <vector>

#include "le3d/convex_project.h"  // ConvexProjectForward / ConvexProjectBackward (the fused projection's args)

namespace le3d {

struct ConvexEdgesForward {
  int64_t N;
  int K, S;
  const float* P;
  const int64_t *SI, *SJ;
  const bool* ACT;
  float *E, *A, *NR;
};

struct ConvexEdgesBackward {
  int64_t N;
  int K, S;
  const float* P;
  const int64_t *SI, *SJ;
  const bool* ACT;
  const float* G;
  float* D;  // zeroed
};

struct ConvexBounds {
  int64_t N;
  int K, S;
  const float *A, *NR;
  const int64_t *SI, *SJ;
  const bool* ACT;
  const float *PIX, *O, *SIGMA, *SCALE;
  const bool *V, *OK;
  const int64_t* NE;
  int width, height;
  float margin_rel, margin_abs, miter_min;
  float* B;
  int* RADII;
  float* EC;
};

void convex_loop_cpu(const ConvexEdgesForward& op);
void convex_loop_cpu(const ConvexEdgesBackward& op);
void convex_loop_cpu(const ConvexBounds& op);
void convex_loop_cpu(const ConvexProjectForward& op);
void convex_loop_cpu(const ConvexProjectBackward& op);
#ifdef LE3D_WITH_CUDA
void convex_loop_cuda(const ConvexEdgesForward& op);
void convex_loop_cuda(const ConvexEdgesBackward& op);
void convex_loop_cuda(const ConvexBounds& op);
void convex_loop_cuda(const ConvexProjectForward& op);
void convex_loop_cuda(const ConvexProjectBackward& op);
#endif

// Entry points (any device; twins in convex_splat/projection.py).
// Hull edges as footprint parameters: pix [N, K, 2] float32, slot_i / slot_j / active [N, S] ->
// {edges [N, S, 3] (unit outward normal and offset; zero where inactive), start [N, S, 2] (each edge's
// first point), normal [N, S, 2]}; the backward maps d_edges [N, S, 3] to d_pix [N, K, 2]
// (twin: edge_params_torch).
std::vector<torch::Tensor> convex_edges_forward(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                                const torch::Tensor& slot_j, const torch::Tensor& active);
torch::Tensor convex_edges_backward(const torch::Tensor& pix, const torch::Tensor& slot_i,
                                    const torch::Tensor& slot_j, const torch::Tensor& active,
                                    const torch::Tensor& d_edges);
// The convex screen bound and culling (convex_bound_one): start [N, S, 2] (each slot's first point,
// pixels), normal [N, S, 2] (its edge's unit outward normal), slot_i / slot_j [N, S], active [N, S],
// pix [N, K, 2], opacities, sigma, scale [N], valid, hull_ok [N] bool, n_edges [N] int64 ->
// {bounds [N, 4] (culled: 1, 1, -1, -1), radii [N] int32, edge count [N] float} (twin: convex_bounds_torch).
std::vector<torch::Tensor> convex_bounds(const torch::Tensor& start, const torch::Tensor& normal,
                                         const torch::Tensor& slot_i, const torch::Tensor& slot_j,
                                         const torch::Tensor& active, const torch::Tensor& pix,
                                         const torch::Tensor& opacities, const torch::Tensor& sigma,
                                         const torch::Tensor& scale, const torch::Tensor& valid,
                                         const torch::Tensor& hull_ok, const torch::Tensor& n_edges, int64_t width,
                                         int64_t height, double margin_rel, double margin_abs, double miter_min);

// The fused projection (twin: convex_splat.projection.project_convexes_by_steps): points [N, K <= 8, 3], delta, sigma, opacities [N], viewmat [4, 4], K [3, 3], all float32 ->
// {params [N, 29], means2d [N, 2], depths [N], bounds [N, 4], radii [N] int32, hull [N] int64 (the
// HullCode of each convex's slots, for the backward)}. The backward maps d_params (rows contiguous, any
// row stride), d_means2d ([N, 2], or empty: zeros) and d_depths [N] to {d_points [N, K, 3], d_delta,
// d_sigma, d_opacities [N] (d_params' columns 1, 3, 4), d_viewmat shares [N, 12] (empty unless
// viewmat_grad), d_tap [N, 2] (empty unless tap_grad)}.
std::vector<torch::Tensor> convex_project_forward(const torch::Tensor& points, const torch::Tensor& delta,
                                                  const torch::Tensor& sigma, const torch::Tensor& opacities,
                                                  const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
                                                  int64_t height, double near, double far, double tol,
                                                  double margin_rel, double margin_abs, double miter_min);
std::vector<torch::Tensor> convex_project_backward(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                   const torch::Tensor& K, const torch::Tensor& hull, double near,
                                                   double far, const torch::Tensor& d_params,
                                                   const torch::Tensor& d_means2d, const torch::Tensor& d_depths,
                                                   bool viewmat_grad, bool tap_grad);

}  // namespace le3d
