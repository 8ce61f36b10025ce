"""White balance: a grey card lit by a 3000 K illuminant renders neutral (Bradford CAT in XYZ)."""
from __future__ import annotations

import pytest
import torch

from le3d.color import camera_to_srgb, cct_to_xy, xy_to_xyz
from le3d.post import PostSettings, apply_exposure, apply_post, pick_neutral, white_balance_matrix
from le3d.post.white_balance import cam_to_xyz_from_color_matrix

# a realistic DNG ColorMatrix (XYZ -> camera native; Canon-like, D65 calibration): strongly non-diagonal
CM = torch.tensor([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])


def grey_card_camera_rgb(kelvin: float, reflectance: float = 0.18, tint: float = 0.0) -> torch.Tensor:
    """Camera-native response to a spectrally flat grey card under a `kelvin` illuminant."""
    white = xy_to_xyz(*cct_to_xy(kelvin, tint)).double()
    return (reflectance * (CM.double() @ white)).float()


def scene(kelvin: float) -> torch.Tensor:
    """A 3000 K scene: a grey card (left half) and a reddish surface (right half), [32, 32, 3]."""
    img = torch.empty(32, 32, 3)
    img[:, :16] = grey_card_camera_rgb(kelvin)
    red = xy_to_xyz(*cct_to_xy(kelvin)).double() * torch.tensor([0.4, 0.25, 0.1], dtype=torch.float64)
    img[:, 16:] = (CM.double() @ red).float()
    return img


def is_neutral(rgb: torch.Tensor, tol: float) -> bool:
    return (rgb.max() - rgb.min()).item() < tol


def test_grey_card_under_3000k_renders_neutral_with_temperature_wb():
    img = scene(3000.0)
    s = PostSettings(white_balance=(3000.0, 0.0), tonemap="clip", exposure_ev=1.0)
    out = apply_post(img, s, cam_to_xyz=cam_to_xyz_from_color_matrix(CM))
    card = out[:, :16].reshape(-1, 3)
    assert is_neutral(card.mean(0), 1e-3), card.mean(0)
    assert 0.05 < card.mean().item() < 0.95  # neither black nor clipped
    # the same card with a daylight (6500 K) balance is strongly orange: the test can fail
    warm = apply_post(img, PostSettings(white_balance=(6500.0, 0.0), tonemap="clip", exposure_ev=1.0),
                      cam_to_xyz=cam_to_xyz_from_color_matrix(CM))[:, :16].reshape(-1, 3).mean(0)
    assert warm[0] / warm[2] > 1.5


def test_temperature_wb_is_a_cat_not_channel_gains():
    # the Bradford route and camera-space gains agree on the neutral but not on saturated colours
    c2x = cam_to_xyz_from_color_matrix(CM)
    m_cat = white_balance_matrix((3000.0, 0.0), cam_to_xyz=c2x)
    n = grey_card_camera_rgb(3000.0) / 0.18
    m_gain = white_balance_matrix(n, cam_to_srgb=camera_to_srgb(CM))
    assert torch.allclose(m_cat @ n, m_gain @ n, atol=5e-4)
    red = scene(3000.0)[0, 20]
    assert not torch.allclose(m_cat @ red, m_gain @ red, atol=1e-3)


def test_tint_moves_off_the_locus():
    c2x = cam_to_xyz_from_color_matrix(CM)
    card = grey_card_camera_rgb(3000.0, tint=20.0)  # green-tinted 3000 K light (Adobe's +20)
    assert is_neutral(white_balance_matrix((3000.0, 20.0), cam_to_xyz=c2x) @ card, 1e-4)
    assert not is_neutral(white_balance_matrix((3000.0, 0.0), cam_to_xyz=c2x) @ card, 1e-3)


def test_neutral_patch_pick_renders_the_card_neutral():
    img = scene(3000.0)
    neutral = pick_neutral(img, x=5, y=10)
    for kw in ({"cam_to_xyz": cam_to_xyz_from_color_matrix(CM)}, {"cam_to_srgb": camera_to_srgb(CM)}):
        out = apply_post(img, PostSettings(white_balance=neutral, tonemap="clip"), **kw)
        assert is_neutral(out[10, 5], 1e-3)


def test_asshot_gains_render_the_card_neutral():
    n = grey_card_camera_rgb(3000.0)
    gains = n[1] / n  # what a camera that measured the light would store
    img = scene(3000.0)
    out = apply_post(img, PostSettings(tonemap="clip"), cam_to_srgb=camera_to_srgb(CM), asshot_wb=gains)
    assert is_neutral(out[0, 0], 1e-3)
    out2 = apply_post(img, PostSettings(tonemap="clip"), asshot_wb=gains, cam_to_xyz=cam_to_xyz_from_color_matrix(CM))
    assert is_neutral(out2[0, 0], 1e-3)


