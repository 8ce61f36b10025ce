"""Gaussian rasterizer: the C++ CPU (and CUDA) backends against the PyTorch reference, edge cases,
semantics checked by hand, and input validation."""
from __future__ import annotations

import pytest
import torch
from raster_compare import assert_backends_agree, rel_err, run_backend
from scenes import camera, garden_points, intrinsics, look_at_viewmat, random_gaussians

import le3d
from le3d.errors import InputError


def scene(n, C=3, W=64, H=48, seed=0, distortion=True, nearfar_k=3, background=True, **kw):
    means, quats, scales, opacities, features = random_gaussians(n, C=C, seed=seed, **kw)
    viewmat, K = camera(W, H, dtype=means.dtype)
    tensors = dict(means=means, quats=quats, scales=scales, opacities=opacities, features=features,
                   viewmat=viewmat, K=K)
    if distortion:
        z = (means @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2]
        tensors["distortion_coord"] = 1.0 / z.clamp(min=0.1)  # disparity: monotone in depth
    if background:
        tensors["background"] = torch.linspace(0.1, 0.7, C, dtype=means.dtype)
    return tensors, dict(width=W, height=H, nearfar_k=nearfar_k)


CASES = [
    # (n, C, W, H, seed)
    (1, 3, 17, 33, 0),
    (1, 1, 1, 1, 1),
    (50, 3, 17, 33, 2),
    (200, 4, 64, 48, 3),
    (300, 11, 31, 23, 7),  # the CUDA kernels' 5..16 channel instance
    (300, 19, 40, 24, 4),
    (1000, 3, 128, 96, 5),
    (5000, 3, 40, 30, 6),
]


@pytest.mark.parametrize("n,C,W,H,seed", CASES)
def test_cpu_matches_reference(n, C, W, H, seed):
    tensors, kwargs = scene(n, C, W, H, seed)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


@pytest.mark.parametrize("nearfar_k", [0, 1, 5, 16])
def test_cpu_matches_reference_nearfar_k(nearfar_k):
    tensors, kwargs = scene(300, 3, 33, 20, seed=11, nearfar_k=nearfar_k)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


# (distortion, nearfar_k, C) of renders with some optional outputs (the other tests have both). C picks
# the kernels' channel instance (dispatch_kernels: 4, 16, 64); past 4 channels the kernels keep the
# distortion's sums with or without a distortion output, and must still save the render's own layout.
SOME_OPTIONAL_OUTPUTS = dict(
    argnames="distortion,nearfar_k,C",
    argvalues=[(False, 0, 3), (True, 0, 3), (False, 3, 3), (False, 0, 11), (False, 3, 11), (True, 0, 19),
               (False, 3, 19)],
    ids=["neither", "distortion", "nearfar", "neither-C11", "nearfar-C11", "distortion-C19", "nearfar-C19"])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize(**SOME_OPTIONAL_OUTPUTS)
def test_backend_matches_reference_with_some_optional_outputs(backend, distortion, nearfar_k, C):
    """Colour, alpha and depth, with the distortion or near/far or neither: each set saves its own aux
    layout (common.h, AuxLayout), and without distortion the C <= 4 kernels skip its running sums."""
    tensors, kwargs = scene(300, C, 33, 20, seed=12, distortion=distortion, nearfar_k=nearfar_k, background=False)
    out, _ = assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, backend, device=backend)
    assert ("distortion" in out) == distortion and ("near_depth" in out) == ("far_depth" in out) == (nearfar_k > 0)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("loss_on", [("image",), ("alpha", "far_depth"), ("depth", "distortion", "near_depth")])
def test_backend_matches_reference_when_outputs_take_no_part_in_the_loss(backend, loss_on):
    """Outputs left out of the loss reach the kernels as empty upstream gradients, read as zeros."""
    tensors, kwargs = scene(300, 3, 33, 20, seed=13, nearfar_k=3)
    _, grads = assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, backend, device=backend,
                                     loss_on=loss_on)
    assert grads["means"].abs().max() > 0


