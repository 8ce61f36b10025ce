"""White balance other than as-shot with the scene's DNG colour profile: the DNG specification
interpolates ColorMatrix1/2 (and ForwardMatrix1/2) at the *requested* white's CCT, so a scene shot
under daylight and balanced to 2856 K uses the A matrix, not the as-shot white's D65 matrix.

Expected values are hand computations in numpy from published constants (CIE whites, the Bradford and
sRGB matrices, Kim et al.'s Planckian locus fit, an Adobe profile's matrices), never from le3d."""
from __future__ import annotations

import json

import numpy as np
import pytest
import run_fixture
import torch

# Adobe Standard profile of a Sony A7R VI: ColorMatrix1 under standard light A, ColorMatrix2 under D65
CM_A = np.array([[1.1263, -0.7003, 0.1490], [-0.2636, 0.9664, 0.3487], [0.0148, 0.0267, 0.6591]])
CM_D65 = np.array([[1.1765, -0.5595, -0.1192], [-0.3689, 1.1507, 0.2485], [0.0051, 0.0681, 0.5731]])
# a valid ForwardMatrix (white-balanced camera -> XYZ D50, rows summing to the D50 white): the ProPhoto
# RGB primaries in XYZ D50, and the Bradford-adapted sRGB ones (Lindbloom's tables)
FM_A = np.array([[0.7976749, 0.1351917, 0.0313534], [0.2880402, 0.7118741, 0.0000857], [0.0, 0.0, 0.8252100]])
FM_D65 = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                   [0.0139322, 0.0971045, 0.7141733]])
PROFILE = {"color_matrix1": CM_A.tolist(), "illuminant1": 17, "color_matrix2": CM_D65.tolist(), "illuminant2": 21,
           "forward_matrix1": None, "forward_matrix2": None}
XY = {"A": (0.44757, 0.40745), "D50": (0.34567, 0.35850), "D65": (0.31270, 0.32900)}  # CIE 15:2004
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # IEC 61966-2-1 primaries, D65 white
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)
D65W = SRGB_TO_XYZ.sum(1)  # the sRGB matrix's own white: sRGB (1, 1, 1)


def xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def bradford(src, dst) -> np.ndarray:
    return np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ dst) / (BRADFORD @ src)) @ BRADFORD


def planck_xy(t: float) -> tuple[float, float]:
    """Planckian locus 2222..4000 K: Kim et al. (2002), "Design of advanced color temperature control
    system for HDTV applications", cubic spline fits."""
    assert 2222 <= t <= 4000
    x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    return x, -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867


