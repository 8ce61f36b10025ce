

import numpy as np
import pytest
import rawpy

from le3d.errors import Le3dError
from le3d.raw import read_dng, write_dng
from le3d.raw.bayer import cfa_positions, demosaic_bilinear, masked_full, pack

CM1 = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028], [-0.0908, 0.2162, 0.5668]])
CM2 = np.array([[0.7, -0.1, -0.05], [-0.4, 1.3, 0.15], [-0.1, 0.25, 0.6]])
FM1 = np.array([[0.61, 0.2, 0.15], [0.25, 0.73, 0.02], [0.03, 0.0, 0.79]])


def _write(path, cfa="RGGB", raw=None, **kw):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 16383, (40, 60)).astype(np.uint16) if raw is None else raw
    args = dict(cfa=cfa, black_level=[510, 512, 514, 516], white_level=16383, as_shot_neutral=[0.5, 1.0, 0.7],
                color_matrix1=CM1, illuminant1=21, color_matrix2=CM2, illuminant2=17, forward_matrix1=FM1,
                forward_matrix2=FM1 * 0.99, exposure_time=1 / 3, iso=3200, noise_profile=[[1e-4, 2e-6]] * 3,
                orientation=6, baseline_exposure=0.5)
    args.update(kw)
    write_dng(path, raw, **args)
    return raw


def test_round_trip_every_tag(tmp_path):
    p = tmp_path / "a.dng"
    raw = _write(p, active_area=(2, 4, 40, 60), default_crop=(1, 1, 50, 30))
    f = read_dng(p)
    assert f.cfa == "RGGB"
    np.testing.assert_array_equal(f.black_level, [[510, 512], [514, 516]])
    assert f.white_level == 16383
    np.testing.assert_allclose(f.as_shot_neutral, [0.5, 1.0, 0.7], atol=1e-6)
    np.testing.assert_allclose(f.color_matrix1, CM1, atol=1e-6)
    np.testing.assert_allclose(f.color_matrix2, CM2, atol=1e-6)
    np.testing.assert_allclose(f.forward_matrix1, FM1, atol=1e-6)
    np.testing.assert_allclose(f.forward_matrix2, FM1 * 0.99, atol=1e-6)
    assert (f.illuminant1, f.illuminant2) == (21, 17)
    assert f.exposure_time == pytest.approx(1 / 3, rel=1e-9)
    assert f.iso == 3200
    np.testing.assert_allclose(f.noise_profile, [[1e-4, 2e-6]] * 3)
    assert f.active_area == (2, 4, 40, 60)
    assert f.default_crop == (1, 1, 50, 30)
    assert f.orientation == 6
    assert f.baseline_exposure == pytest.approx(0.5)
    assert f.make == "le3d"
    # pixels: LibRaw cropped to the active area; normalisation per CFA position, negatives kept
    bl = np.tile([[510, 512], [514, 516]], (19, 28))
    expected = (raw[2:, 4:].astype(np.float64) - bl) / (16383 - bl)
    assert f.mosaic.shape == (38, 56)
    np.testing.assert_allclose(f.mosaic.numpy(), expected, atol=1e-6)
    assert f.mosaic.min() < 0
    # white balance = 1 / neutral normalised to G
    np.testing.assert_allclose(f.white_balance.numpy(), [2.0, 1.0, 1 / 0.7], rtol=1e-5)


