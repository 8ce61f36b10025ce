// CPU loops of the convex projection's passes (le3d/convex_project_api.h): OpenMP over convexes, each
// running the per-convex function of le3d/convex_project.h. A loop per pass instead of the torch
// twins' dozens of ops and their autograd graph (at 20k convexes those cost more than the hull).
#include "le3d/convex_project.h"
#include "le3d/convex_project_api.h"

namespace le3d {

void convex_loop_cpu(const ConvexEdgesForward& op) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op.N; ++n)
    convex_edges_forward_one(n, op.K, op.S, op.P, op.SI, op.SJ, op.ACT, op.E, op.A, op.NR);
}

void convex_loop_cpu(const ConvexEdgesBackward& op) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op.N; ++n)
    for (int e = 0; e < op.S; ++e)
      convex_edges_backward_slot(n, e, op.K, op.S, op.P, op.SI, op.SJ, op.ACT, op.G, op.D, PlainAdd());
}

void convex_loop_cpu(const ConvexBounds& op) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op.N; ++n)
    convex_bound_one(n, op.K, op.S, op.A, op.NR, op.SI, op.SJ, op.ACT, op.PIX, op.O, op.SIGMA, op.SCALE, op.V, op.OK,
                     op.NE, op.width, op.height, op.margin_rel, op.margin_abs, op.miter_min, op.B, op.RADII, op.EC);
}

void convex_loop_cpu(const ConvexProjectForward& op) {
  const PinholeCamera cam(op.viewmat, op.K);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op.N; ++n) convex_project_forward_one(n, cam, op);
}

void convex_loop_cpu(const ConvexProjectBackward& op) {
  const PinholeCamera cam(op.viewmat, op.K);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op.N; ++n) convex_project_backward_one(n, cam, op);
}

}  // namespace le3d
