// The convex projection's compiled steps (math: le3d/convex_project.h): their entry points
// (csrc/convex_project.cpp: checks, allocation, the loop for the tensors' device) and the loops, one
// per step and device (cpu/convex_project_cpu.cpp: OpenMP over convexes; cuda/convex_project_cuda.cu:
// a thread per convex). Each step's arguments travel as one struct of sizes and raw pointers (memory
// of the tensors' device; viewmat and K too, read on the device, so the GPU path needs no sync).
#pragma once
#include <torch/extension.h>

#include <cstdint>
#include <vector>

namespace le3d {

struct ConvexPointsForward {
  int64_t N;
  int P;
  const float *viewmat, *K, *X;
  float near, far;
  float *PIX, *Z, *M, *S;
  bool* V;
};

struct ConvexPointsBackward {
  int64_t N;
  int P;
  const float *viewmat, *K, *X;
  const bool* V;
  const float *DP, *DZ, *DM, *DS;
  float *DX, *DV, *DT;  // DV, DT: nullptr when not wanted
};

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

void convex_loop_cpu(const ConvexPointsForward& op);
void convex_loop_cpu(const ConvexPointsBackward& op);
void convex_loop_cpu(const ConvexEdgesForward& op);
void convex_loop_cpu(const ConvexEdgesBackward& op);
void convex_loop_cpu(const ConvexBounds& op);
#ifdef LE3D_WITH_CUDA
void convex_loop_cuda(const ConvexPointsForward& op);
void convex_loop_cuda(const ConvexPointsBackward& op);
void convex_loop_cuda(const ConvexEdgesForward& op);
void convex_loop_cuda(const ConvexEdgesBackward& op);
void convex_loop_cuda(const ConvexBounds& op);
#endif

// Entry points (any device; twins in convex_splat/projection.py).
// Points to camera and pixels: points [N, K, 3] float32, viewmat [4, 4], K [3, 3] -> {pix [N, K, 2],
// depth [N] (view z of the centroid), means2d [N, 2] (the centroid's projection), scale [N] (pixels to
// world units at that depth), valid [N] bool (every point beyond near, the centroid before far); culled
// convexes are projected with depth 1}. The backward maps d_pix, d_depth, d_means2d, d_scale to
// {d_points [N, K, 3], d_viewmat shares [N, 12] (R row-major, then t; empty unless viewmat_grad),
// d_tap [N, 2] = sum_k d_pix (a screen translation of each convex's points; empty unless tap_grad)}
// (twin: project_points_torch).
std::vector<torch::Tensor> convex_points_forward(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                 const torch::Tensor& K, double near, double far);
std::vector<torch::Tensor> convex_points_backward(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                  const torch::Tensor& K, const torch::Tensor& valid,
                                                  const torch::Tensor& d_pix, const torch::Tensor& d_depth,
                                                  const torch::Tensor& d_means2d, const torch::Tensor& d_scale,
                                                  bool viewmat_grad, bool tap_grad);
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

}  // namespace le3d
