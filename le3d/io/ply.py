"""Standard 3D Gaussian Splatting PLY files (the Inria 3DGS layout read by common viewers).

One `vertex` element, binary little-endian float32 properties in this order:
  x y z, nx ny nz (zeros), f_dc_0..2, f_rest_0..(3*M-1), opacity, scale_0..2, rot_0..3
where M = (degree+1)^2 - 1 rest coefficients per channel, stored channel-major
(f_rest_{c*M + k} is coefficient k+1 of channel c), `opacity` is the logit, `scale_*` are natural
logs of the axis scales and `rot_*` the quaternion (w, x, y, z), not necessarily normalised.
Colour for a view direction d (unit, from the camera centre to the Gaussian) is
  max(SH(d) + 0.5, 0)  with the real SH basis of le3d.model.sh (C0 = 0.28209479177387814).

`load_ply` also reads ASCII and big-endian PLYs with any property order and numeric types, and
any SH degree 0..3 (missing coefficients are zero).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from le3d.errors import Le3dError
from le3d.io.atomic import atomic_write
from le3d.model.sh import eval_sh

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


@dataclass
class GaussianCloud:
    """Gaussians in the le3d conventions (DESIGN.md) with SH colour.

    means [N,3], quats [N,4] (w,x,y,z; normalised), scales [N,3] (linear), opacities [N] in (0,1),
    sh [N,16,3] (degree-3 layout; unused higher bands are zero), sh_degree (0..3: bands present).
    Colour = max(SH(dir) + 0.5, 0), in whatever space the file was written in (display sRGB for
    `le3d export`, which bakes exposure, white balance and tone mapping in).
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor
    sh_degree: int = 3

    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[0])

    def to(self, device) -> GaussianCloud:
        return GaussianCloud(self.means.to(device), self.quats.to(device), self.scales.to(device),
                             self.opacities.to(device), self.sh.to(device), self.sh_degree)

    def colors(self, cam_center: torch.Tensor) -> torch.Tensor:
        """RGB [N,3] seen from the world point `cam_center` [3]."""
        dirs = self.means - cam_center.to(self.means)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return torch.clamp_min(eval_sh(self.sh_degree, self.sh, dirs) + 0.5, 0.0)


def render_cloud(cloud: GaussianCloud, camera, *, background=None, backend: str = "auto", near: float = 0.01,
                 far: float = 1e10):
    """Render a GaussianCloud with a le3d.data.Camera: evaluates SH colour for the camera centre and
    calls le3d.rasterize_gaussians. Returns a RenderOutput (image [H,W,3] in the file's colour space)."""
    from le3d.raster import rasterize_gaussians

    dev = cloud.means
    V, K = camera.viewmat.to(dev), camera.K.to(dev)
    if background is not None:
        background = torch.as_tensor(background, dtype=dev.dtype, device=dev.device).reshape(3)
    with torch.no_grad():
        return rasterize_gaussians(cloud.means, cloud.quats, cloud.scales, cloud.opacities,
                                   cloud.colors(camera.center.to(dev)), V, K, camera.width, camera.height,
                                   background=background, near=near, far=far, backend=backend)


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p))


def save_ply(path, cloud: GaussianCloud, sh_degree: int | None = None) -> Path:
    """Write `cloud` as a standard binary 3DGS PLY (atomic write). sh_degree defaults to cloud.sh_degree."""
    path = Path(path)
    deg = cloud.sh_degree if sh_degree is None else int(sh_degree)
    if not 0 <= deg <= 3:
        raise Le3dError(f"{path}: SH degree must be 0..3, got {deg}")
    n = cloud.num_gaussians
    m = (deg + 1) ** 2 - 1
    sh = cloud.sh.detach().float().cpu()
    if sh.shape[1] < m + 1:
        sh = torch.cat([sh, sh.new_zeros(n, m + 1 - sh.shape[1], 3)], 1)
    q = cloud.quats.detach().float().cpu()
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cols = [cloud.means.detach().float().cpu(), torch.zeros(n, 3), sh[:, 0, :],
            sh[:, 1:m + 1, :].transpose(1, 2).reshape(n, 3 * m),  # channel-major f_rest
            _logit(cloud.opacities.detach().float().cpu())[:, None],
            torch.log(cloud.scales.detach().float().cpu().clamp_min(1e-30)), q]
    data = torch.cat(cols, 1).numpy().astype("<f4")
    names = (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{i}" for i in range(3)]
             + [f"f_rest_{i}" for i in range(3 * m)] + ["opacity"] + [f"scale_{i}" for i in range(3)]
             + [f"rot_{i}" for i in range(4)])
    assert data.shape[1] == len(names)
    if not np.isfinite(data).all():
        raise Le3dError(f"{path}: refusing to write NaN or inf Gaussian parameters")
    # No comment line: Inria's SIBR viewer takes the header's third line as "element vertex N" (it reads
    # 0 Gaussians when a comment is there), as Inria's own writer lays it out.
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
              + "".join(f"property float {k}\n" for k in names) + "end_header\n")
    _atomic_write(path, header.encode("ascii") + data.tobytes())
    return path


