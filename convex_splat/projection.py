"""Projection of smooth 3D convexes to screen-space footprints (shared by every rasterizer backend).

Each step has a torch twin here (any device and dtype; the definition the tests compare with) and, for
float32 CPU and CUDA tensors, a compiled version in le3d._C (csrc/include/le3d/hull.h and
convex_project.h: one loop or one GPU thread per convex). On such tensors project_convexes runs every
step for a convex in one compiled pass per direction (ProjectConvexes), not a launch per step.

Per convex j (K points P_jk, K in 3..8):
- every point goes to camera space with `viewmat` and to pixels with K; the centroid's view z is the
  depth and sort key, and s_j = z_j / ((fx + fy) / 2) converts pixels to world units at that depth;
- the 2D convex hull of the projected points is found by brute force over ordered pairs (K <= 8):
  edge i -> j is a hull edge iff every other (non-duplicate) point lies strictly on its inner side,
  or on its line strictly between i and j. Collinear points are therefore dropped, and a point within
  `HULL_TOL_PX` of an earlier point is a duplicate and dropped. A hull needs >= 3 edges forming one
  closed cycle, else the convex is culled;
- each hull edge gives a unit outward normal n and offset c (L(q) = n.q + c, pixels, negative inside),
  packed for footprint_convex.h; unused edge slots are zero.

The hull topology is piecewise constant and selected without gradient; autograd carries gradients
from the packed params to every point through the edge normals/offsets and through s_j.

Screen bound: alpha >= 1/255 only where phi <= ln(255 o - 1) / sigma, and phi >= max_e s L_e, so the
alpha >= 1/255 region lies inside the hull with every edge pushed out by g = ln(255 o - 1)/(sigma s)
pixels. The bound is the bounding box of that offset polygon, whose vertices are the hull vertices
moved by the miter g (n_in + n_out) / (1 + n_in.n_out). (Growing the hull's own box by g is not
conservative at acute corners, where the offset polygon reaches g / sin(angle/2) from the vertex.)
For unit normals 1 + n_in.n_out = |n_in + n_out|^2 / 2, the form computed: at a needle corner
(n_in close to -n_out) 1 + n_in.n_out cancels to a float32 rounding error of ~1e-7 absolute, which
moved such bounds by up to 3.5% of their size; the sum's squared length is accurate to ~1e-7 relative.
"""
from __future__ import annotations

import math

import torch

from le3d._ext import load_extension
from le3d.raster.constants import ALPHA_MIN, CONVEX_HEADER, CONVEX_MAX_EDGES
from le3d.raster.project_function import viewmat_grad_from_shares
from le3d.raster.projection import bounds_in_image, culled_bounds

HULL_TOL_PX = 1e-3  # distance (pixels) under which points are duplicates / collinear
_BOUND_MARGIN_REL = 1e-3  # float-rounding slack on the exact bound
_BOUND_MARGIN_ABS = 1e-2  # pixels
_MITER_MIN = 1e-6  # |n_in + n_out|^2 / 2 floor (needle corners get a huge but finite bound)
CONVEX_MAX_POINTS = 8  # le3d/convex_project.h kConvexMaxPoints: the compiled passes' limit
_CHUNK = {"cpu": 4096, "cuda": 65536}  # convexes per chunk in the hull search (memory O(chunk K^3))


@torch.no_grad()
def hull_edges(p: torch.Tensor, tol: float = HULL_TOL_PX, compiled: bool = True):
    """[N, K, 2] pixel points -> (edge [N, K, K] bool: i -> j is a hull edge, ok [N] bool).

    Interior is on the left of i -> j in (x, y) coordinates: (-dy, dx).(q - p_i) > 0, so the outward
    normal is (dy, -dx) / |d|. ok is False when the edges do not form one closed cycle of >= 3 edges.
    CPU and CUDA tensors use the compiled loops (le3d._C.hull_edges_cpu / hull_edges_cuda) unless
    `compiled` is False, others (and builds without the extension) the torch twin; all take the same
    decisions (tests/test_convex_raster.py).
    """
    p = p.double()  # the topology decision in double: consistent orientation tests
    p = p - p.mean(1, keepdim=True)  # smaller magnitudes: less cancellation below
    ext = load_extension() if compiled else None
    if ext is not None and p.device.type == "cpu":
        return tuple(ext.hull_edges_cpu(p, float(tol)))
    if ext is not None and p.device.type == "cuda" and ext.with_cuda and p.shape[1] <= 8:
        return tuple(ext.hull_edges_cuda(p, float(tol)))
    return hull_edges_torch(p, tol)


