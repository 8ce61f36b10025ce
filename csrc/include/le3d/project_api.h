// The fused Gaussian projection (math in project_gaussian.h): one entry point per direction
// (csrc/project.cpp: checks, allocation, dispatch on the tensors' device) over one loop per device
// (cpu/project_cpu.cpp, cuda/project_cuda.cu).
// Inputs (float32, contiguous, one device): means [N,3], quats [N,4], scales [N,3], opacities [N],
// viewmat [4,4], K [3,3].
// forward -> {means2d [N,2], conics [N,3], depths [N], bounds [N,4], radii [N] int32}
// backward(..., d_means2d, d_conics, d_depths, viewmat_grad) -> {d_means, d_quats, d_scales,
//   d_viewmat [N,12] per-Gaussian shares (empty unless viewmat_grad)}; d_means2d and d_conics need
//   contiguous rows only (any row stride).
#pragma once
#include <torch/extension.h>

#include <vector>

#include "le3d/project_gaussian.h"

namespace le3d {

// Raw pointers of the inputs, on the device the loop runs on (viewmat and K too: the CUDA loop reads
// them on the device, so a render needs no host sync).
struct ProjectionArgs {
  int64_t N;
  const float *means, *quats, *scales, *opacities, *viewmat, *K;
  int width, height;
  float near, far;
};

struct ProjectionOutputs {
  float *means2d, *conics, *depths, *bounds;
  int* radii;
};

struct ProjectionGradients {
  const float *d_means2d, *d_conics, *d_depths;  // upstream
  // Row strides (floats) of d_means2d and d_conics: they may be column slices of one [N, 6] gradient
  // (the rasterizer's d params), read in place rather than copied out.
  int64_t means2d_stride, conics_stride;
  float *d_means, *d_quats, *d_scales, *d_viewmat;  // d_viewmat: nullptr unless requested
};

void project_forward_loop_cpu(const ProjectionArgs& args, const ProjectionOutputs& out);
void project_backward_loop_cpu(const ProjectionArgs& args, const ProjectionGradients& grads);
#ifdef LE3D_WITH_CUDA
void project_forward_loop_cuda(const ProjectionArgs& args, const ProjectionOutputs& out);
void project_backward_loop_cuda(const ProjectionArgs& args, const ProjectionGradients& grads);
#endif

std::vector<torch::Tensor> project_gaussians_forward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& opacities, const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width,
    int64_t height, double near, double far);

std::vector<torch::Tensor> project_gaussians_backward(
    const torch::Tensor& means, const torch::Tensor& quats, const torch::Tensor& scales,
    const torch::Tensor& viewmat, const torch::Tensor& K, int64_t width, int64_t height, double near, double far,
    const torch::Tensor& d_means2d, const torch::Tensor& d_conics, const torch::Tensor& d_depths,
    bool viewmat_grad);

}  // namespace le3d
