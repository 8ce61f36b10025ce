// The first step of the convex projection on the CPU, forward and backward: every convex's points to
// camera space and pixels, its centroid's view depth and projection, its pixel-to-world scale and
// whether it is in front of the near plane (twin: convex_splat.projection.project_points_torch, used
// on other devices, in float64, for gradients w.r.t. K, and by the tests). One loop per direction
// instead of ~25 torch ops and their autograd graph: at 20k convexes they cost more than the hull.
#include <torch/extension.h>

#include <vector>

#include "le3d/hull_api.h"

namespace le3d {
namespace {

struct PinholeCamera {
  float R[3][3], t[3], fx, fy, cx, cy;

  PinholeCamera(const torch::Tensor& viewmat, const torch::Tensor& K) {
    const auto V = viewmat.accessor<float, 2>();
    const auto Kc = K.accessor<float, 2>();
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) R[i][j] = V[i][j];
      t[i] = V[i][3];
    }
    fx = Kc[0][0];
    fy = Kc[1][1];
    cx = Kc[0][2];
    cy = Kc[1][2];
  }

  void to_camera(const float* p, float* cam) const {
    for (int i = 0; i < 3; ++i) cam[i] = R[i][0] * p[0] + R[i][1] * p[1] + R[i][2] * p[2] + t[i];
  }
};

constexpr int kMaxPoints = 16;

// One convex's points in camera space and their mean (the forward and the backward both need them).
struct ConvexInCamera {
  float c[kMaxPoints][3];
  float centre[3] = {0.0f, 0.0f, 0.0f};

  ConvexInCamera(const PinholeCamera& cam, const float* points, int64_t count) {
    for (int64_t k = 0; k < count; ++k) {
      cam.to_camera(points + k * 3, c[k]);
      for (int i = 0; i < 3; ++i) centre[i] += c[k][i];
    }
    const float inv_count = 1.0f / static_cast<float>(count);
    for (int i = 0; i < 3; ++i) centre[i] *= inv_count;
  }
};

void check(const torch::Tensor& points, const torch::Tensor& viewmat, const torch::Tensor& K) {
  TORCH_CHECK(points.device().is_cpu() && points.scalar_type() == torch::kFloat32 && points.dim() == 3 &&
                  points.size(2) == 3 && points.size(1) >= 1 && points.is_contiguous(),
              "convex points: points must be a contiguous CPU float32 tensor [N, K, 3]");
  TORCH_CHECK(viewmat.device().is_cpu() && viewmat.scalar_type() == torch::kFloat32 && viewmat.dim() == 2 &&
                  viewmat.size(0) == 4 && viewmat.size(1) == 4,
              "convex points: viewmat must be a CPU float32 [4, 4] tensor");
  TORCH_CHECK(K.device().is_cpu() && K.scalar_type() == torch::kFloat32 && K.dim() == 2 && K.size(0) == 3 &&
                  K.size(1) == 3,
              "convex points: K must be a CPU float32 [3, 3] tensor");
}

}  // namespace

std::vector<torch::Tensor> convex_points_forward_cpu(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                     const torch::Tensor& K, double near, double far) {
  check(points, viewmat, K);
  const int64_t N = points.size(0), P = points.size(1);
  TORCH_CHECK(P <= kMaxPoints, "convex points: at most 16 points per convex");
  const PinholeCamera cam(viewmat, K);
  auto pix = torch::empty({N, P, 2}, points.options());
  auto depth = torch::empty({N}, points.options());
  auto means2d = torch::empty({N, 2}, points.options());
  auto scale = torch::empty({N}, points.options());
  auto valid = torch::empty({N}, points.options().dtype(torch::kBool));
  const float* X = points.data_ptr<float>();
  float* PIX = pix.data_ptr<float>();
  float* Z = depth.data_ptr<float>();
  float* M = means2d.data_ptr<float>();
  float* S = scale.data_ptr<float>();
  bool* V = valid.data_ptr<bool>();
  const float near_f = static_cast<float>(near), far_f = static_cast<float>(far);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const ConvexInCamera convex(cam, X + n * P * 3, P);
    const auto& c = convex.c;
    const float* centre = convex.centre;
    bool in_front = true;
    for (int64_t k = 0; k < P; ++k) in_front = in_front && c[k][2] > near_f;
    const bool ok = in_front && centre[2] < far_f;
    for (int64_t k = 0; k < P; ++k) {
      const float z = ok ? c[k][2] : 1.0f;  // culled convexes keep finite (unused) pixels
      PIX[(n * P + k) * 2] = cam.fx * c[k][0] / z + cam.cx;
      PIX[(n * P + k) * 2 + 1] = cam.fy * c[k][1] / z + cam.cy;
    }
    const float zc = ok ? centre[2] : 1.0f;
    M[2 * n] = cam.fx * centre[0] / zc + cam.cx;
    M[2 * n + 1] = cam.fy * centre[1] / zc + cam.cy;
    S[n] = zc / (0.5f * (cam.fx + cam.fy));
    Z[n] = centre[2];
    V[n] = ok;
  }
  return {pix, depth, means2d, scale, valid};
}