def _strided_like(t, kind, gen):
    """A gradient for output t ([H, W] or [H, W, C]) with a layout other than contiguous: expanded (what
    out.sum() hands back), transposed, or every other column of a wider tensor."""
    H, W = t.shape[:2]
    rest = tuple(t.shape[2:])
    if kind == "expanded":
        return torch.full((1, 1) + rest, 0.7, device=t.device).expand(t.shape)
    if kind == "transposed":
        return torch.randn((W, H) + rest, generator=gen).to(t.device).transpose(0, 1)
    return torch.randn((H, 2 * W) + rest, generator=gen).to(t.device)[:, ::2]  # "strided"


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("kind", ["expanded", "transposed", "strided"])
def test_upstream_gradients_of_any_layout_are_read_in_place(backend, kind, monkeypatch):
    """The backward kernels read each output's upstream gradient through its strides (composite.h's
    PixelGradMap): the same gradients as from contiguous copies, and no copy is made on the way in."""
    import le3d.raster.tile_function as tile_function

    tensors, kwargs = scene(300, 3, 33, 20, seed=21, nearfar_k=3)
    seen = []
    kernels = tile_function._kernels

    def recording(device):
        forward, backward = kernels(device)

        def backward_recording(*args):
            seen.extend(t.is_contiguous() for t in args[-6:] if t.numel())  # the six upstream gradients
            return backward(*args)
        return forward, backward_recording

    monkeypatch.setattr(tile_function, "_kernels", recording)
    names = ("image", "alpha", "depth", "distortion", "near_depth", "far_depth")
    gen = torch.Generator().manual_seed(3)
    grads = None
    results = []
    for contiguous in (False, True):
        leaves = {k: v.to(backend).clone().requires_grad_(k not in ("viewmat", "K")) for k, v in tensors.items()}
        out = le3d.rasterize_gaussians(**leaves, **kwargs, backend=backend)
        outputs = [getattr(out, name) for name in names]
        if grads is None:
            grads = [_strided_like(o, kind, gen) for o in outputs]
        seen.clear()
        torch.autograd.backward(outputs, [g.contiguous() if contiguous else g for g in grads])
        results.append(({k: v.grad for k, v in leaves.items() if v.grad is not None}, list(seen)))
    (strided, seen_strided), (dense, seen_dense) = results
    assert not all(seen_strided) and all(seen_dense)  # the strided gradients reached the kernel as they were
    assert strided.keys() == dense.keys() and len(dense) >= 6
    for name in dense:
        assert torch.allclose(strided[name], dense[name], rtol=1e-5, atol=1e-6 * dense[name].abs().max()), name


def test_compiled_entry_points_check_their_own_inputs():
    """The compiled rasterizer's entry points refuse what breaks their contract (rasterize_api.h), the
    distortion coordinate included, even though the Python side checks the user's inputs first."""
    from le3d._ext import load_extension

    ext = load_extension()
    n, C = 5, 3
    good = dict(params=torch.zeros(n, 6), features=torch.zeros(n, C), depths=torch.ones(n), coords=torch.zeros(n),
                bounds=torch.zeros(n, 4), background=torch.zeros(C))

    def forward(**changed):
        t = {**good, **changed}
        return ext.rasterize_forward_cpu(t["params"], 0, t["features"], t["depths"], t["coords"], t["bounds"],
                                         t["background"], 16, 8, 2)

    assert forward()[0].shape == (8, 16, C)
    assert forward(coords=None)[0].shape == (8, 16, C)  # no distortion coordinate
    for changed, match in ((dict(coords=torch.zeros(n, dtype=torch.float64)), "float32"),
                           (dict(coords=torch.zeros(2 * n)[::2]), "contiguous"),
                           (dict(coords=torch.zeros(n + 1)), "coords"),
                           (dict(depths=torch.ones(n - 1)), "depths"),
                           (dict(features=torch.zeros(n - 1, C)), "features"),
                           (dict(background=torch.zeros(C + 1)), "background"),
                           (dict(bounds=torch.zeros(n, 3)), "bounds")):
        with pytest.raises(RuntimeError, match=match):
            forward(**changed)


