"""A small vectorised ray tracer for synthetic HDR scenes (torch, CPU friendly).

Primitives: an infinite floor (z = 0, world z is up), oriented boxes (rotated about z), spheres,
and emissive spherical lamps that also act as point lights (with hard shadows). Surfaces are
Lambertian with procedural tile textures (random-colour cells at two scales: hard edges and corners
that feature matchers can find). Radiance is linear camera RGB; background is black.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

INF = 1e10


@dataclass
class Material:
    color: tuple[float, float, float]
    tile: float = 0.25  # texture cell size (world units)
    contrast: float = 0.7  # 0: flat colour, 1: cells from black to colour
    emission: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class SceneDef:
    name: str
    boxes: list[tuple[tuple, tuple, float, Material]] = field(default_factory=list)  # centre, half, yaw, mat
    spheres: list[tuple[tuple, float, Material]] = field(default_factory=list)  # centre, radius, mat
    lamps: list[tuple[tuple, float, tuple]] = field(default_factory=list)  # centre, radius, radiance
    floor: Material | None = None
    ambient: tuple[float, float, float] = (0.002, 0.002, 0.002)
    center: tuple[float, float, float] = (0.0, 0.0, 0.3)
    radius: float = 1.5  # scene extent (for cameras and near/far)
    texture_seed: int = 0


def _hash(cells: torch.Tensor, seed: int) -> torch.Tensor:
    """Integer cells [..., 3] -> 3 uniform values [..., 3] in [0, 1) (deterministic)."""
    c = cells.to(torch.int64)
    h = (c[..., 0] * 73856093) ^ (c[..., 1] * 19349663) ^ (c[..., 2] * 83492791) ^ (seed * 2654435761)
    out = []
    for k in range(3):
        h = (h * 6364136223846793005 + 1442695040888963407 + k) & 0x7FFFFFFFFFFFFFFF
        hh = h ^ (h >> 29)
        out.append(((hh >> 11) & 0xFFFF).float() / 65536.0)
    return torch.stack(out, -1)


class Tracer:
    def __init__(self, scene: SceneDef):
        self.s = scene
        f32 = torch.float32
        self.box_c = torch.tensor([b[0] for b in scene.boxes], dtype=f32).reshape(-1, 3)
        self.box_h = torch.tensor([b[1] for b in scene.boxes], dtype=f32).reshape(-1, 3)
        yaw = torch.tensor([b[2] for b in scene.boxes], dtype=f32)
        c, s = torch.cos(yaw), torch.sin(yaw)
        z, o = torch.zeros_like(c), torch.ones_like(c)
        # R: local -> world (rotation about z)
        self.box_R = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1),
                                  torch.stack([z, z, o], -1)], -2).reshape(-1, 3, 3)
        sph = [(p, r, m) for p, r, m in scene.spheres] + [
            (p, r, Material((0, 0, 0), emission=tuple(e))) for p, r, e in scene.lamps]
        self.sph_c = torch.tensor([x[0] for x in sph], dtype=f32).reshape(-1, 3)
        self.sph_r = torch.tensor([x[1] for x in sph], dtype=f32)
        self.n_lamp = len(scene.lamps)
        self.mats = [b[3] for b in scene.boxes] + [x[2] for x in sph] + ([scene.floor] if scene.floor else [])
        self.lamp_pos = torch.tensor([p for p, _, _ in scene.lamps], dtype=f32).reshape(-1, 3)
        # point-light intensity of each lamp: pi r^2 L (a sphere of radiance L seen from far away)
        self.lamp_I = torch.tensor([[math.pi * r * r * e for e in L] for _, r, L in scene.lamps], dtype=f32).reshape(-1, 3)
        self.mat_color = torch.tensor([m.color for m in self.mats], dtype=f32).reshape(-1, 3)
        self.mat_emit = torch.tensor([m.emission for m in self.mats], dtype=f32).reshape(-1, 3)
        self.mat_tile = torch.tensor([m.tile for m in self.mats], dtype=f32)
        self.mat_contrast = torch.tensor([m.contrast for m in self.mats], dtype=f32)

    # ----------------------------------------------------------------------------- intersection
    def intersect(self, o: torch.Tensor, d: torch.Tensor, skip_lamps: bool = False):
        """Nearest hit: t [N], object id [N] (-1: none), normal [N, 3]."""
        n = o.shape[0]
        best_t = torch.full((n,), INF)
        best_id = torch.full((n,), -1, dtype=torch.int64)
        best_n = torch.zeros(n, 3)
        nb = self.box_c.shape[0]
        for k in range(nb):
            R = self.box_R[k]
            # only rays that meet the box's bounding sphere (slightly enlarged) can hit it
            oc = o - self.box_c[k]
            bb = (oc * d).sum(-1)
            disc = bb * bb - ((oc * oc).sum(-1) - 1.01 * float((self.box_h[k] ** 2).sum()))
            cand = ((disc >= 0) & (-bb + disc.clamp_min(0).sqrt() > 1e-4)).nonzero().squeeze(1)
            if cand.numel() == 0:
                continue
            lo = oc[cand] @ R  # world -> local: R^T x
            ld = d[cand] @ R
            inv = 1.0 / torch.where(ld.abs() < 1e-12, torch.full_like(ld, 1e-12), ld)
            t1 = (-self.box_h[k] - lo) * inv
            t2 = (self.box_h[k] - lo) * inv
            tmin = torch.minimum(t1, t2)
            tmax = torch.maximum(t1, t2)
            tn, axis = tmin.max(-1)
            tf = tmax.min(-1).values
            hit = (tn <= tf) & (tn > 1e-4) & (tn < best_t[cand])
            if hit.any():
                idx = cand[hit]
                axis = axis[hit]
                nl = torch.zeros(len(idx), 3)
                sign = -torch.sign(ld[hit].gather(1, axis[:, None])).squeeze(1)
                nl.scatter_(1, axis[:, None], sign[:, None])
                best_t[idx] = tn[hit]
                best_id[idx] = k
                best_n[idx] = nl @ R.T
        ns = self.sph_c.shape[0] - (self.n_lamp if skip_lamps else 0)
        for k in range(ns):
            oc = o - self.sph_c[k]
            b = (oc * d).sum(-1)
            c = (oc * oc).sum(-1) - self.sph_r[k] ** 2
            disc = b * b - c
            sq = disc.clamp_min(0).sqrt()
            t = -b - sq
            t = torch.where(t > 1e-4, t, -b + sq)
            hit = (disc >= 0) & (t > 1e-4) & (t < best_t)
            if hit.any():
                p = o + t[:, None] * d
                nw = (p - self.sph_c[k]) / self.sph_r[k]
                best_t = torch.where(hit, t, best_t)
                best_id = torch.where(hit, torch.full_like(best_id, nb + k), best_id)
                best_n = torch.where(hit[:, None], nw, best_n)
        if self.s.floor is not None:
            t = -o[:, 2] / torch.where(d[:, 2].abs() < 1e-12, torch.full_like(d[:, 2], -1e-12), d[:, 2])
            hit = (t > 1e-4) & (t < best_t)
            best_t = torch.where(hit, t, best_t)
            best_id = torch.where(hit, torch.full_like(best_id, len(self.mats) - 1), best_id)
            best_n = torch.where(hit[:, None], torch.tensor([0.0, 0.0, 1.0]).expand(n, 3), best_n)
        return best_t, best_id, best_n

    def albedo(self, p: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
        tile = self.mat_tile[obj][:, None]
        seed = self.s.texture_seed
        h1 = _hash(torch.floor(p / tile) + obj[:, None] * 1000, seed)
        h2 = _hash(torch.floor(p / (tile * 0.37)) + obj[:, None] * 1000 + 77, seed + 1)
        lum = 0.1 + 0.9 * h1[:, :1]  # strong luminance cells (features) tinted per cell
        v = 0.7 * lum * (0.75 + 0.25 * h1[:, 1:2].expand(-1, 3) * h2) + 0.3 * h2[:, 2:3]
        con = self.mat_contrast[obj][:, None]
        return self.mat_color[obj] * ((1 - con) + con * v)

    # ----------------------------------------------------------------------------------- shading
    def shade(self, o: torch.Tensor, d: torch.Tensor):
        """Radiance [N, 3] and ray distance t [N] (INF for background)."""
        t, obj, nrm = self.intersect(o, d)
        hit = obj >= 0
        rad = torch.zeros(o.shape[0], 3)
        if not hit.any():
            return rad, t
        idx = hit.nonzero().squeeze(1)
        oi, di, ti, obi, ni = o[idx], d[idx], t[idx], obj[idx], nrm[idx]
        p = oi + ti[:, None] * di
        # face the normal towards the viewer
        ni = torch.where(((ni * di).sum(-1) > 0)[:, None], -ni, ni)
        emit = self.mat_emit[obi]
        alb = self.albedo(p, obi)
        light = torch.tensor(self.s.ambient, dtype=torch.float32).expand(len(idx), 3).clone()
        p_off = p + 1e-3 * ni
        for k in range(self.n_lamp):
            L = self.lamp_pos[k] - p_off
            dist2 = (L * L).sum(-1)
            dist = dist2.sqrt()
            Ld = L / dist[:, None]
            cos = (ni * Ld).sum(-1).clamp_min(0)
            ts, _, _ = self.intersect(p_off, Ld, skip_lamps=True)
            vis = (ts >= dist).float()
            light += (self.lamp_I[k][None] * (cos * vis / dist2)[:, None]) / math.pi
        rad[idx] = emit + alb * light
        return rad, t


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV world-to-camera 4x4 looking from ``eye`` at ``target`` (y down in the image)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    u = np.cross(f, r)  # points down in the image
    R = np.stack([r, u, f])
    V = np.eye(4)
    V[:3, :3] = R
    V[:3, 3] = -R @ eye
    return V


def camera_rays(viewmat: np.ndarray, K: np.ndarray, width: int, height: int, offsets=(0.5, 0.5)):
    """World rays [H*W, 3] origin and unit direction for pixel centres (j + 0.5, i + 0.5),
    and the cosine between each ray and the optical axis (z_view = t * cos)."""
    V = torch.as_tensor(viewmat, dtype=torch.float64)
    Kt = torch.as_tensor(K, dtype=torch.float64)
    jj, ii = torch.meshgrid(torch.arange(width, dtype=torch.float64) + offsets[0],
                            torch.arange(height, dtype=torch.float64) + offsets[1], indexing="xy")
    x = (jj - Kt[0, 2]) / Kt[0, 0]
    y = (ii - Kt[1, 2]) / Kt[1, 1]
    dc = torch.stack([x, y, torch.ones_like(x)], -1).reshape(-1, 3)
    norm = dc.norm(dim=-1, keepdim=True)
    dc = dc / norm
    R = V[:3, :3]
    d = dc @ R  # R^T dc
    o = (-R.T @ V[:3, 3]).expand_as(d)
    return o.float().contiguous(), d.float().contiguous(), (1.0 / norm.squeeze(-1)).float()


def render(tracer: Tracer, viewmat, K, width: int, height: int, chunk: int = 1 << 16):
    """Radiance [H, W, 3] and view-space depth z [H, W] (inf for background)."""
    o, d, cos = camera_rays(viewmat, K, width, height)
    rads, ts = [], []
    for s in range(0, o.shape[0], chunk):
        r, t = tracer.shade(o[s:s + chunk], d[s:s + chunk])
        rads.append(r)
        ts.append(t)
    rad = torch.cat(rads).reshape(height, width, 3)
    t = torch.cat(ts)
    z = torch.where(t >= INF, torch.full_like(t, float("inf")), t * cos).reshape(height, width)
    return rad, z
