"""Training configuration: a dataclass of defaults (the full LE3D GPU schedule) plus YAML overrides.

`load_config(name_or_path)` accepts a YAML path or a config name (`demo_cpu`, `le3d`, `rawgs`, ...).
Names are looked up in ./configs/, in the repository's configs/ next to the package, and finally in
`PRESETS` below (so an installed package works without the YAML files); tests check that the YAML files
and the presets agree.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from le3d.errors import Le3dError


def _lr():
    # learning rates per parameter group (means are multiplied by the scene extent, as in 3DGS)
    return {"means": 1.6e-4, "quats": 1e-3, "log_scales": 5e-3, "opacity_logits": 5e-2, "features": 2.5e-3,
            "f_dc": 1e-2, "sh": 2.5e-3, "mlp": 1e-3, "gains": 1e-3,
            "log_delta": 5e-3, "log_sigma": 5e-3}  # convexes: points use "means", opacity_logit "opacity_logits"


def _lr_final():
    return {"means": 1.6e-6, "mlp": 1e-4}


def _lr_decay():
    return {"means": "exp", "mlp": "cos"}


@dataclass
class TrainConfig:
    name: str = "le3d"
    iters: int = 30000
    downscale: int = 1
    device: str = "auto"  # auto | cpu | cuda
    backend: str = "auto"  # rasterizer backend
    primitive: str = "gaussian"  # gaussian | convex
    convex_points: int = 6  # points per smooth convex (3..8)
    convex_radius_scale: float = 1.0  # initial convex radius = this x (capped) 3-NN distance
    # model
    color_mode: str = "mlp"  # mlp (LE3D) | sh (3DGS / RawGS)
    feature_dim: int = 16
    mlp_hidden: int = 64
    mlp_layers: int = 2
    dir_degree: int = 0  # frequency encoding of the view direction (0: raw direction)
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    exposure_gains: bool = True
    # initialisation
    cone_init: bool = True
    cone_factor: float = 5.0
    cone_min_views: int = 2
    cone_carve: bool = True  # drop scattered points that SfM shows to be floaters (init/cone.py)
    init_opacity: float = 0.1
    max_init_points: int = 200000
    max_init_footprint: float = 4.0  # pixels: cap on initial scale / depth x focal length
    # losses
    recon: str = "rawnerf"  # rawnerf | l2 | l1
    rawnerf_eps: float = 1e-3
    ssim_weight: float = 0.0  # 3DGS D-SSIM term (LDR baseline)
    s3im_weight: float = 0.1
    s3im_repeats: int = 10
    s3im_patch_height: int = 64
    s3im_pixels: int = 4096
    distortion_weight: float = 0.1
    distortion_from: int = 0
    nearfar_weight: float = 0.01
    nearfar_k: int = 4
    nearfar_from: int = 0
    alpha_weight: float = 0.0
    # optimisation
    lr: dict = field(default_factory=_lr)
    lr_final: dict = field(default_factory=_lr_final)
    lr_decay: dict = field(default_factory=_lr_decay)  # exp | cos | const per group
    # densification
    densify: bool = True
    densify_from: int = 500
    densify_until: int = 15000
    densify_every: int = 100
    grad_threshold: float = 2e-4
    percent_dense: float = 0.01
    opacity_reset_every: int = 3000
    prune_opacity: float = 0.005
    prune_scale: float = 0.1  # prune primitives larger than this x scene extent (after the first reset)
    max_primitives: int = 1_000_000
    prune_unseen: bool = True
    # bookkeeping
    background: float = 0.0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 10
    max_bad_steps: int = 10

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return apply_overrides(cls(), d)


PRESETS: dict[str, dict] = {
    # full GPU schedule; the RawNeRF loss's screen-space gradients are ~10x 3DGS's, so its 2e-4 threshold
    # densifies on noise (docs/BENCHMARKS.md, "Densification threshold")
    "le3d": {"name": "le3d", "grad_threshold": 2e-3},
    "demo_cpu": {
        "name": "demo_cpu", "iters": 300, "downscale": 4, "device": "cpu", "s3im_pixels": 1024,
        "s3im_patch_height": 32, "cone_factor": 5.0, "max_init_points": 12000, "densify_from": 100,
        "densify_until": 250, "densify_every": 50, "opacity_reset_every": 200, "max_primitives": 20000,
        "sh_degree_interval": 60, "checkpoint_every": 100, "lr": {"means": 3e-4}, "lr_final": {"means": 3e-6},
    },
    "rawgs": {"name": "rawgs", "color_mode": "sh", "recon": "l2", "cone_init": False, "s3im_weight": 0.0,
              "distortion_weight": 0.0, "nearfar_weight": 0.0, "exposure_gains": False},
    "3dgs_ldr": {"name": "3dgs_ldr", "color_mode": "sh", "recon": "l1", "ssim_weight": 0.2, "cone_init": False,
                 "s3im_weight": 0.0, "distortion_weight": 0.0, "nearfar_weight": 0.0, "exposure_gains": False},
}
_DEMO_BASE = dict(PRESETS["demo_cpu"])
_DEMO_BASE.pop("name")
PRESETS["rawgs_cpu"] = {**_DEMO_BASE, **PRESETS["rawgs"], "name": "rawgs_cpu"}
PRESETS["demo_cpu_convex"] = {**_DEMO_BASE, "name": "demo_cpu_convex", "primitive": "convex"}  # LE3D with convexes
PRESETS["3dgs_ldr_cpu"] = {**_DEMO_BASE, **PRESETS["3dgs_ldr"], "name": "3dgs_ldr_cpu"}
# 3D Convex Splatting on LDR scenes: smooth convexes, SH colour, L1 + 0.2 D-SSIM
PRESETS["3dcs_ldr"] = {**PRESETS["3dgs_ldr"], "name": "3dcs_ldr", "primitive": "convex"}
PRESETS["3dcs_ldr_cpu"] = {**PRESETS["3dgs_ldr_cpu"], "name": "3dcs_ldr_cpu", "primitive": "convex"}
for _abl, _ov in {"no_cone": {"cone_init": False}, "cone_no_carve": {"cone_carve": False},
                  "sh_color": {"color_mode": "sh"},
                  "no_distortion": {"distortion_weight": 0.0}, "no_nearfar": {"nearfar_weight": 0.0},
                  "no_s3im": {"s3im_weight": 0.0}}.items():
    PRESETS[f"ablation_{_abl}"] = {**_DEMO_BASE, **_ov, "name": f"ablation_{_abl}"}


def apply_overrides(cfg: TrainConfig, overrides: dict, source: str = "overrides") -> TrainConfig:
    names = {f.name for f in dataclasses.fields(cfg)}
    d = cfg.to_dict()
    for k, v in (overrides or {}).items():
        if k not in names:
            raise Le3dError(f"{source}: unknown config key {k!r}")
        if isinstance(d[k], dict):
            if not isinstance(v, dict):
                raise Le3dError(f"{source}: {k!r} must be a mapping")
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return TrainConfig(**_checked(d, source))


_CHOICES = {"device": ("auto", "cpu", "cuda"), "primitive": ("gaussian", "convex"), "color_mode": ("mlp", "sh"),
            "recon": ("rawnerf", "l2", "l1")}
_AT_LEAST_1 = ("downscale", "densify_every", "s3im_pixels", "s3im_repeats", "s3im_patch_height", "log_every",
               "max_bad_steps")


def _number(v, what: str, source: str):
    # YAML 1.1 (PyYAML) reads `2e-4` (no dot) as a string: accept what float() accepts
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Le3dError(f"{source}: {what} must be a number, got {v!r}")
    return v


def _checked(d: dict, source: str) -> dict:
    """Types (against the defaults), choices and ranges of a config dict; one-line Le3dError otherwise."""
    defaults = TrainConfig.__dataclass_fields__
    for k, f in defaults.items():
        v, dv = d[k], f.default_factory() if f.default is dataclasses.MISSING else f.default
        if isinstance(dv, dict):
            groups = _lr()
            for g, x in v.items():
                if g not in groups:
                    raise Le3dError(f"{source}: {k} has unknown parameter group {g!r} "
                                    f"(groups: {', '.join(groups)})")
                if k == "lr_decay":
                    if x not in ("exp", "cos", "const"):
                        raise Le3dError(f"{source}: lr_decay.{g} {x!r}: expected exp, cos or const")
                else:
                    v[g] = _number(x, f"{k}.{g}", source)
        elif isinstance(dv, bool):
            if not isinstance(v, bool):
                raise Le3dError(f"{source}: {k} must be true or false, got {v!r}")
        elif isinstance(dv, int):
            if isinstance(v, bool) or not isinstance(v, int):
                raise Le3dError(f"{source}: {k} must be an integer, got {v!r}")
        elif isinstance(dv, float):
            d[k] = _number(v, k, source)
        elif isinstance(dv, str) and not isinstance(v, str):
            raise Le3dError(f"{source}: {k} must be a string, got {v!r}")
    for k, allowed in _CHOICES.items():
        if d[k] not in allowed:
            raise Le3dError(f"{source}: {k} {d[k]!r}: expected one of {', '.join(allowed)}")
    for k in _AT_LEAST_1:
        if d[k] < 1:
            raise Le3dError(f"{source}: {k} must be at least 1, got {d[k]}")
    if not 0 <= d["sh_degree"] <= 3:
        raise Le3dError(f"{source}: sh_degree must be 0 to 3, got {d['sh_degree']}")
    return d


def config_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent.parent / "configs"
    return [Path.cwd() / "configs", here]


def load_config(name_or_path: str | None = None) -> TrainConfig:
    """A TrainConfig from a YAML file path or a config name (default `le3d`)."""
    if not name_or_path:
        name_or_path = "le3d"
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") or p.is_file():
        if not p.is_file():
            raise Le3dError(f"config {p}: file not found")
        return _load_file(p)
    for d in config_dirs():
        f = d / f"{name_or_path}.yaml"
        if f.is_file():
            return _load_file(f)
    if name_or_path in PRESETS:
        return apply_overrides(TrainConfig(), PRESETS[name_or_path], name_or_path)
    raise Le3dError(f"config {name_or_path!r}: no such file or preset (presets: {', '.join(sorted(PRESETS))})")


def _load_file(p: Path) -> TrainConfig:
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001
        raise Le3dError(f"config {p}: cannot parse ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Le3dError(f"config {p}: expected a mapping of keys to values")
    base = data.pop("base", None)
    cfg = load_config(base) if base else TrainConfig()
    return apply_overrides(cfg, data, str(p))


def preset_yaml(name: str) -> str:
    """The YAML text of a preset (used to write configs/*.yaml)."""
    return f"# le3d training config `{name}` (overrides of le3d.train.config.TrainConfig defaults)\n" + yaml.safe_dump(
        PRESETS[name], sort_keys=False)