def test_rawpy_reads_our_dng(tmp_path):
    p = tmp_path / "a.dng"
    raw = _write(p, forward_matrix1=None, forward_matrix2=None, color_matrix2=None)
    with rawpy.imread(str(p)) as r:
        np.testing.assert_array_equal(r.raw_image_visible, raw)
        assert r.white_level == 16383
        # black_level_per_channel is indexed by colour index (R, G, B, G2)
        assert sorted(r.black_level_per_channel) == [510, 512, 514, 516]
        assert r.color_desc == b"RGBG"
        np.testing.assert_allclose(r.camera_whitebalance[:3], [2.0, 1.0, 1 / 0.7], rtol=1e-4)
    # LibRaw's camera->sRGB (dcraw's: ColorMatrix1 with a D65 white, whatever the as-shot white) equals
    # ours when the as-shot white is D65 (ours is built for the as-shot white, DNG-spec style)
    d65 = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])
    q = tmp_path / "d65.dng"
    _write(q, forward_matrix1=None, forward_matrix2=None, color_matrix2=None, as_shot_neutral=CM1 @ d65)
    with rawpy.imread(str(q)) as r:
        libraw_c2s = np.array(r.color_matrix)[:, :3]
    f = read_dng(q)
    np.testing.assert_allclose(f.cam_to_srgb().numpy(), libraw_c2s, atol=1e-4)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_each_cfa_pattern(tmp_path, cfa):
    # a mosaic whose value encodes the colour: R=1000, G=2000, B=3000 (+ black 0)
    cell = cfa_positions(cfa)
    raw = np.tile(np.array([[1000, 2000, 3000][c] for c in cell.ravel()]).reshape(2, 2), (16, 20)).astype(np.uint16)
    p = tmp_path / f"{cfa}.dng"
    write_dng(p, raw, cfa=cfa, black_level=0, white_level=4000)
    f = read_dng(p)
    assert f.cfa == cfa
    packed = pack(f.mosaic, f.cfa)
    np.testing.assert_allclose(packed[0, 0].numpy(), [0.25, 0.5, 0.75])
    full, mask = masked_full(f.mosaic, f.cfa)
    assert mask.sum(-1).eq(1).all()
    np.testing.assert_allclose(full.sum(-1).numpy(), f.mosaic.numpy())
    dem = demosaic_bilinear(f.mosaic, f.cfa)
    np.testing.assert_allclose(dem.numpy(), np.broadcast_to([0.25, 0.5, 0.75], dem.shape), atol=1e-6)


def test_sidecar_fills_missing_tags(tmp_path):
    import tifffile

    raw = np.full((32, 32), 600, np.uint16)
    p = tmp_path / "s.dng"
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)]
    tifffile.imwrite(p, raw, photometric=32803, extratags=tags, subfiletype=0, metadata=None)
    with pytest.raises(Le3dError, match="s.dng: missing black level"):
        read_dng(p)
    (tmp_path / "s.json").write_text('[{"BlackLevel": "100 100 100 100", "WhiteLevel": 1100, '
                                     '"ColorMatrix2": "0.6722 -0.0635 -0.0963 -0.4287 1.2460 0.2028 -0.0908 0.2162 0.5668", '
                                     '"AsShotNeutral": "0.5 1 0.6", "ExposureTime": "1/50", "ISO": 400}]')
    f = read_dng(p)
    np.testing.assert_allclose(f.mosaic.numpy(), 0.5)
    np.testing.assert_allclose(f.color_matrix2, CM1)
    assert f.exposure_time == pytest.approx(0.02) and f.iso == 400
    np.testing.assert_allclose(f.as_shot_neutral, [0.5, 1, 0.6])


