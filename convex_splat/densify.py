"""ConvexDensifier: split, prune, opacity reset and a count cap for a ConvexSet, with Adam state kept
in step (rows sliced for kept convexes, zeros for new ones).

Schedule (as 3DGS / 3DCS): every `interval` iterations in [start, stop), convexes whose mean
view-space gradient norm (means2d.grad scaled to NDC units, x W/2 and y H/2, averaged over the
renders where they were visible) reaches `grad_threshold` are split into K children, one centred at
each of its points, shrunk by `shrink` (x0.6) around it, with delta and sigma divided by `shrink`
(both are in inverse world units): a child's edge falls off over 0.6x its parent's width in world
units, sharper in absolute terms and alike relative to its size. `sharpen` (default 1) multiplies sigma
further, for children sharper than their parent relative to their size too. If the split would
exceed `max_count`, the convexes with the largest statistic are split first. Then convexes with
opacity < `min_opacity` or world size > `max_world_size` are pruned. Every `reset_interval`
iterations, opacities are clamped to `reset_opacity` (and their Adam state zeroed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from convex_splat.model import ConvexSet
from le3d.raster.types import RenderOutput


@dataclass
class ConvexDensifier:
    grad_threshold: float = 2e-4
    start: int = 500
    stop: int = 15000
    interval: int = 100
    reset_interval: int = 3000
    reset_opacity: float = 0.01
    min_opacity: float = 0.005
    max_world_size: float = math.inf  # world units (e.g. 0.1 * scene extent)
    max_count: int = 1_000_000
    shrink: float = 0.6
    sharpen: float = 1.0

    def __post_init__(self):
        self.grad_sum: torch.Tensor | None = None
        self.visible_count: torch.Tensor | None = None

    def reset_stats(self, n: int, device):
        self.grad_sum = torch.zeros(n, device=device)
        self.visible_count = torch.zeros(n, device=device)

    @torch.no_grad()
    def update(self, out: RenderOutput, width: int | None = None, height: int | None = None):
        """Accumulates the view-space gradient statistic of one render (after backward).
        width/height default to the rendered image's (accepted for the trainer's densifier signature)."""
        g = out.means2d.grad
        if g is None:
            raise RuntimeError("ConvexDensifier.update: out.means2d.grad is None; call "
                               "out.means2d.retain_grad() before backward")
        n = g.shape[0]
        if self.grad_sum is None or self.grad_sum.shape[0] != n:
            self.reset_stats(n, g.device)
        H, W = out.image.shape[:2]
        W, H = width or W, height or H
        ndc = torch.stack([g[:, 0] * (0.5 * W), g[:, 1] * (0.5 * H)], -1).norm(dim=-1)
        vis = out.radii > 0
        self.grad_sum[vis] += ndc[vis].float()
        self.visible_count[vis] += 1

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The accumulated statistics, for checkpoints (resume continues bit-for-bit)."""
        if self.grad_sum is None:
            return {}
        return {"grad_sum": self.grad_sum, "visible_count": self.visible_count}

    def load_state_tensors(self, t: dict[str, torch.Tensor]):
        if "grad_sum" in t:
            self.grad_sum, self.visible_count = t["grad_sum"].clone(), t["visible_count"].clone()

    def mean_grad(self) -> torch.Tensor:
        return self.grad_sum / self.visible_count.clamp(min=1)

    @torch.no_grad()
    def step(self, cs: ConvexSet, optimizer: torch.optim.Optimizer | None, iteration: int,
             generator: torch.Generator | None = None) -> dict:
        """Densify/prune/reset as scheduled at this iteration (call after the optimiser step).
        Returns counts of what was done. Deterministic: `generator` is accepted for the trainer's
        densifier signature and unused."""
        info = {"split": 0, "pruned": 0, "reset": False}
        if self.start <= iteration < self.stop and iteration % self.interval == 0 and self.grad_sum is not None:
            info["split"] = self.split(cs, optimizer, self.mean_grad() >= self.grad_threshold, self.mean_grad())
            info["pruned"] = self.prune(cs, optimizer)
            self.reset_stats(len(cs), cs.points.device)
        if self.reset_interval > 0 and iteration > 0 and iteration % self.reset_interval == 0 and iteration < self.stop:
            self.reset_opacity_(cs, optimizer)
            info["reset"] = True
        return info

    def split(self, cs: ConvexSet, optimizer, mask: torch.Tensor, score: torch.Tensor | None = None) -> int:
        n, k = len(cs), cs.k
        budget = max(0, (self.max_count - n) // max(k - 1, 1))
        idx = torch.nonzero(mask).flatten()
        if idx.numel() > budget:
            s = score[idx] if score is not None else torch.zeros(idx.numel(), device=idx.device)
            idx = idx[torch.argsort(s, descending=True, stable=True)[:budget]]
        if idx.numel() == 0:
            return 0
        keep = torch.ones(n, dtype=torch.bool, device=mask.device)
        keep[idx] = False
        P = cs.points[idx]  # [S, K, 3]
        offsets = P - P.mean(1, keepdim=True)
        children = P[:, :, None, :] + self.shrink * offsets[:, None, :, :]  # [S, K(child), K, 3]
        new = {"points": children.reshape(-1, k, 3),
               "log_delta": (cs.log_delta[idx] - math.log(self.shrink)).repeat_interleave(k),
               "log_sigma": (cs.log_sigma[idx] - math.log(self.shrink) + math.log(self.sharpen)).repeat_interleave(k),
               }
        for name in cs.per_primitive:
            if name not in new:
                new[name] = getattr(cs, name)[idx].repeat_interleave(k, dim=0)
        replace_rows(cs, optimizer, keep, new)
        return int(idx.numel())

    def prune(self, cs: ConvexSet, optimizer, extra: torch.Tensor | None = None) -> int:
        bad = (cs.opacities < self.min_opacity) | (cs.world_size() > self.max_world_size)
        bad |= ~torch.isfinite(cs.points).all(-1).all(-1)
        if extra is not None:
            bad |= extra
        if bad.numel() and bad.all():  # never empty the scene
            bad[torch.argmax(cs.opacities)] = False
        if bad.any():
            replace_rows(cs, optimizer, ~bad, {})
        return int(bad.sum())

    def reset_opacity_(self, cs: ConvexSet, optimizer):
        value = torch.logit(torch.tensor(self.reset_opacity, dtype=cs.opacity_logit.dtype))
        new = torch.minimum(cs.opacity_logit.detach(), value.to(cs.opacity_logit.device))
        set_parameter(cs, optimizer, "opacity_logit", new, keep=None)


def _find_state(optimizer, param):
    if optimizer is None:
        return None, None
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            if p is param:
                return group, i
    return None, None


def set_parameter(cs: ConvexSet, optimizer, name: str, value: torch.Tensor, keep: torch.Tensor | None,
                  n_new: int = 0):
    """Replaces cs.<name> by `value`; Adam rows: kept rows (mask `keep`) then n_new zero rows.
    keep=None resets the whole state of that parameter (values changed in place of the old rows)."""
    old = getattr(cs, name)
    param = nn.Parameter(value.contiguous())
    group, i = _find_state(optimizer, old)
    if group is not None:
        state = optimizer.state.pop(old, None)
        group["params"][i] = param
        if state:
            for key, v in state.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape == old.shape:
                    if keep is None:
                        state[key] = torch.zeros_like(value)
                    else:
                        state[key] = torch.cat([v[keep], v.new_zeros((n_new,) + v.shape[1:])], 0)
            optimizer.state[param] = state
    setattr(cs, name, param)


def replace_rows(cs: ConvexSet, optimizer, keep: torch.Tensor, new: dict):
    """Keeps rows `keep` of every per-primitive parameter and appends `new[name]` rows."""
    for name in cs.per_primitive:
        old = getattr(cs, name).detach()
        extra = new.get(name)
        n_new = 0 if extra is None else extra.shape[0]
        value = old[keep] if extra is None else torch.cat([old[keep], extra.detach().to(old.dtype)], 0)
        set_parameter(cs, optimizer, name, value, keep, n_new)