@pytest.mark.parametrize("has_distortion", [False, True])
@pytest.mark.parametrize("nearfar_k", [0, 3])
def test_forward_keeps_only_what_the_render_needs(has_distortion, nearfar_k):
    """The compiled forward allocates distortion only with a distortion coordinate, near and far only with
    nearfar_k > 0, and saves 3 floats a pixel for the backward plus 3 for the distortion and 2 for near/far
    (an RGB+D render at 1080p: 25 MB of aux instead of 66). The backward refuses an aux of another layout.
    The gradients are held to the reference in every combination by the tests above."""
    from le3d._ext import load_extension

    ext = load_extension()
    H, W, n, C = 9, 20, 4, 3
    params, features = torch.zeros(n, 6), torch.zeros(n, C)
    depths, bounds, background = torch.ones(n), torch.zeros(n, 4), torch.zeros(C)
    coords = torch.zeros(n) if has_distortion else None
    out = ext.rasterize_forward_cpu(params, 0, features, depths, coords, bounds, background, W, H, nearfar_k)
    image, alpha, depth, distortion, near, far, aux = out[:7]  # then the tile lists, which the backward takes
    assert image.shape == (H, W, C) and alpha.shape == depth.shape == (H, W)
    assert distortion.shape == ((H, W) if has_distortion else (0,))
    assert near.shape == far.shape == ((H, W) if nearfar_k else (0,))
    dim = 3 + 3 * has_distortion + 2 * (nearfar_k > 0)
    assert aux.shape == (H, W, dim)
    slots = ext.aux_layout(has_distortion, nearfar_k)
    assert slots["dim"] == dim and sorted(v for k, v in slots.items() if k != "dim") == list(range(dim))
    assert ("weight_sum" in slots) == has_distortion and ("far_weight" in slots) == (nearfar_k > 0)
    assert torch.equal(aux[..., slots["transmittance"]], 1 - alpha)  # nothing covers the image: T = 1
    none = torch.zeros(0)

    def backward(saved_aux):
        return ext.rasterize_backward_cpu(params, 0, features, depths, coords, bounds, background, W, H, nearfar_k,
                                          near, far, saved_aux, *out[7:], torch.ones(H, W, C), none, none, none,
                                          none, none)

    assert torch.equal(backward(aux)[4], torch.full((C,), float(H * W)))  # d background = sum of T_final
    with pytest.raises(RuntimeError, match=f"aux must be the forward's, \\[H, W, {dim}\\]"):
        backward(torch.zeros(H, W, dim + 1))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("with_coords", [False, True])
def test_compiled_entry_points_take_the_coordinate_as_given_even_with_no_primitives(device, with_coords):
    """None means no distortion output; a coordinate of N values means one, also at N = 0 (a [0] tensor),
    where it is zero everywhere. The aux layout and the backward follow the same choice."""
    from le3d._ext import load_extension

    ext = load_extension()
    H, W, C = 9, 20, 3
    to = dict(device=device)
    params, features, depths = torch.zeros(0, 6, **to), torch.zeros(0, C, **to), torch.zeros(0, **to)
    bounds, background = torch.zeros(0, 4, **to), torch.zeros(C, **to)
    coords = torch.zeros(0, **to) if with_coords else None
    forward, backward = getattr(ext, f"rasterize_forward_{device}"), getattr(ext, f"rasterize_backward_{device}")
    out = forward(params, 0, features, depths, coords, bounds, background, W, H, 0)
    distortion, aux = out[3], out[6]
    if with_coords:
        assert distortion.shape == (H, W) and distortion.abs().max() == 0
    else:
        assert distortion.numel() == 0
    assert aux.shape == (H, W, ext.aux_layout(with_coords, 0)["dim"])
    none = torch.zeros(0, **to)
    grads = backward(params, 0, features, depths, coords, bounds, background, W, H, 0, *out[4:],  # all it saved
                     torch.ones(H, W, C, **to), none, none, torch.ones(H, W, **to), none, none)
    assert torch.equal(grads[4].cpu(), torch.full((C,), float(H * W)))  # d background = sum of T_final (= 1)


def test_upstream_gradient_of_the_wrong_shape_is_refused():
    """An upstream gradient reaches the compiled backward only if shaped like its output."""
    from le3d._ext import load_extension

    ext = load_extension()
    H, W = 12, 16
    params, features, none, no_bounds, background = (torch.zeros(0, 6), torch.zeros(0, 3), torch.zeros(0),
                                                     torch.zeros(0, 4), torch.zeros(3))
    saved = ext.rasterize_forward_cpu(params, 0, features, none, None, no_bounds, background, W, H, 2)[4:]
    with pytest.raises(RuntimeError, match="d_alpha must be shaped like its output"):  # saved: near, far, aux, tiles
        ext.rasterize_backward_cpu(params, 0, features, none, None, no_bounds, background, W, H, 2, *saved, none,
                                   torch.zeros(H, W + 1), none, none, none, none)


