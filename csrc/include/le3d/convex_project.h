// The per-convex steps of the convex projection (convex_splat/projection.py), forward and backward,
// shared by the CPU loops (cpu/convex_project_cpu.cpp, OpenMP over convexes) and the CUDA kernels
// (cuda/convex_project_cuda.cu, a thread per convex), so that both compute the same thing:
//   points:  world points -> pixels, centroid depth and projection, pixel-to-world scale, validity
//   edges:   hull slots -> unit outward normal n and offset c of each edge (L(q) = n.q + c)
//   bounds:  the screen box of the hull with every edge pushed out by the alpha >= 1/255 reach, and
//            whether the convex is kept (its radius and edge count)
// The torch twins (project_points_torch, edge_params_torch, convex_bounds_torch) define them and are
// what the tests compare with. Every function handles one convex n; arrays are the whole tensors.
// The fused projection (end of this file) runs all of them, and the hull search of le3d/hull.h, for one
// convex at a time, with the per-convex arrays in the thread's own memory (n = 0 on pointers offset to
// convex n): one pass per direction instead of a launch and a global temporary per step.
#pragma once
#include <cmath>
#include <cstdint>

#include "le3d/common.h"
#include "le3d/footprint_convex.h"
#include "le3d/hull.h"

namespace le3d {

constexpr int kConvexMaxPoints = 8;  // per-convex arrays (convexes have 3..8 points; 3 bits in a HullCode)

// std::min / std::max on both sides of the CUDA boundary, with their NaN behaviour (the first
// argument unless the comparison holds), which fminf / fmaxf do not share.
LE3D_HD float std_min(float a, float b) { return b < a ? b : a; }
LE3D_HD float std_max(float a, float b) { return a < b ? b : a; }

// viewmat [4, 4] (row-major, world to camera) and K [3, 3], read from memory of the caller's device.
struct PinholeCamera {
  float R[3][3], t[3], fx, fy, cx, cy;

  LE3D_HD PinholeCamera(const float* viewmat, const float* K) {
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) R[i][j] = viewmat[4 * i + j];
      t[i] = viewmat[4 * i + 3];
    }
    fx = K[0];
    fy = K[4];
    cx = K[2];
    cy = K[5];
  }

  LE3D_HD void to_camera(const float* p, float* cam) const {
    for (int i = 0; i < 3; ++i) cam[i] = R[i][0] * p[0] + R[i][1] * p[1] + R[i][2] * p[2] + t[i];
  }
};

// One convex's points in camera space and their mean (the forward and the backward both need them).
struct ConvexInCamera {
  float c[kConvexMaxPoints][3];
  float centre[3] = {0.0f, 0.0f, 0.0f};

  LE3D_HD ConvexInCamera(const PinholeCamera& cam, const float* points, int count) {
    for (int k = 0; k < count; ++k) {
      cam.to_camera(points + k * 3, c[k]);
      for (int i = 0; i < 3; ++i) centre[i] += c[k][i];
    }
    const float inv_count = 1.0f / static_cast<float>(count);
    for (int i = 0; i < 3; ++i) centre[i] *= inv_count;
  }
};

