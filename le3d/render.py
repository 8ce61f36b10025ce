"""Render a trained RUN to display images: the model's linear HDR render followed by le3d.post.

    from le3d.run import load_run
    from le3d.render import render_view
    from le3d.post import PostSettings

    run = load_run("RUN")
    hdr, srgb, depth = render_view(run, camera, PostSettings(exposure_ev=1.0, tonemap="agx"))

`hdr` is linear camera RGB [H,W,3] (linear sRGB for LDR scenes), `srgb` display sRGB in [0,1],
`depth` the view-space z per pixel (0 where nothing was hit).
"""
from __future__ import annotations

import torch

from le3d.post.pipeline import PostSettings, apply_post, apply_post_linear

__all__ = ["render_view", "render_hdr", "post_process", "post_process_linear", "color_context",
           "scene_color_context", "load_cameras"]


def color_context(run) -> dict:
    """The colour arguments of le3d.post.apply_post for `run`'s scene (see scene_color_context). A RUN
    written before config.json kept the scene's colour profile has none (its matrices stay those of
    the as-shot white)."""
    scene = run.config.get("scene", {})
    return scene_color_context(scene.get("cam_to_srgb", torch.eye(3).tolist()),
                               scene.get("white_balance", [1.0, 1.0, 1.0]), scene.get("cam_to_xyz"),
                               scene.get("color_profile"))


def scene_color_context(cam_to_srgb, white_balance, cam_to_xyz=None, color_profile=None) -> dict:
    """apply_post's colour arguments from a scene's `cam_to_srgb` (white-balanced camera -> linear sRGB),
    as-shot gains, camera -> XYZ matrix and DNG colour profile (ColorMatrix1/2, CalibrationIlluminant1/2,
    ForwardMatrix1/2: le3d.raw.dng.color_profile_of; None for LDR scenes and old RUNs); the
    CLI and both viewers (trained RUN, live training) take them from here, so that one scene looks the
    same in each. With the profile, a white balance other than as-shot uses the colour matrices
    interpolated at that white (the DNG specification). Without a camera -> XYZ matrix (needed for
    white balance by colour temperature when there is no profile) it is approximated as
    SRGB_TO_XYZ @ cam_to_srgb @ diag(gains): exact for the as-shot white, approximate (no
    illuminant-dependent colour matrix) for others."""
    from le3d.color import SRGB_TO_XYZ
    from le3d.raw.dng import color_profile_of

    c2s = torch.as_tensor(cam_to_srgb, dtype=torch.float32).cpu()
    wb = torch.as_tensor(white_balance, dtype=torch.float32).cpu()
    if cam_to_xyz is not None:
        c2x = torch.as_tensor(cam_to_xyz, dtype=torch.float32).cpu()
    else:
        c2x = (SRGB_TO_XYZ.double() @ c2s.double() @ torch.diag(wb.double())).float()
    return {"cam_to_srgb": c2s, "asshot_wb": wb, "cam_to_xyz": c2x, "color_profile": color_profile_of(color_profile)}


def post_process(run, hdr: torch.Tensor, settings: PostSettings, depth: torch.Tensor | None = None) -> torch.Tensor:
    """Linear camera RGB [..., 3] -> display sRGB in [0, 1] with the RUN's colour pipeline."""
    ctx = color_context(run)
    return apply_post(hdr, settings, ctx["cam_to_srgb"], ctx["asshot_wb"], depth, cam_to_xyz=ctx["cam_to_xyz"],
                      color_profile=ctx["color_profile"])


def post_process_linear(run, hdr: torch.Tensor, settings: PostSettings,
                        depth: torch.Tensor | None = None) -> torch.Tensor:
    """Linear camera RGB -> white-balanced, exposed (and refocused) linear sRGB HDR (for EXR / HDR video)."""
    ctx = color_context(run)
    return apply_post_linear(hdr, settings, ctx["cam_to_srgb"], ctx["asshot_wb"], depth,
                             cam_to_xyz=ctx["cam_to_xyz"], color_profile=ctx["color_profile"])


@torch.no_grad()
def render_hdr(run, camera, *, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """(linear HDR [H,W,3], depth [H,W]) of `camera`; depth is alpha-normalised view z (0 = empty)."""
    out = run.render(camera, backend=backend)
    alpha = out.alpha
    depth = torch.where(alpha > 1e-3, out.depth / alpha.clamp_min(1e-3), torch.zeros_like(out.depth))
    return out.image, depth


@torch.no_grad()
def render_view(run, camera, settings: PostSettings | None = None, *, backend: str = "auto"):
    """Render `camera` (le3d.data.Camera) of a loaded RUN -> (hdr, srgb, depth); see the module doc."""
    settings = settings or PostSettings()
    hdr, depth = render_hdr(run, camera, backend=backend)
    return hdr, post_process(run, hdr, settings, depth), depth


def load_cameras(run, split: str = "test"):
    """Cameras of the RUN's scene ('train', 'test' or 'all'), at the resolution the RUN was trained on."""
    from pathlib import Path

    from le3d.data import load_scene
    from le3d.errors import Le3dError

    info = run.config.get("scene", {})
    path = info.get("path")
    if not path or not Path(path).exists():
        raise Le3dError(f"{run.path}/config.json: scene folder {path!r} not found (needed for cameras)")
    scene = load_scene(path, int(info.get("downscale", 1)))
    frames = {"train": scene.train, "test": scene.test, "all": scene.train + scene.test}[split]
    return [f.camera for f in frames], scene
