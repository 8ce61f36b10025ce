"""Smooth 3D convex primitives (3D Convex Splatting) on le3d's tile rasterizer.

The primitive (hull of K projected points, unit-normal smooth max, exact screen bound) is defined in
convex_splat/projection.py; its per-pixel math is csrc/include/le3d/footprint_convex.h.

Trainer interface (`le3d train --primitive convex`):

    cs = ConvexSet.from_points(xyz, colors, k=6)          # or features from a colour MLP
    opt = torch.optim.Adam([{"params": [cs.points], "lr": ...}, ...])
    dens = ConvexDensifier(grad_threshold=2e-4, start=500, stop=15000, max_count=...)
    for it in range(steps):
        out = cs.render(viewmat, K, W, H, features=None, background=bg, distortion_coord=u, nearfar_k=k)
        loss = ...; opt.zero_grad(); loss.backward(); opt.step()
        dens.update(out)                                   # reads out.means2d.grad
        dens.step(cs, opt, it)                             # split / prune / opacity reset, Adam rows kept
Per-primitive tensors that the trainer owns must be registered with `cs.add_per_primitive(name, t)`
so that densification splits and prunes them with the convexes (then use `getattr(cs, name)`).
"""
from convex_splat.densify import ConvexDensifier
from convex_splat.losses import ldr_loss
from convex_splat.model import ConvexSet
from convex_splat.rasterize import rasterize_convexes

__all__ = ["rasterize_convexes", "ConvexSet", "ConvexDensifier", "ldr_loss"]
