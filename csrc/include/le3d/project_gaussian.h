// Projection of one 3D Gaussian to its screen-space footprint, and the hand-written backward.
// The math is that of the PyTorch twin, le3d/raster/projection.py (project_gaussians), step for step:
// world -> camera with the view matrix, covariance V V^T with V = R_view rot(q) diag(s), EWA Jacobian
// with gsplat's off-screen clamp, 2D covariance + 0.3 I, conic = its inverse, exact 1/255 box bound.
// Shared by the CPU (cpu/project_cpu.cpp) and CUDA (cuda/project_cuda.cu) loops over Gaussians.
// viewmat and K stay on the device: every thread reads the 25 floats itself (no host sync).
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

constexpr float kEps2d = 0.3f;             // added to 2D covariances (as 3DGS / gsplat)
constexpr float kBoundMarginRel = 1e-3f;   // float-rounding slack on the exact bound
constexpr float kBoundMarginAbs = 1e-2f;   // pixels
constexpr float kDetMin = 1e-10f;          // 2D covariance determinant floor
constexpr int kViewmatGrads = 12;          // per-Gaussian d viewmat: rotation (row-major 3x3), translation

struct Camera {
  float R[9], t[3];
  float fx, fy, cx, cy;
  float lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg;  // off-screen clamp of x/z and y/z
  int width, height;
  float near, far;
};

// viewmat [4,4] world-to-camera, K [3,3], both row-major float32.
LE3D_HD Camera load_camera(const float* viewmat, const float* K, int width, int height, float near, float far) {
  Camera c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.R[3 * i + j] = viewmat[4 * i + j];
    c.t[i] = viewmat[4 * i + 3];
  }
  c.fx = K[0];
  c.fy = K[4];
  c.cx = K[2];
  c.cy = K[5];
  const float tan_fovx = 0.5f * width / c.fx, tan_fovy = 0.5f * height / c.fy;
  c.lim_x_pos = (width - c.cx) / c.fx + 0.3f * tan_fovx;
  c.lim_x_neg = c.cx / c.fx + 0.3f * tan_fovx;
  c.lim_y_pos = (height - c.cy) / c.fy + 0.3f * tan_fovy;
  c.lim_y_neg = c.cy / c.fy + 0.3f * tan_fovy;
  c.width = width;
  c.height = height;
  c.near = near;
  c.far = far;
  return c;
}

// Normalised quaternion (w, x, y, z) and its rotation matrix (row-major).
LE3D_HD void quat_rotation(const float* quat, float* qn, float* Rq) {
  const float inv = 1.0f / sqrtf(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3]);
  const float w = quat[0] * inv, x = quat[1] * inv, y = quat[2] * inv, z = quat[3] * inv;
  qn[0] = w; qn[1] = x; qn[2] = y; qn[3] = z;
  Rq[0] = 1.f - 2.f * (y * y + z * z); Rq[1] = 2.f * (x * y - w * z); Rq[2] = 2.f * (x * z + w * y);
  Rq[3] = 2.f * (x * y + w * z); Rq[4] = 1.f - 2.f * (x * x + z * z); Rq[5] = 2.f * (y * z - w * x);
  Rq[6] = 2.f * (x * z - w * y); Rq[7] = 2.f * (y * z + w * x); Rq[8] = 1.f - 2.f * (x * x + y * y);
}

// The intermediate values the forward and backward passes share.
struct GaussianCamSpace {
  float mc[3];        // mean in camera space
  float qn[4], Rq[9];  // normalised quaternion, its rotation
  float V[9];         // R_view rot(q) diag(s), row-major
  bool valid;         // near <= z <= far
  float z_safe, inv_z;
  float rx, ry;       // x/z, y/z after the off-screen clamp
  bool x_free, y_free;  // the clamp did not bind (gradient passes)
  float u0[3], u1[3];  // rows of J V
  float a, b, c;      // 2D covariance [[a, b], [b, c]] (+0.3 I)
  float det;          // a c - b^2, floored at kDetMin
  bool det_free;      // the floor did not bind
};

LE3D_HD float clamp_ratio(float r, float lo, float hi, bool* free) {
  *free = r >= lo && r <= hi;
  return r < lo ? lo : (r > hi ? hi : r);
}

