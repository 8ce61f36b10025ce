"""Refocus: a synthetic two-plane scene (left half near, right half far)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from le3d.post.refocus import coc_radius, focus_depth_at, refocus

H, W, EDGE = 96, 128, 64
Z_NEAR, Z_FAR, A = 1.0, 4.0, 8.0  # CoC of the out-of-focus plane: 8 * |1 - 1/4| = 6 px


def two_planes():
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    near = xx < EDGE
    depth = torch.where(near, Z_NEAR, Z_FAR)
    img = torch.zeros(H, W, 3)
    img[..., 0] = torch.where(near, 5.0, 0.0)  # HDR-bright red foreground, no red in the background
    img[..., 1] = torch.where(near, 0.0, ((xx // 5) % 2).float() * 2.0 + 0.5)  # green stripes far
    img[..., 2] = torch.where(near, 0.3 + 0.01 * yy, 0.7)
    return img, depth, near, xx


def supersampled_disc(r: float, ss: int = 16) -> torch.Tensor:
    """Independent reference PSF: area coverage of the disc of radius r + 0.5 (16x16 subsamples)."""
    R = r + 0.5
    n = math.ceil(R) + 1
    t = (torch.arange(ss * (2 * n + 1), dtype=torch.float64) + 0.5) / ss - (2 * n + 1) / 2
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    k = ((xx ** 2 + yy ** 2) <= R * R).double().reshape(2 * n + 1, ss, 2 * n + 1, ss).mean((1, 3))
    return k / k.sum()


def test_coc_formula():
    r = coc_radius(torch.tensor([1.0, 2.0, 4.0]), focus_depth=2.0, aperture=8.0)
    assert torch.allclose(r, torch.tensor([4.0, 0.0, 2.0]))


def test_focus_near_keeps_near_plane_and_blurs_far_with_predicted_coc():
    img, depth, near, _ = two_planes()
    out = refocus(img, depth, focus_depth=Z_NEAR, aperture=A)
    assert torch.equal(out[near], img[near])  # in-focus plane unchanged, bit for bit
    # no halo: the bright red foreground must not bleed into the blurred background
    assert out[~near][:, 0].abs().max().item() < 1e-4
    # the background equals the far plane alone blurred by the predicted CoC (normalised by coverage)
    r = A * abs(1 / Z_NEAR - 1 / Z_FAR)
    k = supersampled_disc(r).float()
    m = (~near).float()
    layer = torch.cat([(img * m[..., None]).permute(2, 0, 1), m[None]])[:, None]
    blur = F.conv2d(layer, k[None, None], padding=k.shape[0] // 2)[:, 0]
    ref = (blur[:3] / blur[3:].clamp_min(1e-6)).permute(1, 2, 0)
    err = (out - ref)[~near]
    assert err.abs().mean().item() < 0.005
    assert err.abs().max().item() < 0.04  # stripes of amplitude 2: < 2 %
    # and it really is blurred: stripe contrast drops a lot away from the edge
    far_in = out[:, EDGE + 20: W - 20, 1]
    assert far_in.std().item() < 0.5 * img[:, EDGE + 20: W - 20, 1].std().item()


def test_focus_far_foreground_spills_only_within_its_coc():
    img, depth, near, xx = two_planes()
    r = A * abs(1 / Z_FAR - 1 / Z_NEAR)  # 6 px
    out = refocus(img, depth, focus_depth=Z_FAR, aperture=A)
    far_clear = xx >= EDGE + math.ceil(r) + 1
    assert torch.equal(out[far_clear], img[far_clear])  # beyond the CoC: untouched, no halo
    # inside the foreground, away from the edge, the colour stays the foreground's (blurred red 5.0)
    deep = (xx < EDGE - math.ceil(r) - 1) & (xx > math.ceil(r) + 1)
    assert torch.allclose(out[deep][:, 0], torch.full_like(out[deep][:, 0], 5.0), atol=1e-3)
    assert out[deep][:, 1].abs().max().item() < 1e-4  # no background stripes leak into the foreground
    # right at the edge the blurred foreground partially covers the background (it should)
    spill = out[:, EDGE + 1, 0]
    assert (spill > 0.2).all() and (spill < 5.0).all()


def test_zero_aperture_is_identity_and_batched_shapes():
    img, depth, _, _ = two_planes()
    assert refocus(img, depth, 2.0, 0.0) is img
    b = refocus(torch.stack([img, img]), torch.stack([depth, depth]), 2.0, 4.0)
    assert b.shape == (2, H, W, 3)
    assert torch.allclose(b[0], b[1])


def test_focus_depth_at_picks_the_pixel_depth():
    _, depth, _, _ = two_planes()
    assert focus_depth_at(depth, 10, 10) == Z_NEAR
    assert focus_depth_at(depth, W - 5, 50) == Z_FAR
    with pytest.raises(ValueError):
        focus_depth_at(depth, W + 3, 0)


def test_refocus_is_differentiable_in_the_image():
    img, depth, _, _ = two_planes()
    img = img.clone().requires_grad_(True)
    refocus(img, depth, Z_NEAR, A).sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_refocus_cuda_matches_cpu():
    img, depth, _, _ = two_planes()
    cpu = refocus(img, depth, Z_NEAR, A)
    gpu = refocus(img.cuda(), depth.cuda(), Z_NEAR, A).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


def _subject_on_slanted_ground(H=96, W=128, focus=2.0):
    """A textured subject at the focus depth in front of a ground plane slanting from z = 1 to z = 8."""
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    img = torch.zeros(H, W, 3)
    img[..., 0] = 0.5
    img[..., 1] = ((xx // 2 + yy // 2) % 2).float()  # a 2-pixel checker everywhere
    subject = (xx >= 48) & (xx < 80) & (yy >= 32) & (yy < 64)
    depth = torch.where(subject, torch.tensor(focus), 1.0 + 7.0 * yy.float() / (H - 1))
    inner = (xx >= 54) & (xx < 74) & (yy >= 38) & (yy < 58)  # the subject without its rim
    return img, depth, inner


def test_a_floater_does_not_blur_the_focus_plane():
    """The layers are centred on the focus plane, and depths beyond the 0.1%-99.9% range take layers of
    their own: one floater pixel near the camera must not widen every layer (with the 64-layer cap it
    made the layers 6 px wide, and the subject at the focus depth lost 83% of its texture)."""
    img, depth, inner = _subject_on_slanted_ground()
    floater = depth.clone()
    floater[-1, -1] = 0.05
    clean, with_floater = (refocus(img, d, 2.0, 20.0) for d in (depth, floater))
    assert torch.allclose(clean[inner], with_floater[inner], atol=1e-5)
    contrast = with_floater[inner][:, 1].std() / img[inner][:, 1].std()
    assert contrast > 0.9, f"the in-focus subject kept {contrast:.2f} of its texture"


def test_a_non_finite_pixel_stays_one_pixel():
    """NaN or inf in the HDR image: that pixel comes back as it is, and no other pixel is touched by it
    (a prefix sum or 0 x inf would carry it along whole rows of a layer)."""
    H, W = 64, 96
    xx = torch.arange(W)[None, :].expand(H, W)
    depth = torch.where(xx < 48, 1.0, 4.0)  # in focus on the left, blurred by 6 px on the right
    img = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(0))
    reference = refocus(img, depth, 1.0, 8.0)
    for y, x in ((10, 30), (10, 44), (10, 70)):
        for bad in (float("nan"), float("inf")):
            broken = img.clone()
            broken[y, x] = bad
            out = refocus(broken, depth, 1.0, 8.0)
            not_finite = ~torch.isfinite(out).all(-1)
            assert not_finite.sum() == 1 and not_finite[y, x]
            near = torch.zeros(H, W, dtype=torch.bool)
            near[max(0, y - 8):y + 9, max(0, x - 8):x + 9] = True
            assert torch.allclose(out[~near], reference[~near])  # beyond the blur's reach: untouched
