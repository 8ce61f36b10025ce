"""ConvexSet init/render, ConvexDensifier (split, prune, reset, cap, Adam state), tiny CPU fit."""
from __future__ import annotations

import pytest
import torch
from scenes import camera

from convex_splat import ConvexDensifier, ConvexSet


def _set(n=20, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, generator=g) * 1.0 - 0.5
    return ConvexSet.from_points(pts, torch.rand(n, 3, generator=g), k=k, seed=seed, opacity=0.5)


def test_from_points_geometry():
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    cs = ConvexSet.from_points(pts, torch.rand(5, 3), k=8)
    assert cs.points.shape == (5, 8, 3) and len(cs) == 5 and cs.k == 8
    assert torch.allclose(cs.centers, pts, atol=1e-5)  # Fibonacci sphere is centred
    # radius = mean distance to the 3 nearest neighbours: point 0 has neighbours at 1, 1, 1
    assert torch.allclose((cs.points[0] - pts[0]).norm(dim=-1), torch.ones(8), atol=0.05)
    assert torch.allclose(cs.opacities, torch.full((5,), 0.1), atol=1e-6)  # default
    assert (cs.delta > 0).all() and (cs.sigma > 0).all()
    viewmat, K = camera(32, 24)
    out = cs.render(viewmat, K, 32, 24, backend="cpu")
    assert out.image.shape == (24, 32, 3) and out.alpha.max() > 0


def test_soft_blob_default():
    # one default convex seen head-on: smooth fall-off (no plateau at 0.99, no hard cut)
    pts = torch.tensor([[0.0, 0, 3], [0.2, 0, 3], [0, 0.2, 3], [0.2, 0.2, 3]])
    cs = ConvexSet.from_points(pts, torch.ones(4, 1), k=6, opacity=1.0)
    viewmat = torch.eye(4)
    K = torch.tensor([[100.0, 0, 32], [0, 100, 32], [0, 0, 1]])
    with torch.no_grad():
        out = ConvexSet(cs.points[:1], cs.delta[:1], cs.sigma[:1], torch.full((1,), 0.99)).render(
            viewmat, K, 64, 64, features=torch.ones(1, 1), backend="cpu")
    row = out.alpha[32]
    assert 0.6 < row.max() < 0.99
    levels = ((row > 0.05) & (row < 0.5)).sum()
    assert levels >= 3  # a soft edge several pixels wide


def test_split_prune_and_adam_rows():
    cs = _set(10)
    opt = torch.optim.Adam(cs.parameters(), lr=1e-3)
    viewmat, K = camera(32, 24)
    out = cs.render(viewmat, K, 32, 24, backend="cpu")
    out.image.sum().backward()
    opt.step()
    # mark each row's Adam state with its index
    for p in cs.parameters():
        st = opt.state[p]
        shape = (-1,) + (1,) * (p.dim() - 1)
        st["exp_avg"] = torch.arange(len(cs), dtype=p.dtype).reshape(shape).expand_as(p).clone()
        st["exp_avg_sq"] = st["exp_avg"].clone() + 100
    dens = ConvexDensifier()
    old_points = cs.points.detach().clone()
    old_delta = cs.delta.detach().clone()
    old_sigma = cs.sigma.detach().clone()
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[2, 7]] = True
    assert dens.split(cs, opt, mask) == 2
    k = cs.k
    assert len(cs) == 10 - 2 + 2 * k
    keep = [i for i in range(10) if i not in (2, 7)]
    for p in cs.parameters():
        st = opt.state[p]
        assert st["exp_avg"].shape == p.shape
        flat = st["exp_avg"].reshape(len(cs), -1)[:, 0]
        assert flat[:8].tolist() == [float(i) for i in keep]
        assert (flat[8:] == 0).all() and (st["exp_avg_sq"].reshape(len(cs), -1)[8:] == 0).all()
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(cs.parameters()))
    assert all(any(q is p for g in opt.param_groups for q in g["params"]) for p in cs.parameters())
    # children of convex 2: centred at its points, shrunk by 0.6, delta/sigma / 0.6
    kids = cs.points.detach()[8:8 + k]
    assert torch.allclose(kids.mean(1), old_points[2], atol=1e-5)
    parent_spread = (old_points[2] - old_points[2].mean(0)).norm(dim=-1)
    assert torch.allclose((kids[0] - kids[0].mean(0)).norm(dim=-1), 0.6 * parent_spread, atol=1e-5)
    assert torch.allclose(cs.delta[8:8 + k], old_delta[2] / 0.6 * torch.ones(k), rtol=1e-5)
    assert torch.allclose(cs.sigma[8:8 + k], old_sigma[2] / 0.6 * torch.ones(k), rtol=1e-5)
    # prune by opacity and by world size
    with torch.no_grad():
        cs.opacity_logit[0] = -10.0
        c3 = cs.points[3].mean(0)
        cs.points[3] = c3 + 10 * (cs.points[3] - c3)
        sizes = cs.world_size()
        dens.max_world_size = float(torch.cat([sizes[:3], sizes[4:]]).max()) * 1.01  # only #3 is too big
    n = len(cs)
    assert dens.prune(cs, opt) == 2 and len(cs) == n - 2
    # training continues with the new parameters
    out = cs.render(viewmat, K, 32, 24, backend="cpu")
    out.image.sum().backward()
    opt.step()