LE3D_HD GaussianCamSpace gaussian_cam_space(const Camera& cam, const float* mean, const float* quat,
                                            const float* scale) {
  GaussianCamSpace g;
  for (int i = 0; i < 3; ++i)
    g.mc[i] = cam.R[3 * i] * mean[0] + cam.R[3 * i + 1] * mean[1] + cam.R[3 * i + 2] * mean[2] + cam.t[i];
  quat_rotation(quat, g.qn, g.Rq);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      g.V[3 * i + j] = (cam.R[3 * i] * g.Rq[j] + cam.R[3 * i + 1] * g.Rq[3 + j] + cam.R[3 * i + 2] * g.Rq[6 + j]) *
                       scale[j];
  const float z = g.mc[2];
  g.valid = z >= cam.near && z <= cam.far;  // cull z < near or z > far only
  g.z_safe = g.valid ? z : 1.0f;
  g.inv_z = 1.0f / g.z_safe;
  g.rx = clamp_ratio(g.mc[0] / g.z_safe, -cam.lim_x_neg, cam.lim_x_pos, &g.x_free);
  g.ry = clamp_ratio(g.mc[1] / g.z_safe, -cam.lim_y_neg, cam.lim_y_pos, &g.y_free);
  const float sx = cam.fx * g.inv_z, sy = cam.fy * g.inv_z;
  for (int j = 0; j < 3; ++j) {
    g.u0[j] = sx * (g.V[j] - g.rx * g.V[6 + j]);
    g.u1[j] = sy * (g.V[3 + j] - g.ry * g.V[6 + j]);
  }
  g.a = g.u0[0] * g.u0[0] + g.u0[1] * g.u0[1] + g.u0[2] * g.u0[2] + kEps2d;
  g.b = g.u0[0] * g.u1[0] + g.u0[1] * g.u1[1] + g.u0[2] * g.u1[2];
  g.c = g.u1[0] * g.u1[0] + g.u1[1] * g.u1[1] + g.u1[2] * g.u1[2] + kEps2d;
  const float det = g.a * g.c - g.b * g.b;
  g.det_free = det >= kDetMin;
  g.det = g.det_free ? det : kDetMin;
  return g;
}

// Screen footprint of one Gaussian: mean2d [2], conic [3], depth (view z), bound [4] (xmin, ymin,
// xmax, ymax; xmin > xmax when culled), radius (0 when culled). Culled: z outside (near, far),
// opacity <= 1/255, a non-finite bound, or a box that reaches no pixel centre.
LE3D_HD void project_gaussian_forward(const Camera& cam, const float* mean, const float* quat, const float* scale,
                                      float opacity, float* mean2d, float* conic, float* depth, float* bound,
                                      int* radius) {
  const GaussianCamSpace g = gaussian_cam_space(cam, mean, quat, scale);
  conic[0] = g.c / g.det;
  conic[1] = -g.b / g.det;
  conic[2] = g.a / g.det;
  mean2d[0] = cam.fx * g.mc[0] / g.z_safe + cam.cx;
  mean2d[1] = cam.fy * g.mc[1] / g.z_safe + cam.cy;
  *depth = g.mc[2];

  const float ratio = opacity / kAlphaMin;
  const float reach = 2.0f * logf(ratio > 1.0f ? ratio : 1.0f);  // 2 ln(255 o): alpha >= 1/255 inside
  const float ext_x = sqrtf(reach * g.a) * (1.0f + kBoundMarginRel) + kBoundMarginAbs;
  const float ext_y = sqrtf(reach * g.c) * (1.0f + kBoundMarginRel) + kBoundMarginAbs;
  const float b0 = mean2d[0] - ext_x, b1 = mean2d[1] - ext_y, b2 = mean2d[0] + ext_x, b3 = mean2d[1] + ext_y;
  bool keep = g.valid && opacity > kAlphaMin && is_finite(b0) && is_finite(b1) &&
              is_finite(b2) && is_finite(b3);
  if (keep) {  // the box reaches at least one pixel centre (as bounds_in_image)
    const float x0 = fmaxf(ceilf(b0 - 0.5f), 0.0f), x1 = fminf(floorf(b2 - 0.5f), cam.width - 1.0f);
    const float y0 = fmaxf(ceilf(b1 - 0.5f), 0.0f), y1 = fminf(floorf(b3 - 0.5f), cam.height - 1.0f);
    keep = x0 <= x1 && y0 <= y1;
  }
  if (keep) {
    bound[0] = b0; bound[1] = b1; bound[2] = b2; bound[3] = b3;
    *radius = static_cast<int>(ceilf(fmaxf(ext_x, ext_y)));
  } else {
    bound[0] = 1.0f; bound[1] = 1.0f; bound[2] = -1.0f; bound[3] = -1.0f;
    *radius = 0;
  }
}

