"""Scene loaders: RawNeRF layout (DNG + COLMAP), COLMAP LDR, transforms.json. See ``load_scene``."""
from __future__ import annotations

from pathlib import Path

from le3d.data.types import Camera, Frame, Scene
from le3d.errors import Le3dError


def detect_layout(path: str | Path) -> str:
    """'rawnerf' | 'colmap' | 'transforms' for a scene folder (or a transforms.json file)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        return "transforms"
    if not p.is_dir():
        raise Le3dError(f"folder {p}: not found")
    if (p / "raw").is_dir() and any(q.suffix.lower() == ".dng" for q in (p / "raw").iterdir()):
        return "rawnerf"
    if any(q.suffix.lower() == ".dng" for q in p.iterdir()) and (p / "sparse").is_dir():
        return "rawnerf"
    if (p / "transforms.json").is_file():
        return "transforms"
    if (p / "images").is_dir() and ((p / "sparse" / "0").is_dir() or (p / "sparse").is_dir()):
        return "colmap"
    raise Le3dError(f"folder {p}: not a scene (expected raw/*.dng + sparse/0, images/ + sparse/0, "
                    "or transforms.json)")


def load_scene(path: str | Path, downscale: int = 1, split: str = "auto", bayer: str = "packed") -> Scene:
    """Load any supported scene. ``split``: 'auto' (the scene's explicit test list, else every 8th
    frame), 'every8', or 'all' (no test frames). ``bayer`` (RAW scenes): 'packed' half-resolution RGB
    or 'mosaic' (full resolution with ``Frame.mask``)."""
    kind = detect_layout(path)
    if kind == "rawnerf":
        from le3d.data.rawnerf import load_rawnerf

        return load_rawnerf(path, downscale, split, bayer)
    if kind == "colmap":
        from le3d.data.rawnerf import load_colmap_ldr

        return load_colmap_ldr(path, downscale, split)
    from le3d.data.transforms import load_transforms

    return load_transforms(path, downscale, split)


__all__ = ["Camera", "Frame", "Scene", "load_scene", "detect_layout"]