def edge_case_scene():
    """Hand-placed Gaussians: behind the camera, straddling the near plane, off-screen, huge
    (covering the image), sub-pixel, two with identical depths, one nearly transparent."""
    W, H = 40, 30
    viewmat = torch.eye(4)
    K = intrinsics(W, H, fov_deg=60)
    means = torch.tensor([
        [0.0, 0.0, -1.0],    # behind the camera
        [0.0, 0.1, 0.05],    # mean in front of near, body straddling the near plane
        [50.0, 0.0, 2.0],    # far off-screen
        [0.0, 0.0, 5.0],     # huge: covers the whole image
        [0.2, 0.1, 2.0],     # sub-pixel
        [-0.3, 0.0, 3.0],    # identical depth ...
        [-0.25, 0.05, 3.0],  # ... to this one
        [0.1, -0.1, 2.5],    # nearly transparent
        [0.0, 0.0, 0.005],   # in front of the camera but before near=0.01
    ])
    n = len(means)
    # anisotropic, so that rotations matter (an isotropic Gaussian's quaternion gradient is 0)
    scales = torch.tensor([[0.3, 0.1, 0.2], [0.2, 0.05, 0.1], [0.5, 0.2, 0.1], [20.0, 10.0, 15.0],
                           [1e-4, 2e-4, 1e-4], [0.2, 0.1, 0.05], [0.1, 0.2, 0.05], [0.3, 0.1, 0.2], [0.1, 0.2, 0.1]])
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1) + 0.1 * torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    opacities = torch.tensor([0.9, 0.8, 0.9, 0.5, 0.95, 0.7, 0.6, 0.003, 0.9])
    features = torch.rand(n, 3, generator=torch.Generator().manual_seed(1))
    tensors = dict(means=means, quats=quats, scales=scales, opacities=opacities, features=features,
                   viewmat=viewmat, K=K, background=torch.tensor([0.2, 0.3, 0.4]),
                   # disparity, with the tied pair ordered as the sort orders it (by index)
                   distortion_coord=1.0 / means[:, 2].abs() - 1e-3 * torch.arange(n))
    return tensors, dict(width=W, height=H, nearfar_k=2)


def test_edge_cases_cpu_matches_reference():
    tensors, kwargs = edge_case_scene()
    out, _ = assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")
    radii = out["radii"]
    assert radii[0] == 0 and radii[2] == 0 and radii[8] == 0, "behind, off-screen, before-near are culled"
    assert radii[7] == 0, "opacity below 1/255 is culled"
    assert radii[3] > 40, "huge Gaussian covers the image"
    assert radii[1] > 0 and radii[4] > 0


@pytest.mark.parametrize("backend", ["torch", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_zero_primitives_render_background(backend):
    tensors, kwargs = scene(0, 3, 17, 9)
    out, grads = run_backend(le3d.rasterize_gaussians, tensors, kwargs, backend,
                             device="cuda" if backend == "cuda" else "cpu")
    assert torch.allclose(out["image"], tensors["background"].expand(9, 17, 3))
    assert out["alpha"].abs().max() == 0 and out["depth"].abs().max() == 0
    for name in ("distortion", "near_depth", "far_depth"):  # asked for: shaped as the image, zero
        assert out[name].shape == (9, 17) and out[name].abs().max() == 0, name
    # Every pixel sees the background through T = 1, so d loss / d background is the sum of the image's
    # loss weights (run_backend draws them first from its seed-0 generator).
    image_weights = torch.rand((9, 17, 3), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(grads["background"], image_weights.sum((0, 1)), rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_cull_planes_are_inclusive(backend):
    """Culling is z < near or z > far (as gsplat's kernel): a mean exactly on either plane is drawn, one a
    float32 step beyond it is not. The depths are exact in float32 (identity view), so no rounding decides."""
    near, far = 0.5, 4.0
    z = torch.tensor([near, far, torch.nextafter(torch.tensor(near), torch.tensor(0.0)).item(),
                      torch.nextafter(torch.tensor(far), torch.tensor(10.0)).item()])
    n = len(z)
    device = "cuda" if backend == "cuda" else "cpu"
    W = H = 17  # the principal point (8.5, 8.5) is pixel (8, 8)'s centre
    out = le3d.rasterize_gaussians(torch.stack([torch.zeros(n), torch.zeros(n), z], 1).to(device),
                                   torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1).to(device),
                                   (0.05 * z)[:, None].repeat(1, 3).to(device),  # the same size on screen
                                   torch.full((n,), 0.5, device=device), torch.ones(n, 1, device=device),
                                   torch.eye(4, device=device), intrinsics(W, H).to(device), W, H,
                                   near=near, far=far, backend=backend)
    assert out.radii.cpu().tolist()[2:] == [0, 0]
    assert (out.radii[:2] > 0).all()
    # both drawn at the centre: alpha 1 - 0.5 * 0.5, depth by weight 0.5 * near + 0.25 * far
    assert out.alpha[8, 8].item() == pytest.approx(0.75, rel=1e-4)
    assert out.depth[8, 8].item() == pytest.approx(0.5 * near + 0.25 * far, rel=1e-4)


def test_single_gaussian_centre_alpha_and_depth():
    """A Gaussian on the optical axis at depth 2: the centre pixel sees alpha = o (clamped)."""
    W = H = 33
    K = intrinsics(W, H)
    for o in (0.5, 0.999):
        out = le3d.rasterize_gaussians(torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[1.0, 0, 0, 0]]),
                                       torch.full((1, 3), 0.2), torch.tensor([o]), torch.ones(1, 1),
                                       torch.eye(4), K, W, H, backend="cpu")
        # the mean projects to (16.5, 16.5): the centre of pixel (16, 16)
        assert out.alpha[16, 16].item() == pytest.approx(min(o, 0.99), rel=1e-6)
        assert out.depth[16, 16].item() == pytest.approx(2.0 * min(o, 0.99), rel=1e-6)
        assert out.alpha[16, 17] < out.alpha[16, 16]


def test_transmittance_stop_rule():
    """Identical layers of alpha 0.95: T goes 1, 0.05, 0.0025, 1.25e-4; the fourth layer would
    leave T = 6.25e-6 < 1e-4, so it and everything behind it are dropped."""
    n = 5
    means = torch.tensor([[0.0, 0.0, 2.0 + i] for i in range(n)])
    args = (means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 5.0), torch.full((n,), 0.95),
            torch.eye(n), torch.eye(4), intrinsics(9, 9), 9, 9)
    out = le3d.rasterize_gaussians(*args, backend="cpu")
    px = out.image[4, 4]
    assert px[0].item() == pytest.approx(0.95, rel=1e-5)
    assert px[1].item() == pytest.approx(0.0475, rel=1e-4)
    assert px[2].item() == pytest.approx(0.002375, rel=1e-4)
    assert px[3].item() == 0.0 and px[4].item() == 0.0
    assert out.alpha[4, 4].item() == pytest.approx(1 - 1.25e-4, rel=1e-6)
    ref = le3d.rasterize_gaussians(*args, backend="torch")
    assert torch.allclose(ref.image, out.image, atol=1e-6)