@torch.no_grad()
def hull_edges_torch(p: torch.Tensor, tol: float = HULL_TOL_PX):
    """hull_edges on centred float64 points [N, K, 2], in torch (any device): the all-triples test."""
    N, K, _ = p.shape
    chunk = _CHUNK.get(p.device.type, 4096)
    if N > chunk:
        parts = [hull_edges_torch(p[i:i + chunk], tol) for i in range(0, N, chunk)]
        return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])
    idx = torch.arange(K, device=p.device)
    diff = (p[:, :, None, :] - p[:, None, :, :]).abs().amax(-1)  # [N, K, K]
    earlier = idx[None, :] < idx[:, None]  # [k, k'] k' < k
    dup = ((diff <= tol) & earlier[None]).any(-1)  # [N, K]
    alive = ~dup
    x, y = p[..., 0], p[..., 1]
    X = x[:, :, None] * y[:, None, :] - y[:, :, None] * x[:, None, :]  # X[a, b] = p_a x p_b
    G = x[:, :, None] * x[:, None, :] + y[:, :, None] * y[:, None, :]  # G[a, b] = p_a . p_b
    len2 = (G.diagonal(dim1=1, dim2=2)[:, :, None] + G.diagonal(dim1=1, dim2=2)[:, None, :] - 2 * G).clamp(min=0)
    length = len2.sqrt()  # [N, i, j]
    # cross[i, j, k] = (p_j - p_i) x (p_k - p_i) = X[i, j] + X[j, k] + X[k, i]
    cross = X[:, :, :, None] + X[:, None, :, :] + X.transpose(1, 2)[:, :, None, :]
    # dot[i, j, k] = (p_j - p_i) . (p_k - p_i) = G[j, k] - G[i, k] - G[i, j] + G[i, i]
    gii = G.diagonal(dim1=1, dim2=2)
    dot = G[:, None, :, :] - G[:, :, None, :] - (G - gii[:, :, None])[:, :, :, None]
    tol_len = (tol * length)[..., None]
    inside = cross > tol_len
    between = (cross.abs() <= tol_len) & (dot > 0) & (dot < len2[..., None])
    is_end = (idx[:, None, None] == idx[None, None, :]) | (idx[None, :, None] == idx[None, None, :])  # [i, j, k]
    fine = inside | between | (is_end[None] | dup[:, None, None, :])
    edge = fine.all(-1) & alive[:, :, None] & alive[:, None, :] & (length > tol)
    edge &= ~torch.eye(K, dtype=torch.bool, device=p.device)[None]
    out_deg = edge.sum(2)
    in_deg = edge.sum(1)
    n_edges = edge.sum((1, 2))
    ok = ((out_deg == in_deg) & (out_deg <= 1)).all(-1) & (n_edges >= 3)
    return edge, ok


@torch.no_grad()
def hull_slots(pix: torch.Tensor, tol: float = HULL_TOL_PX):
    """[N, K, 2] pixel points -> (slot_i, slot_j [N, 8] int64, n_edges [N] int64, ok [N] bool).

    Slot e holds the hull edge slot_i -> slot_j: the hull's vertices take the first n_edges slots in
    point order (each with the edge leaving it), the other points and zeros pad the rest. CPU and CUDA
    tensors use le3d._C.hull_slots_cpu / hull_slots_cuda (one loop or one thread per convex over
    le3d/hull.h's hull_slots_one, centring the points itself), others hull_slots_torch over hull_edges.
    """
    ext = load_extension()
    if ext is not None and pix.device.type == "cpu":
        return tuple(ext.hull_slots_cpu(pix.contiguous(), float(tol), CONVEX_MAX_EDGES))
    if ext is not None and pix.device.type == "cuda" and ext.with_cuda and pix.shape[1] <= 8:
        return tuple(ext.hull_slots_cuda(pix.contiguous(), float(tol), CONVEX_MAX_EDGES))
    return hull_slots_torch(pix, tol)


