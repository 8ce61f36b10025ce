"""Adam with one parameter group per named tensor, learning-rate schedules, and the state surgery that
densification needs (select / append rows of per-primitive tensors and their Adam moments)."""
from __future__ import annotations

import math

import torch

# convex parameters that share a Gaussian group's learning rate and schedule (convex points are positions)
_SHARED_GROUP = {"points": "means", "opacity_logit": "opacity_logits"}


def group_of(name: str) -> str:
    return "mlp" if name.startswith("mlp.") else _SHARED_GROUP.get(name, name)


def build_optimizer(tensors: dict[str, torch.Tensor], cfg, scene_extent: float) -> torch.optim.Adam:
    groups = []
    for name, t in tensors.items():
        g = group_of(name)
        lr = cfg.lr.get(g, 1e-3) * (scene_extent if g == "means" else 1.0)
        if name == "sh":  # higher SH bands learn 20x slower (3DGS) -> one group, lr of the DC term
            pass
        groups.append({"params": [t], "name": name, "lr": lr, "base_lr": lr})
    return torch.optim.Adam(groups, eps=1e-15)


def lr_factor(kind: str, step: int, total: int, final_ratio: float) -> float:
    s = min(max(step / max(total, 1), 0.0), 1.0)
    if kind == "exp":
        return math.exp((1 - s) * math.log(1.0) + s * math.log(max(final_ratio, 1e-12)))
    if kind == "cos":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * s))
    return 1.0


def update_lr(opt: torch.optim.Adam, cfg, step: int, scene_extent: float):
    for g in opt.param_groups:
        grp = group_of(g["name"])
        kind = cfg.lr_decay.get(grp, "const")
        if kind == "const" or grp not in cfg.lr_final:
            continue
        ratio = cfg.lr_final[grp] / cfg.lr.get(grp, 1e-3)
        g["lr"] = g["base_lr"] * lr_factor(kind, step, cfg.iters, ratio)


def replace_rows(opt: torch.optim.Adam, params: dict[str, torch.Tensor], keep: torch.Tensor | None,
                 append: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Keep rows `keep` (bool [N] or None = all) of every per-primitive tensor, then append rows from
    `append`; Adam moments follow (appended rows start at zero). Returns the new parameter dict."""
    new = {}
    by_name = {g["name"]: g for g in opt.param_groups}
    for name, p in params.items():
        g = by_name[name]
        old = g["params"][0]
        data = p.detach() if keep is None else p.detach()[keep]
        extra = append[name].detach() if append is not None else None
        if extra is not None:
            data = torch.cat([data, extra.to(data)])
        q = data.contiguous().requires_grad_(True)
        st = opt.state.pop(old, None)
        if st is not None:
            for k in ("exp_avg", "exp_avg_sq"):
                v = st[k] if keep is None else st[k][keep]
                if extra is not None:
                    v = torch.cat([v, torch.zeros_like(extra)])
                st[k] = v.contiguous()
            opt.state[q] = st
        g["params"] = [q]
        new[name] = q
    return new
