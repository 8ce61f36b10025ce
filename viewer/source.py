"""What the viewer renders: a `SceneSource` wraps a trained RUN, a standard 3DGS PLY, or a live trainer.

A source provides
  render(camera, distortion=False) -> le3d RenderOutput (image: linear HDR, camera RGB for RAW scenes)
  kind ("raw" | "ldr"), cam_to_srgb [3,3], asshot_wb [3], cam_to_xyz [3,3] or None,
  color_profile (the scene's DNG colour tags, le3d.raw.dng.color_profile_of) or None,
  num_primitives, info (markdown lines), cameras (training cameras, may be empty),
  depth_range (near, far) or None, extent (scene radius, for the initial view).
Sources must be safe to call from several render threads (the RUN/PLY sources are read-only; the
live source takes the trainer's lock).
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import torch

from le3d.errors import Le3dError
from le3d.render import color_context

__all__ = ["SceneSource", "RunSource", "GaussianSource", "load_source", "load_ply_gaussians"]

SH_C0 = 0.28209479177387814


class SceneSource:
    kind: str = "ldr"
    cam_to_xyz = None
    color_profile = None
    depth_range = None
    extent: float = 1.0

    def __init__(self):
        self.cameras = []
        self.cam_to_srgb = torch.eye(3)
        self.asshot_wb = torch.ones(3)

    def use_colors(self, colors: dict) -> None:
        """Take le3d.render's colour context (scene_color_context), as every viewer source does."""
        self.cam_to_srgb, self.asshot_wb, self.cam_to_xyz = (colors[k] for k in ("cam_to_srgb", "asshot_wb",
                                                                                 "cam_to_xyz"))
        self.color_profile = colors.get("color_profile")

    def render(self, camera, distortion: bool = False):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def num_primitives(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def info(self) -> str:
        return f"{self.num_primitives:,} primitives"


def _training_cameras(scene_path: str | None, downscale: int = 1) -> list:
    """Training cameras from the scene's COLMAP model (best effort: [] when unavailable)."""
    if not scene_path:
        return []
    try:
        import numpy as np

        from le3d.data.colmap import read_model
        from le3d.data.types import Camera

        root = Path(scene_path)
        for cand in (root / "sparse" / "0", root / "sparse"):
            if (cand / "cameras.bin").is_file() or (cand / "cameras.txt").is_file():
                model = read_model(cand)
                break
        else:
            return []
        cams = []
        for img in sorted(model.images.values(), key=lambda i: i.name):
            c = model.cameras[img.camera_id]
            K, _ = c.intrinsics()
            K = np.asarray(K, dtype=np.float64).copy()
            cams.append(Camera(torch.tensor(img.viewmat(), dtype=torch.float32), torch.tensor(K, dtype=torch.float32),
                               int(c.width), int(c.height), img.name))
        return cams
    except Exception:  # noqa: BLE001 - frustums are a convenience
        return []


class RunSource(SceneSource):
    """A trained RUN folder (le3d.run.TrainedScene)."""

    def __init__(self, run):
        super().__init__()
        self.run = run
        sc = run.config.get("scene", {})
        self.kind = run.kind
        self.use_colors(color_context(run))
        dr = sc.get("depth_range")
        self.depth_range = (float(dr[0]), float(dr[1])) if dr else None
        self.extent = float(sc.get("extent", 1.0) or 1.0)
        self.cameras = _training_cameras(sc.get("path"))
        self.name = sc.get("name", Path(run.path).name)

    def render(self, camera, distortion: bool = False):
        if distortion and self.depth_range is not None:
            return self.run.model.render(camera, disparity_range=self.depth_range)
        return self.run.render(camera)

    @property
    def num_primitives(self) -> int:
        return int(self.run.num_primitives)

    @property
    def info(self) -> str:
        prim = self.run.config.get("train", {}).get("primitive", "gaussian")
        color = self.run.config.get("model", {}).get("color_mode", "?")
        st = self.run.state
        return (f"**{self.name}** ({self.kind})  \n{self.num_primitives:,} {prim}s, colour: {color}  \n"
                f"iteration {st.get('iteration', '?')} / {st.get('iters', '?')} ({st.get('status', '?')})")


class GaussianSource(SceneSource):
    """Plain 3D Gaussians with per-primitive colours (e.g. a standard 3DGS PLY), linear sRGB."""

    def __init__(self, means, quats, scales, opacities, colors, name: str = "gaussians", sh=None, sh_degree=0):
        super().__init__()
        self.kind = "ldr"
        self.means, self.quats, self.scales, self.opacities = means, quats, scales, opacities
        self.colors = colors  # [N,3] SH-degree-0 colour (display sRGB-ish, as 3DGS stores it)
        self.sh, self.sh_degree = sh, sh_degree
        self.name = name
        if means.shape[0] == 0:
            raise Le3dError(f"{name}: empty scene (no Gaussians)")
        c = means.median(dim=0).values
        self.extent = float((means - c).norm(dim=-1).quantile(0.9)) if means.shape[0] < 2**24 else 1.0
        self.center = c

    def to(self, device):
        for k in ("means", "quats", "scales", "opacities", "colors"):
            setattr(self, k, getattr(self, k).to(device))
        if self.sh is not None:
            self.sh = self.sh.to(device)
        return self

    def _features(self, camera):
        if self.sh is None or self.sh_degree == 0:
            return self.colors
        from le3d.model.sh import eval_sh

        dirs = self.means - camera.center.to(self.means)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return torch.clamp_min(eval_sh(self.sh_degree, self.sh, dirs) + 0.5, 0.0)

    def render(self, camera, distortion: bool = False):
        from le3d import rasterize_gaussians

        V, K = camera.viewmat.to(self.means), camera.K.to(self.means)
        feats = self._features(camera)
        # 3DGS colours are display-referred sRGB: linearise so the HDR pipeline (exposure, tone map) applies.
        feats = torch.where(feats <= 0.04045, feats / 12.92, ((feats.clamp_min(0) + 0.055) / 1.055) ** 2.4)
        u = None
        if distortion:
            z = (self.means @ V[:3, :3].T + V[:3, 3])[:, 2].clamp_min(1e-6)
            zn, zf = float(z.min().clamp_min(1e-3)), float(z.max())
            u = ((1.0 / zn - 1.0 / z) / max(1.0 / zn - 1.0 / zf, 1e-9)).clamp(0.0, 1.0)
        return rasterize_gaussians(self.means, self.quats, self.scales, self.opacities, feats.contiguous(), V, K,
                                   camera.width, camera.height, distortion_coord=u)

    @property
    def num_primitives(self) -> int:
        return int(self.means.shape[0])

    @property
    def info(self) -> str:
        return f"**{self.name}** (3DGS PLY)  \n{self.num_primitives:,} Gaussians, SH degree {self.sh_degree}"


def load_ply_gaussians(path) -> GaussianSource:
    """A standard 3DGS PLY as a GaussianSource (uses le3d.io.ply when available)."""
    path = Path(path)
    if not path.is_file():
        raise Le3dError(f"file {path}: not found")
    try:
        from le3d.io import ply as ply_mod  # written by a colleague; may not exist yet
    except ImportError:
        ply_mod = None
    if ply_mod is not None and hasattr(ply_mod, "load_ply"):
        g = ply_mod.load_ply(path)
        get = (lambda k: g[k]) if isinstance(g, dict) else (lambda k: getattr(g, k))
        means = torch.as_tensor(get("means")).float()
        quats = torch.as_tensor(get("quats")).float()
        scales = torch.as_tensor(get("scales")).float()
        opac = torch.as_tensor(get("opacities")).float()
        sh = None
        try:
            sh = torch.as_tensor(get("sh")).float()
        except (KeyError, AttributeError):
            pass
        if sh is not None and sh.dim() == 3:
            colors = (0.5 + SH_C0 * sh[:, 0]).clamp_min(0)
            try:
                deg = int(get("sh_degree"))
            except (KeyError, AttributeError):
                deg = int(round(math.sqrt(sh.shape[1]))) - 1
        else:
            colors = (0.5 + SH_C0 * torch.as_tensor(get("f_dc")).float()).clamp_min(0)
            sh, deg = None, 0
        return GaussianSource(means, quats, scales, opac, colors, name=path.name, sh=sh, sh_degree=deg)
    return _read_3dgs_ply_dc(path)


def _read_3dgs_ply_dc(path: Path) -> GaussianSource:
    """Minimal binary little-endian 3DGS PLY reader (degree-0 colour only)."""
    import numpy as np

    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply") or end < 0:
        raise Le3dError(f"file {path}: not a PLY file")
    header = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise Le3dError(f"file {path}: only binary little-endian PLY is supported")
    types = {"float": "<f4", "float32": "<f4", "double": "<f8", "uchar": "u1", "int": "<i4", "uint8": "u1"}
    props, count, in_vertex = [], 0, False
    for line in header:
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            count, in_vertex = int(parts[2]), True
        elif parts and parts[0] == "element":
            in_vertex = False
        elif in_vertex and parts and parts[0] == "property":
            props.append((parts[2], types.get(parts[1], "<f4")))
    arr = np.frombuffer(data, dtype=np.dtype(props), count=count, offset=end + len(b"end_header\n"))
    names = set(arr.dtype.names)
    need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [n for n in need if n not in names]
    if missing:
        raise Le3dError(f"file {path}: not a 3DGS PLY (missing {', '.join(missing)})")

    def col(*ks):
        return torch.tensor(np.stack([arr[k].astype(np.float32) for k in ks], -1))

    means = col("x", "y", "z")
    colors = (0.5 + SH_C0 * col("f_dc_0", "f_dc_1", "f_dc_2")).clamp_min(0)
    opac = torch.sigmoid(col("opacity")[:, 0])
    scales = torch.exp(col("scale_0", "scale_1", "scale_2"))
    quats = col("rot_0", "rot_1", "rot_2", "rot_3")
    ok = torch.isfinite(means).all(1) & torch.isfinite(scales).all(1) & torch.isfinite(quats).all(1)
    return GaussianSource(means[ok], quats[ok], scales[ok], opac[ok], colors[ok], name=path.name)


def load_source(path, device: str = "auto") -> SceneSource:
    """A RUN folder or a .ply file."""
    path = Path(path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if path.suffix.lower() == ".ply":
        return load_ply_gaussians(path).to(device)
    if path.is_dir():
        from le3d.run import load_run

        return RunSource(load_run(path, device=device))
    raise Le3dError(f"{path}: not a RUN folder or a .ply file")


class LockedSource(SceneSource):
    """Wrap a source so that every render holds `lock` (e.g. the trainer's, during training)."""

    def __init__(self, inner: SceneSource, lock: threading.Lock):
        self.__dict__.update(inner.__dict__)
        self.inner, self.lock = inner, lock

    def render(self, camera, distortion: bool = False):
        with self.lock:
            return self.inner.render(camera, distortion)

    @property
    def num_primitives(self) -> int:
        return self.inner.num_primitives
