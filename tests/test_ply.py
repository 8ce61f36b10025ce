"""le3d.io.ply / le3d.io.splat: standard 3DGS PLY and .splat round trips, header layout, bad files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from le3d.data.types import Camera
from le3d.errors import Le3dError
from le3d.io.ply import GaussianCloud, load_ply, render_cloud, save_ply
from le3d.io.splat import load_splat, save_splat
from le3d.model.sh import C0


def random_cloud(n=64, seed=0, degree=3):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g)
    sh = 0.3 * torch.randn(n, 16, 3, generator=g)
    sh[:, (degree + 1) ** 2:] = 0
    return GaussianCloud(torch.randn(n, 3, generator=g) * 0.5 + torch.tensor([0, 0, 3.0]),
                         q / q.norm(dim=-1, keepdim=True), torch.rand(n, 3, generator=g) * 0.1 + 0.02,
                         torch.rand(n, generator=g) * 0.9 + 0.05, sh, degree)


def camera(w=32, h=24):
    K = torch.tensor([[30.0, 0, w / 2], [0, 30.0, h / 2], [0, 0, 1]])
    return Camera(torch.eye(4), K, w, h, "cam")


def test_ply_roundtrip_exact(tmp_path):
    c = random_cloud()
    save_ply(tmp_path / "a.ply", c)
    d = load_ply(tmp_path / "a.ply")
    assert d.sh_degree == 3 and d.num_gaussians == 64
    torch.testing.assert_close(d.means, c.means)
    torch.testing.assert_close(d.sh, c.sh)
    torch.testing.assert_close(d.scales, c.scales, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(d.opacities, c.opacities, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(d.quats, c.quats)
    a, b = render_cloud(c, camera()).image, render_cloud(d, camera()).image
    assert (a - b).abs().max() < 1e-4


def test_ply_header_is_standard_3dgs(tmp_path):
    save_ply(tmp_path / "a.ply", random_cloud(5))
    head = (tmp_path / "a.ply").read_bytes().split(b"end_header\n")[0].decode()
    props = [ln.split()[-1] for ln in head.splitlines() if ln.startswith("property")]
    expect = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)]
              + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert props == expect
    # Inria's SIBR viewer reads "element vertex N" from the third line, whatever it holds
    assert head.splitlines()[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 5"]
    assert all(ln.startswith("property float ") for ln in head.splitlines() if ln.startswith("property"))
    size = (tmp_path / "a.ply").stat().st_size
    assert size == len(head) + len("end_header\n") + 5 * 62 * 4


def test_f_rest_is_channel_major(tmp_path):
    c = random_cloud(3)
    save_ply(tmp_path / "a.ply", c)
    raw = (tmp_path / "a.ply").read_bytes().split(b"end_header\n")[1]
    arr = np.frombuffer(raw, "<f4").reshape(3, 62)
    # f_rest_{c*15+k} = coefficient k+1 of channel c; f_dc_c = coefficient 0 of channel c
    np.testing.assert_allclose(arr[:, 6:9], c.sh[:, 0].numpy())
    np.testing.assert_allclose(arr[:, 9 + 15 * 2 + 4], c.sh[:, 5, 2].numpy())
    np.testing.assert_allclose(arr[:, 54], torch.log(c.opacities / (1 - c.opacities)).numpy(), rtol=1e-5, atol=1e-5)


def _write_foreign_ply(path, n, props, data, fmt="binary_little_endian"):
    head = f"ply\nformat {fmt} 1.0\nelement vertex {n}\n" + "".join(f"property {t} {p}\n" for t, p in props)
    head += "element face 0\nproperty list uchar int vertex_indices\nend_header\n"
    if fmt == "ascii":
        body = "\n".join(" ".join(repr(float(v)) for v in row) for row in data).encode() + b"\n"
    else:
        body = data.astype(">f4" if fmt.endswith("big_endian") else "<f4").tobytes()
    path.write_bytes(head.encode() + body)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_load_foreign_degree1_any_order(tmp_path, fmt):
    n = 4
    names = (["rot_0", "rot_1", "rot_2", "rot_3", "scale_0", "scale_1", "scale_2", "opacity", "x", "y", "z"]
             + [f"f_dc_{i}" for i in range(3)] + [f"f_rest_{i}" for i in range(9)])
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n, len(names))).astype(np.float32)
    data[:, 0] = np.abs(data[:, 0]) + 0.5
    _write_foreign_ply(tmp_path / "f.ply", n, [("float", k) for k in names], data, fmt)
    c = load_ply(tmp_path / "f.ply")
    col = {k: data[:, i] for i, k in enumerate(names)}
    assert c.sh_degree == 1
    np.testing.assert_allclose(c.means[:, 1].numpy(), col["y"], rtol=1e-6)
    np.testing.assert_allclose(c.sh[:, 2, 1].numpy(), col["f_rest_4"], rtol=1e-6)  # channel 1, coeff 2
    np.testing.assert_allclose(c.scales[:, 0].numpy(), np.exp(col["scale_0"]), rtol=1e-5)
    assert float(c.sh[:, 4:].abs().max()) == 0.0


def test_bad_ply_files(tmp_path):
    with pytest.raises(Le3dError, match="no such file"):
        load_ply(tmp_path / "missing.ply")
    (tmp_path / "x.ply").write_bytes(b"hello")
    with pytest.raises(Le3dError, match="not a PLY"):
        load_ply(tmp_path / "x.ply")
    _write_foreign_ply(tmp_path / "p.ply", 2, [("float", "x"), ("float", "y"), ("float", "z")],
                       np.zeros((2, 3), np.float32))
    with pytest.raises(Le3dError, match="missing properties"):
        load_ply(tmp_path / "p.ply")
    save_ply(tmp_path / "t.ply", random_cloud(10))
    raw = (tmp_path / "t.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(raw[:-100])
    with pytest.raises(Le3dError, match="truncated"):
        load_ply(tmp_path / "t.ply")


def test_splat_layout_and_roundtrip(tmp_path):
    c = random_cloud(20, degree=0)
    save_splat(tmp_path / "a.splat", c)
    raw = (tmp_path / "a.splat").read_bytes()
    assert len(raw) == 20 * 32
    d = load_splat(tmp_path / "a.splat")
    # records are sorted by volume x opacity, descending
    key = d.scales.prod(-1) * d.opacities
    assert bool((key[:-1] >= key[1:] - 1e-3 * key.max()).all())
    order = torch.argsort(-(c.scales.prod(-1) * c.opacities), stable=True)
    torch.testing.assert_close(d.means, c.means[order])
    torch.testing.assert_close(d.scales, c.scales[order])
    rgb = (0.5 + C0 * c.sh[order, 0]).clamp(0, 1)
    assert (0.5 + C0 * d.sh[:, 0] - rgb).abs().max() <= 0.5 / 255 + 1e-6
    assert (d.opacities - c.opacities[order]).abs().max() <= 0.5 / 255 + 1e-4
    # rotations quantised to 1/128: the same rotation up to sign
    dots = (d.quats * c.quats[order]).sum(-1).abs()
    assert bool((dots > 0.995).all())
    a, b = render_cloud(c, camera()).image, render_cloud(d, camera()).image
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    assert -10 * math.log10(max(mse, 1e-12)) > 35


@pytest.mark.parametrize("field", ["means", "scales", "opacities", "quats", "sh"])
def test_neither_format_writes_non_finite_parameters(tmp_path, field):
    """save_splat wrote NaN positions as they were and cast NaN opacities and rotations to bytes
    (undefined; [0, 0, 0, 0] here) without a word, where save_ply refuses them."""
    c = random_cloud(4)
    getattr(c, field).data.view(-1)[0] = float("nan")
    for save, name in ((save_ply, "a.ply"), (save_splat, "a.splat")):
        with pytest.raises(Le3dError, match="refusing to write NaN"):
            save(tmp_path / name, c)
        assert not (tmp_path / name).exists()
