"""The training loop: initialise, optimise, densify, checkpoint, resume, stop cleanly on Ctrl-C.

RUN folder (see le3d.run): config.json, model.safetensors, state.json, checkpoints/ckpt_NNNNNNN.{safetensors,json}.
Determinism: all randomness (view order, S3IM permutations, splits, init) comes from one torch.Generator
whose state is checkpointed, so `--resume` continues bit-for-bit on the same backend.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time
from pathlib import Path

import torch

from le3d.errors import Le3dError
from le3d.init import initial_points, knn_scales
from le3d.losses import l1_loss, l2_loss, rawnerf_l2, s3im_loss, ssim
from le3d.losses.regularizers import alpha_loss, distortion_loss, nearfar_loss
from le3d.model import ExposureGains, GaussianModel
from le3d.train.checkpoint import load_json, load_tensors, save_json, save_tensors
from le3d.train.config import TrainConfig
from le3d.train.densify import extent_from_cameras, make_densifier
from le3d.train.optim import build_optimizer, update_lr


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise Le3dError("config device 'cuda': no CUDA device is available (use --device cpu)")
    return torch.device(cfg.device)


def scene_depth_range(scene, points: torch.Tensor) -> tuple[float, float]:
    """(near, far) of the scene: 1st / 99th percentile of point depths in front of the training cameras."""
    from le3d.init.cone import project_points

    if len(points) == 0:
        return 0.1, 100.0
    pts = points[torch.linspace(0, len(points) - 1, min(len(points), 20000)).long()]
    _, _, z = project_points(pts, [f.camera for f in scene.train])
    z = z[z > 1e-4]
    if z.numel() == 0:
        return 0.1, 100.0
    near = float(torch.quantile(z, 0.01)) * 0.8
    far = float(torch.quantile(z, 0.99)) * 1.2
    return max(near, 1e-3), max(far, near * 1.5)


def create_model(cfg: TrainConfig):
    if cfg.primitive == "gaussian":
        return GaussianModel(color_mode=cfg.color_mode, feature_dim=cfg.feature_dim, mlp_hidden=cfg.mlp_hidden,
                             mlp_layers=cfg.mlp_layers, dir_degree=cfg.dir_degree, sh_degree=cfg.sh_degree)
    if cfg.primitive == "convex":
        try:
            from le3d.model.convexes import ConvexModel
        except Exception as exc:  # noqa: BLE001
            raise Le3dError(f"--primitive convex: convex primitives not available ({exc})") from None
        if not 3 <= cfg.convex_points <= 8:
            raise Le3dError(f"config convex_points {cfg.convex_points}: expected 3 to 8 points per convex")
        return ConvexModel(color_mode=cfg.color_mode, feature_dim=cfg.feature_dim, mlp_hidden=cfg.mlp_hidden,
                           mlp_layers=cfg.mlp_layers, dir_degree=cfg.dir_degree, sh_degree=cfg.sh_degree,
                           k=cfg.convex_points, radius_scale=cfg.convex_radius_scale)
    raise Le3dError(f"config primitive {cfg.primitive!r}: expected 'gaussian' or 'convex'")


class _Interrupt:
    """SIGINT sets a flag; the loop finishes its step, checkpoints and exits."""

    def __init__(self):
        self.flag = False
        self.old = None

    def __enter__(self):
        try:
            self.old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self.old = None
        return self

    def _handler(self, signum, frame):
        if self.flag:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


class Trainer:
    def __init__(self, scene, cfg: TrainConfig, out: str | Path, seed: int = 0, scene_info: dict | None = None,
                 progress: bool = True):
        self.scene, self.cfg, self.out, self.seed = scene, cfg, Path(out), seed
        self.scene_info = scene_info or {}
        self.progress = progress
        self.device = pick_device(cfg)
        if not scene.train:
            raise Le3dError(f"scene {scene.root or scene.name}: no training views")
        self.gen = torch.Generator().manual_seed(seed)
        self.frames = scene.train
        self.images = [f.image.float().to(self.device) for f in self.frames]
        self.masks = [None if f.mask is None else f.mask.to(self.device) for f in self.frames]
        self.extent = extent_from_cameras([f.camera for f in self.frames])
        self.iteration = 0
        self.bad_steps = 0
        self.train_seconds = 0.0
        self.perm = torch.zeros(0, dtype=torch.long)
        self.perm_pos = 0
        self.last_loss = float("nan")
        self.last_psnr = float("nan")
        self.live = None  # viewer.live.LiveViewer when training with --viewer

    # ---- setup ---------------------------------------------------------------------------------
    def initialise(self):
        cfg = self.cfg
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        if self.progress:  # cone scatter can take tens of seconds on full-size views: say what runs
            what = "cone scatter" + (" carved by the SfM points" if cfg.cone_carve else "") if cfg.cone_init else "SfM points"
            print(f"le3d train: initialising from {what} ({len(self.frames)} views)...", flush=True)
        pts, cols, scattered = initial_points(self.scene, cone=cfg.cone_init, cone_factor=cfg.cone_factor,
                                      min_views=cfg.cone_min_views, generator=self.gen,
                                              carve=cfg.cone_carve)
        if len(pts) == 0:
            raise Le3dError(f"scene {self.scene.root or self.scene.name}: no SfM points and no cone-scatter points")
        if len(pts) > cfg.max_init_points:  # keep SfM points first, fill the rest with scattered ones
            sfm, extra = (~scattered).nonzero().squeeze(1), scattered.nonzero().squeeze(1)
            sfm = sfm[torch.randperm(len(sfm), generator=self.gen)[: cfg.max_init_points]]
            room = cfg.max_init_points - len(sfm)
            extra = extra[torch.randperm(len(extra), generator=self.gen)[:room]]
            sel = torch.cat([sfm, extra]).sort().values
            pts, cols, scattered = pts[sel], cols[sel], scattered[sel]
        self.depth_range = scene_depth_range(self.scene, self.scene.points.float().reshape(-1, 3)
                                             if len(self.scene.points) else pts)
        model = create_model(cfg)
        scales = knn_scales(pts, 3)
        # far cone points are sparse: their 3-NN distances would make screen-filling Gaussians
        from le3d.init.cone import world_per_pixel

        wpp = world_per_pixel(pts, [f.camera for f in self.frames])
        cap = torch.where(torch.isfinite(wpp), wpp * cfg.max_init_footprint, scales)
        scales = torch.minimum(scales, cap)
        model.init_from_points(pts, cols, scales, cfg.init_opacity, generator=self.gen)
        self.model = model.to(self.device)
        exposures = [float(f.exposure) for f in self.frames]
        self.gains = ExposureGains(exposures).to(self.device) if cfg.exposure_gains else None
        self._build_optim()
        if self.progress:
            print(f"le3d train: {model.num_primitives} initial primitives ({int((~scattered).sum())} from SfM) "
                  f"in {time.perf_counter() - t0:.1f} s", flush=True)

    def _build_optim(self):
        tensors = self.model.param_tensors()
        if self.gains is not None:
            tensors["gains"] = self.gains.log_gains
        self.opt = build_optimizer(tensors, self.cfg, self.extent)
        self.densifier = make_densifier(self.model, self.cfg, self.extent, len(self.frames))

    # ---- one step ------------------------------------------------------------------------------
    def _next_view(self) -> int:
        if self.perm_pos >= len(self.perm):
            self.perm = torch.randperm(len(self.frames), generator=self.gen)
            self.perm_pos = 0
        i = int(self.perm[self.perm_pos])
        self.perm_pos += 1
        return i

    def step(self, it: int) -> bool:
        cfg, model = self.cfg, self.model
        if cfg.color_mode == "sh":
            model.active_sh_degree = min(cfg.sh_degree, (it - 1) // max(cfg.sh_degree_interval, 1))
        i = self._next_view()
        frame, target, mask = self.frames[i], self.images[i], self.masks[i]
        cam = frame.camera
        use_dist = cfg.distortion_weight > 0 and it >= cfg.distortion_from
        use_nf = cfg.nearfar_weight > 0 and it >= cfg.nearfar_from
        bg = torch.full((3,), cfg.background, device=self.device)
        out = model.render(cam, background=bg, backend=cfg.backend,
                           disparity_range=self.depth_range if use_dist else None,
                           nearfar_k=cfg.nearfar_k if use_nf else 0)
        out.means2d.retain_grad()
        scale = float(frame.exposure)
        pred = out.image * scale
        if self.gains is not None:
            pred = pred * self.gains.gain(frame.exposure)
        if cfg.recon == "rawnerf":
            loss = rawnerf_l2(pred, target, mask, cfg.rawnerf_eps)
        elif cfg.recon == "l2":
            loss = l2_loss(pred, target, mask)
        elif cfg.recon == "l1":
            loss = l1_loss(pred, target, mask)
        else:
            raise Le3dError(f"config recon {cfg.recon!r}: expected rawnerf, l2 or l1")
        terms = {"recon": loss.detach()}
        if cfg.s3im_weight > 0 or cfg.ssim_weight > 0:
            # structural terms on a per-view normalised scale (dark RAW values are ~1e-3)
            measured = target.reshape(-1) if mask is None else target[mask]  # mosaic: not the unmeasured zeros
            norm = 1.0 / max(float(torch.quantile(measured[:: max(1, measured.numel() // 100000)].float(),
                                                  0.99)), 1e-6)
            norm = min(norm, 1e6) if self.scene.kind == "raw" else 1.0
            pn, tn = (pred * norm).clamp(0, 1), (target * norm).clamp(0, 1)
            if mask is not None:  # unmeasured values (Bayer mosaic) carry no data: take the target's there
                pn = torch.where(mask, pn, tn)
            if cfg.s3im_weight > 0:
                s = s3im_loss(pn, tn, self.gen, cfg.s3im_pixels, cfg.s3im_repeats, cfg.s3im_patch_height)
                loss = loss + cfg.s3im_weight * s
                terms["s3im"] = s.detach()
            if cfg.ssim_weight > 0:
                s = 1 - ssim(pn, tn, padding=True)
                loss = (1 - cfg.ssim_weight) * loss + cfg.ssim_weight * s
                terms["dssim"] = s.detach()
        if use_dist and out.distortion is not None:
            d = distortion_loss(out.distortion)
            loss = loss + cfg.distortion_weight * d
            terms["dist"] = d.detach()
        if use_nf and out.near_depth is not None:
            nf = nearfar_loss(out.near_depth, out.far_depth, out.alpha.detach())
            loss = loss + cfg.nearfar_weight * nf
            terms["nearfar"] = nf.detach()
        if cfg.alpha_weight > 0:
            loss = loss + cfg.alpha_weight * alpha_loss(out.alpha)
        if not torch.isfinite(loss):
            return self._bad_step(it, "loss")
        loss.backward()
        for g in self.opt.param_groups:
            p = g["params"][0]
            if p.grad is not None and not torch.isfinite(p.grad).all():
                return self._bad_step(it, f"gradient of {g['name']}")
        self.densifier.update(out, cam.width, cam.height)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.bad_steps = 0
        update_lr(self.opt, cfg, it, self.extent)
        info = self.densifier.step(model, self.opt, it, self.gen)
        del info
        with torch.no_grad():
            mse = l2_loss(pred.detach().clamp(0, 1), target.clamp(0, 1), mask).item()  # measured values only
        self.last_loss = float(loss.detach())
        self.last_psnr = -10 * math.log10(max(mse, 1e-20))
        return True

    def _bad_step(self, it: int, what: str) -> bool:
        self.opt.zero_grad(set_to_none=True)
        self.bad_steps += 1
        print(f"le3d train: iteration {it}: non-finite {what}; step skipped ({self.bad_steps} in a row)")
        if self.bad_steps >= self.cfg.max_bad_steps:
            raise Le3dError(f"training {self.out}: {self.bad_steps} consecutive steps with non-finite {what} "
                            f"(iteration {it}); check the scene's images and the learning rates")
        return False

    # ---- checkpoints ---------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        t = {f"model.{k}": v for k, v in self.model.state_tensors().items()}
        if self.gains is not None:
            t["gains.log_gains"] = self.gains.log_gains.detach()
        return t

    def save_model(self):
        meta = {"iteration": self.iteration, "num_primitives": self.model.num_primitives}
        save_tensors(self.out / "model.safetensors", self._tensors(), meta)

    def save_checkpoint(self, status: str):
        ck = self.out / "checkpoints"
        name = f"ckpt_{self.iteration:07d}"
        t = self._tensors()
        for g in self.opt.param_groups:
            st = self.opt.state.get(g["params"][0])
            if st:
                t[f"opt.{g['name']}.exp_avg"] = st["exp_avg"]
                t[f"opt.{g['name']}.exp_avg_sq"] = st["exp_avg_sq"]
                t[f"opt.{g['name']}.step"] = torch.as_tensor(st["step"]).reshape(1).float()
        for k, v in self.densifier.state_tensors().items():
            t[f"densify.{k}"] = v
        t["rng.state"] = self.gen.get_state()
        t["rng.perm"] = self.perm
        if self.device.type == "cuda":
            t["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        save_tensors(ck / f"{name}.safetensors", t)
        save_json(ck / f"{name}.json", {
            "iteration": self.iteration, "perm_pos": self.perm_pos, "bad_steps": self.bad_steps,
            "train_seconds": self.train_seconds, "depth_range": list(self.depth_range),
            "lrs": {g["name"]: g["lr"] for g in self.opt.param_groups}})
        self.save_model()
        self.write_state(status, name)
        old = sorted(ck.glob("ckpt_*.safetensors"))[: -max(self.cfg.keep_checkpoints, 1)]
        for f in old:
            f.unlink(missing_ok=True)
            f.with_suffix(".json").unlink(missing_ok=True)

    def write_state(self, status: str, checkpoint: str | None = None):
        save_json(self.out / "state.json", {
            "status": status, "iteration": self.iteration, "iters": self.cfg.iters,
            "train_seconds": round(self.train_seconds, 3), "num_primitives": self.model.num_primitives,
            "last_checkpoint": checkpoint, "device": str(self.device), "seed": self.seed,
            "loss": self.last_loss, "psnr": self.last_psnr})

    def write_config(self):
        from le3d.run import run_config

        save_json(self.out / "config.json", run_config(self))

    def load_checkpoint(self):
        state = load_json(self.out / "state.json")
        name = state.get("last_checkpoint")
        if not name:
            raise Le3dError(f"run {self.out}: no checkpoint to resume from")
        ck = self.out / "checkpoints"
        meta = load_json(ck / f"{name}.json")
        t = load_tensors(ck / f"{name}.safetensors")
        self.model = create_model(self.cfg)
        self.model.load_state_tensors({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        self.model.to(self.device)
        exposures = [float(f.exposure) for f in self.frames]
        self.gains = None
        if self.cfg.exposure_gains:
            self.gains = ExposureGains(exposures).to(self.device)
            with torch.no_grad():
                self.gains.log_gains.copy_(t["gains.log_gains"])
        self.depth_range = tuple(meta["depth_range"])
        self._build_optim()
        for g in self.opt.param_groups:
            k = f"opt.{g['name']}"
            if f"{k}.exp_avg" in t:
                self.opt.state[g["params"][0]] = {
                    "step": t[f"{k}.step"].reshape(()).clone(),
                    "exp_avg": t[f"{k}.exp_avg"].to(self.device).clone(),
                    "exp_avg_sq": t[f"{k}.exp_avg_sq"].to(self.device).clone()}
            g["lr"] = meta["lrs"].get(g["name"], g["lr"])
        self.densifier.load_state_tensors({k[8:]: v.to(self.device) for k, v in t.items() if k.startswith("densify.")})
        self.gen.set_state(t["rng.state"])
        self.perm = t["rng.perm"].long()
        if "rng.cuda" in t and self.device.type == "cuda":
            torch.cuda.set_rng_state(t["rng.cuda"], self.device)
        self.iteration = int(meta["iteration"])
        self.perm_pos = int(meta["perm_pos"])
        self.bad_steps = int(meta["bad_steps"])
        self.train_seconds = float(meta["train_seconds"])

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> str:
        """Train to cfg.iters. Returns 'finished' or 'interrupted' (after saving a checkpoint); `stop_after`
        interrupts at that iteration as Ctrl-C would (tests)."""
        cfg = self.cfg
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.iters, initial=self.iteration, desc="train", unit="it", dynamic_ncols=True)
        status = "finished"
        stepping = torn = False
        with _Interrupt() as intr:
            try:
                while self.iteration < cfg.iters:
                    if self.live is not None:  # a browser paused training (le3d train --viewer)
                        self.live.wait_if_paused(should_stop=lambda: intr.flag)
                        if intr.flag:
                            status = "interrupted"
                            break
                    t0 = time.perf_counter()
                    it = self.iteration + 1
                    stepping = True
                    with self.live.lock if self.live is not None else contextlib.nullcontext():
                        self.step(it)  # the live viewer renders under the same lock, never mid-step
                    self.iteration = it
                    stepping = False
                    self.train_seconds += time.perf_counter() - t0
                    if self.live is not None:
                        self.live.update(iteration=it, iters=cfg.iters, loss=self.last_loss, psnr=self.last_psnr)
                    if bar is not None:
                        bar.update(1)
                        if it % cfg.log_every == 0 or it == cfg.iters:
                            bar.set_postfix(loss=f"{self.last_loss:.4g}", psnr=f"{self.last_psnr:.2f}",
                                            n=self.model.num_primitives)
                    if intr.flag or (stop_after is not None and it >= stop_after and it < cfg.iters):
                        status = "interrupted"
                        break
                    if cfg.checkpoint_every > 0 and it % cfg.checkpoint_every == 0 and it < cfg.iters:
                        self.save_checkpoint("running")
            except KeyboardInterrupt:
                status = "interrupted"
                torn = stepping
            finally:
                if bar is not None:
                    bar.close()
            if torn and (self.out / "state.json").is_file():
                # a second Ctrl-C stopped a step half-way (parameters, optimiser, RNG already advanced):
                # saving that would resume from a state no run went through; keep the last checkpoint
                state = load_json(self.out / "state.json")
                save_json(self.out / "state.json", {**state, "status": "interrupted"})
                self.iteration = int(state.get("iteration", 0))
            else:
                self.save_checkpoint(status)
        return status


def train(scene, cfg: TrainConfig, out, seed: int = 0, scene_info: dict | None = None, resume: bool = False,
          progress: bool = True, stop_after: int | None = None, viewer: tuple[str, int] | None = None) -> Trainer:
    """Train `scene` into the RUN folder `out` (Python API of `le3d train`).

    viewer=(host, port) serves the live model in the browser viewer while training."""
    out = Path(out)
    pick_device(cfg)  # a missing GPU is an error before the RUN folder exists
    out.mkdir(parents=True, exist_ok=True)
    tr = Trainer(scene, cfg, out, seed, scene_info, progress)
    if resume:
        tr.load_checkpoint()
        tr.write_config()  # the resumed run's iters / device (--iters, --device) are now the RUN's
    else:
        tr.initialise()
        tr.write_config()
        tr.write_state("running")
    if viewer is not None:
        from viewer.live import start_live_viewer

        tr.live = start_live_viewer(tr, host=viewer[0], port=viewer[1])
    try:
        tr.status = tr.run(stop_after)
    finally:
        if tr.live is not None:
            tr.live.stop()
    return tr