def test_bad_inputs(tmp_path):
    txt = tmp_path / "notes.dng"
    txt.write_text("hello, not an image")
    with pytest.raises(Le3dError, match="notes.dng"):
        read_dng(txt)
    good = tmp_path / "good.dng"
    _write(good, raw=np.random.default_rng(0).integers(0, 16000, (200, 300)).astype(np.uint16))
    trunc = tmp_path / "trunc.dng"
    data = good.read_bytes()
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(Le3dError, match="trunc.dng"):
        read_dng(trunc)
    import tifffile

    tif = tmp_path / "plain.tif"
    tifffile.imwrite(tif, np.zeros((8, 8), np.uint16))
    with pytest.raises(Le3dError, match="plain.tif: not a DNG"):
        read_dng(tif)
    lin = tmp_path / "linear.dng"
    tifffile.imwrite(lin, np.zeros((8, 8, 3), np.uint16), photometric=34892,
                     extratags=[(50706, "B", 4, (1, 4, 0, 0), True), (50714, "H", 1, 0, True), (50717, "H", 1, 4095, True)],
                     metadata=None)
    with pytest.raises(Le3dError, match="linear.dng: LinearRaw"):
        read_dng(lin)
    nowhite = tmp_path / "nowhite.dng"
    tifffile.imwrite(nowhite, np.zeros((8, 8), np.uint16), photometric=32803, subfiletype=0, metadata=None,
                     extratags=[(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True),
                                (33422, "B", 4, (0, 1, 1, 2), True), (50714, "H", 1, 0, True)])
    with pytest.raises(Le3dError, match="nowhite.dng: missing white level"):
        read_dng(nowhite)
    xtrans = tmp_path / "xtrans.dng"
    tifffile.imwrite(xtrans, np.zeros((12, 12), np.uint16), photometric=32803, subfiletype=0, metadata=None,
                     extratags=[(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (6, 6), True),
                                (33422, "B", 36, tuple([1, 0, 2] * 12), True), (50714, "H", 1, 0, True),
                                (50717, "H", 1, 4095, True)])
    with pytest.raises(Le3dError, match="xtrans.dng: .*not a 2x2 Bayer"):
        read_dng(xtrans)


def test_iso_above_65535_round_trips(tmp_path):
    """EXIF 2.3 saturates PhotographicSensitivity at 65535; the real ISO is in RecommendedExposureIndex
    (or ISOSpeed, StandardOutputSensitivity). Night shots reach ISO 102400 and more."""
    import tifffile

    p = tmp_path / "iso.dng"
    _write(p, iso=102400, exposure_time=1 / 30)
    with tifffile.TiffFile(p) as tif:
        assert tif.pages[0].tags[34855].value == 65535
    f = read_dng(p)
    assert f.iso == 102400
    assert f.exposure_value() == pytest.approx(102400 / 30 / 100)
    with rawpy.imread(str(p)) as r:  # still a file LibRaw reads
        assert r.raw_image_visible.shape == (40, 60)
    only_iso_speed = tmp_path / "iso_speed.dng"  # another camera's choice: SensitivityType 3, ISOSpeed
    _write(only_iso_speed, iso=None, extra_tags=[(34855, "H", 1, 65535), (34864, "H", 1, 3), (34867, "I", 1, 204800)])
    assert read_dng(only_iso_speed).iso == 204800


def test_floating_point_dng_is_refused(tmp_path):
    """LibRaw rescales floating-point samples by a factor of its own that depends on the content; the
    tags' black and white levels would then normalise wrongly, so the reader refuses such files."""
    import tifffile

    p = tmp_path / "float.dng"
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
            (50714, "H", 1, 0, True), (50717, "H", 1, 1, True)]
    tifffile.imwrite(p, np.full((32, 48), 0.25, np.float32), photometric=32803, subfiletype=0, extratags=tags,
                     metadata=None)
    with pytest.raises(Le3dError, match="float.dng: floating-point DNG"):
        read_dng(p)


