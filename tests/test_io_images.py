"""Image/video writers: EXR round trip above 1, 16-bit PNG, 8-bit PNG/JPEG, H.264 and HDR HEVC tags."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from le3d.io.images import (
    ffmpeg_exe,
    ffmpeg_has_encoder,
    read_exr,
    read_png16,
    write_exr,
    write_jpg,
    write_png8,
    write_png16,
    write_video,
)

EXR = Path(__file__).resolve().parents[2] / "shared/data/hdr/albert.exr"


@pytest.fixture(scope="module")
def real_hdr() -> torch.Tensor:
    if not EXR.is_file():
        pytest.fail(f"shared HDR test image missing: {EXR} (expected ../shared/data/hdr relative to the repo root)")
    img = read_exr(EXR)
    assert img.shape == (1024, 1024, 4) and img.dtype == torch.float32
    # albert.exr holds values in [6e-4, 0.92]; +4 EV gives real pixels far above 1
    return (img[::8, ::8, :3] * 16.0).contiguous()


def test_exr_float32_round_trip_preserves_values_above_one(tmp_path, real_hdr):
    assert real_hdr.max() > 10.0
    p = write_exr(tmp_path / "a.exr", real_hdr)
    back = read_exr(p)
    assert torch.equal(back, real_hdr)


def test_exr_half_round_trip(tmp_path, real_hdr):
    x = torch.cat([real_hdr, torch.full_like(real_hdr[:1], 1000.0)])
    back = read_exr(write_exr(tmp_path / "h.exr", x, half=True))
    assert back.max().item() == 1000.0
    assert torch.allclose(back, x, rtol=1e-3, atol=1e-4)  # float16: 11-bit mantissa


def test_exr_rgba_and_single_channel(tmp_path):
    x = torch.rand(5, 7, 4) * 3
    assert torch.equal(read_exr(write_exr(tmp_path / "rgba.exr", x)), x)
    y = torch.rand(5, 7) * 3
    assert torch.equal(read_exr(write_exr(tmp_path / "y.exr", y))[..., 0], y)


def test_no_silent_overwrite(tmp_path):
    p = write_exr(tmp_path / "a.exr", torch.ones(2, 2, 3))
    with pytest.raises(FileExistsError):
        write_exr(p, torch.ones(2, 2, 3), overwrite=False)


def test_png16_round_trip(tmp_path):
    x = torch.rand(9, 11, 3)
    a = read_png16(write_png16(tmp_path / "a.png", x))
    assert a.dtype == np.uint16 and a.shape == (9, 11, 3)
    assert np.abs(a / 65535.0 - x.numpy()).max() <= 0.5 / 65535 + 1e-7
    # values outside [0, 1] are clipped, not wrapped
    b = read_png16(write_png16(tmp_path / "b.png", torch.tensor([[[-1.0, 0.5, 7.0]]])))
    assert b.tolist() == [[[0, 32768, 65535]]]


def test_png8_and_jpeg(tmp_path):
    import imageio.v3 as iio

    x = torch.rand(16, 24, 3)
    a = iio.imread(write_png8(tmp_path / "a.png", x))
    assert a.dtype == np.uint8 and np.abs(a / 255.0 - x.numpy()).max() <= 0.5 / 255 + 1e-7
    smooth = torch.linspace(0, 1, 24)[None, :, None].expand(16, 24, 3)
    j = iio.imread(write_jpg(tmp_path / "a.jpg", smooth, quality=95))
    assert j.shape == (16, 24, 3) and np.abs(j / 255.0 - smooth.numpy()).mean() < 0.02


def _stream_info(path: Path) -> str:
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return next(line for line in r.stderr.splitlines() if "Video:" in line)


def test_h264_video(tmp_path):
    frames = [torch.rand(34, 48, 3) for _ in range(4)]
    info = _stream_info(write_video(tmp_path / "v.mp4", frames, fps=12))
    assert "h264" in info and "yuv420p" in info and "48x34" in info and "bt709" in info


@pytest.mark.parametrize("hdr,trc", [("pq", "smpte2084"), ("hlg", "arib-std-b67")])
def test_hdr_hevc_video_tags(tmp_path, hdr, trc, real_hdr):
    if not ffmpeg_has_encoder("libx265"):
        pytest.skip("bundled ffmpeg has no libx265")
    frames = [real_hdr[:64, :96] * (1 + 0.1 * i) for i in range(3)]
    info = _stream_info(write_video(tmp_path / f"{hdr}.mp4", frames, fps=24, hdr=hdr))
    assert "hevc" in info and "Main 10" in info and "yuv420p10le" in info
    assert f"bt2020nc/bt2020/{trc}" in info


def test_video_rejects_bad_mode(tmp_path):
    with pytest.raises(ValueError):
        write_video(tmp_path / "x.mp4", [torch.zeros(8, 8, 3)], hdr="dolby")


def test_pq_and_hlg_reference_values():
    from le3d.post.transfer import hlg_inverse_oetf, hlg_oetf, pq_eotf, pq_oetf

    # ST 2084 by hand: 10000 nits -> 1; 100 nits -> 0.5081 (the well-known HDR10 SDR-white level)
    pq = pq_oetf(torch.tensor([10000.0, 100.0, 0.0], dtype=torch.float64))
    assert pq[0].item() == pytest.approx(1.0, abs=1e-12)
    assert pq[1].item() == pytest.approx(0.5081, abs=1e-4)
    assert pq[2].item() == pytest.approx((3424 / 4096) ** (2523 / 4096 * 128), rel=1e-9)
    x = torch.tensor([0.1, 203.0, 1000.0], dtype=torch.float64)
    assert torch.allclose(pq_eotf(pq_oetf(x)), x, rtol=1e-9)
    # HLG: E = 1/12 -> 0.5 (sqrt(3/12)); E = 1 -> a ln(12 - b) + c = 1.0
    h = hlg_oetf(torch.tensor([1 / 12, 1.0], dtype=torch.float64))
    assert h[0].item() == pytest.approx(0.5, abs=1e-12) and h[1].item() == pytest.approx(1.0, abs=1e-6)
    e = torch.tensor([0.01, 0.3, 0.9], dtype=torch.float64)
    assert torch.allclose(hlg_inverse_oetf(hlg_oetf(e)), e, rtol=1e-9)
