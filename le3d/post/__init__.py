"""le3d.post: exposure, white balance, colour matrix, tone mapping, refocus (pure torch)."""
from le3d.post.exposure import apply_exposure, auto_exposure_ev
from le3d.post.pipeline import PostSettings, apply_post, apply_post_linear
from le3d.post.refocus import coc_radius, disc_blur, focus_depth_at, refocus
from le3d.post.tonemap import TONEMAPPERS, tonemap, tonemap_to_srgb
from le3d.post.transfer import hlg_inverse_oetf, hlg_oetf, pq_eotf, pq_oetf
from le3d.post.white_balance import cam_to_xyz_from_color_matrix, pick_neutral, white_balance_matrix

__all__ = [
    "apply_exposure", "auto_exposure_ev", "PostSettings", "apply_post", "apply_post_linear", "coc_radius",
    "disc_blur", "focus_depth_at", "refocus", "TONEMAPPERS", "tonemap", "tonemap_to_srgb", "pq_oetf",
    "pq_eotf", "hlg_oetf", "hlg_inverse_oetf", "cam_to_xyz_from_color_matrix", "pick_neutral",
    "white_balance_matrix",
]
