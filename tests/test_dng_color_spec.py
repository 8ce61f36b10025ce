"""DNG-spec camera colour (DNG 1.4+, chapter 6): ColorMatrix / ForwardMatrix interpolated linearly in
inverse CCT at the as-shot white, found iteratively from AsShotNeutral; and one colour model for the
viewers ('asshot' as a Bradford adaptation), eval and the previews (camera-space gains).

Expected values come from published constants (CIE whites and CCTs, the Bradford and sRGB matrices,
two real Adobe profiles' matrices) and hand computations written out here, never from le3d."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from le3d.raw import RawFrame, read_dng, write_dng

# Adobe Standard profile of a Sony A7R VI: ColorMatrix1 under standard light A, ColorMatrix2 under D65
CM_A = np.array([[1.1263, -0.7003, 0.1490], [-0.2636, 0.9664, 0.3487], [0.0148, 0.0267, 0.6591]])
CM_D65 = np.array([[1.1765, -0.5595, -0.1192], [-0.3689, 1.1507, 0.2485], [0.0051, 0.0681, 0.5731]])
# two valid ForwardMatrices (white-balanced camera -> XYZ D50, rows summing to the D50 white): the
# ProPhoto RGB and the (Bradford-adapted) sRGB primaries in XYZ D50 (Lindbloom's tables)
FM_A = np.array([[0.7976749, 0.1351917, 0.0313534], [0.2880402, 0.7118741, 0.0000857], [0.0, 0.0, 0.8252100]])
FM_D65 = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                   [0.0139322, 0.0971045, 0.7141733]])

T_A, T_D65 = 2856.0, 6504.0  # CIE: illuminant A and D65 correlated colour temperatures (K)
XY = {"A": (0.44757, 0.40745), "D50": (0.34567, 0.35850), "D65": (0.31270, 0.32900), "D75": (0.29902, 0.31485),
      "F11": (0.38052, 0.37713)}  # CIE 15:2004 chromaticities (F11: CCT 4000 K)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # IEC 61966-2-1 primaries, D65 white
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)
RAW = np.full((32, 32), 1000, np.uint16)  # pixels do not matter here


def xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def xy_of(v) -> tuple[float, float]:
    return v[0] / v.sum(), v[1] / v.sum()


def bradford(src, dst) -> np.ndarray:
    return np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ dst) / (BRADFORD @ src)) @ BRADFORD


def weight_a(cct: float) -> float:
    """Weight of the A calibration at ``cct``: linear in 1 / CCT, clamped to the two illuminants."""
    g = (1 / cct - 1 / T_D65) / (1 / T_A - 1 / T_D65)
    return min(max(g, 0.0), 1.0)


def rows_to_one(m: np.ndarray) -> np.ndarray:
    return m / m.sum(1, keepdims=True)


def cm_to_srgb(cm: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """The spec's camera -> XYZ (inverse CM; the white W = CM^-1 @ neutral), adapted W -> D65, to
    sRGB, acting on white-balanced camera RGB (x neutral); white-balanced (1, 1, 1) -> (1, 1, 1)."""
    w = np.linalg.solve(cm, neutral)
    return rows_to_one(XYZ_TO_SRGB @ bradford(w, SRGB_TO_XYZ.sum(1)) @ np.linalg.inv(cm) @ np.diag(neutral))


def frame(neutral, cm1=CM_A, ill1=17, cm2=CM_D65, ill2=21, fm1=None, fm2=None) -> RawFrame:
    return RawFrame(mosaic=torch.zeros(2, 2), cfa="RGGB", black_level=np.zeros((2, 2)), white_level=1.0,
                    as_shot_neutral=np.asarray(neutral, dtype=np.float64), color_matrix1=cm1, illuminant1=ill1,
                    color_matrix2=cm2, illuminant2=ill2, forward_matrix1=fm1, forward_matrix2=fm2)


def test_xy_to_cct_of_published_whites():
    from le3d.color import xy_to_cct

    # CIE: A 2856 K, D50 5003 K, D55 5503 K, D65 6504 K, D75 7504 K (Robertson's method: within ~2 K)
    for xy, cct in ((XY["A"], 2856), (XY["D50"], 5003), ((0.33242, 0.34743), 5503), (XY["D65"], 6504),
                    (XY["D75"], 7504)):
        assert xy_to_cct(*xy) == pytest.approx(cct, abs=3), xy
    # far from the tabulated isotherms: clamped to what cct_to_xy covers
    assert xy_to_cct(0.60, 0.38) == 1667 and xy_to_cct(0.22, 0.22) == 25000


def test_illuminant_codes_to_cct():
    from le3d.color import illuminant_cct

    assert illuminant_cct(17) == 2856 and illuminant_cct(21) == 6504  # standard light A, D65
    assert illuminant_cct(23) == 5003 and illuminant_cct(3) == 2856  # D50, tungsten
    assert illuminant_cct(24) == 3200  # ISO studio tungsten
    assert illuminant_cct(0) is None and illuminant_cct(255) is None and illuminant_cct(None) is None


def test_interpolation_weights_are_linear_in_inverse_cct():
    from le3d.raw.dng import calibration

    cal = calibration(CM_A, 17, CM_D65, 21)
    # by hand at 4000 K: (250.000 - 153.752) / (350.140 - 153.752) mired = 96.248 / 196.389 = 0.49009
    assert cal.weight1(4000.0) == pytest.approx(0.4900921, abs=1e-6)
    np.testing.assert_allclose(cal.color_matrix(4000.0), 0.4900921 * CM_A + 0.5099079 * CM_D65, atol=1e-6)
    # the mid-point in mired (251.946 mired, 3969.1 K) weighs both equally
    assert cal.weight1(2 / (1 / T_A + 1 / T_D65)) == pytest.approx(0.5, abs=1e-12)
    for cct, g in ((2856.0, 1.0), (2000.0, 1.0), (6504.0, 0.0), (12000.0, 0.0)):  # clamped outside
        assert cal.weight1(cct) == g
    # the calibrations' order in the file does not matter
    assert calibration(CM_D65, 21, CM_A, 17).weight1(4000.0) == pytest.approx(0.5099079, abs=1e-6)


def test_as_shot_white_is_the_fixed_point_of_the_interpolation():
    """The white's xy is that of CM(T)^-1 @ neutral, with CM interpolated at that xy's own CCT T."""
    from le3d.color import xy_to_cct

    neutral = 0.5 * (CM_A + CM_D65) @ xyz(XY["F11"])  # a white between the calibrations (~4000 K)
    f = frame(neutral / neutral.max())
    c2x = f.cam_to_xyz().double().numpy()
    white = c2x @ f.as_shot_neutral
    t = xy_to_cct(*xy_of(white))
    assert 3500 < t < 4500
    g = weight_a(t)  # by hand from that CCT
    cm = g * CM_A + (1 - g) * CM_D65
    np.testing.assert_allclose(c2x, np.linalg.inv(cm), atol=1e-5)
    np.testing.assert_allclose(xy_of(np.linalg.solve(cm, f.as_shot_neutral)), xy_of(white), atol=1e-6)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), cm_to_srgb(cm, f.as_shot_neutral), atol=1e-4)


def test_tungsten_neutral_uses_the_std_a_matrix_and_daylight_the_d65_one():
    # a 2200 K-ish Planckian white (x = 0.5: far warmer than A) seen by the A calibration
    tungsten = CM_A @ xyz((0.50, 0.415))
    f = frame(tungsten)
    np.testing.assert_allclose(f.cam_to_xyz().numpy(), np.linalg.inv(CM_A), atol=1e-5)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), cm_to_srgb(CM_A, tungsten), atol=1e-4)
    daylight = CM_D65 @ xyz(XY["D75"])  # 7504 K: beyond D65, clamped to it
    f = frame(daylight)
    np.testing.assert_allclose(f.cam_to_xyz().numpy(), np.linalg.inv(CM_D65), atol=1e-5)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), cm_to_srgb(CM_D65, daylight), atol=1e-4)


def test_forward_matrix_path_interpolates_the_forward_matrices():
    """With ForwardMatrices: white-balanced camera -> FM(T) -> XYZ D50 -> Bradford D50 -> D65 -> sRGB."""
    d50, d65 = xyz(XY["D50"]), xyz(XY["D65"])
    tungsten = CM_A @ xyz((0.50, 0.415))
    f = frame(tungsten, fm1=FM_A, fm2=FM_D65)
    expected = rows_to_one(XYZ_TO_SRGB @ bradford(d50, d65) @ FM_A)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), expected, atol=1e-4)
    neutral = 0.5 * (CM_A + CM_D65) @ xyz(XY["F11"])
    f = frame(neutral, fm1=FM_A, fm2=FM_D65)
    from le3d.color import xy_to_cct

    g = weight_a(xy_to_cct(*xy_of(f.cam_to_xyz().double().numpy() @ neutral)))
    assert 0.2 < g < 0.8
    expected = rows_to_one(XYZ_TO_SRGB @ bradford(d50, d65) @ (g * FM_A + (1 - g) * FM_D65))
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), expected, atol=1e-4)


def test_single_matrix_uses_it_for_any_white_and_no_matrix_is_identity():
    neutral = CM_D65 @ xyz(XY["A"])  # a tungsten white, only a D65 calibration
    f = frame(neutral, cm1=CM_D65, ill1=21, cm2=None, ill2=None)
    np.testing.assert_allclose(f.cam_to_xyz().numpy(), np.linalg.inv(CM_D65), atol=1e-5)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), cm_to_srgb(CM_D65, neutral), atol=1e-4)
    bare = frame([0.5, 1.0, 0.7], cm1=None, ill1=None, cm2=None, ill2=None)
    assert bare.cam_to_xyz() is None and torch.equal(bare.cam_to_srgb(), torch.eye(3))


def test_as_shot_white_xy_gives_the_neutral_of_the_interpolated_matrix(tmp_path):
    x, y = XY["F11"]  # CIE F11: 4000 K
    p = tmp_path / "xy.dng"
    write_dng(p, RAW, white_level=4095, as_shot_neutral=None, color_matrix1=CM_A,
              illuminant1=17, color_matrix2=CM_D65, illuminant2=21,
              extra_tags=[(50729, "2I", 2, (38052, 100000, 37713, 100000))])
    g = weight_a(4000.0)
    expected = (g * CM_A + (1 - g) * CM_D65) @ xyz((x, y))
    np.testing.assert_allclose(read_dng(p).as_shot_neutral, expected / expected.max(), rtol=2e-4)


@pytest.mark.parametrize("forward", [False, True])
def test_viewer_as_shot_equals_camera_space_gains_and_eval(tmp_path, forward):
    """A two-matrix DNG under tungsten: the viewers' / render's 'asshot' (Bradford from the as-shot
    white in XYZ), the ISP previews and eval (camera-space gains, then cam_to_srgb) give one colour."""
    from le3d.color import srgb_oetf
    from le3d.metrics import to_srgb
    from le3d.post import PostSettings, apply_post_linear
    from le3d.raw.isp import process
    from le3d.render import scene_color_context

    neutral = CM_A @ xyz((0.4368, 0.4041))  # ~3000 K: between the calibrations, near A
    p = tmp_path / "t.dng"
    fms = {"forward_matrix1": FM_A, "forward_matrix2": FM_D65} if forward else {}
    write_dng(p, RAW, white_level=4095, as_shot_neutral=neutral / neutral.max(),
              color_matrix1=CM_A, illuminant1=17, color_matrix2=CM_D65, illuminant2=21, **fms)
    f = read_dng(p)
    ctx = scene_color_context(f.cam_to_srgb(), f.white_balance, f.cam_to_xyz())
    # saturated colours: camera responses to a deep red, green and blue surface (and the neutral)
    cam = torch.tensor([[0.30, 0.05, 0.01], [0.04, 0.20, 0.03], [0.01, 0.06, 0.25], list(neutral / 4)],
                       dtype=torch.float32)
    viewer = apply_post_linear(cam, PostSettings(white_balance="asshot"), **ctx)
    gains = cam * f.white_balance
    campath = gains @ f.cam_to_srgb().T
    torch.testing.assert_close(viewer, campath, atol=2e-6, rtol=1e-5)
    assert torch.allclose(viewer[3], viewer[3].mean().expand(3), atol=1e-5)  # the neutral stays grey
    torch.testing.assert_close(to_srgb(cam, f.white_balance, f.cam_to_srgb()), srgb_oetf(viewer.clamp(0, 1)),
                               atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(process(cam, f.white_balance, f.cam_to_srgb()), srgb_oetf(viewer.clamp(0, 1)),
                               atol=2e-5, rtol=1e-5)


def test_synth_writes_what_read_dng_derives(tmp_path):
    """le3d.synth unprocesses with the (gains, cam_to_srgb) pair read_dng derives from its tags."""
    from le3d.synth.generate import dng_colour, write_frame_dng
    from le3d.synth.unprocess import camera_colour

    cm1, cm2, wb = camera_colour(3)
    cm1, cm2, neutral, wb, c2s = dng_colour(cm1, cm2, 1.0 / wb)
    p = tmp_path / "s.dng"
    write_frame_dng(p, torch.full((32, 32), 0.25), "RGGB", 1.0, 100, 14, torch.Generator().manual_seed(0), cm1, cm2, neutral,
                    1 / 30, noise=False)
    f = read_dng(p)
    assert torch.equal(f.cam_to_srgb(), c2s)
    np.testing.assert_allclose(f.white_balance.numpy(), wb, rtol=1e-7)
    # the seeded gains put the white between the calibrations, where the D65 matrix alone is wrong
    g = f.color().weight1
    assert 0.0 < g < 1.0
