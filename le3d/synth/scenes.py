"""Named synthetic scenes. Radiances are linear camera RGB; lamps are 100-1000x the lit surfaces."""
from __future__ import annotations

import numpy as np

from le3d.errors import Le3dError
from le3d.synth.tracer import Material, SceneDef

SCENES = ("lamps", "boxes", "night-street")


def _color(rng, lo=0.25, hi=0.9):
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def make_scene(name: str, seed: int = 0) -> SceneDef:
    """A scene by name; the seed varies colours, textures and lamp brightness (not the layout)."""
    rng = np.random.default_rng(seed)
    if name == "lamps":
        s = SceneDef(name, floor=Material((0.6, 0.55, 0.5), tile=0.2, contrast=0.8), center=(0.0, 0.0, 0.3),
                     radius=1.6, texture_seed=seed)
        s.boxes = [
            ((-0.55, -0.35, 0.25), (0.25, 0.25, 0.25), 0.4, Material(_color(rng), tile=0.09)),
            ((0.5, 0.45, 0.35), (0.2, 0.3, 0.35), -0.3, Material(_color(rng), tile=0.08)),
            ((0.45, -0.6, 0.12), (0.3, 0.15, 0.12), 1.1, Material(_color(rng), tile=0.07)),
        ]
        s.spheres = [((0.05, 0.1, 0.3), 0.3, Material(_color(rng), tile=0.06)),
                     ((-0.6, 0.6, 0.18), 0.18, Material(_color(rng), tile=0.05))]
        warm = np.array([1.0, 0.55, 0.25])
        s.lamps = [((-0.2, -0.9, 0.9), 0.06, tuple(float(v) for v in warm * rng.uniform(300, 1000))),
                   ((0.8, -0.1, 1.0), 0.05, tuple(float(v) for v in np.array([0.7, 0.8, 1.0]) * rng.uniform(100, 600)))]
        return s
    if name == "boxes":
        s = SceneDef(name, floor=Material((0.5, 0.5, 0.5), tile=0.15, contrast=0.9), center=(0.0, 0.0, 0.3),
                     radius=1.6, texture_seed=seed)
        for k in range(7):
            a = 2 * np.pi * k / 7 + rng.uniform(-0.2, 0.2)
            r = rng.uniform(0.3, 0.8)
            hz = rng.uniform(0.1, 0.35)
            s.boxes.append(((r * np.cos(a), r * np.sin(a), hz), tuple(rng.uniform(0.1, 0.22, 2)) + (hz,),
                            float(rng.uniform(0, np.pi)), Material(_color(rng), tile=float(rng.uniform(0.05, 0.1)))))
        s.lamps = [((0.0, 0.0, 1.2), 0.07, tuple(float(v) for v in np.array([1.0, 0.7, 0.4]) * rng.uniform(300, 1000)))]
        return s
    if name == "night-street":
        s = SceneDef(name, floor=Material((0.35, 0.35, 0.38), tile=0.12, contrast=0.8), center=(0.0, 0.0, 0.35),
                     radius=1.8, ambient=(0.0005, 0.0006, 0.001), texture_seed=seed)
        for side in (-1, 1):
            for k in range(4):
                x = -1.05 + 0.7 * k
                h = float(rng.uniform(0.3, 0.7))
                s.boxes.append(((x, side * 0.75, h), (0.3, 0.2, h), 0.0, Material(_color(rng, 0.2, 0.7), tile=0.07)))
        s.spheres = [((0.2, 0.0, 0.15), 0.15, Material(_color(rng), tile=0.05))]
        s.lamps = [((x, side * 0.4, 0.8), 0.04, tuple(float(v) for v in np.array([1.0, 0.6, 0.2]) * rng.uniform(300, 1000)))
                   for x, side in ((-0.7, 1), (0.0, -1), (0.7, 1))]
        return s
    raise Le3dError(f"unknown synthetic scene {name!r}; choose one of {', '.join(SCENES)}")