def cam_to_srgb_under(cm: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    """The DNG spec's camera-native -> linear sRGB for a scene lit by ``white_xyz`` with ColorMatrix
    ``cm``: camera -> XYZ (inverse CM), Bradford white -> D65, XYZ -> sRGB, scaled so that the
    camera's neutral (its response to the white, green = 1) maps to sRGB (1, 1, 1)."""
    n = cm @ white_xyz
    n = n / n[1]
    w = np.linalg.solve(cm, n)
    return XYZ_TO_SRGB @ bradford(w, D65W) @ np.linalg.inv(cm)


def d65_scene() -> dict:
    """White-balance keywords of a scene shot under D65 with PROFILE (as the RAW loader stores them)."""
    from le3d.raw.dng import dng_color

    n = CM_D65 @ xyz(XY["D65"])
    c = dng_color(CM_A, 17, CM_D65, 21, None, None, n)
    gains = (1.0 / n) / (1.0 / n[1])
    return {"cam_to_srgb": c.cam_to_srgb, "asshot_wb": torch.tensor(gains, dtype=torch.float32),
            "cam_to_xyz": c.cam_to_xyz}


def wb(white_balance, profile=PROFILE, **scene) -> np.ndarray:
    from le3d.post.white_balance import white_balance_matrix

    kw = scene or d65_scene()
    if profile is not None:
        kw = {**kw, "color_profile": profile}
    return white_balance_matrix(white_balance, **kw).double().numpy()


def test_kelvin_below_the_a_calibration_uses_the_a_matrix():
    """2500 K is warmer than illuminant A: the interpolation clamps to ColorMatrix1 (A) exactly."""
    expected = cam_to_srgb_under(CM_A, xyz(planck_xy(2500.0)))
    got = wb((2500.0, 0.0))
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # the old path kept the as-shot (D65) matrix: far off
    assert np.abs(wb((2500.0, 0.0), profile=None) - expected).max() > 0.3


def test_d65_scene_balanced_to_2856k_matches_the_a_matrix():
    """A scene shot under daylight, balanced to 2856 K (illuminant A's CCT): the result is the
    A-calibrated matrix under A's white, XYZ_TO_SRGB @ bradford(W_A -> D65) @ inv(CM_A). (Robertson
    puts Kim's 2856 K point at ~2864 K, so ColorMatrix2 keeps a weight below 1%: hence the tolerance.)"""
    expected = cam_to_srgb_under(CM_A, xyz(XY["A"]))
    new, old = wb((2856.0, 0.0)), wb((2856.0, 0.0), profile=None)
    assert np.abs(new - expected).max() < 0.01
    assert np.abs(old - expected).max() > 0.3
    # a saturated colour seen under A: the old path moves it by many dE, the new one by almost none
    surface = np.array([0.40, 0.22, 0.05])  # XYZ of a saturated orange-red under A (relative)
    cam = CM_A @ surface

    def lab(rgb):
        v = SRGB_TO_XYZ @ rgb / D65W
        f = np.where(v > (6 / 29) ** 3, np.cbrt(v), v / (3 * (6 / 29) ** 2) + 4 / 29)
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    ref = lab(expected @ cam)
    assert np.linalg.norm(lab(new @ cam) - ref) < 0.5
    assert np.linalg.norm(lab(old @ cam) - ref) > 3.0


def test_grey_under_a_renders_neutral():
    grey = 0.18 * (CM_A @ xyz(planck_xy(2700.0)))  # camera response to a grey card under 2700 K light
    out = wb((2700.0, 0.0)) @ grey
    np.testing.assert_allclose(out / out[1], np.ones(3), atol=1e-5)
    old = wb((2700.0, 0.0), profile=None) @ grey
    assert np.abs(old / old[1] - 1).max() > 0.05  # the D65 matrix predicts another response to that light


def test_neutral_patch_uses_the_matrix_of_its_white():
    patch = CM_A @ xyz(planck_xy(2500.0)) * 0.3  # a picked grey under 2500 K light (clamps to CM_A)
    expected = cam_to_srgb_under(CM_A, xyz(planck_xy(2500.0)))
    got = wb(patch.tolist())
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert np.abs(wb(patch.tolist(), profile=None) - expected).max() > 0.3


def test_forward_matrix_of_the_requested_white():
    """With ForwardMatrices: at a white warmer than A, ForwardMatrix1 alone, then diag(1 / neutral)."""
    profile = {**PROFILE, "forward_matrix1": FM_A.tolist(), "forward_matrix2": FM_D65.tolist()}
    n = CM_A @ xyz(planck_xy(2500.0))
    n = n / n[1]
    c2s = XYZ_TO_SRGB @ bradford(xyz(XY["D50"]), xyz(XY["D65"])) @ FM_A
    expected = c2s / c2s.sum(1, keepdims=True) @ np.diag(1.0 / n)
    np.testing.assert_allclose(wb((2500.0, 0.0), profile=profile), expected, atol=2e-5)


def test_asshot_is_unchanged_by_the_profile():
    scene = d65_scene()
    new, old = wb("asshot", **scene), wb("asshot", profile=None, **scene)
    np.testing.assert_allclose(new, old, atol=2e-6)
    np.testing.assert_allclose(new, cam_to_srgb_under(CM_D65, xyz(XY["D65"])), atol=1e-4)
    # and 'none' ignores the profile
    np.testing.assert_allclose(wb("none", **scene), wb("none", profile=None, **scene), atol=0)


def test_apply_post_takes_the_profile():
    from le3d.post import PostSettings, apply_post_linear

    hdr = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(0))
    s = d65_scene()
    out = apply_post_linear(hdr, PostSettings(white_balance=(2500.0, 0.0)), s["cam_to_srgb"], s["asshot_wb"],
                            cam_to_xyz=s["cam_to_xyz"], color_profile=PROFILE)
    expected = hdr.double().numpy() @ cam_to_srgb_under(CM_A, xyz(planck_xy(2500.0))).T
    np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# a trained RUN (synth: ColorMatrix1 under D65, ColorMatrix2 under A, no ForwardMatrix)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return run_fixture.get_tiny_run(tmp_path_factory)


def _first_dng_tags(run_path):
    from le3d.raw import read_dng

    cfg = json.loads((run_path / "config.json").read_text())
    dngs = sorted((__import__("pathlib").Path(cfg["scene"]["path"]) / "raw").glob("*.dng"))
    return read_dng(dngs[0])