def test_distortion_and_near_far_by_hand():
    """Three large layers at z = 2, 3, 4 with opacity 0.5: weights 0.5, 0.25, 0.125."""
    z = torch.tensor([2.0, 3.0, 4.0])
    means = torch.stack([torch.zeros(3), torch.zeros(3), z], -1)
    u = 1.0 / z
    out = le3d.rasterize_gaussians(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(3, 1), torch.full((3, 3), 50.0),
                                   torch.full((3,), 0.5), torch.ones(3, 1), torch.eye(4), intrinsics(9, 9), 9, 9,
                                   backend="cpu", distortion_coord=u, nearfar_k=2)
    w = torch.tensor([0.5, 0.25, 0.125])
    expected_d = sum(w[i] * w[j] * abs(u[i] - u[j]) for i in range(3) for j in range(3))
    assert out.distortion[4, 4].item() == pytest.approx(expected_d.item(), rel=1e-4)
    assert out.near_depth[4, 4].item() == pytest.approx(((w[:2] * z[:2]).sum() / w[:2].sum()).item(), rel=1e-5)
    assert out.far_depth[4, 4].item() == pytest.approx(((w[1:] * z[1:]).sum() / w[1:].sum()).item(), rel=1e-5)
    assert out.depth[4, 4].item() == pytest.approx((w * z).sum().item(), rel=1e-5)