@torch.no_grad()
def hull_slots_torch(pix: torch.Tensor, tol: float = HULL_TOL_PX, compiled_edges: bool = True):
    """hull_slots from hull_edges' [N, K, K] edge matrix, in torch (any device; the edge matrix itself from
    the compiled loops when `compiled_edges` and hull_edges has them)."""
    N, Kp, _ = pix.shape
    edge, ok = hull_edges(pix, tol, compiled=compiled_edges)
    has_out = edge.any(-1)  # [N, K]
    target = edge.int().argmax(-1)  # [N, K]: j of the edge leaving i (the first; 0 if none)
    order = torch.argsort((~has_out).int(), dim=-1, stable=True)  # hull vertices first
    if Kp < CONVEX_MAX_EDGES:
        order = torch.cat([order, order.new_zeros(N, CONVEX_MAX_EDGES - Kp)], -1)
    slot_i = order[:, :CONVEX_MAX_EDGES]
    return slot_i, torch.gather(target, 1, slot_i), has_out.sum(-1), ok


def compiled_for(t: torch.Tensor):
    """le3d._C when it runs the convex projection's compiled steps on t's device (float32 CPU tensors,
    or CUDA ones in a CUDA build), else None (the torch twins run)."""
    ext = load_extension()
    if ext is None or t.dtype != torch.float32:
        return None
    if t.device.type == "cpu" or (t.device.type == "cuda" and ext.with_cuda):
        return ext
    return None


def edge_params(pix, slot_i, slot_j, active):
    """The hull edges as footprint parameters: [N, S, 3] unit outward normal and offset c (L(q) = n.q + c,
    pixels; zero where not active), differentiable w.r.t. pix, plus each slot's first point and
    normal (detached, for the screen bound). Float32 CPU and CUDA tensors use the compiled loops
    (le3d._C.convex_edges_forward / _backward), others edge_params_torch."""
    if compiled_for(pix) is not None:
        return ConvexEdges.apply(pix.contiguous(), slot_i.contiguous(), slot_j.contiguous(), active.contiguous())
    return edge_params_torch(pix, slot_i, slot_j, active)


def edge_params_torch(pix, slot_i, slot_j, active):
    """edge_params in torch (any device, any dtype), differentiable by autograd."""
    a = torch.gather(pix, 1, slot_i[..., None].expand(-1, -1, 2))
    b = torch.gather(pix, 1, slot_j[..., None].expand(-1, -1, 2))
    dummy = pix.new_tensor([1.0, 0.0])  # inactive slots: a placeholder direction, no gradient
    dvec = torch.where(active[..., None], b - a, dummy)
    a = torch.where(active[..., None], a, torch.zeros_like(a))
    length = dvec.norm(dim=-1, keepdim=True)
    nrm = torch.stack([dvec[..., 1], -dvec[..., 0]], -1) / length
    c = -(nrm * a).sum(-1)
    zero = torch.zeros_like(c)
    edges = torch.stack([torch.where(active, nrm[..., 0], zero), torch.where(active, nrm[..., 1], zero),
                         torch.where(active, c, zero)], -1)
    return edges, a.detach(), nrm.detach()


class ConvexEdges(torch.autograd.Function):
    """edge_params over le3d._C's compiled loops (one forward, one backward; CPU or CUDA)."""

    @staticmethod
    def forward(ctx, pix, slot_i, slot_j, active):
        edges, start, normal = load_extension().convex_edges_forward(pix, slot_i, slot_j, active)
        ctx.save_for_backward(pix, slot_i, slot_j, active)
        ctx.mark_non_differentiable(start, normal)
        return edges, start, normal

    @staticmethod
    def backward(ctx, d_edges, _d_start, _d_normal):
        pix, slot_i, slot_j, active = ctx.saved_tensors
        d_pix = load_extension().convex_edges_backward(pix, slot_i, slot_j, active, d_edges.contiguous())
        return d_pix, None, None, None


