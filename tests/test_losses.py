import math

import torch

from le3d.losses import distortion_loss, nearfar_loss, rawnerf_l2, s3im_loss, ssim


def test_rawnerf_l2_hand_computed():
    pred = torch.tensor([0.5, 2.0, 0.0])
    target = torch.tensor([0.25, 1.0, 0.1])
    # min(pred, 1) = [0.5, 1, 0]; weights 1/(p + 1e-3)
    expect = ((0.25 / 0.501) ** 2 + 0.0 + (0.1 / 0.001) ** 2) / 3
    assert math.isclose(float(rawnerf_l2(pred, target)), expect, rel_tol=1e-5)


def test_rawnerf_l2_mask_and_stop_gradient():
    pred = torch.tensor([0.5, 0.2], requires_grad=True)
    target = torch.tensor([0.25, 0.0])
    loss = rawnerf_l2(pred, target, mask=torch.tensor([True, False]))
    assert math.isclose(float(loss.detach()), (0.25 / 0.501) ** 2, rel_tol=1e-5)
    loss.backward()
    # gradient only through the numerator: 2 (p - y) / (p + eps)^2
    assert math.isclose(float(pred.grad[0]), 2 * 0.25 / 0.501 ** 2, rel_tol=1e-5)
    assert float(pred.grad[1]) == 0.0


def test_ssim_identity_and_drop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 32, 3, generator=g)
    assert math.isclose(float(ssim(x, x)), 1.0, rel_tol=1e-5)
    assert float(ssim(x, torch.rand(32, 32, 3, generator=g))) < 0.2


def test_s3im_zero_for_identical_and_first_repeat_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 16, 3, generator=g)
    assert abs(float(s3im_loss(x, x, torch.Generator().manual_seed(1), num_pixels=256, repeats=3,
                               patch_height=16))) < 1e-6
    y = torch.rand(16, 16, 3, generator=g)
    val = float(s3im_loss(x, y, torch.Generator().manual_seed(1), num_pixels=256, repeats=3, patch_height=16))
    assert 0.5 < val < 1.5


def test_nearfar_hand_computed():
    near = torch.tensor([1.0, 2.0])
    far = torch.tensor([1.0, 4.0])
    w = torch.tensor([1.0, 0.5])
    expect = (0.0 + math.log(4.001 / 2.001) ** 2 * 0.5) / 2
    assert math.isclose(float(nearfar_loss(near, far, w)), expect, rel_tol=1e-5)
    assert float(distortion_loss(torch.tensor([[0.2, 0.4]]))) == float(torch.tensor(0.3))