def test_reference_gradcheck_float64():
    tensors, kwargs = scene(4, 2, 6, 5, seed=3, spread=0.4, scale=(0.2, 0.5), dtype=torch.float64)
    names = ["means", "quats", "scales", "opacities", "features", "distortion_coord", "background"]

    def f(*args):
        t = dict(tensors)
        t.update(zip(names, args))
        out = le3d.rasterize_gaussians(**t, **kwargs, backend="torch")
        return out.image, out.alpha, out.depth, out.distortion, out.near_depth, out.far_depth

    inputs = tuple(tensors[k].clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_viewmat_gradient_matches_finite_difference():
    tensors, kwargs = scene(30, 3, 24, 18, seed=5, distortion=False, nearfar_k=0, dtype=torch.float64)
    viewmat = tensors.pop("viewmat").clone().requires_grad_(True)

    def loss(v):
        out = le3d.rasterize_gaussians(**tensors, viewmat=v, **kwargs, backend="torch")
        return out.image.sum() + out.depth.sum()

    loss(viewmat).backward()
    eps = 1e-5
    for r, c in ((0, 3), (2, 3), (0, 1)):
        plus, minus = viewmat.detach().clone(), viewmat.detach().clone()
        plus[r, c] += eps
        minus[r, c] -= eps
        fd = (loss(plus) - loss(minus)).item() / (2 * eps)
        assert viewmat.grad[r, c].item() == pytest.approx(fd, rel=2e-3, abs=1e-5)


def test_means2d_gradient_is_readable_for_densification():
    tensors, kwargs = scene(100, 3, 32, 32, seed=9, spread=2.0)
    tensors["means"].requires_grad_(True)
    out = le3d.rasterize_gaussians(**tensors, **kwargs, backend="cpu")
    out.means2d.retain_grad()
    out.image.sum().backward()
    visible = out.radii > 0
    assert out.means2d.grad is not None
    assert (out.means2d.grad[visible].abs().sum(-1) > 0).float().mean() > 0.5
    assert (~visible).any(), "the scene should have culled Gaussians"
    assert out.means2d.grad[~visible].abs().max() == 0


def test_same_result_twice():
    tensors, kwargs = scene(2000, 3, 64, 48, seed=1)
    a, ga = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "cpu")
    b, gb = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "cpu")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for k in ga:
        assert torch.equal(ga[k], gb[k]), k  # static tile schedule: reproducible sums


class TestBadInput:
    def base(self):
        tensors, kwargs = scene(5, 3, 8, 8, seed=0)
        return tensors, kwargs

    @pytest.mark.parametrize("name,value,match", [
        ("means", torch.zeros(5, 2), "means"),
        ("quats", torch.zeros(4, 4), "quats"),
        ("scales", torch.zeros(5, 3, dtype=torch.int32), "scales"),
        ("features", torch.zeros(5, 65), "features"),
        ("opacities", torch.full((5,), float("nan")), "opacities"),
        ("means", torch.full((5, 3), float("inf")), "means"),
        ("K", torch.full((3, 3), float("nan")), "K"),
        ("viewmat", torch.eye(3), "viewmat"),
        ("distortion_coord", torch.zeros(4), "distortion_coord"),
        ("background", torch.zeros(2), "background"),
        # one dtype for every tensor argument, the first that differs named (the kernels take float32 only)
        ("features", torch.zeros(5, 3, dtype=torch.float64), "^features: dtype torch.float64"),
        ("distortion_coord", torch.zeros(5, dtype=torch.float64), "^distortion_coord: dtype"),
        ("background", torch.zeros(3, dtype=torch.float64), "^background: dtype"),
        ("features", torch.zeros(5, 3, device="meta"), "^features: on meta"),
    ])
    def test_bad_tensor(self, name, value, match):
        tensors, kwargs = self.base()
        tensors[name] = value
        with pytest.raises(ValueError, match=match):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="cpu")

    def test_bad_scalars(self):
        tensors, kwargs = self.base()
        for bad, match in ((dict(width=0), "^width"), (dict(height=2.5), "^height"), (dict(nearfar_k=17), "^nearfar_k"),
                           (dict(nearfar_k=-1), "^nearfar_k"), (dict(nearfar_k=True), "^nearfar_k"),
                           (dict(near="0.1"), "^near"), (dict(far=None), "^far")):
            with pytest.raises(InputError, match=match):
                le3d.rasterize_gaussians(**tensors, **{**kwargs, **bad}, backend="cpu")
        with pytest.raises(InputError, match="backend"):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="metal")
        with pytest.raises(InputError, match="near"):
            le3d.rasterize_gaussians(**tensors, **kwargs, near=1.0, far=0.5, backend="cpu")
        with pytest.raises(InputError, match="cuda"):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="cuda")

    def test_value_checks_report_in_argument_order(self):
        # value checks are read back together (one GPU sync); the message still names the first bad one
        tensors, kwargs = self.base()
        tensors["scales"] = torch.full((5, 3), float("nan"))
        tensors["features"] = torch.full((5, 3), float("inf"))
        with pytest.raises(InputError, match="^scales"):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="cpu")
        tensors, kwargs = self.base()
        tensors["K"] = tensors["K"].clone()
        tensors["K"][1, 1] = -tensors["K"][1, 1]
        with pytest.raises(InputError, match="focal"):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="cpu")

    def test_zero_quaternion(self):
        tensors, kwargs = self.base()
        tensors["quats"] = tensors["quats"].clone()
        tensors["quats"][2] = 0
        with pytest.raises(InputError, match="quats"):
            le3d.rasterize_gaussians(**tensors, **kwargs, backend="cpu")


