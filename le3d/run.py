"""RUN folders: what `le3d train` writes and everything else (eval, render, viewer, export) reads.

Layout:
  config.json          {"format": "le3d-run", "version": 1, "train": TrainConfig dict, "model": model config,
                        "scene": {path, downscale, name, kind, cam_to_srgb, white_balance, cam_to_xyz,
                        color_profile (DNG ColorMatrix1/2, CalibrationIlluminant1/2, ForwardMatrix1/2; null for LDR
                        scenes, absent in older RUNs), depth_range, extent, exposures}, "seed", "le3d_version"}
  model.safetensors    latest model tensors: model.<name> (Gaussians: means, quats, log_scales, opacity_logits;
                       convexes (train.primitive "convex"): points, log_delta, log_sigma, opacity_logit;
                       both: features, f_dc | sh, mlp.*) and gains.log_gains
  state.json           {"status": running|interrupted|finished, "iteration", "iters", "train_seconds",
                        "num_primitives", "last_checkpoint", ...}
  checkpoints/         ckpt_NNNNNNN.safetensors (+ optimiser, RNG, densification state) and .json
  metrics.json, renders/   written by `le3d eval`

Python API:
    run = load_run("RUN")
    out = run.render(camera, exposure=1.0)   # RenderOutput; out.image is linear HDR camera RGB x exposure
    srgb = run.to_srgb(out.image)             # display sRGB with the scene's colour pipeline
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from le3d.errors import Le3dError
from le3d.raster.types import RenderOutput

FORMAT = "le3d-run"


def run_config(trainer) -> dict:
    from le3d import __version__
    from le3d.raw.dng import color_profile_of

    s = trainer.scene
    return {
        "format": FORMAT, "version": 1, "le3d_version": __version__, "seed": trainer.seed,
        "train": trainer.cfg.to_dict(), "model": trainer.model.config(),
        "scene": {**trainer.scene_info, "name": s.name, "kind": s.kind,
                  "cam_to_srgb": s.cam_to_srgb.float().tolist(), "white_balance": s.white_balance.float().tolist(),
                  "cam_to_xyz": None if getattr(s, "cam_to_xyz", None) is None else s.cam_to_xyz.float().tolist(),
                  "color_profile": color_profile_of(getattr(s, "color_profile", None)),
                  "depth_range": list(trainer.depth_range), "extent": trainer.extent,
                  "exposures": sorted({float(f.exposure) for f in s.train})},
    }


@dataclass
class TrainedScene:
    """A trained model loaded from a RUN folder, ready to render."""

    path: Path
    config: dict
    state: dict
    model: object
    gains: torch.Tensor | None = None

    @property
    def kind(self) -> str:
        return self.config["scene"].get("kind", "raw")

    @property
    def cam_to_srgb(self) -> torch.Tensor:
        return torch.tensor(self.config["scene"]["cam_to_srgb"])

    @property
    def white_balance(self) -> torch.Tensor:
        return torch.tensor(self.config["scene"]["white_balance"])

    @property
    def num_primitives(self) -> int:
        return self.model.num_primitives

    def to(self, device) -> TrainedScene:
        self.model.to(device)
        return self

    @torch.no_grad()
    def render(self, camera, exposure: float = 1.0, background=None, backend: str = "auto",
               depth_outputs: bool = False) -> RenderOutput:
        """Render `camera` (le3d.data.Camera). image = linear HDR camera RGB (linear sRGB for LDR scenes)
        at the reference exposure times `exposure`. depth_outputs adds near/far depths. background defaults
        to the one the model was trained against (train.background)."""
        bg = float(self.config.get("train", {}).get("background", 0.0))
        if background is None and bg != 0.0:
            m = self.model.means
            background = torch.full((3,), bg, dtype=m.dtype, device=m.device)
        out = self.model.render(camera, background=background, backend=backend, nearfar_k=4 if depth_outputs else 0)
        out.image = out.image * float(exposure)
        return out

    def to_srgb(self, hdr: torch.Tensor, exposure: float = 1.0) -> torch.Tensor:
        """Display sRGB [H,W,3] in [0,1] from a linear image (white balance, colour matrix, sRGB OETF)."""
        from le3d.metrics import to_srgb

        if self.kind == "ldr":
            return to_srgb(hdr * exposure, None, None)
        return to_srgb(hdr * exposure, self.white_balance, self.cam_to_srgb)


def load_run(path: str | Path, device: str | torch.device = "cpu", checkpoint: str | None = None) -> TrainedScene:
    """Load a RUN folder written by `le3d train` (latest model.safetensors, or a named checkpoint)."""
    from le3d.train.checkpoint import load_json, load_tensors
    from le3d.train.config import TrainConfig
    from le3d.train.trainer import create_model

    path = Path(path)
    if not (path / "config.json").is_file():
        raise Le3dError(f"run {path}: not a le3d RUN folder (config.json missing)")
    cfg = load_json(path / "config.json")
    if cfg.get("format") != FORMAT:
        raise Le3dError(f"run {path}/config.json: not a le3d run config")
    state = load_json(path / "state.json") if (path / "state.json").is_file() else {}
    f = path / "checkpoints" / f"{checkpoint}.safetensors" if checkpoint else path / "model.safetensors"
    if checkpoint and not f.is_file():
        have = sorted(p.stem for p in (path / "checkpoints").glob("*.safetensors"))
        raise Le3dError(f"run {path}: no checkpoint {checkpoint!r}; it has "
                        + (", ".join(have) if have else "none") + " (omit --checkpoint for the final model)")
    t = load_tensors(f)
    model = create_model(TrainConfig.from_dict(cfg["train"]))
    model.load_state_tensors({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    for k, v in model.params.items():
        if not torch.isfinite(v).all():
            raise Le3dError(f"run {f}: NaN or inf in parameter {k}")
    model.to(device)
    return TrainedScene(path, cfg, state, model, t.get("gains.log_gains"))