def _atomic_write(path: Path, payload: bytes) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise Le3dError(f"{path}: folder {parent} does not exist")
    try:
        atomic_write(path, payload)
    except PermissionError as e:
        raise Le3dError(f"{path}: cannot write ({e.strerror})") from None


def _parse_header(f, path):
    if f.readline().strip() != b"ply":
        raise Le3dError(f"{path}: not a PLY file (no 'ply' magic)")
    fmt, elements = None, []
    while True:
        line = f.readline()
        if not line:
            raise Le3dError(f"{path}: PLY header has no end_header")
        tok = line.decode("ascii", "replace").split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "end_header":
            break
        if tok[0] == "format":
            fmt = tok[1]
        elif tok[0] == "element":
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property":
            if not elements:
                raise Le3dError(f"{path}: PLY property before any element")
            if tok[1] == "list":
                elements[-1][2].append((tok[4], "list", tok[2], tok[3]))
            else:
                if tok[1] not in _PLY_TYPES:
                    raise Le3dError(f"{path}: unknown PLY property type {tok[1]!r}")
                elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]]))
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise Le3dError(f"{path}: unsupported PLY format {fmt!r}")
    return fmt, elements


def _read_vertex_table(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        fmt, elements = _parse_header(f, path)
        body = f.read()
    endian = ">" if fmt == "binary_big_endian" else "<"
    offset = 0
    for name, count, props in elements:
        if any(p[1] == "list" for p in props):
            if name == "vertex":
                raise Le3dError(f"{path}: list properties in the vertex element are not supported")
            if fmt != "ascii":
                raise Le3dError(f"{path}: element {name!r} with list properties precedes the vertices")
        if fmt == "ascii":
            lines = body.decode("ascii", "replace").splitlines()
            rows = [ln for ln in lines if ln.strip()][offset:offset + count]
            offset += count
            if name == "vertex":
                arr = np.array([r.split()[:len(props)] for r in rows], dtype=np.float64).reshape(count, len(props))
                return {p[0]: arr[:, i] for i, p in enumerate(props)}
            continue
        dt = np.dtype([(p[0], endian + p[1]) for p in props])
        if name == "vertex":
            if len(body) < offset + count * dt.itemsize:
                raise Le3dError(f"{path}: truncated PLY ({count} vertices declared, file too short)")
            arr = np.frombuffer(body, dtype=dt, count=count, offset=offset)
            return {k: arr[k].astype(np.float64) for k in dt.names}
        offset += count * dt.itemsize
    raise Le3dError(f"{path}: PLY has no 'vertex' element")


def load_ply(path, device: str | torch.device = "cpu") -> GaussianCloud:
    """Read a standard 3DGS PLY (as written by Inria 3DGS, gsplat, nerfstudio, `le3d export`)."""
    path = Path(path)
    if not path.is_file():
        raise Le3dError(f"{path}: no such file")
    v = _read_vertex_table(path)
    need = ["x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [k for k in need if k not in v]
    if missing:
        raise Le3dError(f"{path}: not a 3DGS PLY (missing properties {', '.join(missing)})")
    n = len(v["x"])

    def cols(names):
        return torch.from_numpy(np.stack([v[k] for k in names], 1).astype(np.float32)).reshape(n, len(names))

    means = cols(["x", "y", "z"])
    quats = cols([f"rot_{i}" for i in range(4)])
    scales = torch.exp(cols([f"scale_{i}" for i in range(3)]))
    opacities = torch.sigmoid(cols(["opacity"])[:, 0])
    sh = torch.zeros(n, 16, 3)
    if all(f"f_dc_{i}" in v for i in range(3)):
        sh[:, 0] = cols([f"f_dc_{i}" for i in range(3)])
    elif all(k in v for k in ("red", "green", "blue")):  # plain coloured point cloud fallback
        rgb = cols(["red", "green", "blue"])
        sh[:, 0] = (rgb / (255.0 if rgb.max() > 1.0 else 1.0) - 0.5) / 0.28209479177387814
    n_rest = sum(1 for k in v if k.startswith("f_rest_"))
    if n_rest % 3:
        raise Le3dError(f"{path}: {n_rest} f_rest properties is not a multiple of 3")
    m = n_rest // 3
    deg = int(round(math.sqrt(m + 1))) - 1
    if (deg + 1) ** 2 - 1 != m or deg > 3:
        raise Le3dError(f"{path}: {n_rest} f_rest properties match no SH degree 0..3")
    if m:
        rest = cols([f"f_rest_{i}" for i in range(3 * m)]).reshape(n, 3, m).transpose(1, 2)
        sh[:, 1:m + 1] = rest
    if not all(torch.isfinite(t).all() for t in (means, quats, scales, opacities, sh)):
        raise Le3dError(f"{path}: NaN or inf in Gaussian parameters")
    norm = quats.norm(dim=-1, keepdim=True)
    quats = torch.where(norm > 0, quats / norm.clamp_min(1e-12), torch.tensor([1.0, 0, 0, 0]))
    return GaussianCloud(means, quats, scales, opacities, sh, deg).to(device)


# ---- baking a trained RUN into SH ---------------------------------------------------------------

def _sh_basis(dirs: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """[S, (degree+1)^2] real SH basis values (le3d.model.sh convention) at unit dirs [S,3]."""
    nb = (degree + 1) ** 2
    eye = torch.eye(nb, dtype=dirs.dtype, device=dirs.device)
    S = dirs.shape[0]
    # eval_sh is linear in the coefficients: evaluate each unit coefficient vector
    coeffs = eye[None, :, :].expand(S, nb, nb)  # [S, nb(bases), nb(channels)]
    return eval_sh(degree, coeffs, dirs)  # [S, nb]


def fibonacci_sphere(n: int, dtype=torch.float64) -> torch.Tensor:
    i = torch.arange(n, dtype=dtype) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1)


def _model_linear_colors(model, idx: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Linear colours [len(idx), S, 3] of Gaussians `idx` seen along unit dirs [S,3] (camera->Gaussian)."""
    from le3d.model.color_mlp import mlp_color
    from le3d.model.sh import num_sh_bases

    n, S = idx.numel(), dirs.shape[0]
    d = dirs.to(model.params["means"])[None].expand(n, S, 3).reshape(-1, 3)
    if model.color_mode == "mlp":
        f = model.params["features"][idx][:, None].expand(n, S, -1).reshape(n * S, -1)
        dc = model.params["f_dc"][idx][:, None].expand(n, S, 3).reshape(n * S, 3)
        return mlp_color(model.mlp, f, dc, d).reshape(n, S, 3)
    deg = model.active_sh_degree
    sh = model.params["sh"][idx][:, : num_sh_bases(deg)]
    sh = sh[:, None].expand(n, S, -1, 3).reshape(n * S, -1, 3)
    return torch.clamp_min(eval_sh(deg, sh, d) + 0.5, 0.0).reshape(n, S, 3)


@torch.no_grad()
def bake_run(run, settings=None, *, sh_degree: int = 3, n_dirs: int = 256, chunk: int = 4096,
             ridge: float = 1e-4, progress: bool = False) -> tuple[GaussianCloud, dict]:
    """Bake a loaded RUN (le3d.run.TrainedScene) into a display-sRGB SH GaussianCloud.

    For each Gaussian the view-dependent colour (colour MLP or SH, linear camera RGB) is evaluated along
    `n_dirs` Fibonacci-sphere directions, passed through the per-pixel post chain of `settings`
    (le3d.post.PostSettings: exposure, white balance, colour matrix, tone map, sRGB OETF; refocus is
    image-space and ignored) and fitted by (ridge) least squares with SH of `sh_degree`.
    Returns (cloud, stats) with the fit RMSE / max error / PSNR in display sRGB on the fit directions and
    on `n_dirs` held-out random directions. `progress`: a progress bar (Gaussians baked) on stderr.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from le3d.post.pipeline import PostSettings
    from le3d.render import post_process

    settings = replace(settings or PostSettings(), aperture=0.0, focus_pixel=None, focus_depth=None)
    model = run.model
    params = getattr(model, "params", {})
    if getattr(model, "kind", "gaussian") != "gaussian" or "quats" not in params or "log_scales" not in params:
        kind = getattr(model, "kind", type(model).__name__)
        raise Le3dError(f"{run.path}: only Gaussian RUNs can be exported to 3DGS PLY (this one is {kind})")
    dev = model.params["means"].device
    nb = (sh_degree + 1) ** 2
    dirs = fibonacci_sphere(n_dirs).to(dev)
    g = torch.Generator().manual_seed(1)
    held = torch.randn(n_dirs, 3, generator=g, dtype=torch.float64)
    held = (held / held.norm(dim=-1, keepdim=True)).to(dev)
    B = _sh_basis(dirs, sh_degree)  # [S, nb] float64
    solve = torch.linalg.solve(B.T @ B + ridge * n_dirs * torch.eye(nb, dtype=B.dtype, device=dev), B.T)  # [nb, S]
    Bh = _sh_basis(held, sh_degree)
    N = model.num_primitives
    if settings.tonemap == "reinhard" and settings.tonemap_params.get("white") is None:
        # the image-adaptive white point has no per-Gaussian meaning: fix it to the scene's maximum
        from le3d.color import luminance
        from le3d.render import post_process_linear

        white = 1e-6
        for s in range(0, N, chunk):
            idx = torch.arange(s, min(N, s + chunk), device=dev)
            lin = post_process_linear(run, _model_linear_colors(model, idx, dirs.float())[:, :, None, :], settings)
            white = max(white, float(luminance(lin.clamp_min(0)).max()))
        settings = replace(settings, tonemap_params={**settings.tonemap_params, "white": white})
    sh = torch.zeros(N, 16, 3, dtype=torch.float32, device=dev)
    se = se_h = 0.0
    mx = mx_h = 0.0
    bar = tqdm(total=N, desc="bake SH", unit="Gaussian", unit_scale=True, disable=not progress)
    for s in range(0, N, chunk):
        idx = torch.arange(s, min(N, s + chunk), device=dev)
        for dd, basis, held_out in ((dirs, B, False), (held, Bh, True)):
            lin = _model_linear_colors(model, idx, dd.float())  # [n,S,3]
            tgt = post_process(run, lin[:, :, None, :], settings)[:, :, 0, :].double()  # pixels = directions
            if not held_out:
                c = torch.einsum("bs,nsc->nbc", solve, tgt - 0.5)  # [n, nb, 3]
                sh[idx, :nb] = c.float()
            c = sh[idx, :nb].double()
            fit = torch.clamp_min(torch.einsum("sb,nbc->nsc", basis, c) + 0.5, 0.0)
            err = fit.clamp(0, 1) - tgt
            if held_out:
                se_h += float((err ** 2).sum())
                mx_h = max(mx_h, float(err.abs().max()))
            else:
                se += float((err ** 2).sum())
                mx = max(mx, float(err.abs().max()))
        bar.update(len(idx))
    bar.close()
    count = max(1, N * n_dirs * 3)
    rmse, rmse_h = math.sqrt(se / count), math.sqrt(se_h / count)

    def psnr(r):
        return float("inf") if r == 0 else -20 * math.log10(r)

    stats = {"sh_degree": sh_degree, "n_dirs": n_dirs, "num_gaussians": N,
             "rmse": rmse, "max_abs_error": mx, "psnr_db": psnr(rmse),
             "heldout_rmse": rmse_h, "heldout_max_abs_error": mx_h, "heldout_psnr_db": psnr(rmse_h),
             "space": "display sRGB [0,1] per Gaussian colour (before compositing)"}
    cloud = GaussianCloud(model.params["means"].detach().float(), model.params["quats"].detach().float(),
                          model.scales.detach().float(), model.opacities.detach().float(), sh, sh_degree)
    q = cloud.quats
    cloud.quats = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return cloud.to("cpu"), stats