def test_projection_matches_gsplat_reference():
    import gsplat.cuda._torch_impl as gsplat_impl  # a dev dependency: missing, the test fails rather than skips

    from le3d.raster.projection import project_gaussians, quat_to_rotmat

    means, quats, scales, opacities, _ = random_gaussians(500, seed=4, spread=1.5)
    viewmat = look_at_viewmat((0.5, -0.4, -3.0))
    W, H = 96, 64
    K = intrinsics(W, H)
    K[0, 2] += 3.0  # off-centre principal point
    K[1, 1] *= 1.2  # fx != fy
    means2d, conics, depths, _, radii = project_gaussians(means, quats, scales, opacities, viewmat, K, W, H)
    R = quat_to_rotmat(quats)
    covars = R @ torch.diag_embed(scales**2) @ R.transpose(1, 2)
    g_radii, g_means2d, g_depths, g_conics, _ = gsplat_impl._fully_fused_projection(
        means, covars, viewmat[None], K[None], W, H)
    valid = (g_radii[0] > 0).all(-1) & (radii > 0)
    assert valid.sum() > 100
    assert torch.allclose(means2d[valid], g_means2d[0][valid], rtol=1e-5, atol=1e-4)
    assert torch.allclose(depths[valid], g_depths[0][valid], rtol=1e-5)
    assert torch.allclose(conics[valid], g_conics[0][valid], rtol=1e-5, atol=1e-6)
    # Our exact bound is at most gsplat's 3.33 sigma (+1 px of rounding).
    assert (radii[valid] <= g_radii[0][valid].max(-1).values + 1).all()


@pytest.mark.cuda
@pytest.mark.parametrize("n,C,W,H,seed", CASES)
def test_cuda_matches_reference(n, C, W, H, seed):
    tensors, kwargs = scene(n, C, W, H, seed)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cuda", device="cuda")


@pytest.mark.cuda
def test_cuda_edge_cases_match_reference():
    tensors, kwargs = edge_case_scene()
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cuda", device="cuda")


@pytest.mark.cuda
def test_cuda_zero_primitives_and_large_channels():
    tensors, kwargs = scene(0, 3, 17, 9)
    out, _ = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "cuda", device="cuda")
    assert torch.allclose(out["image"], tensors["background"].expand(9, 17, 3))
    tensors, kwargs = scene(400, 64, 37, 21, seed=8)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cuda", device="cuda")


@pytest.mark.cuda
def test_cuda_matches_cpu_on_garden_points():
    """Real SfM points (Mip-NeRF 360 garden, from ../shared/data) seen by a real camera."""
    garden = garden_points()
    means = garden["means"][:20000]
    n = len(means)
    g = torch.Generator().manual_seed(0)
    # anisotropic: with equal axes the rotation does nothing and the quaternion gradient is rounding noise
    scales = 0.02 * torch.exp(0.4 * torch.randn(n, 3, generator=g))
    tensors = dict(means=means, quats=torch.randn(n, 4, generator=g), scales=scales,
                   opacities=torch.rand(n, generator=g) * 0.8 + 0.1, features=garden["colours"][:20000],
                   viewmat=garden["viewmats"][0], K=garden["Ks"][0])
    kwargs = dict(width=garden["width"], height=garden["height"])
    # Forward: the GPU contracts a*b+c into one rounding (FMA), so a contributor whose alpha sits
    # within an ulp of the 1/255 cut-off (or a pixel at the T = 1e-4 stop) can go the other way: a
    # discontinuity of the function, not a bug. Allow it in at most 1 pixel in 10,000, bounded by
    # one such contributor's weight; every other pixel must agree to 1e-5.
    out_cpu, grad_cpu = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "cpu")
    out_gpu, grad_gpu = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "cuda", device="cuda")
    assert torch.equal(out_gpu["radii"], out_cpu["radii"])
    for name in ("image", "alpha", "depth"):
        scale = out_cpu[name].abs().max()
        err = (out_gpu[name] - out_cpu[name]).abs() / scale
        flipped = (err > 1e-5).sum().item()
        assert flipped <= err.numel() // 10000, f"{name}: {flipped} pixels differ"
        assert err.max() < 5e-3, f"{name}: relative error {err.max():.2e}"
    for name in grad_cpu:
        err = rel_err(grad_gpu[name], grad_cpu[name])
        assert err < 1e-3, f"gradient of {name}: relative error {err:.2e}"