@torch.no_grad()
def convex_bounds(start, normal, slot_i, slot_j, active, pix, opacities, sigma, s, valid, hull_ok, n_edges,
                  width: int, height: int):
    """Each convex's screen bound [N, 4] (culled: xmin > xmax), radius [N] int32 and edge count [N] (0 when
    culled): its hull (slot e: from start[:, e], unit outward normal normal[:, e], where active) with every
    edge pushed out by the alpha >= 1/255 reach (see the module docstring), kept when valid, with a hull,
    opacity > 1/255, finite pixels and bound, and reaching the image. Float32 CPU and CUDA tensors use
    le3d._C.convex_bounds (one loop or GPU thread per convex), others convex_bounds_torch."""
    ext = compiled_for(start)
    if ext is not None:
        return tuple(ext.convex_bounds(
            start.contiguous(), normal.contiguous(), slot_i.contiguous(), slot_j.contiguous(), active.contiguous(),
            pix.detach().contiguous(), opacities.detach().float().contiguous(), sigma.detach().float().contiguous(),
            s.detach().float().contiguous(), valid.contiguous(), hull_ok.contiguous(), n_edges.contiguous(),
            int(width), int(height), _BOUND_MARGIN_REL, _BOUND_MARGIN_ABS, _MITER_MIN))
    return convex_bounds_torch(start, normal, slot_i, slot_j, active, pix, opacities, sigma, s, valid, hull_ok,
                               n_edges, width, height)


@torch.no_grad()
def convex_bounds_torch(start, normal, slot_i, slot_j, active, pix, opacities, sigma, s, valid, hull_ok, n_edges,
                        width: int, height: int):
    """convex_bounds in torch (any device and dtype)."""
    N = start.shape[0]
    o = opacities.detach()
    reach = torch.log((255.0 * o - 1.0).clamp(min=1e-30)) / sigma.detach()  # phi threshold (world)
    g = reach.clamp(min=0) / s.detach().abs().clamp(min=1e-30)  # pixels
    bounds = screen_bounds_torch(start, normal, slot_i, slot_j, active, g)
    keep = valid & hull_ok & (o > ALPHA_MIN) & torch.isfinite(bounds).all(-1)
    keep &= torch.isfinite(pix.detach()).all(-1).all(-1)
    bounds = torch.where(keep[:, None], bounds, torch.zeros_like(bounds))
    keep &= bounds_in_image(bounds, width, height)
    bounds = torch.where(keep[:, None], bounds, culled_bounds(N, bounds))
    half = 0.5 * (bounds[:, 2:] - bounds[:, :2]).amax(-1)
    radii = torch.where(keep, torch.ceil(half), torch.zeros_like(half)).int()
    e_count = torch.where(keep, n_edges, torch.zeros_like(n_edges)).to(start.dtype)
    return bounds, radii, e_count


@torch.no_grad()
def screen_bounds_torch(start, normal, slot_i, slot_j, active, grow):
    """screen_bounds in torch (any device): the bounding box of the hull vertices moved by their miters."""
    N, S, _ = start.shape
    # Miter offsets of the hull vertices: every edge pushed out by grow. Slot e is the edge
    # a_e -> b_e leaving vertex a_e; the edge entering a_e is the slot whose b is a_e.
    n_in_at = torch.zeros(N, S, 2, dtype=normal.dtype, device=normal.device)
    n_in_at.scatter_add_(1, slot_j[..., None].expand(-1, -1, 2),
                         torch.where(active[..., None], normal, torch.zeros_like(normal)))
    n_in = torch.gather(n_in_at, 1, slot_i[..., None].expand(-1, -1, 2))
    n_sum = n_in + normal
    miter = n_sum / (0.5 * n_sum.square().sum(-1, keepdim=True)).clamp(min=_MITER_MIN)
    vert = start + grow[:, None, None] * miter
    inf = torch.full_like(vert, math.inf)
    lo = torch.where(active[..., None], vert, inf).amin(1)
    hi = torch.where(active[..., None], vert, -inf).amax(1)
    span = (hi - lo).clamp(min=0)
    lo = lo - span * _BOUND_MARGIN_REL - _BOUND_MARGIN_ABS - grow[:, None] * _BOUND_MARGIN_REL
    hi = hi + span * _BOUND_MARGIN_REL + _BOUND_MARGIN_ABS + grow[:, None] * _BOUND_MARGIN_REL
    return torch.cat([lo, hi], -1)


