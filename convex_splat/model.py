"""ConvexSet: the learnable parameters of N smooth convexes, their initialisation and rendering.

Stored parameters (nn.Parameter, first dimension N, "per-primitive"):
  points [N, K, 3] world points; log_delta [N]; log_sigma [N]; opacity_logit [N];
  colors [N, C] (optional: callers with their own features, e.g. a colour MLP, leave it out);
  plus any tensor registered with `add_per_primitive` (densification keeps them in step).
delta and sigma are in inverse world units (phi is a distance in world units).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from convex_splat.rasterize import rasterize_convexes
from le3d.errors import InputError
from le3d.raster.types import RenderOutput

# Soft-blob defaults, relative to the radius r of each initial convex: the centre of a fresh convex
# (k = 6) has coverage 0.74-0.86, depending on how its hull faces the camera (four random orientations
# seen head-on), and its coverage falls off smoothly over ~r.
DELTA_SCALE = 5.0  # delta = DELTA_SCALE / r
SIGMA_SCALE = 5.0  # sigma = SIGMA_SCALE / r
INIT_OPACITY = 0.1


def fibonacci_sphere(k: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """[k, 3] unit vectors spread evenly on the sphere."""
    i = torch.arange(k, dtype=torch.float64, device=device) + 0.5
    y = 1 - 2 * i / k
    r = torch.sqrt((1 - y * y).clamp(min=0))
    theta = math.pi * (3 - math.sqrt(5)) * i
    return torch.stack([r * torch.cos(theta), y, r * torch.sin(theta)], -1).to(dtype)


def random_rotations(n: int, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    R = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return R.reshape(n, 3, 3).to(device=device, dtype=dtype)


def knn_mean_distance(points: torch.Tensor, k: int = 3, chunk: int = 4096) -> torch.Tensor:
    """[P, 3] -> [P] mean distance to the k nearest other points (chunked O(P^2) on CPU/GPU)."""
    P = points.shape[0]
    if P <= 1:
        return points.new_ones(P)
    k = min(k, P - 1)
    out = []
    for i in range(0, P, chunk):
        d = torch.cdist(points[i:i + chunk].double(), points.double())
        d[torch.arange(d.shape[0]), torch.arange(i, i + d.shape[0])] = math.inf
        out.append(d.topk(k, largest=False).values.mean(-1))
    return torch.cat(out).to(points.dtype)


class ConvexSet(nn.Module):
    BASE = ("points", "log_delta", "log_sigma", "opacity_logit")

    def __init__(self, points, delta, sigma, opacities, colors=None):
        super().__init__()
        if points.dim() != 3 or points.shape[-1] != 3 or not 3 <= points.shape[1] <= 8:
            raise InputError(f"points: expected [N, K, 3] with K in 3..8, got {list(points.shape)}")
        self.points = nn.Parameter(points.detach().clone())
        self.log_delta = nn.Parameter(torch.log(delta.detach()).clone())
        self.log_sigma = nn.Parameter(torch.log(sigma.detach()).clone())
        self.opacity_logit = nn.Parameter(torch.logit(opacities.detach().clamp(1e-6, 1 - 1e-6)).clone())
        self._extra: list[str] = []
        if colors is not None:
            self.add_per_primitive("colors", colors)

    @classmethod
    def from_points(cls, points, colors=None, k: int = 6, *, radius_scale: float = 1.0,
                    delta_scale: float = DELTA_SCALE, sigma_scale: float = SIGMA_SCALE,
                    opacity: float = INIT_OPACITY, seed: int | None = 0, min_radius: float = 1e-6):
        """One convex per point: k points on a (randomly rotated) Fibonacci sphere of radius r =
        radius_scale * mean distance to the 3 nearest neighbours; delta = delta_scale / r,
        sigma = sigma_scale / r, opacity `opacity`. colors [P, C] becomes the `colors` parameter."""
        if points.dim() != 2 or points.shape[1] != 3 or points.shape[0] == 0:
            raise InputError(f"points: expected a non-empty [P, 3] point cloud, got {list(points.shape)}")
        if not 3 <= k <= 8:
            raise InputError(f"k: 3 to 8 points per convex supported, got {k}")
        P = points.shape[0]
        r = (knn_mean_distance(points) * radius_scale).clamp(min=min_radius)
        dirs = fibonacci_sphere(k, points.dtype, points.device)
        if seed is not None:
            g = torch.Generator().manual_seed(seed)
            dirs = torch.einsum("nij,kj->nki", random_rotations(P, g, points.dtype, points.device), dirs)
        else:
            dirs = dirs.expand(P, k, 3)
        pts = points[:, None, :] + r[:, None, None] * dirs
        pts = pts - pts.mean(1, keepdim=True) + points[:, None, :]  # centroid exactly at the point
        return cls(pts, delta_scale / r, sigma_scale / r, torch.full_like(r, opacity), colors)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> ConvexSet:
        """Rebuilds a set (any N) from `state_dict()` exactly, extra per-primitive tensors included."""
        n = state["points"].shape[0]
        like = {name: dict(dtype=state[name].dtype, device=state[name].device) for name in cls.BASE[1:]}
        cs = cls(state["points"], torch.ones(n, **like["log_delta"]), torch.ones(n, **like["log_sigma"]),
                 torch.full((n,), 0.5, **like["opacity_logit"]))
        with torch.no_grad():
            for name in cls.BASE:
                getattr(cs, name).copy_(state[name])
        for name, value in state.items():
            if name not in cls.BASE:
                cs.add_per_primitive(name, value)
        return cs

    def add_per_primitive(self, name: str, value: torch.Tensor):
        """Registers a per-primitive parameter [N, ...] that densification splits/prunes with the rest."""
        if value.shape[0] != len(self):
            raise InputError(f"{name}: first dimension {value.shape[0]} != number of convexes {len(self)}")
        setattr(self, name, nn.Parameter(value.detach().clone()))
        if name not in self._extra:
            self._extra.append(name)

    @property
    def per_primitive(self) -> tuple[str, ...]:
        return self.BASE + tuple(self._extra)

    @property
    def k(self) -> int:
        return self.points.shape[1]

    @property
    def delta(self):
        return torch.exp(self.log_delta)

    @property
    def sigma(self):
        return torch.exp(self.log_sigma)

    @property
    def opacities(self):
        return torch.sigmoid(self.opacity_logit)

    @property
    def centers(self):
        return self.points.mean(1)

    def world_size(self) -> torch.Tensor:
        """[N] largest distance of a point from its centroid."""
        return (self.points - self.centers[:, None]).norm(dim=-1).amax(-1)

    def __len__(self) -> int:
        return self.points.shape[0]

    def render(self, viewmat, K, width: int, height: int, features=None, **kw) -> RenderOutput:
        """rasterize_convexes with this set's parameters; features default to `colors`."""
        if features is None:
            if "colors" not in self._extra:
                raise InputError("features: this ConvexSet has no colors; pass features [N, C]")
            features = self.colors
        return rasterize_convexes(self.points, self.delta, self.sigma, self.opacities, features, viewmat, K,
                                  width, height, **kw)