@pytest.mark.parametrize("top,left", [(0, 0), (1, 0), (0, 1), (1, 1), (3, 2)])
def test_pattern_and_black_level_repeat_from_the_active_area_corner(tmp_path, top, left):
    """The DNG specification repeats CFAPattern and BlackLevel from the ActiveArea's top-left corner;
    LibRaw rounds an odd margin up to an even one, so its image may start a row or column further in."""
    H, W = 40, 48
    value = {0: 1000, 1: 2000, 2: 3000}  # sensor value by colour
    black = np.array([[100, 200], [300, 400]])  # by position in the pattern, from the corner
    codes = cfa_positions("RGGB")
    rows, cols = np.meshgrid(np.arange(H) - top, np.arange(W) - left, indexing="ij")
    colour = codes[rows % 2, cols % 2]
    raw = np.vectorize(value.get)(colour).astype(np.uint16)
    p = tmp_path / "aa.dng"
    write_dng(p, raw, cfa="RGGB", black_level=black.ravel().tolist(), white_level=4095, active_area=(top, left, H, W))
    f = read_dng(p)
    h, w = f.mosaic.shape
    y0, x0 = H - h, W - w  # where the decoded image starts on the sensor
    assert y0 - top in (0, 1) and x0 - left in (0, 1)
    expect_colour = colour[y0:, x0:]
    expect_black = black[rows[y0:, x0:] % 2, cols[y0:, x0:] % 2]
    assert f.cfa == {(0, 0): "RGGB", (0, 1): "GRBG", (1, 0): "GBRG", (1, 1): "BGGR"}[((y0 - top) % 2, (x0 - left) % 2)]
    np.testing.assert_array_equal(cfa_positions(f.cfa)[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2],
                                  expect_colour)
    expected = (np.vectorize(value.get)(expect_colour) - expect_black) / (4095 - expect_black)
    np.testing.assert_allclose(f.mosaic.numpy(), expected, rtol=1e-6)


def test_black_level_deltas_add_per_row_and_column(tmp_path):
    """BlackLevelDeltaV (one value a row) and BlackLevelDeltaH (one a column) add to BlackLevel."""
    H, W = 32, 48
    raw = np.full((H, W), 1500, np.uint16)
    dv = np.tile([0.0, 100.0], H // 2)
    dh = np.arange(W, dtype=np.float64) * 2.5
    rational = lambda a: tuple(x for v in a for x in (int(round(v * 2)), 2))  # noqa: E731
    p = tmp_path / "delta.dng"
    write_dng(p, raw, black_level=500, white_level=4000,
              extra_tags=[(50716, "2i", H, rational(dv)), (50715, "2i", W, rational(dh))])
    f = read_dng(p)
    black = 500 + dv[:, None] + dh[None, :]
    np.testing.assert_allclose(f.mosaic.numpy(), (1500 - black) / (4000 - black), rtol=1e-6)


def test_as_shot_white_xy_stands_in_for_the_neutral(tmp_path):
    """A file may give the as-shot white as a chromaticity (AsShotWhiteXY) instead of AsShotNeutral:
    the neutral is then the response to that white of the ColorMatrix interpolated at its CCT."""
    p = tmp_path / "xy.dng"
    x, y = 0.4476, 0.4074  # standard illuminant A
    _write(p, as_shot_neutral=None, extra_tags=[(50729, "2I", 2, (4476, 10000, 4074, 10000))])
    f = read_dng(p)
    xyz = np.array([x / y, 1.0, (1 - x - y) / y])
    # illuminant A's white (about 2855 K) is at or below CalibrationIlluminant2's (A, 2856 K): the DNG
    # interpolation clamps to the A calibration, CM2, alone
    expected = CM2 @ xyz
    np.testing.assert_allclose(f.as_shot_neutral, expected / expected.max(), rtol=1e-5)
    assert f.white_balance[2] > f.white_balance[0]  # tungsten light: blue needs more gain than red


def test_sidecar_orientation_names(tmp_path):
    import tifffile

    p = tmp_path / "o.dng"
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
            (50714, "H", 1, 0, True), (50717, "H", 1, 4095, True)]
    tifffile.imwrite(p, np.full((32, 32), 100, np.uint16), photometric=32803, subfiletype=0, extratags=tags,
                     metadata=None)
    for name, code in (("Rotate 90 CW", 6), ("Rotate 270 CW", 8), ("Horizontal (normal)", 1), ("Rotate 180", 3)):
        (tmp_path / "o.json").write_text(f'[{{"Orientation": "{name}"}}]')
        assert read_dng(p).orientation == code
    (tmp_path / "o.json").write_text('[{"Orientation": "sideways"}]')
    with pytest.raises(Le3dError, match="Orientation"):
        read_dng(p)
