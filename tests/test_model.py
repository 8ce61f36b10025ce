import torch

from le3d.model import ColorMLP, ExposureGains, GaussianModel, eval_sh, rgb_to_sh0
from le3d.model.color_mlp import mlp_color


def test_mlp_colour_starts_at_exp_fdc():
    torch.manual_seed(0)
    mlp = ColorMLP(16, 64, 2)
    f = torch.zeros(5, 16)
    fdc = torch.log(torch.tensor([[0.01, 0.02, 0.03]])).repeat(5, 1)
    d = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    c = mlp_color(mlp, f, fdc, d)
    assert torch.allclose(c, fdc.exp(), rtol=0.1)


def test_sh_dc_roundtrip():
    rgb = torch.tensor([[0.2, 0.5, 0.9]])
    sh = torch.zeros(1, 16, 3)
    sh[:, 0] = rgb_to_sh0(rgb)
    assert torch.allclose(eval_sh(3, sh, torch.tensor([[0.0, 0, 1]])) + 0.5, rgb, atol=1e-6)


def test_exposure_gains_longest_frozen():
    g = ExposureGains([1.0, 0.5, 0.25, 1.0])
    with torch.no_grad():
        g.log_gains.fill_(0.3)
    assert torch.equal(g.gain(1.0), torch.ones(3))
    assert torch.allclose(g.gain(0.5), torch.full((3,), 0.3).exp())
    assert torch.equal(g.gain(7.0), torch.ones(3))


def test_model_state_roundtrip():
    m = GaussianModel("mlp").init_from_points(torch.randn(10, 3), torch.rand(10, 3) + 0.01, torch.full((10,), 0.1))
    m2 = GaussianModel("mlp").load_state_tensors(m.state_tensors())
    for k, v in m.state_tensors().items():
        assert torch.equal(v, m2.state_tensors()[k])
