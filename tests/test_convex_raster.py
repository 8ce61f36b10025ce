"""convex_splat.rasterize_convexes: reference vs compiled backends, gradcheck, analytic checks."""
from __future__ import annotations

import math

import pytest
import torch
from scenes import camera

from convex_splat import rasterize_convexes
from convex_splat.projection import HULL_TOL_PX, hull_edges, project_convexes
from le3d.raster.constants import ALPHA_MIN
from le3d.raster.reference import convex_raw_alpha

W, H = 40, 32
EYE = (0.3, -0.2, -3.0)  # scenes.camera's eye




def random_convexes(n, k, seed=0, C=3, dtype=torch.float32, degenerate=True):
    """Random convexes around the origin, with degenerate ones mixed in."""
    g = torch.Generator().manual_seed(seed)
    d64 = torch.float64
    centres = (torch.rand(n, 3, generator=g, dtype=d64) * 2 - 1) * 0.8
    size = torch.rand(n, 1, 1, generator=g, dtype=d64) * 0.25 + 0.05
    points = centres[:, None] + size * torch.randn(n, k, 3, generator=g, dtype=d64)
    if degenerate:
        line = torch.linspace(-1, 1, k, dtype=d64)[:, None] * torch.tensor([0.2, 0.1, 0.05], dtype=d64)
        points[0] = centres[0] + line  # all collinear
        points[1] = centres[1]  # all coincident
        points[2, 1] = points[2, 0]  # one duplicate pair, still a valid hull
        eye = torch.tensor(EYE, dtype=d64)  # camera() looks from EYE at the origin
        points[3] = points[3] - centres[3] + 1.5 * eye  # behind the camera
        points[4, 0] = eye * (1 - 0.001 / eye.norm())  # straddles the near plane (view z = 0.001)
    delta = torch.exp(torch.rand(n, generator=g, dtype=d64) * 3 + 0.5)
    sigma = torch.exp(torch.rand(n, generator=g, dtype=d64) * 3 + 1.0)
    opac = torch.rand(n, generator=g, dtype=d64) * 0.9 + 0.05
    feats = torch.rand(n, C, generator=g, dtype=d64)
    return [t.to(dtype) for t in (points, delta, sigma, opac, feats)]