def test_blocked_reference_equals_whole_image_reference():
    """The reference's block-by-block mode (used for large benchmarks) is the same function."""
    from le3d.raster.constants import FOOTPRINT_GAUSSIAN
    from le3d.raster.projection import gaussian_params, project_gaussians
    from le3d.raster.reference import rasterize_reference

    tensors, kwargs = scene(400, 3, 50, 37, seed=21)
    W, H = kwargs["width"], kwargs["height"]
    m2d, conics, depths, bounds, _ = project_gaussians(tensors["means"], tensors["quats"], tensors["scales"],
                                                       tensors["opacities"], tensors["viewmat"], tensors["K"], W, H)
    args = (gaussian_params(m2d, conics, tensors["opacities"]), FOOTPRINT_GAUSSIAN, tensors["features"], depths,
            tensors["distortion_coord"], bounds, tensors["background"], W, H, 3)
    whole = rasterize_reference(*args)
    blocked = rasterize_reference(*args, block=16)
    for a, b in zip(whole, blocked):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_gsplat_backend_refuses_what_it_cannot_do():
    from le3d.errors import InputError

    tensors, kwargs = scene(50, 3, 32, 24, seed=4)
    with pytest.raises(InputError, match="CUDA tensors"):
        le3d.rasterize_gaussians(**tensors, **kwargs, backend="gsplat")
    from test_convex_raster import random_convexes

    import convex_splat

    pts, delta, sigma, opac, feats = random_convexes(8, 6, seed=0)
    with pytest.raises(InputError, match="Gaussians only"):
        convex_splat.rasterize_convexes(pts, delta, sigma, opac, feats, tensors["viewmat"], tensors["K"], 32, 24,
                                        backend="gsplat")


@pytest.mark.cuda
def test_gsplat_backend_matches_reference():
    """backend="gsplat" (gsplat 1.5 rasterization, RGB+D) against our reference: same image, alpha and
    depth up to the splat tails that gsplat's 3-sigma bound cuts (ours is the exact 1/255 ellipse)."""
    pytest.importorskip("gsplat")
    tensors, kwargs = scene(300, 3, 64, 48, seed=5, distortion=False, nearfar_k=0)
    ref, gref = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "torch")
    got, ggot = run_backend(le3d.rasterize_gaussians, tensors, kwargs, "gsplat", device="cuda")
    for name in ("image", "alpha", "depth"):
        assert rel_err(got[name], ref[name]) < 2e-2, name
    for name in ("means", "opacities", "features"):
        assert rel_err(ggot[name], gref[name]) < 5e-2, name


def test_gsplat_backend_plumbing_with_a_stand_in(monkeypatch):
    """The wrapper's side of backend="gsplat" on the CPU: gsplat.rasterization is replaced by a stand-in
    with gsplat 1.5's documented shapes (RGB+D colours [1,H,W,C+1], alphas [1,H,W,1], meta means2d
    [1,N,2] and per-axis radii [1,N,2]) that renders with our reference, so the wrapper must give back
    exactly the reference's image, alpha, depth, means2d and radii."""
    gsplat = pytest.importorskip("gsplat")
    from le3d.raster.gsplat_backend import rasterize_gsplat

    def stand_in(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane, far_plane,
                 backgrounds, render_mode, packed):
        assert render_mode == "RGB+D" and not packed and viewmats.shape == (1, 4, 4) and Ks.shape == (1, 3, 3)
        out = le3d.rasterize_gaussians(means, quats, scales, opacities, colors, viewmats[0], Ks[0], width, height,
                                       background=backgrounds[0], near=near_plane, far=far_plane, backend="torch")
        rgbd = torch.cat([out.image, out.depth[..., None]], -1)[None]
        radii = torch.stack([out.radii, out.radii], -1)[None]
        return rgbd, out.alpha[None, ..., None], {"means2d": out.means2d[None], "radii": radii}

    monkeypatch.setattr(gsplat, "rasterization", stand_in)
    tensors, kwargs = scene(60, 4, 30, 20, seed=6, distortion=False, nearfar_k=0)
    ref = le3d.rasterize_gaussians(**tensors, **kwargs, backend="torch")
    got = rasterize_gsplat(*(tensors[k] for k in ("means", "quats", "scales", "opacities", "features", "viewmat",
                                                  "K")), 30, 20, tensors["background"], 0.01, 1e10)
    for name in ("image", "alpha", "depth", "means2d", "radii"):
        assert torch.equal(getattr(got, name), getattr(ref, name)), name
