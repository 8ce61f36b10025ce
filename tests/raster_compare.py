"""Runs a rasterizer on two backends with the same inputs and upstream gradients, and compares."""
from __future__ import annotations

import torch

OUTPUTS = ("image", "alpha", "depth", "distortion", "near_depth", "far_depth")


def run_backend(fn, tensors: dict, kwargs: dict, backend: str, device="cpu", seed=0, loss_on=OUTPUTS):
    """fn(**tensors, **kwargs, backend=...) -> RenderOutput; returns (outputs dict, grads dict).

    The loss is a random weighting of the outputs named in loss_on (the others get no gradient)."""
    leaves = {k: v.detach().to(device).clone().requires_grad_(v.is_floating_point() and k not in ("viewmat", "K"))
              for k, v in tensors.items()}
    out = fn(**leaves, **kwargs, backend=backend)
    g = torch.Generator().manual_seed(seed)
    outputs, loss = {}, 0.0
    for name in OUTPUTS:
        value = getattr(out, name)
        if value is None:
            continue
        outputs[name] = value.detach().cpu()
        weight = torch.rand(value.shape, generator=g, dtype=value.dtype).to(device)
        if name in loss_on:
            loss = loss + (value * weight).sum()
    outputs["radii"] = out.radii.cpu()
    grads = {}
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
        grads = {k: v.grad.detach().cpu() for k, v in leaves.items() if v.grad is not None}
    return outputs, grads


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to the largest magnitude of b (0 when both are all zero)."""
    a, b = a.double(), b.double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    return diff / max(scale, 1e-6)


def assert_backends_agree(fn, tensors, kwargs, backend, reference="torch", device="cpu", fwd_tol=1e-5,
                          grad_tol=1e-3, loss_on=OUTPUTS):
    out_ref, grad_ref = run_backend(fn, tensors, kwargs, reference, loss_on=loss_on)
    out, grad = run_backend(fn, tensors, kwargs, backend, device=device, loss_on=loss_on)
    assert out.keys() == out_ref.keys()
    for name in out_ref:
        if name == "radii":
            assert torch.equal(out[name], out_ref[name]), "radii differ"
            continue
        err = rel_err(out[name], out_ref[name])
        assert err < fwd_tol, f"forward {name}: relative error {err:.2e}"
    # a leaf no loss term depends on has no gradient on one side and a zero one on the other (the
    # compiled Function returns every input's); any other gap is a bug
    assert grad.keys() == grad_ref.keys() or loss_on != OUTPUTS
    for name in grad.keys() | grad_ref.keys():
        like = grad.get(name, grad_ref.get(name))
        err = rel_err(grad.get(name, torch.zeros_like(like)), grad_ref.get(name, torch.zeros_like(like)))
        assert err < grad_tol, f"gradient of {name}: relative error {err:.2e}"
    return out_ref, grad_ref
