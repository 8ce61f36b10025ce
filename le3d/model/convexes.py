"""ConvexModel: smooth 3D convexes (3D Convex Splatting) behind the trainer's primitive interface.

The geometry lives in a `convex_splat.ConvexSet` (`self.cs`): points [N,K,3], log_delta [N], log_sigma [N],
opacity_logit [N]. The colour head is the Gaussian model's, registered on the set as per-primitive
tensors so that densification splits and prunes them with the convexes: either features [N,F] + f_dc [N,3]
(colour = exp(MLP([f, dir]) + f_dc), LE3D) or sh [N,(d+1)^2,3] (colour = max(SH(dir) + 0.5, 0), 3DGS/3DCS).
The view direction is taken from the centroid of each convex. The shared colour MLP is `self.mlp`.

Interface used by the trainer and load_run (same as GaussianModel): `init_from_points`, `to`, `render`,
`param_tensors`, `params`, `num_primitives`, `config` / `from_config`, `state_tensors` /
`load_state_tensors`. Densification: le3d.train.densify.ConvexTrainDensifier (wraps ConvexDensifier).
"""
from __future__ import annotations

import torch

from convex_splat.model import DELTA_SCALE, SIGMA_SCALE, ConvexSet, fibonacci_sphere, random_rotations
from le3d.model.color_mlp import ColorMLP, colour_head_config, colour_head_kwargs, mlp_color
from le3d.model.sh import eval_sh, num_sh_bases, rgb_to_sh0
from le3d.raster.types import RenderOutput

COLOR_TENSORS = ("features", "f_dc", "sh")


class ConvexModel:
    kind = "convex"

    def __init__(self, color_mode: str = "mlp", feature_dim: int = 16, mlp_hidden: int = 64, mlp_layers: int = 2,
                 dir_degree: int = 0, sh_degree: int = 3, k: int = 6, radius_scale: float = 1.0):
        if color_mode not in ("mlp", "sh"):
            raise ValueError(f"color_mode must be 'mlp' or 'sh', got {color_mode!r}")
        if not 3 <= k <= 8:
            raise ValueError(f"convex_points must be in 3..8, got {k}")
        self.color_mode, self.feature_dim, self.sh_degree, self.k = color_mode, feature_dim, sh_degree, k
        self.radius_scale = radius_scale
        self.active_sh_degree = sh_degree
        self.mlp = ColorMLP(feature_dim, mlp_hidden, mlp_layers, dir_degree) if color_mode == "mlp" else None
        self.cs: ConvexSet | None = None

    # ---- construction -------------------------------------------------------------------------
    def init_from_points(self, points: torch.Tensor, colors: torch.Tensor, scales: torch.Tensor,
                         opacity: float | torch.Tensor = 0.1, generator: torch.Generator | None = None):
        """One convex per point (as ConvexSet.from_points): k points on a randomly rotated Fibonacci sphere
        of radius r = radius_scale x `scales` (the trainer's capped 3-NN distance, as for Gaussians), centroid at
        the point, delta = DELTA_SCALE / r, sigma = SIGMA_SCALE / r. colors [N,3] linear (>0)."""
        pts = points.float()
        n = pts.shape[0]
        r = scales.float().clamp_min(1e-7) * self.radius_scale
        dirs = torch.einsum("nij,kj->nki", random_rotations(n, generator), fibonacci_sphere(self.k))
        cp = pts[:, None, :] + r[:, None, None] * dirs
        cp = cp - cp.mean(1, keepdim=True) + pts[:, None, :]
        op = torch.as_tensor(opacity, dtype=torch.float32).expand(n).clone()
        cs = ConvexSet(cp, DELTA_SCALE / r, SIGMA_SCALE / r, op)
        if self.color_mode == "mlp":
            cs.add_per_primitive("features", 0.1 * torch.randn(n, self.feature_dim, generator=generator))
            cs.add_per_primitive("f_dc", torch.log(colors.float().clamp_min(1e-5)))
        else:
            sh = torch.zeros(n, num_sh_bases(self.sh_degree), 3)
            sh[:, 0] = rgb_to_sh0(colors.float())
            cs.add_per_primitive("sh", sh)
        self.cs = cs
        return self

    def to(self, device):
        self.cs.to(device)
        if self.mlp is not None:
            self.mlp.to(device)
        return self

    # ---- properties ---------------------------------------------------------------------------
    @property
    def num_primitives(self) -> int:
        return len(self.cs)

    @property
    def means(self):
        return self.cs.centers

    @property
    def opacities(self):
        return self.cs.opacities

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Per-primitive tensors by name (the ConvexSet's parameters; densification replaces them)."""
        return {name: getattr(self.cs, name) for name in self.cs.per_primitive}

    def param_tensors(self) -> dict[str, torch.Tensor]:
        """Per-primitive tensors plus the MLP weights (named mlp.*; not per primitive)."""
        out = self.params
        if self.mlp is not None:
            out.update({f"mlp.{k}": v for k, v in self.mlp.named_parameters()})
        return out

    # ---- colour and rendering -----------------------------------------------------------------
    def colors(self, cam_center: torch.Tensor) -> torch.Tensor:
        c = self.cs.centers
        dirs = c - cam_center.to(c)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        if self.color_mode == "mlp":
            return mlp_color(self.mlp, self.cs.features, self.cs.f_dc, dirs)
        d = self.active_sh_degree
        sh = self.cs.sh[:, : num_sh_bases(d)]
        return torch.clamp_min(eval_sh(d, sh, dirs) + 0.5, 0.0)

    def render(self, camera, *, background=None, near: float = 0.01, far: float = 1e10, backend: str = "auto",
               disparity_range: tuple[float, float] | None = None, nearfar_k: int = 0) -> RenderOutput:
        """Render linear colour for `camera` (le3d.data.Camera); as GaussianModel.render, with the
        normalised disparity of each convex's centroid as the distortion coordinate."""
        pts = self.cs.points
        V = camera.viewmat.to(pts)
        K = camera.K.to(pts)
        feats = self.colors(camera.center.to(pts))
        u = None
        if disparity_range is not None:
            zn, zf = disparity_range
            z = (self.cs.centers.detach() @ V[:3, :3].T + V[:3, 3])[:, 2].clamp_min(1e-6)
            u = ((1.0 / zn - 1.0 / z) / (1.0 / zn - 1.0 / zf)).clamp(0.0, 1.0)
        return self.cs.render(V, K, camera.width, camera.height, features=feats, background=background,
                              near=near, far=far, backend=backend, distortion_coord=u, nearfar_k=nearfar_k)

    # ---- serialisation ------------------------------------------------------------------------
    def config(self) -> dict:
        return {"primitive": "convex", "convex_points": self.k,
                **colour_head_config(self.color_mode, self.feature_dim, self.sh_degree, self.mlp)}

    @classmethod
    def from_config(cls, c: dict) -> ConvexModel:
        return cls(**colour_head_kwargs(c), k=c.get("convex_points", 6))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.param_tensors().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]):
        if "points" not in tensors:
            raise ValueError("model tensors lack 'points' (not a convex model)")
        state = {k: tensors[k].clone().float() for k in ConvexSet.BASE}
        for k in COLOR_TENSORS:  # fixed order, whatever the file's key order
            if k in tensors:
                state[k] = tensors[k].clone().float()
        self.cs = ConvexSet.from_state_dict(state)
        self.k = self.cs.k
        if self.mlp is not None:
            with torch.no_grad():
                for k, v in self.mlp.named_parameters():
                    v.copy_(tensors[f"mlp.{k}"])
        return self