def _render(inputs, backend, nearfar_k=2, with_coords=True):
    points, delta, sigma, opac, feats, bg, viewmat, K = inputs
    coords = None
    if with_coords:
        zc = (points.mean(1) @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
        coords = (1 - 1 / zc.detach().clamp(min=0.1)).clone().requires_grad_(True)
    out = rasterize_convexes(points, delta, sigma, opac, feats, viewmat, K, W, H, background=bg,
                             backend=backend, distortion_coord=coords, nearfar_k=nearfar_k)
    return out, coords


def _compare(backend, device, k, seed, n=24, pixel_slope=None, C=3, grad_K=False):
    """pixel_slope: (lo, hi) sets each convex's delta so that delta s (its logsumexp's slope per
    pixel) is uniform in that range. C: feature channels. grad_K: K needs a gradient too (the compiled
    backends then project step by step, project_convexes_by_steps, instead of the fused pass)."""
    pts, delta, sigma, opac, feats = random_convexes(n, k, seed=seed, C=C)
    viewmat, K = camera(W, H)
    if pixel_slope is not None:
        z = (pts.mean(1) @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2].abs()
        s = z / ((K[0, 0] + K[1, 1]) / 2)  # world units per pixel at the convex's depth
        lo, hi = pixel_slope
        delta = (lo + (hi - lo) * torch.rand(n, generator=torch.Generator().manual_seed(seed))) / s
    bg = torch.linspace(0.1, 0.3, C)
    base = [pts, delta, sigma, opac, feats, bg, viewmat, K]
    gen = torch.Generator().manual_seed(seed + 100)
    weights = {name: torch.randn(shape, generator=gen).to(device)
               for name, shape in (("image", (H, W, C)), ("alpha", (H, W)), ("depth", (H, W)),
                                   ("distortion", (H, W)), ("near_depth", (H, W)), ("far_depth", (H, W)))}
    results = {}
    for be, dev in (("torch", device), (backend, device)):
        ins = [t.to(dev).clone().requires_grad_(i != 7 or grad_K) for i, t in enumerate(base)]  # base[7]: K
        out, coords = _render(ins, be)
        out.means2d.retain_grad()
        loss = sum((getattr(out, name) * w).sum() for name, w in weights.items())
        loss.backward()
        results[be] = (out, [t.grad for t in ins] + [coords.grad, out.means2d.grad])
    (ref, gref), (got, ggot) = results["torch"], results[backend]
    for name in weights:
        a, b = getattr(ref, name), getattr(got, name)
        assert (a - b).abs().max().item() < 1e-5, name
    assert torch.equal(ref.radii, got.radii)
    names = ["points", "delta", "sigma", "opacities", "features", "background", "viewmat", "K", "coords", "means2d"]
    for name, a, b in zip(names, gref, ggot):
        if name == "K" and not grad_K:
            assert a is None and b is None
            continue
        assert a is not None and b is not None, name
        scale = a.abs().max().item()
        assert torch.isfinite(b).all(), name
        assert (a - b).abs().max().item() <= 1e-3 * max(scale, 1e-6), (name, (a - b).abs().max().item(), scale)
    return ref


@pytest.mark.parametrize("k,seed,C,grad_K", [(3, 0, 3, False), (6, 1, 3, False), (6, 1, 3, True), (8, 2, 3, False),
                                             (8, 2, 3, True), (6, 4, 8, False), (6, 5, 19, False), (8, 8, 19, False)])
def test_cpu_matches_reference(k, seed, C, grad_K):
    ref = _compare("cpu", "cpu", k, seed, C=C, grad_K=grad_K)
    assert ref.radii[:2].eq(0).all()  # collinear, coincident
    assert ref.radii[3:5].eq(0).all()  # behind, straddling near
    assert ref.radii[2] > 0 or k == 3  # a duplicate point does not cull a K >= 6 convex
    assert (ref.radii > 0).sum() >= 10
    assert ref.alpha.max() > 0.3


# (with_coords, nearfar_k, C) of renders with some optional outputs (the other tests have both); C > 4:
# the kernels that keep the distortion's sums whether or not the render has the output
SOME_OPTIONAL_OUTPUTS = dict(argnames="with_coords,nearfar_k,C",
                             argvalues=[(False, 0, 3), (True, 0, 3), (False, 2, 3), (False, 0, 8), (False, 2, 8)],
                             ids=["neither", "distortion", "nearfar", "neither-C8", "nearfar-C8"])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize(**SOME_OPTIONAL_OUTPUTS)
def test_backend_matches_reference_with_some_optional_outputs(backend, with_coords, nearfar_k, C):
    """Colour, alpha and depth, with the distortion or near/far or neither (each set saves its own aux
    layout; without a distortion coordinate the C <= 4 kernels skip its running sums): values and the
    gradients of every input against the reference."""
    pts, delta, sigma, opac, feats = random_convexes(24, 6, seed=4, C=C)
    viewmat, K = camera(W, H)
    base = [pts, delta, sigma, opac, feats, torch.linspace(0.1, 0.3, C), viewmat, K]
    names = ["image", "alpha", "depth"] + ["distortion"] * with_coords + ["near_depth", "far_depth"] * (nearfar_k > 0)
    gen = torch.Generator().manual_seed(3)
    weights = [torch.randn((H, W, C) if name == "image" else (H, W), generator=gen).to(backend) for name in names]
    results = []
    for be in ("torch", backend):
        ins = [t.to(backend).clone().requires_grad_(True) for t in base]
        out, coords = _render(ins, be, nearfar_k=nearfar_k, with_coords=with_coords)
        assert (out.distortion is None) != with_coords and (out.near_depth is None) == (out.far_depth is None)
        assert (out.near_depth is None) == (nearfar_k == 0)
        outputs = [getattr(out, name) for name in names]
        sum(((o * w).sum() for o, w in zip(outputs, weights))).backward()
        leaves = ins + ([coords] if with_coords else [])
        results.append((outputs, [t.grad for t in leaves]))
    (ref, gref), (got, ggot) = results
    assert ref[1].max() > 0.3
    for a, b in zip(ref, got):
        assert (a - b).abs().max().item() < 1e-5
    for a, b in zip(gref, ggot):
        assert (a - b).abs().max().item() <= 1e-3 * max(a.abs().max().item(), 1e-6)


@pytest.mark.parametrize("pixel_slope", [(0.02, 1.99), (2.01, 30.0)])
def test_cpu_matches_reference_on_both_alpha_paths(pixel_slope):
    """The CPU evaluates a convex with delta s <= 2 per pixel separably, from exponentials per row
    and per column (cpu/footprint_rows.cpp), and a sharper one with exponentials per pixel."""
    ref = _compare("cpu", "cpu", 6, 3, n=32, pixel_slope=pixel_slope)
    assert (ref.radii > 0).sum() >= 15 and ref.alpha.max() > 0.3


@pytest.mark.cuda
@pytest.mark.parametrize("k,seed,C,grad_K", [(3, 0, 3, False), (6, 1, 3, False), (6, 1, 3, True), (8, 2, 3, False),
                                             (6, 4, 8, False), (6, 5, 19, False), (8, 8, 19, False)])
def test_cuda_matches_reference(k, seed, C, grad_K):
    """K = 8 gives hulls of 7 edges (the last edge slots in use); C = 19: features read from global
    memory and colour sums per channel in the backward kernel."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if k == 8:  # the scene has hulls of more than 6 edges
        pts, delta, sigma, opac, _ = random_convexes(24, k, seed=seed)
        viewmat, K = camera(W, H)
        params, *_, radii = project_convexes(pts, delta, sigma, opac, viewmat, K, W, H)
        assert (params[:, 0][radii > 0] > 6).any()
    _compare("cuda", "cuda", k, seed, C=C, grad_K=grad_K)


def test_gradcheck_reference_float64(one_thread):
    pts, delta, sigma, opac, feats = random_convexes(3, 5, seed=3, dtype=torch.float64, degenerate=False)
    pts = pts * 1.5
    viewmat, K = camera(12, 10, dtype=torch.float64)
    opac = opac.clamp(0.2, 0.8)

    zc = (pts.mean(1) @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
    coords = 1 - 1 / zc  # monotone in depth, as distortion_coord must be
    background = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64)

    def f(p, d, s, o, c, u, bg):  # every output, and every input that has a gradient
        out = rasterize_convexes(p, d, s, o, c, viewmat, K, 12, 10, background=bg, backend="torch",
                                 distortion_coord=u, nearfar_k=2)
        return out.image, out.alpha, out.depth, out.distortion, out.near_depth, out.far_depth

    inputs = [t.clone().requires_grad_(True) for t in (pts, delta, sigma, opac, feats, coords, background)]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def _head_on(width=64, height=64, f=64.0, dtype=torch.float32):
    viewmat = torch.eye(4, dtype=dtype)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)
    return viewmat, K


def _square(px_lo, px_hi, z=2.0, f=64.0, c=32.0, extra=()):
    """A flat square (as a 4..8 point convex) whose projected edges lie at pixels px_lo..px_hi."""
    lo, hi = (px_lo - c) * z / f, (px_hi - c) * z / f
    pts = [[lo, lo, z], [hi, lo, z], [hi, hi, z], [lo, hi, z]] + [list(e) for e in extra]
    return torch.tensor([pts], dtype=torch.float32)


def _coverage(points, sigma, delta=None, opacity=0.99, backend="cpu"):
    viewmat, K = _head_on()
    one = torch.ones(1)
    delta = delta if delta is not None else 200.0
    out = rasterize_convexes(points, one * delta, one * sigma, one * opacity, torch.ones(1, 1), viewmat, K, 64, 64,
                             backend=backend)
    return out.alpha


@pytest.mark.parametrize("backend", ["torch", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_cull_planes(backend):
    """A convex is culled when any point has z <= near (issue 4) or its centroid z > far (as Gaussians): a
    square exactly on the far plane is drawn, one on the near plane is not, and a float32 step the other
    way flips each. The depths are exact in float32 (identity view, four equal z), so no rounding decides."""
    near, far = 0.5, 4.0
    device = "cuda" if backend == "cuda" else "cpu"
    viewmat, K = (t.to(device) for t in _head_on())
    step = lambda z, to: torch.nextafter(torch.tensor(z), torch.tensor(to)).item()  # noqa: E731
    drawn = {}
    for z in (near, step(near, 1.0), far, step(far, 10.0)):
        one = torch.ones(1, device=device)
        out = rasterize_convexes(_square(20.5, 44.5, z=z).to(device), one * 200.0, one * 50.0, one * 0.9,
                                 torch.ones(1, 1, device=device), viewmat, K, 64, 64, near=near, far=far,
                                 backend=backend)
        drawn[z] = out.radii.item() > 0
        assert drawn[z] == (out.alpha[32, 32].item() > 0.5)
    assert list(drawn.values()) == [False, True, True, False]


def test_square_head_on_centre_and_edges():
    pts = _square(8.5, 56.5)  # edges pass through pixel centres (column 8 and 56)
    prev_edge_err = None
    for sigma in (50.0, 500.0, 5000.0):
        alpha = _coverage(pts, sigma, delta=2000.0)
        assert abs(alpha[32, 32].item() - 0.99) < 1e-4
        edge = alpha[32, 8].item(), alpha[32, 56].item(), alpha[8, 32].item(), alpha[56, 32].item()
        for e in edge:
            assert abs(e - 0.5 * 0.99) < 2e-3, edge
        outside = alpha[32, 6].item()
        err = abs(outside)
        if prev_edge_err is not None:
            assert err <= prev_edge_err + 1e-7  # sharper sigma -> crisper edge
        prev_edge_err = err
    assert alpha[32, 4].item() == 0.0 and alpha[4, 4].item() == 0.0


def test_clipped_corner_keeps_centre_coverage():
    # A 5th point cuts the top-right corner by ~0.3 px: a tiny hull edge next to long ones.
    z, f, c = 2.0, 64.0, 32.0
    clip = [((56.5 - 0.3 - c) * z / f), ((8.5 - c) * z / f), z]
    base = _square(8.5, 56.5)
    pts = torch.tensor([[list(map(float, base[0, 0])), list(map(float, base[0, 1]))[:0] or
                         [(56.5 - c) * z / f, (8.5 + 0.3 - c) * z / f, z], clip,
                         list(map(float, base[0, 2])), list(map(float, base[0, 3]))]], dtype=torch.float32)
    viewmat, K = _head_on()
    edge, ok = hull_edges(torch.stack([f * pts[..., 0] / z + c, f * pts[..., 1] / z + c], -1))
    assert ok.all() and edge.sum() == 5  # the tiny edge is part of the hull
    for sigma in (5.0, 50.0):
        a_square = _coverage(_square(8.5, 56.5), sigma)[32, 32].item()
        a_clipped = _coverage(pts, sigma)[32, 32].item()
        assert abs(a_clipped - a_square) < 1e-5
        assert a_square > 0.9


@pytest.mark.parametrize("shape", ["square", "needle"])
def test_soft_convex_not_cut_at_bound(shape):
    if shape == "square":
        pts = _square(28.0, 36.0)
    else:  # an acute triangle: its offset polygon reaches far past the hull's box at the tip
        z, f, c = 2.0, 64.0, 32.0
        tri = [[20.0, 30.0], [20.0, 34.0], [44.0, 32.0]]
        pts = torch.tensor([[[(x - c) * z / f, (y - c) * z / f, z] for x, y in tri]])
    viewmat, K = _head_on()
    one = torch.ones(1)
    sigma = 4.0 if shape == "square" else 40.0
    args = (pts, one * 20.0, one * sigma, one * 0.9, torch.ones(1, 1), viewmat, K, 64, 64)
    ref = rasterize_convexes(*args, backend="torch").alpha
    cpu = rasterize_convexes(*args, backend="cpu").alpha
    assert ref.max() > 0.3 and (ref > 0).sum() > (ref > 0.5 * ref.max()).sum() * 2  # really soft
    assert (ref - cpu).abs().max().item() < 1e-5
    # every pixel with alpha >= 1/255 lies inside the bound (the reference ignores the bound)
    params, _, _, bounds, _ = project_convexes(pts, one * 20.0, one * sigma, one * 0.9, viewmat, K, 64, 64)
    raw = convex_raw_alpha(params, 64, 64)[0]
    ys, xs = torch.nonzero(raw >= ALPHA_MIN, as_tuple=True)
    x0, y0, x1, y1 = bounds[0].tolist()
    assert (xs + 0.5 >= x0).all() and (xs + 0.5 <= x1).all() and (ys + 0.5 >= y0).all() and (ys + 0.5 <= y1).all()
    if shape == "needle":  # the hull's box grown by g would have cut the tip off
        g = math.log(255 * 0.9 - 1) / sigma / params[0, 2].item()
        assert (xs + 0.5).max().item() > 44.0 + g


def test_bound_tracks_opacity_and_sigma():
    viewmat, K = _head_on()
    pts = _square(28.0, 36.0)
    one = torch.ones(1)
    widths = []
    for sigma, o in ((2.0, 0.9), (20.0, 0.9), (20.0, 0.02), (20.0, 1 / 255)):
        _, _, _, b, radii = project_convexes(pts, one * 20.0, one * sigma, one * o, viewmat, K, 64, 64)
        widths.append((b[0, 2] - b[0, 0]).item() if radii[0] > 0 else None)
    assert widths[0] > widths[1] > widths[2] > 8.0
    assert widths[3] is None  # 255 o <= 1: nothing visible, culled


def test_hull_rules():
    p = torch.tensor([[[0.0, 0], [10, 0], [10, 10], [0, 10], [5, 5], [5, 0], [10, 10], [0, 5]]])
    edge, ok = hull_edges(p)
    assert ok.all()
    got = sorted(map(tuple, torch.nonzero(edge[0]).tolist()))
    # interior (4), collinear on an edge (5, 7) and duplicate (6 of 2) points are dropped
    assert len(got) == 4 and all(i in (0, 1, 2, 3) and j in (0, 1, 2, 3) for i, j in got)
    line = torch.tensor([[[0.0, 0], [1, 1], [2, 2], [3, 3]]])
    assert not hull_edges(line)[1].any()
    same = torch.zeros(1, 5, 2)
    assert not hull_edges(same)[1].any()


def hull_test_sets():
    """Random point sets and degenerate ones (duplicates, collinear runs, points within the tolerance
    of an edge), centred, float64."""
    from convex_splat.projection import HULL_TOL_PX

    g = torch.Generator().manual_seed(11)
    sets = [torch.randn(3000, k, 2, generator=g, dtype=torch.float64) * 30 for k in (3, 6, 8)]
    grid = torch.randint(0, 2, (3000, 4, 2), generator=g).double() * 4  # many collinear and repeated points
    near_edge = torch.tensor([[0.0, 0], [10, 0], [10, 10], [0, 10], [5, HULL_TOL_PX * 0.5], [5, -HULL_TOL_PX * 2]])
    sets += [grid, near_edge[None].double(), torch.zeros(2, 5, 2, dtype=torch.float64)]
    return [p - p.mean(1, keepdim=True) for p in sets]


def assert_compiled_hull_agrees(compiled, device):
    from convex_splat.projection import HULL_TOL_PX, hull_edges_torch

    accepted = []
    for centred in hull_test_sets():
        centred = centred.to(device)
        edge, ok = compiled(centred, HULL_TOL_PX)
        edge_t, ok_t = hull_edges_torch(centred, HULL_TOL_PX)
        assert torch.equal(edge, edge_t) and torch.equal(ok, ok_t)
        accepted.append(float(ok.double().mean()))
    assert 0.05 < accepted[3] < 0.95  # the grid mixes valid hulls and degenerate (rejected) ones
    assert accepted[4] == 1.0 and accepted[5] == 0.0


def test_compiled_hull_takes_the_torch_twins_decisions():
    """le3d._C.hull_edges_cpu against hull_edges_torch: the same edges and cycles on every test set."""
    from le3d._ext import load_extension

    ext = load_extension()
    if ext is None:
        pytest.fail("compiled extension unavailable: the suite builds it (pip install -e .)")
    assert_compiled_hull_agrees(ext.hull_edges_cpu, "cpu")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_compiled_slots_and_bounds_match_the_torch_twins(device):
    """le3d._C.hull_slots_cpu / _cuda and convex_bounds (the compiled path of project_convexes) against
    hull_slots_torch / convex_bounds_torch on the hull test sets: slots exactly; bounds to rounding (and to
    the float64 twin's), and the same culling (invalid, no hull, opacity <= 1/255, off-image) and edge
    counts."""
    from convex_splat.projection import convex_bounds_torch, hull_slots_torch
    from le3d._ext import load_extension

    ext = load_extension()
    if ext is None:
        pytest.fail("compiled extension unavailable: the suite builds it (pip install -e .)")
    g = torch.Generator().manual_seed(5)
    width, height = 160, 120
    kept = []
    for centred in hull_test_sets():
        n = len(centred)
        pix = (centred + torch.tensor([80.0, 60.0], dtype=torch.float64)).float().to(device)  # some off-image
        compiled = (ext.hull_slots_cuda if device == "cuda" else ext.hull_slots_cpu)(pix, HULL_TOL_PX, 8)
        twin = hull_slots_torch(pix)
        for a, b in zip(compiled, twin):
            assert torch.equal(a, b)
        slot_i, slot_j, n_edges, ok = twin
        active = (torch.arange(8, device=device)[None] < n_edges[:, None]) & ok[:, None]
        start = torch.gather(pix, 1, slot_i[..., None].expand(-1, -1, 2))  # slot_i < K
        normal = torch.nn.functional.normalize(torch.randn(n, 8, 2, generator=g), dim=-1).to(device)
        opac = (torch.rand(n, generator=g) * 1.02 - 0.01).clamp(min=1e-3).to(device)  # some <= 1/255
        sigma = torch.exp(torch.randn(n, generator=g)).to(device)
        scale = (torch.rand(n, generator=g) * 0.05 + 1e-4).to(device)
        valid = (torch.rand(n, generator=g) > 0.1).to(device)
        args = (start, normal, slot_i, slot_j, active, pix, opac, sigma, scale, valid, ok, n_edges, width, height)
        got = ext.convex_bounds(*(a.contiguous() if torch.is_tensor(a) else a for a in args), 1e-3, 1e-2, 1e-6)
        want = convex_bounds_torch(*args)
        keep = want[1] > 0
        assert torch.equal(got[1] > 0, keep) and torch.equal(got[2], want[2])
        assert torch.allclose(got[0], want[0], rtol=1e-5, atol=1e-3)
        assert (got[1] - want[1]).abs().max() <= 1  # ceil of a half side: rounding may cross an integer
        # float32 is as good as float64 at the same inputs: the bound is well conditioned (needle corners
        # too, where 1 + n_in.n_out once cancelled and GPU/CPU float32 bounds differed by up to 3.5%)
        exact = convex_bounds_torch(*(a.double() if torch.is_tensor(a) and a.is_floating_point() else a
                                      for a in args))
        both = keep & (exact[1] > 0)
        assert torch.allclose(got[0][both].double(), exact[0][both], rtol=1e-5, atol=1e-3)
        kept.append(float(keep.float().mean()))
    assert 0.2 < kept[0] < 0.95 and kept[5] == 0.0  # random sets: kept and culled mixed; coincident: culled


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_compiled_edge_params_match_the_torch_twin(device):
    """ConvexEdges (le3d._C.convex_edges_*) against edge_params_torch: values and pixel gradients."""
    from convex_splat.projection import ConvexEdges, edge_params_torch, hull_slots_torch

    g = torch.Generator().manual_seed(7)
    for centred in hull_test_sets():
        pix = (centred + 50.0).float().to(device)
        slot_i, slot_j, n_edges, ok = hull_slots_torch(pix)
        active = (torch.arange(8, device=device)[None] < n_edges[:, None]) & ok[:, None]
        d_edges = torch.randn(len(pix), 8, 3, generator=g).to(device)
        outs = []
        for fn in (ConvexEdges.apply, edge_params_torch):
            leaf = pix.clone().requires_grad_(True)
            edges, start, normal = fn(leaf, slot_i, slot_j, active)
            (edges * d_edges).sum().backward()
            outs.append((edges.detach(), start, normal, leaf.grad))
        for got, want in zip(*outs):
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-4), (got - want).abs().max()
        assert (outs[0][3].abs().sum() > 0) == bool(ok.any())  # the gradient reaches the hulls' points


def _close_per_convex(name, got, want, rel):
    """|got - want| <= rel x each convex's (row's) largest |want|, floored at 1% of the largest overall: one
    needle hull's steep gradients must not hide another convex's error."""
    rows = want.reshape(len(want), -1).abs().amax(-1) if want.dim() > 1 else want.abs()
    floor = 1e-2 * want.abs().max().item() + 1e-12
    tol = rel * rows.clamp(min=floor).reshape(-1, *[1] * (want.dim() - 1))
    assert ((got - want).abs() <= tol).all(), (name, ((got - want).abs() / tol).max().item())


@pytest.mark.parametrize("k", [3, 6, 8])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_fused_projection_matches_the_torch_twins(device, k):
    """ProjectConvexes (le3d._C.convex_project_*: every step of a convex in one pass per direction) against
    project_convexes_by_steps with every step its torch twin: packed params, means2d, depths, bounds and
    radii, with convexes behind the camera, straddling the near plane, beyond far, collinear and coincident
    mixed in; and the gradients of points, delta, sigma, opacities, viewmat and the means2d tap from each
    output on its own (the edges' columns of params, its header's, means2d, depths), so that a small path
    is not hidden beside a large one."""
    from convex_splat.projection import ProjectConvexes, fused_applies, project_convexes_by_steps

    n = 48
    pts, delta, sigma, opac, _ = random_convexes(n, k, seed=5 + k)
    pts[5] = pts[5] * 0.01 + torch.tensor([0.0, 0.0, 50.0])  # centroid beyond far (eye is at z = -3)
    viewmat, K = camera(W, H)
    near, far = 0.01, 20.0
    g = torch.Generator().manual_seed(11)
    w_params = torch.randn(n, 29, generator=g)
    losses = {  # output -> weights
        "edges": lambda p, m, d: (p[:, 5:] * w_params[:, 5:].to(device)).sum(),
        "header": lambda p, m, d: (p[:, :5] * w_params[:, :5].to(device)).sum(),
        "means2d": lambda p, m, d: (m * w_params[:, :2].to(device)).sum(),
        "depths": lambda p, m, d: (d * w_params[:, 0].to(device)).sum(),
    }
    inputs = [t.to(device) for t in (pts, delta, sigma, opac, viewmat)]
    K = K.to(device)

    def run(fused, loss):
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        tap = torch.zeros(n, 2, device=device, requires_grad=True)
        if fused:
            assert fused_applies(*leaves[:5], K, tap)
            out = ProjectConvexes.apply(*leaves[:5], K, tap, W, H, near, far)
        else:
            out = project_convexes_by_steps(*leaves[:5], K, W, H, near, far, means2d_tap=tap, compiled=False)
        losses[loss](*out[:3]).backward()
        grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in leaves + [tap]]
        return [o.detach() for o in out], grads

    (got, _), (want, _) = run(True, "edges"), run(False, "edges")
    params, means2d, depths, bounds, radii = want
    assert torch.equal(got[4], radii) and torch.equal(got[0][:, 0], params[:, 0])  # culling, edge counts
    kept = radii > 0
    assert not kept[[0, 1, 3, 4, 5]].any() and kept.sum() >= 30  # degenerate ones culled, most others kept
    # bounds to rounding, relative to their size: a needle hull's corner miter (bounds thousands of pixels
    # wide) is as far from the float64 twin's in either float32 version
    span = (bounds[kept, 2:] - bounds[kept, :2]).amax(-1, keepdim=True)
    assert ((got[3][kept] - bounds[kept]).abs() <= 1e-3 + 2e-4 * span).all()
    assert (got[3][~kept, :2] > got[3][~kept, 2:]).all()  # culled bounds are empty
    # params of the kept convexes: a culled one's (edge count 0, checked above) never reach the render, and
    # convex 5's (beyond far: a hull of 0.01 units 50 away, a fraction of a pixel across) are float32
    # cancellation in either version (each about 1e-2 px from the float64 twin's edge offsets), and how the
    # two differ depends on the CPU's vector instructions: 9x the tolerance on an AVX-512 machine
    _close_per_convex("params", got[0][kept], params[kept], 1e-5)
    for name, a, b in zip(("means2d", "depths"), got[1:3], want[1:3]):
        _close_per_convex(name, a, b, 1e-5)
    names = ("points", "delta", "sigma", "opacities", "viewmat", "tap")
    # per-convex gradients of all but convex 5, whose float32 cancellation (above) also reaches them: with
    # fx != fy its tap gradient is 1.9e-3 (fused) and 1.4e-3 (torch twin) of its size from the float64 twin's
    compared = torch.arange(n) != 5
    for loss in losses:
        (_, got_g), (_, want_g) = run(True, loss), run(False, loss)
        for name, a, b in zip(names, got_g, want_g):
            if name == "viewmat":  # a sum over the convexes (needle hulls' steep shares too): 5e-3 of its largest
                assert (a - b).abs().max() <= 5e-3 * b.abs().max(), (loss, name)
            else:
                _close_per_convex((loss, name), a[compared], b[compared], 1e-3)
        assert want_g[0].abs().sum() > 0, loss  # every output reaches the points
        if loss == "depths":
            assert want_g[0][3].abs().sum() > 0  # a culled convex's points still get the depth's gradient
        if loss == "edges":
            assert want_g[5].abs().sum() > 0  # the tap's gradient: the convexes' summed pixel gradients


def test_fused_projection_with_no_convexes_and_unused_outputs():
    """Zero convexes give empty outputs and gradients; a loss on depths alone (params and means2d outside
    it) still reaches the points."""
    from convex_splat.projection import ProjectConvexes

    viewmat, K = camera(W, H)
    pts, delta, sigma, opac, _ = random_convexes(6, 6, seed=2, degenerate=False)
    for n in (0, 6):
        leaves = [t[:n].clone().requires_grad_(True) for t in (pts, delta, sigma, opac)]
        params, means2d, depths, bounds, radii = ProjectConvexes.apply(*leaves, viewmat, K, None, W, H, 0.01, 1e10)
        assert params.shape == (n, 29) and bounds.shape == (n, 4) and radii.shape == (n,)
        depths.sum().backward()
        zc = (leaves[0].detach().mean(1) @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
        assert torch.allclose(depths.detach(), zc, rtol=1e-6)
        # d depth / d point = (third row of R) / K for every point
        want = (viewmat[2, :3] / pts.shape[1]).expand(n, pts.shape[1], 3)
        assert torch.allclose(leaves[0].grad, want, atol=1e-7)
        assert leaves[1].grad is None or leaves[1].grad.abs().sum() == 0


def test_projection_gradients_cpu_float32_vs_torch_float64():
    """project_convexes on float32 CPU tensors (compiled slots, edges, bound) against the all-torch path
    in float64: packed parameters and the gradients of points, delta, sigma, opacities and the means2d tap."""

    pts, delta, sigma, opac, _ = random_convexes(40, 6, seed=3)
    viewmat, K = camera(W, H)
    g = torch.Generator().manual_seed(9)
    weight = torch.randn(40, 29, generator=g)
    results = []
    for dtype in (torch.float32, torch.float64):
        leaves = [t.to(dtype).clone().requires_grad_(True) for t in (pts, delta, sigma, opac)]
        tap = torch.zeros(40, 2, dtype=dtype, requires_grad=True)
        params, _, _, bounds, radii = project_convexes(*leaves, viewmat.to(dtype), K.to(dtype), W, H, means2d_tap=tap)
        (params * weight.to(dtype)).sum().backward()
        results.append([params.detach(), radii] + [t.grad for t in leaves] + [tap.grad])
    for got, want in zip(*results):
        got, want = got.double(), want.double()
        assert torch.allclose(got, want, rtol=2e-3, atol=2e-3 * want.abs().max().item()), (got - want).abs().max()


@pytest.mark.cuda
def test_cuda_hull_takes_the_torch_twins_decisions():
    """le3d._C.hull_edges_cuda (no fused multiply-adds) against hull_edges_torch on the GPU."""
    from le3d._ext import load_extension

    assert_compiled_hull_agrees(load_extension().hull_edges_cuda, "cuda")


@pytest.mark.cuda
def test_cuda_slots_match_the_cpu_loop():
    """le3d._C.hull_slots_cuda (the GPU path of project_convexes) runs the CPU loop's hull_slots_one
    (le3d/hull.h): the same slots and validity on the hull test sets, float32 and float64 pixels."""
    from convex_splat.projection import HULL_TOL_PX
    from le3d._ext import load_extension

    ext = load_extension()
    for centred in hull_test_sets():
        for pix in ((centred + 100.0).float(), centred * 3 + 500.0):
            want = ext.hull_slots_cpu(pix, HULL_TOL_PX, 8)
            got = ext.hull_slots_cuda(pix.cuda(), HULL_TOL_PX, 8)
            for a, b in zip(got, want):
                assert torch.equal(a.cpu(), b)


def test_means2d_grad_is_screen_translation():
    pts, delta, sigma, opac, feats = random_convexes(10, 6, seed=5, degenerate=False)
    viewmat, K = camera(W, H)
    pts.requires_grad_(True)
    out = rasterize_convexes(pts, delta, sigma, opac, feats, viewmat, K, W, H, backend="cpu")
    out.means2d.retain_grad()
    out.image.sum().backward()
    g = out.means2d.grad
    assert g is not None and g.shape == (10, 2) and g.abs().sum() > 0
    # same gradient of points with and without the tap (no double counting)
    p2 = pts.detach().clone().requires_grad_(True)
    out2 = rasterize_convexes(p2, delta, sigma, opac, feats, viewmat, K, W, H, backend="cpu")
    out2.image.sum().backward()
    assert (pts.grad - p2.grad).abs().max() <= 1e-4 * pts.grad.abs().max()  # thread sum order may differ


def test_bad_inputs():
    from le3d.errors import InputError
    pts, delta, sigma, opac, feats = random_convexes(3, 6, degenerate=False)
    viewmat, K = camera(W, H)
    with pytest.raises(InputError, match="points"):
        rasterize_convexes(pts[:, :2], delta, sigma, opac, feats, viewmat, K, W, H)
    with pytest.raises(InputError, match="delta"):
        rasterize_convexes(pts, -delta, sigma, opac, feats, viewmat, K, W, H)
    with pytest.raises(InputError, match="sigma"):
        rasterize_convexes(pts, delta, sigma * 0, opac, feats, viewmat, K, W, H)
    with pytest.raises(InputError, match="^points: contains NaN"):
        rasterize_convexes(pts * float("nan"), delta, sigma, opac, feats, viewmat, K, W, H, backend="cpu")
    with pytest.raises(InputError, match="^delta: dtype torch.float64, but points is torch.float32"):
        rasterize_convexes(pts, delta.double(), sigma, opac, feats, viewmat, K, W, H, backend="cpu")
    with pytest.raises(InputError, match="^distortion_coord: dtype"):
        rasterize_convexes(pts, delta, sigma, opac, feats, viewmat, K, W, H, backend="cpu",
                           distortion_coord=delta.double())
    out = rasterize_convexes(pts[:0], delta[:0], sigma[:0], opac[:0], feats[:0], viewmat, K, W, H, backend="cpu")
    assert out.image.shape == (H, W, 3) and out.alpha.abs().max() == 0
