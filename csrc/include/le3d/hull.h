// 2D convex-hull edges of one convex's projected points: the all-triples test of
// convex_splat.projection.hull_edges_torch, in double, with the same formulas in the same order of
// operations, so that the CPU loop, the CUDA kernel and the torch twin take the same decisions.
// (On the GPU the products and sums are written with round-to-nearest intrinsics, which the
// compiler may not fuse into FMAs: a fused a*b - c*d would round differently from torch.)
#pragma once
#include <cmath>

#include "le3d/common.h"

namespace le3d {

LE3D_HD double hull_mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
LE3D_HD double hull_add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
LE3D_HD double hull_sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

// X(a, b) = p_a x p_b, G(a, b) = p_a . p_b for points q [K, 2]
LE3D_HD double hull_cross(const double* q, int a, int b) {
  return hull_sub(hull_mul(q[2 * a], q[2 * b + 1]), hull_mul(q[2 * a + 1], q[2 * b]));
}
LE3D_HD double hull_dot(const double* q, int a, int b) {
  return hull_add(hull_mul(q[2 * a], q[2 * b]), hull_mul(q[2 * a + 1], q[2 * b + 1]));
}

// Every pair's cross and dot product of K (<= KMAX) points q. On the host, a table filled once (the
// hull's triple loop reads each product many times). On the GPU each is recomputed where read: the
// tables would take 1 KB of local memory per thread, more than L1 and L2 hold for the resident
// threads of a 200k-convex launch, and a product is 2 multiplies and an add. Both return the same
// function of the same inputs, so the decisions are the same.
template <int KMAX>
struct PairProducts {
#if defined(__CUDA_ARCH__)
  const double* q;
  __device__ PairProducts(const double* points, int /*K*/) : q(points) {}
  __device__ double cross(int a, int b) const { return hull_cross(q, a, b); }
  __device__ double dot(int a, int b) const { return hull_dot(q, a, b); }
#else
  double X[KMAX][KMAX], G[KMAX][KMAX];
  PairProducts(const double* q, int K) {
    for (int a = 0; a < K; ++a)
      for (int b = 0; b < K; ++b) {
        X[a][b] = hull_cross(q, a, b);
        G[a][b] = hull_dot(q, a, b);
      }
  }
  double cross(int a, int b) const { return X[a][b]; }
  double dot(int a, int b) const { return G[a][b]; }
#endif
};

// q: K (<= KMAX) points, centred on their mean. Sets edge[i * K + j] (zeroed by the caller) for
// each hull edge i -> j (interior on its left) and returns whether the edges form one cycle of >= 3.
template <int KMAX>
LE3D_HD bool hull_edges_one(const double* q, int K, double tol, bool* edge) {
  bool dup[KMAX];
  for (int a = 0; a < K; ++a) {
    dup[a] = false;
    for (int b = 0; b < a; ++b) {
      const double d = fmax(fabs(hull_sub(q[2 * a], q[2 * b])), fabs(hull_sub(q[2 * a + 1], q[2 * b + 1])));
      if (d <= tol) dup[a] = true;
    }
  }
  const PairProducts<KMAX> pp(q, K);
  const double tol2 = tol * tol;
  int out_deg[KMAX], in_deg[KMAX], edges = 0;
  for (int a = 0; a < K; ++a) out_deg[a] = in_deg[a] = 0;
  for (int i = 0; i < K; ++i) {
    if (dup[i]) continue;
    const double gii = pp.dot(i, i);
    for (int j = 0; j < K; ++j) {
      if (j == i || dup[j]) continue;
      const double gij = pp.dot(i, j);
      const double l2 = hull_sub(hull_add(gii, pp.dot(j, j)), 2 * gij);
      const double len2 = l2 > 0 ? l2 : 0;
      // len = sqrt(len2) and tol * len are needed only near the tolerance: a length beyond 2 tol, or a
      // cross product beyond 2 tol len either way (squares compared), decides without them, and
      // the exact tests below take every other case (so the decisions are the exact tests').
      const double decisive = 4.0 * tol2 * len2;
      double len = -1.0, tol_len = 0.0;
      if (!(len2 > 4.0 * tol2)) {
        len = sqrt(len2);
        if (!(len > tol)) continue;
        tol_len = hull_mul(tol, len);
      }
      const double xij = pp.cross(i, j);
      bool all_fine = true;
      for (int k = 0; k < K && all_fine; ++k) {
        if (k == i || k == j || dup[k]) continue;
        const double cross = hull_add(hull_add(xij, pp.cross(j, k)), pp.cross(k, i));
        if (cross * cross > decisive) {  // far from the line: inside if to the left, else not fine
          all_fine = cross > 0;
          continue;
        }
        if (len < 0) {
          len = sqrt(len2);
          tol_len = hull_mul(tol, len);
        }
        const double dot = hull_sub(hull_sub(pp.dot(j, k), pp.dot(i, k)), hull_sub(gij, gii));
        const bool inside = cross > tol_len;
        const bool between = fabs(cross) <= tol_len && dot > 0 && dot < len2;
        all_fine = inside || between;
      }
      if (all_fine) {
        edge[i * K + j] = true;
        ++out_deg[i];
        ++in_deg[j];
        ++edges;
      }
    }
  }
  bool cycle = edges >= 3;
  for (int a = 0; a < K && cycle; ++a) cycle = out_deg[a] == in_deg[a] && out_deg[a] <= 1;
  return cycle;
}

// One convex's hull as parameter slots (see hull_api.h; the twin is hull_slots_torch), from its K
// (<= KMAX) pixels, which it centres itself in double as the twin does (p.double() - p.double().mean(1):
// a sequential sum divided by K, which is torch's CPU mean), so that the decisions stay the same.
// Writes slot_i/slot_j[slots] (slots >= K) and *n_edges; returns whether the hull is valid. The CPU loop
// and the CUDA kernel both call this, so both take the same decisions.
template <int KMAX, typename Pixel, typename Index>
LE3D_HD bool hull_slots_one(const Pixel* pixels, int K, double tol, int slots, Index* slot_i, Index* slot_j,
                            Index* n_edges) {
  double mean[2] = {static_cast<double>(pixels[0]), static_cast<double>(pixels[1])}, q[KMAX * 2] = {};
  for (int k = 1; k < K; ++k) {
    mean[0] = hull_add(mean[0], static_cast<double>(pixels[2 * k]));
    mean[1] = hull_add(mean[1], static_cast<double>(pixels[2 * k + 1]));
  }
  mean[0] /= K;
  mean[1] /= K;
  for (int k = 0; k < K; ++k) {
    q[2 * k] = hull_sub(static_cast<double>(pixels[2 * k]), mean[0]);
    q[2 * k + 1] = hull_sub(static_cast<double>(pixels[2 * k + 1]), mean[1]);
  }
  bool edge[KMAX * KMAX];
  for (int e = 0; e < K * K; ++e) edge[e] = false;
  const bool ok = hull_edges_one<KMAX>(q, K, tol, edge);
  // target[i]: the first j with an edge i -> j (0 if none); vertices with an outgoing edge take the
  // first slots in index order, the others follow (the twin's stable argsort), slots past K are 0.
  int target[KMAX], order[KMAX], count = 0;
  for (int i = 0; i < K; ++i) {
    target[i] = 0;
    for (int j = K - 1; j >= 0; --j)
      if (edge[i * K + j]) target[i] = j;
  }
  for (int i = 0; i < K; ++i)
    if (edge[i * K + target[i]]) order[count++] = i;
  *n_edges = count;
  for (int i = 0, rest = count; i < K; ++i)
    if (!edge[i * K + target[i]]) order[rest++] = i;
  for (int s = 0; s < K; ++s) {
    slot_i[s] = order[s];
    slot_j[s] = target[order[s]];
  }
  for (int s = K; s < slots; ++s) {
    slot_i[s] = 0;
    slot_j[s] = target[0];
  }
  return ok;
}

}  // namespace le3d
