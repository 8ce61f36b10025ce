"""The fused Gaussian projection (C++ / CUDA kernels, csrc/include/le3d/project_gaussian.h) against its
PyTorch twin (le3d.raster.projection.project_gaussians): outputs, culling and every gradient, on random
scenes and on the cases where the math branches (behind the camera, straddling the near plane, beyond
far, the off-screen clamp binding, huge and sub-pixel, nearly transparent, zero Gaussians)."""
from __future__ import annotations

import pytest
import torch
from raster_compare import rel_err
from scenes import camera, random_gaussians

from le3d.raster.project_function import project_gaussians_fused
from le3d.raster.projection import project_gaussians


def edge_gaussians(viewmat):
    """Gaussians that take every branch of the projection, placed in camera space (near 0.01, far 100)."""
    cam = torch.tensor([
        [0.0, 0.0, -0.5],    # behind the camera
        [0.0, 0.0, 0.005],   # straddling the near plane
        [0.01, 0.0, 0.05],   # just in front of it
        [10.0, 0.0, 2.0],    # far off-screen right: the x clamp binds
        [0.0, -8.0, 2.0],    # off-screen top: the y clamp binds
        [-6.0, 5.0, 1.0],    # off-screen both ways
        [0.0, 0.0, 500.0],   # beyond far
        [0.2, 0.1, 3.0],     # huge
        [-0.2, 0.1, 3.3],    # sub-pixel
        [0.3, -0.3, 3.2],    # nearly transparent (culled by opacity)
    ])
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    means = (cam - t) @ R  # world = R^T (cam - t)
    # anisotropic: with equal scales the rotation does not matter and d/d quat is pure rounding noise
    scales = torch.tensor([0.05, 0.1, 0.2]).repeat(len(means), 1)
    scales[7] = torch.tensor([5.0, 3.0, 4.0])
    scales[8] = torch.tensor([1e-4, 2e-4, 1e-4])
    opacities = torch.full((len(means),), 0.7)
    opacities[9] = 0.002
    quats = torch.randn(len(means), 4, generator=torch.Generator().manual_seed(3))
    return means, quats, scales, opacities


def scene(kind: str, n: int = 400, seed: int = 0):
    viewmat, K = camera(64, 48)  # at (0.3, -0.2, -3), looking at the origin
    if kind == "edge":
        means, quats, scales, opacities = edge_gaussians(viewmat)
    else:
        means, quats, scales, opacities, _ = random_gaussians(n, seed=seed, spread=2.5, scale=(0.005, 0.4))
    return [means, quats, scales, opacities, viewmat, K]


def run(project, tensors, device, dtype, upstream_seed=0, viewmat_grad=True, far=100.0):
    leaves = [t.to(device=device, dtype=dtype).clone() for t in tensors]
    for i, t in enumerate(leaves):
        t.requires_grad_(i in (0, 1, 2) or (i == 4 and viewmat_grad))
    means2d, conics, depths, bounds, radii = project(*leaves, 64, 48, 0.01, far)
    g = torch.Generator().manual_seed(upstream_seed)
    loss = sum((out * torch.randn(out.shape, generator=g, dtype=torch.float64).to(device, dtype)).sum()
               for out in (means2d, conics * 0.01, depths))
    loss.backward()
    outs = {k: v.detach().cpu().double() for k, v in
            dict(means2d=means2d, conics=conics, depths=depths, bounds=bounds).items()}
    outs["radii"] = radii.cpu()
    grads = {name: leaves[i].grad.cpu().double() for i, name in ((0, "means"), (1, "quats"), (2, "scales"), (4, "viewmat"))
             if leaves[i].grad is not None}
    return outs, grads


def assert_fused_matches_twin(tensors, device, viewmat_grad=True):
    ref_out, ref_grad = run(project_gaussians, tensors, "cpu", torch.float64, viewmat_grad=viewmat_grad)
    out32, _ = run(project_gaussians, tensors, "cpu", torch.float32, viewmat_grad=viewmat_grad)
    out, grad = run(project_gaussians_fused, tensors, device, torch.float32, viewmat_grad=viewmat_grad)
    kept = out32["radii"] > 0
    # culling and radii: the same float32 decisions as the twin
    assert torch.equal(out["radii"], out32["radii"])
    assert torch.equal(out["bounds"][~kept], out32["bounds"][~kept])
    assert torch.allclose(out["bounds"][kept], out32["bounds"][kept], rtol=1e-5, atol=1e-3)
    for name in ("means2d", "conics", "depths"):
        # against float64: within 1e-5, or within twice the float32 twin's own error where float32
        # itself cannot do better (conics of near-degenerate Gaussians: 3e-5 at 20k random ones)
        err, err32 = rel_err(out[name], ref_out[name]), rel_err(out32[name], ref_out[name])
        assert err < max(1e-5, 2 * err32), f"{name}: relative error {err:.2e} (float32 twin {err32:.2e})"
    assert grad.keys() == ref_grad.keys()
    for name in ref_grad:
        err = rel_err(grad[name], ref_grad[name])
        assert err < 1e-4, f"gradient of {name}: relative error {err:.2e}"
        # per Gaussian too, so that a wrong gradient cannot hide behind another Gaussian's large one
        a, b = grad[name].reshape(len(grad[name]), -1), ref_grad[name].reshape(len(ref_grad[name]), -1)
        row_scale = b.abs().max(-1, keepdim=True).values
        bad = ((a - b).abs() > 5e-4 * row_scale + 1e-12).any(-1)  # float32 rounding measured: < 6e-5
        assert not bad.any(), f"gradient of {name}: Gaussians {bad.nonzero().flatten().tolist()} differ"
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpu_fused_projection_matches_twin_random(seed):
    out = assert_fused_matches_twin(scene("random", seed=seed), "cpu")
    assert (out["radii"] > 0).any() and (out["radii"] == 0).any()


def test_cpu_fused_projection_matches_twin_edge_cases():
    out = assert_fused_matches_twin(scene("edge"), "cpu")
    # the branches were taken: culled behind / near / far / transparent, kept huge and sub-pixel,
    # the clamped ones projected off the image
    culled = out["radii"] == 0
    assert culled[[0, 1, 6, 9]].all() and not culled[[2, 7, 8]].any()
    assert out["means2d"][3, 0] > 64 and out["means2d"][4, 1] < 0 and out["means2d"][5, 0] < 0


def test_cpu_fused_projection_without_viewmat_grad_and_empty():
    assert_fused_matches_twin(scene("random", seed=5), "cpu", viewmat_grad=False)
    empty = [t[:0] if i < 4 else t for i, t in enumerate(scene("random", n=3))]
    outs = project_gaussians_fused(*empty, 64, 48)
    assert [tuple(o.shape) for o in outs] == [(0, 2), (0, 3), (0,), (0, 4), (0,)]


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["random", "edge"])
def test_cuda_fused_projection_matches_twin(kind):
    assert_fused_matches_twin(scene(kind, n=20000, seed=7), "cuda")