std::vector<torch::Tensor> convex_points_backward_cpu(const torch::Tensor& points, const torch::Tensor& viewmat,
                                                      const torch::Tensor& K, const torch::Tensor& valid,
                                                      const torch::Tensor& d_pix, const torch::Tensor& d_depth,
                                                      const torch::Tensor& d_means2d, const torch::Tensor& d_scale,
                                                      bool viewmat_grad, bool tap_grad) {
  check(points, viewmat, K);
  const int64_t N = points.size(0), P = points.size(1);
  TORCH_CHECK(P <= kMaxPoints, "convex points: at most 16 points per convex");
  for (const auto* t : {&d_pix, &d_depth, &d_means2d, &d_scale})
    TORCH_CHECK(t->scalar_type() == torch::kFloat32 && t->is_contiguous() && t->size(0) == N,
                "convex points: gradients must be contiguous float32 with N rows");
  TORCH_CHECK(valid.scalar_type() == torch::kBool && valid.numel() == N, "convex points: valid [N] bool");
  const PinholeCamera cam(viewmat, K);
  auto d_points = torch::empty_like(points);
  auto d_view = viewmat_grad ? torch::empty({N, 12}, points.options()) : torch::empty({0}, points.options());
  auto d_tap = tap_grad ? torch::empty({N, 2}, points.options()) : torch::empty({0}, points.options());
  const float* X = points.data_ptr<float>();
  const bool* V = valid.data_ptr<bool>();
  const float* DP = d_pix.data_ptr<float>();
  const float* DZ = d_depth.data_ptr<float>();
  const float* DM = d_means2d.data_ptr<float>();
  const float* DS = d_scale.data_ptr<float>();
  float* DX = d_points.data_ptr<float>();
  float* DV = viewmat_grad ? d_view.data_ptr<float>() : nullptr;
  float* DT = tap_grad ? d_tap.data_ptr<float>() : nullptr;
  const float inv_count = 1.0f / static_cast<float>(P);
  const float inv_f = 1.0f / (0.5f * (cam.fx + cam.fy));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const ConvexInCamera convex(cam, X + n * P * 3, P);
    const auto& c = convex.c;
    const float* centre = convex.centre;
    const bool ok = V[n];
    // The centroid's gradient: its projection (the safe depth is a constant for culled convexes),
    // the depth output and, through s = zc / ((fx + fy) / 2), the footprint scale.
    const float zc = ok ? centre[2] : 1.0f;
    const float dmx = DM[2 * n], dmy = DM[2 * n + 1];
    float d_centre[3] = {dmx * cam.fx / zc, dmy * cam.fy / zc, DZ[n]};
    if (ok) d_centre[2] += DS[n] * inv_f - (dmx * cam.fx * centre[0] + dmy * cam.fy * centre[1]) / (zc * zc);
    float dR[3][3] = {}, dt[3] = {}, d_shift[2] = {};
    for (int64_t k = 0; k < P; ++k) {
      const float z = ok ? c[k][2] : 1.0f;
      const float dpx = DP[(n * P + k) * 2], dpy = DP[(n * P + k) * 2 + 1];
      d_shift[0] += dpx;
      d_shift[1] += dpy;
      float d_cam[3] = {dpx * cam.fx / z + d_centre[0] * inv_count, dpy * cam.fy / z + d_centre[1] * inv_count,
                        d_centre[2] * inv_count};
      if (ok) d_cam[2] -= (dpx * cam.fx * c[k][0] + dpy * cam.fy * c[k][1]) / (z * z);
      const float* p = X + (n * P + k) * 3;
      for (int j = 0; j < 3; ++j)
        DX[(n * P + k) * 3 + j] = d_cam[0] * cam.R[0][j] + d_cam[1] * cam.R[1][j] + d_cam[2] * cam.R[2][j];
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) dR[i][j] += d_cam[i] * p[j];
        dt[i] += d_cam[i];
      }
    }
    if (DT) {
      DT[2 * n] = d_shift[0];
      DT[2 * n + 1] = d_shift[1];
    }
    if (DV) {
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) DV[12 * n + 3 * i + j] = dR[i][j];
      for (int i = 0; i < 3; ++i) DV[12 * n + 9 + i] = dt[i];
    }
  }
  return {d_points, d_view, d_tap};
}

}  // namespace le3d