def test_run_config_keeps_the_profile_and_render_uses_it(tiny_run, tmp_path):
    from le3d.cli import main
    from le3d.io.images import read_exr
    from le3d.post import PostSettings
    from le3d.render import color_context, load_cameras, post_process_linear, render_hdr
    from le3d.run import load_run

    f = _first_dng_tags(tiny_run)
    prof = json.loads((tiny_run / "config.json").read_text())["scene"]["color_profile"]
    assert prof["illuminant1"] == f.illuminant1 == 21 and prof["illuminant2"] == f.illuminant2 == 17
    np.testing.assert_allclose(prof["color_matrix1"], f.color_matrix1, atol=1e-6)
    np.testing.assert_allclose(prof["color_matrix2"], f.color_matrix2, atol=1e-6)
    assert prof["forward_matrix1"] is None and prof["forward_matrix2"] is None
    run = load_run(tiny_run)
    assert color_context(run)["color_profile"] == prof
    # `le3d render --wb 2500,0`: the A matrix (ColorMatrix2 here), not the as-shot (daylight) one
    out = tmp_path / "exr"
    assert main(["render", str(tiny_run), "--out", str(out), "--format", "exr", "--quiet", "--wb", "2500,0"]) == 0
    cam = load_cameras(run, "test")[0][0]
    hdr, depth = render_hdr(run, cam)
    m = cam_to_srgb_under(np.asarray(f.color_matrix2), xyz(planck_xy(2500.0)))
    expected = hdr.double().numpy() @ m.T
    got = read_exr(out / json.loads((out / "render.json").read_text())["files"][0])
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-3, atol=1e-4)
    api = post_process_linear(run, hdr, PostSettings(white_balance=(2500.0, 0.0)), depth)
    np.testing.assert_allclose(api.double().numpy(), expected, rtol=1e-3, atol=1e-4)


def test_old_run_config_without_profile_still_renders(tiny_run):
    """RUNs written before the profile was kept: the as-shot white's camera -> XYZ and a Bradford CAT."""
    from le3d.post import PostSettings
    from le3d.render import color_context, load_cameras, post_process_linear, render_hdr
    from le3d.run import load_run

    run = load_run(tiny_run)
    run.config = {**run.config, "scene": {k: v for k, v in run.config["scene"].items() if k != "color_profile"}}
    ctx = color_context(run)
    assert ctx["color_profile"] is None
    cam = load_cameras(run, "test")[0][0]
    hdr, depth = render_hdr(run, cam)
    got = post_process_linear(run, hdr, PostSettings(white_balance=(2500.0, 0.0)), depth).double().numpy()
    c2x = np.asarray(run.config["scene"]["cam_to_xyz"], dtype=np.float64)
    w = xyz(planck_xy(2500.0))
    n = np.linalg.solve(c2x, w)
    expected = hdr.double().numpy() @ (XYZ_TO_SRGB @ bradford(w / n[1], D65W) @ c2x).T
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_viewers_take_the_profile(tiny_run):
    """The trained-RUN viewer and the live training viewer hold the profile and render with it."""
    import threading
    from types import SimpleNamespace

    from le3d.run import load_run
    from viewer.live import TrainerSource
    from viewer.render import ViewSettings, display_image
    from viewer.source import RunSource

    run = load_run(tiny_run)
    src = RunSource(run)
    assert src.color_profile == run.config["scene"]["color_profile"] is not None
    sc = run.config["scene"]
    scene = SimpleNamespace(kind="raw", cam_to_srgb=torch.tensor(sc["cam_to_srgb"]),
                            white_balance=torch.tensor(sc["white_balance"]), cam_to_xyz=torch.tensor(sc["cam_to_xyz"]),
                            color_profile=sc["color_profile"], cameras=[], name="t")
    live = TrainerSource(SimpleNamespace(scene=scene, model=run.model), threading.RLock())
    assert live.color_profile == src.color_profile
    hdr = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(1)) * 0.2
    settings = ViewSettings()
    settings.post.white_balance, settings.post.tonemap = (2500.0, 0.0), "linear"
    out = SimpleNamespace(image=hdr)
    m = cam_to_srgb_under(np.asarray(sc["color_profile"]["color_matrix2"]), xyz(planck_xy(2500.0)))
    lin = np.clip(hdr.double().numpy() @ m.T, 0, 1)
    expected = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    for source in (src, live):
        got = display_image(out, settings, source, torch.ones(4, 4)).double().numpy()
        np.testing.assert_allclose(got, expected, atol=2e-4)
