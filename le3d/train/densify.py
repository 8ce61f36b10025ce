"""Adaptive density control for Gaussians (3DGS / gsplat DefaultStrategy semantics, written anew).

Statistics: per Gaussian, the running mean of |d loss / d means2d| in NDC-like units (pixels x 2/size)
over the views where it was visible. Every `densify_every` steps in [densify_from, densify_until):
clone small Gaussians with a high gradient, split large ones in two (scale / 1.6, samples from the
Gaussian), prune transparent (opacity < prune_opacity), oversized and never-seen ones, under a cap.
Every `opacity_reset_every` steps, opacities are clamped to at most 2 x prune_opacity:
logit <- min(logit, logit(2 * prune_opacity)) (gsplat 1.5.3 got this precedence wrong).
"""
from __future__ import annotations

import math

import torch

from le3d.model.gaussians import PER_PRIMITIVE, inverse_sigmoid
from le3d.train.optim import replace_rows


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(*q.shape[:-1], 3, 3)


class GaussianDensifier:
    def __init__(self, cfg, scene_extent: float, num_views: int = 1):
        self.cfg, self.extent, self.num_views = cfg, scene_extent, num_views
        self.last_unseen_prune = 0
        self.grad_acc: torch.Tensor | None = None
        self.count: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    def _ensure(self, n, device):
        if self.grad_acc is None or self.grad_acc.shape[0] != n or self.seen.shape[0] != n:
            self.grad_acc = torch.zeros(n, device=device)
            self.count = torch.zeros(n, device=device)
            self.seen = torch.zeros(n, dtype=torch.bool, device=device)

    def update(self, out, width: int, height: int):
        """After backward: accumulate the screen-space gradient of visible primitives."""
        g = out.means2d.grad
        if g is None:
            return
        n = g.shape[0]
        self._ensure(n, g.device)
        vis = out.radii.reshape(-1) > 0
        gn = torch.stack([g[:, 0] * width / 2, g[:, 1] * height / 2], -1).norm(dim=-1)
        self.grad_acc[vis] += gn[vis]
        self.count[vis] += 1
        self.seen |= vis

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.grad_acc is None:
            return {}
        return {"grad_acc": self.grad_acc, "count": self.count, "seen": self.seen.to(torch.uint8),
                "last_unseen_prune": torch.tensor([self.last_unseen_prune])}

    def load_state_tensors(self, t: dict[str, torch.Tensor]):
        if "grad_acc" in t:
            self.grad_acc, self.count, self.seen = t["grad_acc"].clone(), t["count"].clone(), t["seen"].bool()
            self.last_unseen_prune = int(t["last_unseen_prune"][0])

    @torch.no_grad()
    def step(self, model, opt, it: int, generator: torch.Generator) -> dict:
        """Called after the optimiser step of iteration `it` (1-based). Returns counts of what changed."""
        c = self.cfg
        info = {}
        if not c.densify or it >= c.densify_until:
            return info
        if it >= c.densify_from and it % c.densify_every == 0 and self.grad_acc is not None:
            info = self._densify(model, opt, it, generator)
        if c.opacity_reset_every > 0 and it % c.opacity_reset_every == 0 and it < c.densify_until:
            cap = float(inverse_sigmoid(torch.tensor(2 * c.prune_opacity)))
            p = model.params["opacity_logits"]
            p.data.copy_(torch.minimum(p.data, torch.full_like(p.data, cap)))
            st = opt.state.get(p)
            if st:
                st["exp_avg"].zero_()
                st["exp_avg_sq"].zero_()
            info["reset"] = True
        return info

    def _densify(self, model, opt, it, generator):
        c = self.cfg
        P = model.params
        n = model.num_primitives
        self._ensure(n, P["means"].device)
        avg = self.grad_acc / self.count.clamp_min(1)
        scales = torch.exp(P["log_scales"])
        smax = scales.max(dim=-1).values
        high = avg > c.grad_threshold
        small = smax <= c.percent_dense * self.extent
        clone = high & small
        split = high & ~small
        room = c.max_primitives - n
        if room <= 0:
            clone &= False
            split &= False
        else:  # respect the cap: keep the highest-gradient candidates
            want = int(clone.sum() + split.sum())
            if want > room:
                cand = (clone | split).nonzero().squeeze(1)
                top = cand[avg[cand].argsort(descending=True)[:room]]
                sel = torch.zeros_like(clone)
                sel[top] = True
                clone &= sel
                split &= sel
        names = [k for k in PER_PRIMITIVE if k in P]
        # new rows: clones are copies; splits produce two samples (the original row is removed)
        new = {k: [P[k].detach()[clone]] for k in names}
        if split.any():
            idx = split.nonzero().squeeze(1)
            R = quat_to_rotmat(P["quats"].detach()[idx])
            s = scales[idx]
            for _ in range(2):
                z = torch.randn(len(idx), 3, generator=generator).to(s)
                offs = (R @ (z * s)[..., None]).squeeze(-1)
                for k in names:
                    v = P[k].detach()[idx]
                    if k == "means":
                        v = v + offs
                    elif k == "log_scales":
                        v = torch.log(s / 1.6)
                    new[k].append(v)
        append = {k: torch.cat(v) for k, v in new.items()}
        op = torch.sigmoid(P["opacity_logits"].detach())
        prune = split | (op < c.prune_opacity)
        if it > c.opacity_reset_every:
            prune |= smax > c.prune_scale * self.extent
        unseen_check = c.prune_unseen and it - self.last_unseen_prune >= 2 * self.num_views
        if unseen_check:
            prune |= ~self.seen
        n_new = int(append["means"].shape[0])
        if n_new == 0 and bool(prune.all()):  # never empty the scene (as ConvexDensifier.prune)
            prune[torch.argmax(op)] = False
        keep = ~prune
        model.params = replace_rows(opt, {k: P[k] for k in names}, keep, append)
        self.grad_acc = torch.zeros(model.num_primitives, device=P["means"].device)
        self.count = torch.zeros_like(self.grad_acc)
        seen = self.seen[keep]
        if unseen_check:
            seen = torch.zeros_like(seen)
            self.last_unseen_prune = it
        self.seen = torch.cat([seen, torch.ones(n_new, dtype=torch.bool, device=seen.device)])
        return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(prune.sum() - split.sum()),
                "added": n_new}