def project_points_torch(points, viewmat, K, near: float, far: float, tap: torch.Tensor | None = None):
    """[N, K, 3] world points -> (pix [N, K, 2], depth [N]: view z of the centroid, means2d [N, 2]: its
    projection, s [N]: pixels to world units at that depth, valid [N]: every point beyond near and the
    centroid before far), in torch (any device and dtype), differentiable by autograd (K included).
    Culled convexes are projected as if at depth 1 (finite, unused). tap [N, 2] (optional) is added to
    each convex's pixels as tap - tap.detach() (see project_convexes). The compiled version is the first
    step of the fused pass (le3d/convex_project.h, convex_points_forward_one / _backward_one)."""
    R = viewmat[:3, :3]
    t = viewmat[:3, 3]
    cam = points @ R.T + t
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    z = cam[..., 2]
    zc = z.mean(-1)  # view z of the centroid (the transform is affine)
    valid = (z > near).all(-1) & (zc <= far)
    z_safe = torch.where(valid[:, None], z, torch.ones_like(z))
    pix = torch.stack([fx * cam[..., 0] / z_safe + cx, fy * cam[..., 1] / z_safe + cy], dim=-1)  # [N,K,2]
    if tap is not None:
        pix = pix + (tap - tap.detach())[:, None, :]
    cen = cam.mean(1)
    zc_safe = torch.where(valid, zc, torch.ones_like(zc))
    means2d = torch.stack([fx * cen[:, 0] / zc_safe + cx, fy * cen[:, 1] / zc_safe + cy], dim=-1)
    s = zc_safe / (0.5 * (fx + fy))
    return pix, zc, means2d, s, valid


def project_convexes(points, delta, sigma, opacities, viewmat, K, width: int, height: int,
                     near: float = 0.01, far: float = 1e10, means2d_tap: torch.Tensor | None = None):
    """Returns (params [N, 29], means2d [N, 2], depths [N], bounds [N, 4], radii [N] int32).

    depths is the view-space z of each centroid. means2d is the centroid's projection; if
    `means2d_tap` ([N, 2], any value, requiring grad) is given, it is added to every projected point
    as (tap - tap.detach()), so that tap.grad is the gradient of a screen-space translation of the
    whole convex (the densification statistic) without changing any other gradient.
    bounds mark culled convexes with xmin > xmax.
    Float32 CPU and CUDA tensors (K without a gradient, 3..8 points) take the fused compiled pass
    (ProjectConvexes), everything else project_convexes_by_steps; both compute the same thing.
    """
    if fused_applies(points, delta, sigma, opacities, viewmat, K, means2d_tap):
        tensors = [t.contiguous() for t in (points, delta, sigma, opacities, viewmat, K)]
        return ProjectConvexes.apply(*tensors, means2d_tap, int(width), int(height), float(near), float(far))
    return project_convexes_by_steps(points, delta, sigma, opacities, viewmat, K, width, height, near, far,
                                     means2d_tap)


def fused_applies(points, delta, sigma, opacities, viewmat, K, tap) -> bool:
    """Whether ProjectConvexes can run these inputs: float32 tensors on a device le3d._C runs (CPU, or
    CUDA in a CUDA build), 3..8 points per convex, and no gradient wanted for K (the compiled backward
    has none)."""
    if compiled_for(points) is None or K.requires_grad or not 3 <= points.shape[1] <= CONVEX_MAX_POINTS:
        return False
    return all(t.dtype == torch.float32 for t in (delta, sigma, opacities, viewmat, K)) and (
        tap is None or tap.dtype == torch.float32)