// Gradients of the loss w.r.t. mean [3], quat [4] (raw, before normalisation) and scale [3] from
// those w.r.t. mean2d [2], conic [3] and depth; written (not added). d_viewmat (kViewmatGrads
// floats, or nullptr) receives this Gaussian's share of d viewmat. Opacity only moves the bound,
// which is not differentiated (its gradient reaches it through the footprint parameters).
LE3D_HD void project_gaussian_backward(const Camera& cam, const float* mean, const float* quat, const float* scale,
                                       const float* d_mean2d, const float* d_conic, float d_depth, float* d_mean,
                                       float* d_quat, float* d_scale, float* d_viewmat) {
  const GaussianCamSpace g = gaussian_cam_space(cam, mean, quat, scale);
  // conic = (c, -b, a) / det
  const float inv_det = 1.0f / g.det, inv_det2 = inv_det * inv_det;
  const float gA = d_conic[0], gB = d_conic[1], gC = d_conic[2];
  float ga = gC * inv_det, gb = -gB * inv_det, gc = gA * inv_det;
  if (g.det_free) {  // d det = c da + a dc - 2 b db; d(x / det) = -x / det^2 d det
    const float g_det = -(gA * g.c - gB * g.b + gC * g.a) * inv_det2;
    ga += g_det * g.c;
    gc += g_det * g.a;
    gb += -2.0f * g_det * g.b;
  }
  // a = |u0|^2 + eps, b = u0 . u1, c = |u1|^2 + eps
  float G0[3], G1[3];
  for (int j = 0; j < 3; ++j) {
    G0[j] = 2.0f * ga * g.u0[j] + gb * g.u1[j];
    G1[j] = 2.0f * gc * g.u1[j] + gb * g.u0[j];
  }
  // u0 = fx p (V0 - tx p V2), u1 = fy p (V1 - ty p V2), p = 1 / z_safe, tx = z_safe * rx
  const float p = g.inv_z, sx = cam.fx * p, sy = cam.fy * p;
  float dV[9];
  float g_p = 0.0f, g_tx = 0.0f, g_ty = 0.0f;
  for (int j = 0; j < 3; ++j) {
    dV[j] = sx * G0[j];
    dV[3 + j] = sy * G1[j];
    dV[6 + j] = -sx * g.rx * G0[j] - sy * g.ry * G1[j];
    g_p += cam.fx * (g.V[j] - 2.0f * g.rx * g.V[6 + j]) * G0[j] + cam.fy * (g.V[3 + j] - 2.0f * g.ry * g.V[6 + j]) * G1[j];
    g_tx += -cam.fx * p * p * g.V[6 + j] * G0[j];
    g_ty += -cam.fy * p * p * g.V[6 + j] * G1[j];
  }
  // mean2d = (fx x / z_safe + cx, fy y / z_safe + cy)
  float dmc[3] = {cam.fx * p * d_mean2d[0], cam.fy * p * d_mean2d[1], 0.0f};
  float g_zsafe = -p * p * g_p - (cam.fx * g.mc[0] * d_mean2d[0] + cam.fy * g.mc[1] * d_mean2d[1]) * p * p;
  // tx = z_safe clamp(x / z_safe): d/dx = 1 when the clamp is free; else d/dz_safe = the clamp value
  if (g.x_free) dmc[0] += g_tx; else g_zsafe += g.rx * g_tx;
  if (g.y_free) dmc[1] += g_ty; else g_zsafe += g.ry * g_ty;
  dmc[2] = d_depth + (g.valid ? g_zsafe : 0.0f);

  // mean_c = R mean + t;  V = R M with M = rot(q) diag(s)
  for (int k = 0; k < 3; ++k) d_mean[k] = cam.R[k] * dmc[0] + cam.R[3 + k] * dmc[1] + cam.R[6 + k] * dmc[2];
  float dM[9];
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 3; ++j) dM[3 * k + j] = cam.R[k] * dV[j] + cam.R[3 + k] * dV[3 + j] + cam.R[6 + k] * dV[6 + j];
  float GR[9];
  for (int j = 0; j < 3; ++j) {
    d_scale[j] = dM[j] * g.Rq[j] + dM[3 + j] * g.Rq[3 + j] + dM[6 + j] * g.Rq[6 + j];
    for (int k = 0; k < 3; ++k) GR[3 * k + j] = dM[3 * k + j] * scale[j];
  }
  const float w = g.qn[0], x = g.qn[1], y = g.qn[2], z = g.qn[3];
  float dq[4];
  dq[0] = 2.f * (-z * GR[1] + y * GR[2] + z * GR[3] - x * GR[5] - y * GR[6] + x * GR[7]);
  dq[1] = 2.f * (y * GR[1] + z * GR[2] + y * GR[3] - 2.f * x * GR[4] - w * GR[5] + z * GR[6] + w * GR[7] -
                 2.f * x * GR[8]);
  dq[2] = 2.f * (-2.f * y * GR[0] + x * GR[1] + w * GR[2] + x * GR[3] + z * GR[5] - w * GR[6] + z * GR[7] -
                 2.f * y * GR[8]);
  dq[3] = 2.f * (-2.f * z * GR[0] - w * GR[1] + x * GR[2] + w * GR[3] - 2.f * z * GR[4] + y * GR[5] + x * GR[6] +
                 y * GR[7]);
  // through q / |q|: (dq - qn (qn . dq)) / |q|
  const float norm = sqrtf(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3]);
  const float proj = w * dq[0] + x * dq[1] + y * dq[2] + z * dq[3];
  for (int k = 0; k < 4; ++k) d_quat[k] = (dq[k] - g.qn[k] * proj) / norm;

  if (d_viewmat != nullptr) {  // d R = dmc mean^T + dV M^T, d t = dmc
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 3; ++k) {
        float v = dmc[i] * mean[k];
        for (int j = 0; j < 3; ++j) v += dV[3 * i + j] * g.Rq[3 * k + j] * scale[j];
        d_viewmat[3 * i + k] = v;
      }
      d_viewmat[9 + i] = dmc[i];
    }
  }
}

}  // namespace le3d
