"""GaussianModel: 3D Gaussians with MLP colour (LE3D) or SH colour (3DGS/RawGS baselines).

Parameters are plain leaf tensors in `self.params` (densification replaces them):
  means [N,3], quats [N,4] (w,x,y,z), log_scales [N,3], opacity_logits [N], and either
  features [N,F] + f_dc [N,3] (colour = exp(MLP([f, dir]) + f_dc)) or sh [N,(d+1)^2,3]
  (colour = max(SH(dir) + 0.5, 0)).  The shared colour MLP is `self.mlp` (mlp mode only).
This class is the "primitive" interface of the trainer: `render`, `param_tensors`, `num_primitives`,
`state_tensors` / `load_state_tensors`; convex primitives implement the same one.
"""
from __future__ import annotations

import math

import torch

from le3d.model.color_mlp import ColorMLP, colour_head_config, colour_head_kwargs, mlp_color
from le3d.model.sh import eval_sh, num_sh_bases, rgb_to_sh0
from le3d.raster import rasterize_gaussians
from le3d.raster.types import RenderOutput

PER_PRIMITIVE = ("means", "quats", "log_scales", "opacity_logits", "features", "f_dc", "sh")


def inverse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(1e-6, 1 - 1e-6)
    return torch.log(x / (1 - x))


class GaussianModel:
    kind = "gaussian"

    def __init__(self, color_mode: str = "mlp", feature_dim: int = 16, mlp_hidden: int = 64, mlp_layers: int = 2,
                 dir_degree: int = 0, sh_degree: int = 3):
        if color_mode not in ("mlp", "sh"):
            raise ValueError(f"color_mode must be 'mlp' or 'sh', got {color_mode!r}")
        self.color_mode, self.feature_dim, self.sh_degree = color_mode, feature_dim, sh_degree
        self.active_sh_degree = sh_degree
        self.mlp = ColorMLP(feature_dim, mlp_hidden, mlp_layers, dir_degree) if color_mode == "mlp" else None
        self.params: dict[str, torch.Tensor] = {}

    # ---- construction -------------------------------------------------------------------------
    def init_from_points(self, points: torch.Tensor, colors: torch.Tensor, scales: torch.Tensor,
                         opacity: float | torch.Tensor = 0.1, generator: torch.Generator | None = None):
        """points [N,3], colors [N,3] linear (>0), scales [N] isotropic initial scale."""
        n = points.shape[0]
        p = {"means": points.float().clone(),
             "quats": torch.tensor([1.0, 0, 0, 0]).repeat(n, 1),
             "log_scales": torch.log(scales.float().clamp_min(1e-7))[:, None].repeat(1, 3),
             "opacity_logits": inverse_sigmoid(torch.as_tensor(opacity, dtype=torch.float32).expand(n).clone())}
        if self.color_mode == "mlp":
            p["features"] = 0.1 * torch.randn(n, self.feature_dim, generator=generator)
            p["f_dc"] = torch.log(colors.float().clamp_min(1e-5))
        else:
            sh = torch.zeros(n, num_sh_bases(self.sh_degree), 3)
            sh[:, 0] = rgb_to_sh0(colors.float())
            p["sh"] = sh
        self.params = {k: v.contiguous().requires_grad_(True) for k, v in p.items()}
        return self

    def to(self, device):
        self.params = {k: v.detach().to(device).requires_grad_(True) for k, v in self.params.items()}
        if self.mlp is not None:
            self.mlp.to(device)
        return self

    # ---- properties ---------------------------------------------------------------------------
    @property
    def num_primitives(self) -> int:
        return int(self.params["means"].shape[0])

    @property
    def means(self):
        return self.params["means"]

    @property
    def scales(self):
        return torch.exp(self.params["log_scales"])

    @property
    def opacities(self):
        return torch.sigmoid(self.params["opacity_logits"])

    def param_tensors(self) -> dict[str, torch.Tensor]:
        """Per-primitive tensors (densified) plus the MLP weights (named mlp.*; not per primitive)."""
        out = dict(self.params)
        if self.mlp is not None:
            out.update({f"mlp.{k}": v for k, v in self.mlp.named_parameters()})
        return out

    # ---- colour and rendering -----------------------------------------------------------------
    def colors(self, cam_center: torch.Tensor) -> torch.Tensor:
        dirs = self.params["means"] - cam_center.to(self.params["means"])
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        if self.color_mode == "mlp":
            return mlp_color(self.mlp, self.params["features"], self.params["f_dc"], dirs)
        d = self.active_sh_degree
        sh = self.params["sh"][:, : num_sh_bases(d)]
        return torch.clamp_min(eval_sh(d, sh, dirs) + 0.5, 0.0)

    def render(self, camera, *, background=None, near: float = 0.01, far: float = 1e10, backend: str = "auto",
               disparity_range: tuple[float, float] | None = None, nearfar_k: int = 0) -> RenderOutput:
        """Render linear colour for `camera` (le3d.data.Camera). disparity_range=(near, far) of the scene
        enables the fused distortion output with u = normalised disparity of each Gaussian's depth."""
        V = camera.viewmat.to(self.means)
        K = camera.K.to(self.means)
        feats = self.colors(camera.center.to(self.means))
        u = None
        if disparity_range is not None:
            zn, zf = disparity_range
            z = (self.means.detach() @ V[:3, :3].T + V[:3, 3])[:, 2].clamp_min(1e-6)
            u = ((1.0 / zn - 1.0 / z) / (1.0 / zn - 1.0 / zf)).clamp(0.0, 1.0)
        return rasterize_gaussians(self.means, self.params["quats"], self.scales, self.opacities, feats, V, K,
                                   camera.width, camera.height, background=background, near=near, far=far,
                                   backend=backend, distortion_coord=u, nearfar_k=nearfar_k)

    # ---- serialisation ------------------------------------------------------------------------
    def config(self) -> dict:
        return {"primitive": "gaussian", **colour_head_config(self.color_mode, self.feature_dim, self.sh_degree,
                                                             self.mlp)}

    @classmethod
    def from_config(cls, c: dict) -> GaussianModel:
        return cls(**colour_head_kwargs(c))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.param_tensors().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]):
        self.params = {k: tensors[k].clone().float().requires_grad_(True) for k in PER_PRIMITIVE if k in tensors}
        if "means" not in self.params:
            raise ValueError("model tensors lack 'means'")
        if self.mlp is not None:
            with torch.no_grad():
                for k, v in self.mlp.named_parameters():
                    v.copy_(tensors[f"mlp.{k}"])
        return self


def knn_scale_default(points: torch.Tensor) -> torch.Tensor:
    """Fallback isotropic scale when no neighbours exist: 1% of the bounding-box diagonal."""
    ext = (points.max(0).values - points.min(0).values).norm().item() if len(points) > 1 else 1.0
    return torch.full((len(points),), 0.01 * max(ext, 1e-3) / math.sqrt(3))