def test_temperature_without_colour_matrix_is_a_clear_error():
    with pytest.raises(ValueError, match="colour matrix"):
        white_balance_matrix((3000.0, 0.0), cam_to_srgb=camera_to_srgb(CM))


def test_exposure_is_in_stops_and_batched():
    x = torch.rand(2, 4, 5, 3)
    assert torch.allclose(apply_exposure(x, 1.0), 2 * x)
    assert torch.allclose(apply_exposure(x, -2.0), x / 4)
    ev = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    y = apply_exposure(x, ev)
    assert torch.allclose(y[0], x[0]) and torch.allclose(y[1], 2 * x[1])


def test_apply_post_batched_matches_single():
    x = torch.rand(3, 6, 7, 3) * 4
    s = PostSettings(white_balance=(4500.0, 5.0), tonemap="agx", exposure_ev=0.5)
    c2x = cam_to_xyz_from_color_matrix(CM)
    batched = apply_post(x, s, cam_to_xyz=c2x)
    single = torch.stack([apply_post(x[i], s, cam_to_xyz=c2x) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-6)
    assert batched.min() >= 0 and batched.max() <= 1


def test_tint_follows_adobes_direction_and_scale():
    """Adobe's Tint (DNG SDK dng_temperature: kTintScale = -3000 along isotherms of negative slope dv/du)
    puts a positive tint's white point on the green side of the locus (+v in CIE 1960 uv), tint / 3000
    away; balancing for it turns an image magenta, as Camera Raw's and Lightroom's +Tint does."""
    def uv(xy):
        x, y = xy
        d = -2 * x + 12 * y + 3
        return torch.tensor([4 * x / d, 6 * y / d], dtype=torch.float64)

    for kelvin in (3000.0, 5500.0):
        base = uv(cct_to_xy(kelvin, 0.0))
        for tint in (20.0, -35.0):
            step = uv(cct_to_xy(kelvin, tint)) - base
            assert step.norm().item() == pytest.approx(abs(tint) / 3000, rel=1e-3)
            assert (step[1] > 0) == (tint > 0)  # +tint: towards +v, the green side
    # the rendered result: a grey card under plain 3000 K light, balanced for 3000 K with +20 tint
    c2x = cam_to_xyz_from_color_matrix(CM)
    out = apply_post(grey_card_camera_rgb(3000.0)[None, None], PostSettings(white_balance=(3000.0, 20.0),
                                                                            tonemap="clip"),
                     cam_to_xyz=c2x)[0, 0]
    assert out[1] < out[0] and out[1] < out[2], f"+tint should render magenta, got {out.tolist()}"


def test_temperature_moves_the_white_point_smoothly():
    """The slider's white point must not jump: the daylight and Planckian loci meet over 4000-5000 K
    (they switched at 4000 K, a jump of 8 tint units between 3999 and 4000 K), while 6504 K stays D65."""
    def uv(t):
        x, y = cct_to_xy(t)
        d = -2 * x + 12 * y + 3
        return torch.tensor([4 * x / d, 6 * y / d], dtype=torch.float64)

    temps = (1e6 / torch.arange(41.0, 590.0, 0.25)).tolist()  # quarter-mired steps, 24000 K down to 1700 K
    steps = torch.stack([(uv(b) - uv(a)).norm() for a, b in zip(temps[:-1], temps[1:])])
    assert steps.max() < 2.5e-4, f"largest step {steps.max():.2e} at {temps[int(steps.argmax())]:.0f} K"
    assert cct_to_xy(6504.0) == pytest.approx((0.31271, 0.32902), abs=2e-4)  # D65, on the daylight locus


def test_planckian_locus_above_4000k():
    """Kim et al.'s fits change above 4000 K for x and y alike; the below-4000 K x fit was used at every
    temperature (x 0.0010 low at 5000 K, inside the 4000-5000 K blend). Published blackbody
    chromaticities (CIE 1931 2 degree): 5000 K (0.3451, 0.3516), 6500 K (0.3135, 0.3237),
    10000 K (0.2807, 0.2884)."""
    from le3d.color import _planckian_xy

    for t, xy in ((5000.0, (0.3451, 0.3516)), (6500.0, (0.3135, 0.3237)), (10000.0, (0.2807, 0.2884))):
        assert _planckian_xy(t) == pytest.approx(xy, abs=5e-4), t  # the fits are good to ~4e-4
    assert _planckian_xy(3000.0) == pytest.approx((0.4369, 0.4041), abs=5e-4)  # below 4000 K: as before