def test_step_schedule_cap_and_reset():
    cs = _set(12)
    opt = torch.optim.Adam(cs.parameters(), lr=1e-3)
    dens = ConvexDensifier(grad_threshold=0.0, start=0, interval=1, reset_interval=2, max_count=12 + 2 * 5,
                           min_opacity=0.0)
    viewmat, K = camera(32, 24)
    out = cs.render(viewmat, K, 32, 24, backend="cpu")
    out.means2d.retain_grad()
    out.image.sum().backward()
    opt.step()
    dens.update(out)
    visible = int((out.radii > 0).sum())
    assert visible >= 3
    info = dens.step(cs, opt, iteration=1)
    assert info["split"] == 2  # capped: 2 splits of 6 add 10 convexes
    assert len(cs) == 22
    info = dens.step(cs, opt, iteration=2)
    assert info["reset"] and (cs.opacities <= 0.01 + 1e-6).all()
    assert (opt.state[cs.opacity_logit]["exp_avg"] == 0).all()


def test_split_picks_the_highest_statistic_under_the_cap_and_sharpens():
    """Over the threshold but past the cap: the convexes with the largest mean view-space gradient split
    first; `sharpen` multiplies the children's sigma beyond the 1 / shrink of their smaller size."""
    cs = _set(8)
    dens = ConvexDensifier(grad_threshold=0.5, max_count=8 + 2 * (cs.k - 1), sharpen=1.5)
    dens.reset_stats(8, "cpu")
    dens.grad_sum[:] = torch.tensor([0.1, 0.9, 0.6, 0.2, 3.0, 0.7, 0.4, 0.0])
    dens.visible_count[:] = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 0.0])  # means 1.5 for #4
    old_points, old_sigma = cs.points.detach().clone(), cs.sigma.detach().clone()
    # over the threshold: 1, 2, 4, 5; room for two: the two largest means, 4 (1.5) and 1 (0.9)
    assert dens.split(cs, None, dens.mean_grad() >= dens.grad_threshold, dens.mean_grad()) == 2
    k = cs.k
    kept = [0, 2, 3, 5, 6, 7]
    assert torch.equal(cs.points.detach()[:6], old_points[kept])
    for j, parent in enumerate((4, 1)):  # children in the order of their parents' statistic
        kids = cs.points.detach()[6 + j * k:6 + (j + 1) * k]
        assert torch.allclose(kids.mean(1), old_points[parent], atol=1e-5)
        assert torch.allclose(cs.sigma[6 + j * k:6 + (j + 1) * k], old_sigma[parent] / 0.6 * 1.5 * torch.ones(k),
                              rtol=1e-5)


def test_update_needs_backward():
    cs = _set(5)
    viewmat, K = camera(32, 24)
    out = cs.render(viewmat, K, 32, 24, backend="cpu")
    with pytest.raises(RuntimeError, match="grad is None"):
        ConvexDensifier().update(out)
    out.means2d.retain_grad()  # harmless (means2d is a leaf tap), as the trainer calls it for Gaussians
    out.image.sum().backward()
    d = ConvexDensifier()
    d.update(out, 32, 24)
    d2 = ConvexDensifier()
    d2.load_state_tensors(d.state_tensors())
    assert torch.equal(d2.mean_grad(), d.mean_grad()) and d.mean_grad().abs().sum() > 0


@pytest.mark.slow
def test_convexes_beat_gaussians_on_hard_edges(one_thread):
    from convex_splat.synthetic import fit
    g = fit("gaussian", n=100, steps=150)
    c = fit("convex", n=100, steps=150)
    print(f"\nPSNR at N=100, 150 steps: gaussians {g['psnr']:.2f} dB, convexes {c['psnr']:.2f} dB")
    assert c["psnr"] > g["psnr"] + 1.0


def test_state_dict_round_trip():
    cs = _set(7)
    cs.add_per_primitive("mlp_features", torch.randn(7, 4))
    back = ConvexSet.from_state_dict({k: v.detach().clone() for k, v in cs.state_dict().items()})
    assert back.per_primitive == cs.per_primitive
    for name in cs.per_primitive:
        assert torch.equal(getattr(back, name), getattr(cs, name))
