

import numpy as np
import torch

from le3d.color import bradford, camera_to_srgb, cct_to_xy, srgb_eotf, srgb_oetf
from le3d.raw.isp import process, unprocess


def test_srgb_hand_values():
    x = torch.tensor([0.0, 0.0031308, 0.18, 1.0, -0.5])
    y = srgb_oetf(x)
    np.testing.assert_allclose(y[:4].numpy(), [0.0, 0.0404492, 1.055 * 0.18 ** (1 / 2.4) - 0.055, 1.0], atol=1e-6)
    assert y[4] < 0  # odd extension keeps noise below black
    np.testing.assert_allclose(srgb_eotf(y).numpy(), x.numpy(), atol=1e-6)


def test_colour_constants():
    # Bradford D65 -> D50 (Lindbloom)
    np.testing.assert_allclose(bradford("D65", "D50")[0].numpy(), [1.0478112, 0.0228866, -0.0501270], atol=2e-4)
    x, y = cct_to_xy(6504)
    assert abs(x - 0.3127) < 2e-4 and abs(y - 0.3290) < 3e-4
    x, y = cct_to_xy(2856)  # illuminant A lies on the Planckian locus
    assert abs(x - 0.4476) < 1e-3 and abs(y - 0.4074) < 1e-3


def test_isp_hand_computed():
    wb = torch.tensor([2.0, 1.0, 1.5])
    M = torch.tensor([[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.4, 1.4]])
    cam = torch.tensor([0.05, 0.1, 0.04])
    # by hand: wb -> (0.1, 0.1, 0.06); M -> (0.15-0.03-0.012, -0.02+0.14-0.012, -0.04+0.084) = (0.108, 0.108, 0.044)
    # +1 EV -> (0.216, 0.216, 0.088); sRGB OETF
    lin = torch.tensor([0.216, 0.216, 0.088])
    expected = 1.055 * lin ** (1 / 2.4) - 0.055
    np.testing.assert_allclose(process(cam, wb, M, ev=1.0).numpy(), expected.numpy(), atol=1e-6)
    # clip: values above 1 after exposure saturate at 1
    np.testing.assert_allclose(process(torch.tensor([1.0, 1.0, 1.0]), wb, M, ev=3.0).numpy(), 1.0, atol=1e-6)


def test_isp_round_trip():
    cm = torch.tensor([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])
    M = camera_to_srgb(cm, "D65")
    wb = torch.tensor([2.25, 1.0, 1.42])
    cam = torch.rand(50, 3) * 4 - 0.1
    back = unprocess(process(cam, wb, M, ev=-1.5, tonemap="none"), wb, M, ev=-1.5)
    np.testing.assert_allclose(back.numpy(), cam.numpy(), atol=1e-4)
    # a white-balanced neutral maps to sRGB neutral, also when the matrix was measured under A
    for ill in ("D65", "A", 23):
        M2 = camera_to_srgb(cm, ill)
        np.testing.assert_allclose((M2 @ torch.ones(3)).numpy(), [1, 1, 1], atol=1e-5)
    # under A, a neutral's camera response is CM @ white_A; white balancing it gives sRGB white
    from le3d.color import illuminant_xyz

    n = cm.double() @ illuminant_xyz("A").double()
    MA = camera_to_srgb(cm, "A").double()
    out = MA @ (n / n)
    np.testing.assert_allclose(out.numpy(), [1, 1, 1], atol=1e-5)
