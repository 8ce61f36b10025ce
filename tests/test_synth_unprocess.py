"""`le3d synth OUT --from SRC`: unprocess real sRGB photos (fox) into a dark RAW scene."""


import json
from pathlib import Path

import numpy as np
import pytest
import torch

from le3d.color import srgb_oetf
from le3d.data import load_scene
from le3d.raw import read_dng
from le3d.raw.isp import process

FOX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fox"


def fox_subset(tmp: Path, n: int) -> Path:
    """A transforms.json with the first ``n`` fox frames (absolute image paths)."""
    if not (FOX / "transforms.json").is_file():
        pytest.skip("shared fox data not present")
    meta = json.loads((FOX / "transforms.json").read_text())
    frames = [fr for fr in meta["frames"] if (FOX / fr["file_path"]).is_file()][:n]
    meta["frames"] = [dict(fr, file_path=str((FOX / fr["file_path"]).resolve())) for fr in frames]
    src = tmp / "fox_src"
    src.mkdir()
    (src / "transforms.json").write_text(json.dumps(meta))
    return src


@pytest.fixture(scope="module")
def fox3(tmp_path_factory):
    return fox_subset(tmp_path_factory.mktemp("fox"), 3)


def _subsample_like_pack(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Linear RGB [2h, 2w, 3] sampled at the RGGB sites the way ``pack`` averages them."""
    return torch.stack([x[0:2 * h:2, 0:2 * w:2, 0],
                        0.5 * (x[0:2 * h:2, 1:2 * w:2, 1] + x[1:2 * h:2, 0:2 * w:2, 1]),
                        x[1:2 * h:2, 1:2 * w:2, 2]], -1)


def test_unprocess_round_trip(fox3, tmp_path):
    from le3d.synth.unprocess import unprocess_scene

    out = tmp_path / "dark"
    meta = unprocess_scene(out, fox3, downscale=8, seed=1, cfa="RGGB", iso=100, darken=0.0, noise=False,
                           progress=False)
    assert len(meta["test"]) == 1 and len(meta["train"]) == 2
    scene = load_scene(out)
    assert scene.kind == "raw" and len(scene.train) == 2 and len(scene.test) == 1
    raw = read_dng(sorted((out / "raw").glob("*.dng"))[0])
    assert raw.noise_profile is not None and raw.iso == 100 and raw.cfa == "RGGB"
    assert not torch.allclose(scene.white_balance, torch.ones(3))  # as-shot gains are not neutral
    src = load_scene(fox3, downscale=8, split="all")
    by_name = {Path(f.camera.name).stem: f for f in src.train + src.test}
    for f in scene.train + scene.test:
        h, w = f.image.shape[:2]
        s = by_name[f.camera.name]
        # poses kept; intrinsics halve for the packed image
        assert torch.allclose(f.camera.viewmat, s.camera.viewmat, atol=1e-5)
        assert f.camera.K[0, 0] == pytest.approx(float(s.camera.K[0, 0]) / 2, rel=1e-4)
        back = process(f.image, scene.white_balance, scene.cam_to_srgb, ev=meta["darken_stops"], tonemap="clip")
        lin = s.image.clamp(0, 1)[:2 * h, :2 * w]
        ref = srgb_oetf(_subsample_like_pack(lin, h, w))
        err = (back - ref).abs()
        # the mosaic subsamples each colour at its own site, and the colour matrix mixes the sites'
        # differences: against the photo itself, only a loose bound holds
        assert float(err.median()) < 0.03 and float(err.mean()) < 0.05
        # exact (up to 14-bit quantisation) against the photo mosaicked in the camera space that the
        # DNG tags define: inverse colour matrix and white balance, sensor clipping, RGGB sites
        cam = (lin @ torch.linalg.inv(scene.cam_to_srgb).T / scene.white_balance).clamp(0, 1)
        exact = process(_subsample_like_pack(cam, h, w), scene.white_balance, scene.cam_to_srgb, tonemap="clip")
        assert float((back - exact).abs().max()) < 5e-3
        assert torch.allclose(f.image, _subsample_like_pack(cam, h, w), atol=2e-4)
    # the SfM points and near/far are there for the trainer
    assert len(scene.points) > 0 and meta["near"] > 0


def test_unprocess_dark_noisy(fox3, tmp_path):
    from le3d.synth.unprocess import unprocess_scene

    out = tmp_path / "dark"
    meta = unprocess_scene(out, fox3, downscale=8, seed=0, iso=6400, darken=6.0, progress=False)
    scene = load_scene(out)
    f = scene.test[0]
    gt = torch.from_numpy(np.load(out / "gt" / f"{f.camera.name}.npy"))
    assert gt.shape == f.image.shape and float(gt.max()) <= 2.0 ** -6 + 1e-6
    r = f.image - gt
    prof = torch.as_tensor(read_dng(f.path).noise_profile[1])
    pred_var = prof[0] * gt[..., 0].clamp_min(0) + prof[1]  # R channel: one site per packed pixel
    # noise is unbiased and matches the NoiseProfile written to the file
    assert abs(float(r.mean())) < 0.1 * float(gt.mean())
    ratio = float((r[..., 0].var() / pred_var.mean()).sqrt())
    assert 0.8 < ratio < 1.25, ratio
    assert (out / "images" / f"{f.camera.name}.png").is_file() and meta["iso"] == 6400


def test_cli_from_refuses_existing(fox3, tmp_path, capsys):
    from le3d.cli import main

    out = tmp_path / "cli"
    assert main(["synth", str(out), "--from", str(fox3), "--downscale", "8", "--seed", "2"]) == 0
    first = (out / "raw" / "0001.dng").read_bytes()
    assert main(["synth", str(out), "--from", str(fox3), "--downscale", "8"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "raw" / "0001.dng").read_bytes() == first
    assert main(["synth", str(out), "--from", str(fox3), "--views", "3"]) == 2
    assert "--views" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "x"), "--from", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    # the same seed gives the same files
    assert main(["synth", str(out), "--from", str(fox3), "--downscale", "8", "--seed", "2", "--overwrite"]) == 0
    assert (out / "raw" / "0001.dng").read_bytes() == first