class ConvexTrainDensifier:
    """The trainer's densifier for ConvexModel: convex_splat.ConvexDensifier (split into K children, prune,
    opacity reset, Adam rows kept in step) scheduled by the same TrainConfig keys as GaussianDensifier."""

    def __init__(self, cfg, scene_extent: float, num_views: int = 1):
        from convex_splat.densify import ConvexDensifier

        self.inner = ConvexDensifier(
            grad_threshold=cfg.grad_threshold, start=cfg.densify_from,
            stop=cfg.densify_until if cfg.densify else 0, interval=cfg.densify_every,
            reset_interval=cfg.opacity_reset_every, reset_opacity=2 * cfg.prune_opacity,
            min_opacity=cfg.prune_opacity, max_world_size=math.inf, max_count=cfg.max_primitives)
        # as GaussianDensifier: oversized primitives are pruned only after the first opacity reset
        self.max_world_size = cfg.prune_scale * scene_extent
        self.size_prune_from = cfg.opacity_reset_every

    def update(self, out, width: int, height: int):
        if out.means2d.grad is not None:
            self.inner.update(out, width, height)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.inner.state_tensors()

    def load_state_tensors(self, t: dict[str, torch.Tensor]):
        self.inner.load_state_tensors(t)

    def step(self, model, opt, it: int, generator: torch.Generator) -> dict:
        self.inner.max_world_size = self.max_world_size if it > self.size_prune_from else math.inf
        return self.inner.step(model.cs, opt, it, generator)


def make_densifier(model, cfg, scene_extent: float, num_views: int = 1):
    if getattr(model, "kind", "gaussian") == "convex":
        return ConvexTrainDensifier(cfg, scene_extent, num_views)
    return GaussianDensifier(cfg, scene_extent, num_views)


def extent_from_cameras(cameras) -> float:
    centers = torch.stack([c.center.float() for c in cameras])
    d = (centers - centers.mean(0)).norm(dim=-1)
    return float(d.max()) * 1.1 if len(cameras) > 1 and float(d.max()) > 0 else 1.0


__all__ = ["ConvexTrainDensifier", "GaussianDensifier", "make_densifier", "extent_from_cameras", "quat_to_rotmat", "math"]