// points X [N, P, 3] -> PIX [N, P, 2], Z [N] (centroid view z), M [N, 2] (its projection),
// S [N] (z / mean focal), V [N] (every point beyond near, the centroid not beyond far).
LE3D_HD void convex_points_forward_one(int64_t n, int P, const PinholeCamera& cam, float near, float far,
                                       const float* X, float* PIX, float* Z, float* M, float* S, bool* V) {
  const ConvexInCamera convex(cam, X + n * P * 3, P);
  const auto& c = convex.c;
  const float* centre = convex.centre;
  bool in_front = true;
  for (int k = 0; k < P; ++k) in_front = in_front && c[k][2] > near;
  const bool ok = in_front && centre[2] <= far;
  for (int k = 0; k < P; ++k) {
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

// The backward of convex_points_forward_one: DX [N, P, 3] from the gradients of its outputs
// (DP, DZ, DM, DS), plus (when not null) DV [N, 12], this convex's share of d viewmat (R row-major,
// then t), and DT [N, 2], the sum of its pixels' gradients (the means2d tap's gradient). DM may be null
// (no gradient reached means2d: zeros).
LE3D_HD void convex_points_backward_one(int64_t n, int P, const PinholeCamera& cam, const float* X, const bool* V,
                                        const float* DP, const float* DZ, const float* DM, const float* DS,
                                        float* DX, float* DV, float* DT) {
  const ConvexInCamera convex(cam, X + n * P * 3, P);
  const auto& c = convex.c;
  const float* centre = convex.centre;
  const bool ok = V[n];
  const float inv_count = 1.0f / static_cast<float>(P);
  const float inv_f = 1.0f / (0.5f * (cam.fx + cam.fy));
  // The centroid's gradient: its projection (the safe depth is a constant for culled convexes),
  // the depth output and, through s = zc / ((fx + fy) / 2), the footprint scale.
  const float zc = ok ? centre[2] : 1.0f;
  const float dmx = DM ? DM[2 * n] : 0.0f, dmy = DM ? DM[2 * n + 1] : 0.0f;
  float d_centre[3] = {dmx * cam.fx / zc, dmy * cam.fy / zc, DZ[n]};
  if (ok) d_centre[2] += DS[n] * inv_f - (dmx * cam.fx * centre[0] + dmy * cam.fy * centre[1]) / (zc * zc);
  float dR[3][3] = {}, dt[3] = {}, d_shift[2] = {};
  for (int k = 0; k < P; ++k) {
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

// Slot e of convex n (pixels P [N, K, 2], slots SI/SJ/ACT [N, S]) -> E [N, S, 3] (nx, ny, c; zero where
// inactive), A [N, S, 2] (the edge's first point, zero where inactive) and NR [N, S, 2] (its normal).
// The CPU loops over a convex's slots (convex_edges_forward_one); the GPU runs a thread per slot, so
// that a warp's stores are contiguous (a thread per convex stored with a 96-byte stride).
LE3D_HD void convex_edges_forward_slot(int64_t n, int e, int K, int S, const float* P, const int64_t* SI,
                                       const int64_t* SJ, const bool* ACT, float* E, float* A, float* NR) {
  const int64_t slot = n * S + e;
  const float* a = P + (n * K + SI[slot]) * 2;
  const float* b = P + (n * K + SJ[slot]) * 2;
  const bool on = ACT[slot];
  // An inactive slot gets the twin's placeholder direction (1, 0), so its normal is finite.
  const float dx = on ? b[0] - a[0] : 1.0f, dy = on ? b[1] - a[1] : 0.0f;
  const float ax = on ? a[0] : 0.0f, ay = on ? a[1] : 0.0f;
  const float length = sqrtf(dx * dx + dy * dy);
  const float nx = dy / length, ny = -dx / length;
  const float c = -(nx * ax + ny * ay);
  E[slot * 3] = on ? nx : 0.0f;
  E[slot * 3 + 1] = on ? ny : 0.0f;
  E[slot * 3 + 2] = on ? c : 0.0f;
  A[slot * 2] = ax;
  A[slot * 2 + 1] = ay;
  NR[slot * 2] = nx;
  NR[slot * 2 + 1] = ny;
}

LE3D_HD void convex_edges_forward_one(int64_t n, int K, int S, const float* P, const int64_t* SI,
                                      const int64_t* SJ, const bool* ACT, float* E, float* A, float* NR) {
  for (int e = 0; e < S; ++e) convex_edges_forward_slot(n, e, K, S, P, SI, SJ, ACT, E, A, NR);
}

// add() of convex_edges_backward_slot where one thread owns the convex: a plain +=.
struct PlainAdd {
  LE3D_HD void operator()(float* at, float value) const { *at += value; }
};

// The backward of convex_edges_forward_slot: adds slot e's share of convex n's pixel gradients to
// D [N, K, 2] (zeroed by the caller; only convex n's rows are touched) from G = d E [N, S, 3], with
// add(address, value) (a plain += on the CPU, an atomic add on the GPU, where slots run in parallel; a
// hull vertex gets one add from each of its two edges, and two adds to zero give the same sum in
// either order, so the result does not depend on the order).
template <typename Add>
LE3D_HD void convex_edges_backward_slot(int64_t n, int e, int K, int S, const float* P, const int64_t* SI,
                                        const int64_t* SJ, const bool* ACT, const float* G, float* D, Add add) {
  const int64_t slot = n * S + e;
  if (!ACT[slot]) return;  // the placeholder edge passes no gradient
  const float* a = P + (n * K + SI[slot]) * 2;
  const float* b = P + (n * K + SJ[slot]) * 2;
  const float dx = b[0] - a[0], dy = b[1] - a[1];
  const float length = sqrtf(dx * dx + dy * dy);
  const float nx = dy / length, ny = -dx / length;
  // c = -(n . a): dL/dn gets -a dL/dc, dL/da gets -n dL/dc.
  const float gc = G[slot * 3 + 2];
  const float gnx = G[slot * 3] - gc * a[0], gny = G[slot * 3 + 1] - gc * a[1];
  // n = u / |u| with u = (dy, -dx): dL/du = (dL/dn - n (n . dL/dn)) / |u|.
  const float along = nx * gnx + ny * gny;
  const float gux = (gnx - nx * along) / length, guy = (gny - ny * along) / length;
  // u = (dy, -dx) with d = b - a: dL/dd = (-dL/du_y, dL/du_x).
  const float gdx = -guy, gdy = gux;
  float* da = D + (n * K + SI[slot]) * 2;
  float* db = D + (n * K + SJ[slot]) * 2;
  add(db, gdx);
  add(db + 1, gdy);
  add(da, -gdx - gc * nx);
  add(da + 1, -gdy - gc * ny);
}

// Convex n's screen bound B [N, 4] (x_lo, y_lo, x_hi, y_hi): the box of its hull vertices (slot e's
// first point A, outward normal NR, where ACT) each moved by its miter, every edge pushed out by `grow`
// pixels, grown by the margins. S <= kConvexMaxPoints slots.
LE3D_HD void convex_screen_bound_one(int64_t n, int S, const float* A, const float* NR, const int64_t* SI,
                                     const int64_t* SJ, const bool* ACT, float grow, float margin_rel,
                                     float margin_abs, float miter_min, float* B) {
  // n_in_at[v]: the normal of the active edge ending at point v. Slot e's edge starts at point
  // slot_i[e], so its start vertex moves by the miter of that normal and its own.
  float n_in_at[kConvexMaxPoints][2];
  for (int v = 0; v < kConvexMaxPoints; ++v) n_in_at[v][0] = n_in_at[v][1] = 0.0f;
  for (int e = 0; e < S; ++e) {
    if (!ACT[n * S + e]) continue;
    const int64_t v = SJ[n * S + e];
    n_in_at[v][0] += NR[(n * S + e) * 2];
    n_in_at[v][1] += NR[(n * S + e) * 2 + 1];
  }
  float lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  const float gn = grow;
  for (int e = 0; e < S; ++e) {
    if (!ACT[n * S + e]) continue;
    const float* no = NR + (n * S + e) * 2;
    const float* ni = n_in_at[SI[n * S + e]];
    // 1 + ni.no written as |ni + no|^2 / 2 (unit normals): no cancellation at needle corners
    const float sum[2] = {ni[0] + no[0], ni[1] + no[1]};
    const float den = std_max(0.5f * (sum[0] * sum[0] + sum[1] * sum[1]), miter_min);
    for (int d = 0; d < 2; ++d) {
      const float v = A[(n * S + e) * 2 + d] + gn * (sum[d] / den);
      lo[d] = std_min(lo[d], v);
      hi[d] = std_max(hi[d], v);
    }
  }
  for (int d = 0; d < 2; ++d) {
    const float span = std_max(hi[d] - lo[d], 0.0f);
    const float grown = span * margin_rel + margin_abs + gn * margin_rel;
    B[n * 4 + d] = lo[d] - grown;
    B[n * 4 + 2 + d] = hi[d] + grown;
  }
}

// Convex n's bound, radius and edge count as project_convexes uses them (twin: convex_bounds_torch).
// The alpha >= 1/255 region reaches grow = max(0, ln(255 o - 1) / sigma) / |s| pixels beyond the hull
// (log of at least 1e-30), which gives the screen bound above; the convex is kept when its points are
// before near and its centroid before far (V), its hull is valid (OK), o > 1/255, its pixels (PIX
// [N, K, 2]) and bound are finite and the bound reaches a pixel centre of the width x height image.
// Writes B [N, 4] (culled: 1, 1, -1, -1), RADII [N] (ceil of half the bound's larger side; 0 culled)
// and EC [N] (the edge count NE as float; 0 culled).
LE3D_HD void convex_bound_one(int64_t n, int K, int S, const float* A, const float* NR, const int64_t* SI,
                              const int64_t* SJ, const bool* ACT, const float* PIX, const float* O,
                              const float* SIGMA, const float* SCALE, const bool* V, const bool* OK,
                              const int64_t* NE, int width, int height, float margin_rel, float margin_abs,
                              float miter_min, float* B, int* RADII, float* EC) {
  const float o = O[n];
  const float reach = logf(std_max(255.0f * o - 1.0f, 1e-30f)) / SIGMA[n];
  const float grow = std_max(reach, 0.0f) / std_max(fabsf(SCALE[n]), 1e-30f);
  float* b = B + n * 4;
  convex_screen_bound_one(n, S, A, NR, SI, SJ, ACT, grow, margin_rel, margin_abs, miter_min, B);
  bool keep = V[n] && OK[n] && o > kAlphaMin;
  for (int d = 0; d < 4; ++d) keep = keep && is_finite(b[d]);
  for (int k = 0; k < 2 * K; ++k) keep = keep && is_finite(PIX[n * 2 * K + k]);
  if (keep) {  // the bound reaches a pixel centre (x + 0.5, y + 0.5) of the image
    const float x0 = std_max(ceilf(b[0] - 0.5f), 0.0f), x1 = std_min(floorf(b[2] - 0.5f), width - 1.0f);
    const float y0 = std_max(ceilf(b[1] - 0.5f), 0.0f), y1 = std_min(floorf(b[3] - 0.5f), height - 1.0f);
    keep = x0 <= x1 && y0 <= y1;
  }
  if (!keep) {
    b[0] = b[1] = 1.0f;
    b[2] = b[3] = -1.0f;
  }
  const float half = 0.5f * std_max(b[2] - b[0], b[3] - b[1]);
  RADII[n] = keep ? static_cast<int>(ceilf(half)) : 0;
  EC[n] = keep ? static_cast<float>(NE[n]) : 0.0f;
}

// ---- The fused projection: every step above, for one convex, in one loop iteration or GPU thread ----

// One convex's hull slots as the fused backward needs them, packed in an int64: slot e's first and
// second point (3 bits each, at bit 6 e; e < 8) and the number of active slots (they come first) at bit 48.
struct HullCode {
  static constexpr int kSlots = ConvexFootprint::kMaxEdges;
  static constexpr int kCountShift = 6 * kSlots;

  LE3D_HD static int64_t pack(const int64_t* slot_i, const int64_t* slot_j, int64_t active) {
    uint64_t code = static_cast<uint64_t>(active) << kCountShift;
    for (int e = 0; e < kSlots; ++e)
      code |= (static_cast<uint64_t>(slot_i[e] & 7) | static_cast<uint64_t>(slot_j[e] & 7) << 3) << (6 * e);
    return static_cast<int64_t>(code);
  }

  LE3D_HD static void unpack(int64_t packed, int64_t* slot_i, int64_t* slot_j, bool* active) {
    const uint64_t code = static_cast<uint64_t>(packed);
    const int64_t count = static_cast<int64_t>(code >> kCountShift);
    for (int e = 0; e < kSlots; ++e) {
      slot_i[e] = static_cast<int64_t>(code >> (6 * e) & 7);
      slot_j[e] = static_cast<int64_t>(code >> (6 * e + 3) & 7);
      active[e] = e < count;
    }
  }
};

// project_convexes' outputs from points X [N, P, 3] (P <= kConvexMaxPoints), delta, sigma, opacities [N]:
// params [N, ConvexFootprint::kParams] (edge count, delta, s, sigma, opacity, then each slot's nx, ny, c),
// means2d [N, 2], depths [N], bounds [N, 4], radii [N], and hull [N] (HullCode, for the backward).
struct ConvexProjectForward {
  int64_t N;
  int P;
  const float *X, *delta, *sigma, *opacities, *viewmat, *K;
  int width, height;
  float near, far;
  double tol;  // HULL_TOL_PX
  float margin_rel, margin_abs, miter_min;
  float *params, *means2d, *depths, *bounds;
  int* radii;
  int64_t* hull;
};

// The gradients of points, delta, sigma, opacities (and optionally viewmat shares [N, 12] and the means2d
// tap [N, 2]) from those of params (rows of d_params_stride floats: a slice of a wider gradient is read
// in place), means2d (may be null) and depths. delta, sigma and opacity take their columns of d params.
struct ConvexProjectBackward {
  int64_t N;
  int P;
  const float *X, *viewmat, *K;
  float near, far;
  const int64_t* hull;
  const float* d_params;
  int64_t d_params_stride;
  const float *d_means2d, *d_depths;
  float *d_points, *d_delta, *d_sigma, *d_opacities;
  float *d_viewmat, *d_tap;  // nullptr when not wanted
};

// Convex n of the fused forward: the steps of project_convexes (points, hull slots, edges, bound) in
// their order, on the same values, so it writes what the step-by-step path writes.
LE3D_HD void convex_project_forward_one(int64_t n, const PinholeCamera& cam, const ConvexProjectForward& op) {
  constexpr int S = ConvexFootprint::kMaxEdges, H = ConvexFootprint::kHeader;
  const int P = op.P;
  float pix[kConvexMaxPoints * 2], scale;
  bool valid;
  convex_points_forward_one(0, P, cam, op.near, op.far, op.X + n * P * 3, pix, op.depths + n, op.means2d + 2 * n,
                            &scale, &valid);
  int64_t slot_i[S], slot_j[S], n_edges;
  const bool hull_ok = hull_slots_one<kConvexMaxPoints>(pix, P, op.tol, S, slot_i, slot_j, &n_edges);
  bool active[S];
  for (int e = 0; e < S; ++e) active[e] = hull_ok && e < n_edges;
  float* row = op.params + n * ConvexFootprint::kParams;
  float start[S * 2], normal[S * 2], edge_count;
  convex_edges_forward_one(0, P, S, pix, slot_i, slot_j, active, row + H, start, normal);
  convex_bound_one(0, P, S, start, normal, slot_i, slot_j, active, pix, op.opacities + n, op.sigma + n, &scale,
                   &valid, &hull_ok, &n_edges, op.width, op.height, op.margin_rel, op.margin_abs, op.miter_min,
                   op.bounds + 4 * n, op.radii + n, &edge_count);
  row[0] = edge_count;
  row[1] = op.delta[n];
  row[2] = scale;
  row[3] = op.sigma[n];
  row[4] = op.opacities[n];
  op.hull[n] = HullCode::pack(slot_i, slot_j, hull_ok ? n_edges : 0);
}

// Convex n of the fused backward: recomputes its pixels, takes the forward's hull from its HullCode,
// and runs the edges' backward, then the points' (convex_edges_backward_slot, convex_points_backward_one).
LE3D_HD void convex_project_backward_one(int64_t n, const PinholeCamera& cam, const ConvexProjectBackward& op) {
  constexpr int S = ConvexFootprint::kMaxEdges, H = ConvexFootprint::kHeader;
  const int P = op.P;
  const float* points = op.X + n * P * 3;
  float pix[kConvexMaxPoints * 2], depth, means2d[2], scale;
  bool valid;
  convex_points_forward_one(0, P, cam, op.near, op.far, points, pix, &depth, means2d, &scale, &valid);
  int64_t slot_i[S], slot_j[S];
  bool active[S];
  HullCode::unpack(op.hull[n], slot_i, slot_j, active);
  const float* grad = op.d_params + n * op.d_params_stride;
  float d_pix[kConvexMaxPoints * 2];
  for (int k = 0; k < 2 * P; ++k) d_pix[k] = 0.0f;
  for (int e = 0; e < S; ++e)
    convex_edges_backward_slot(0, e, P, S, pix, slot_i, slot_j, active, grad + H, d_pix, PlainAdd());
  op.d_delta[n] = grad[1];  // params' header: edge count, delta, s, sigma, opacity
  op.d_sigma[n] = grad[3];
  op.d_opacities[n] = grad[4];
  const float d_scale = grad[2];
  convex_points_backward_one(0, P, cam, points, &valid, d_pix, op.d_depths + n,
                             op.d_means2d ? op.d_means2d + 2 * n : nullptr, &d_scale, op.d_points + n * P * 3,
                             op.d_viewmat ? op.d_viewmat + 12 * n : nullptr, op.d_tap ? op.d_tap + 2 * n : nullptr);
}

}  // namespace le3d