class ProjectConvexes(torch.autograd.Function):
    """project_convexes in one compiled pass per direction (le3d._C.convex_project_forward / _backward:
    a loop iteration or GPU thread per convex runs every step of project_convexes_by_steps, its twin).
    The forward keeps each convex's hull slots (an int64 code) for the backward, which recomputes the
    pixels. tap: the means2d tap (or None); its gradient is the sum of the convex's pixel gradients."""

    @staticmethod
    def forward(ctx, points, delta, sigma, opacities, viewmat, K, tap, width: int, height: int, near: float,
                far: float):
        params, means2d, depths, bounds, radii, hull = load_extension().convex_project_forward(
            points, delta, sigma, opacities, viewmat, K, width, height, near, far, HULL_TOL_PX, _BOUND_MARGIN_REL,
            _BOUND_MARGIN_ABS, _MITER_MIN)
        ctx.save_for_backward(points, viewmat, K, hull)
        ctx.config = (near, far)
        ctx.mark_non_differentiable(bounds, radii)
        ctx.set_materialize_grads(False)  # an output outside the loss arrives as None (read as zeros)
        return params, means2d, depths, bounds, radii

    @staticmethod
    def backward(ctx, d_params, d_means2d, d_depths, _d_bounds, _d_radii):
        points, viewmat, K, hull = ctx.saved_tensors
        near, far = ctx.config
        n = points.shape[0]
        if d_params is None:
            d_params = points.new_zeros(n, CONVEX_HEADER + 3 * CONVEX_MAX_EDGES)
        elif d_params.stride(-1) != 1:
            d_params = d_params.contiguous()
        d_means2d = points.new_empty(0) if d_means2d is None else d_means2d.contiguous()
        d_depths = points.new_zeros(n) if d_depths is None else d_depths.contiguous()
        viewmat_grad, tap_grad = ctx.needs_input_grad[4], ctx.needs_input_grad[6]
        d_points, d_delta, d_sigma, d_opacities, d_view, d_tap = load_extension().convex_project_backward(
            points, viewmat, K, hull, near, far, d_params, d_means2d, d_depths, viewmat_grad, tap_grad)
        d_viewmat = viewmat_grad_from_shares(d_view, viewmat) if viewmat_grad else None
        return (d_points, d_delta, d_sigma, d_opacities, d_viewmat, None, d_tap if tap_grad else None, None, None,
                None, None)


def project_convexes_by_steps(points, delta, sigma, opacities, viewmat, K, width: int, height: int,
                              near: float = 0.01, far: float = 1e10, means2d_tap: torch.Tensor | None = None,
                              compiled: bool = True):
    """project_convexes one step at a time (project_points_torch, hull_slots, edge_params, convex_bounds),
    the last three compiled where they can be, or (compiled=False, the "torch" backend's projection)
    their torch twins. The path of float64 and of gradients w.r.t. K, and what the fused pass is tested
    against."""
    N, Kp, _ = points.shape
    if compiled:
        slots_fn, edges_fn, bounds_fn = hull_slots, edge_params, convex_bounds
    else:
        edges_fn, bounds_fn = edge_params_torch, convex_bounds_torch

        def slots_fn(pix):
            return hull_slots_torch(pix, compiled_edges=False)
    pix, zc, means2d, s, valid = project_points_torch(points, viewmat, K, near, far, means2d_tap)

    slot_i, slot_j, n_edges, hull_ok = slots_fn(pix.detach())
    with torch.no_grad():
        slot = torch.arange(CONVEX_MAX_EDGES, device=points.device)
        active = (slot[None, :] < n_edges[:, None]) & hull_ok[:, None]  # [N, 8]
    edges, start, normal = edges_fn(pix, slot_i, slot_j, active)  # [N, 8, 3]

    bounds, radii, e_count = bounds_fn(start, normal, slot_i, slot_j, active, pix, opacities, sigma, s, valid,
                                       hull_ok, n_edges, width, height)
    header = torch.stack([e_count.to(points.dtype), delta, s, sigma, opacities], -1)
    params = torch.cat([header, edges.reshape(N, 3 * CONVEX_MAX_EDGES)], -1)
    assert params.shape[1] == CONVEX_HEADER + 3 * CONVEX_MAX_EDGES
    return params, means2d, zc, bounds.float().contiguous(), radii
