"""The CUDA rasterizer's kernels (csrc/cuda/rasterize_kernels.cuh) run on the CPU by a SIMT emulator
(tests/simt: a fiber per GPU thread, barriers and warp collectives wait for every thread concerned) and
held to the PyTorch reference with the CUDA tests' tolerances, on the cases the CUDA tests run. This tests
the kernels' plumbing (shared-memory batches, early exits, warp votes, the reduce-scatters and their slot
layouts, atomics, the GPU's code paths of the pixel maths) without a GPU; the GPU's own rounding, fast
exponentials and timing still need one (scripts/gpu_check.sh)."""
from __future__ import annotations

import pytest
import test_convex_raster as convex_tests
import test_raster_gaussians as gaussian_tests
import test_tile_binning as binning_tests
import torch
from raster_compare import assert_backends_agree
from scenes import camera
from simt_backend import rasterize_forward_simt, selftest, use_simt_kernels

import le3d
from convex_splat.projection import project_convexes
from le3d._ext import load_extension
from le3d.raster.constants import FOOTPRINT_CONVEX

# the projections and the CPU rasterizer the comparisons use are le3d._C's
pytestmark = pytest.mark.skipif(load_extension() is None, reason="le3d extension not built")


@pytest.fixture
def simt(monkeypatch):
    """backend="cpu" renders with the emulated CUDA kernels."""
    use_simt_kernels(monkeypatch)


# --- the emulator itself ---

SWITCHES = [False, True]  # fibers switched by x86-64 assembly (where it can) / by ucontext, the portable path


@pytest.mark.parametrize("ucontext", SWITCHES, ids=["asm", "ucontext"])
@pytest.mark.parametrize("name", ["shfl_xor", "shfl_down", "votes", "barrier_count", "exited_threads_leave_the_barrier",
                                  "dynamic_shared", "shared_memory_starts_poisoned"])
def test_emulator_collectives_return_what_the_gpu_returns(name, ucontext):
    assert selftest(name, ucontext) == (0, "")


@pytest.mark.parametrize("ucontext", SWITCHES, ids=["asm", "ucontext"])
@pytest.mark.parametrize("name,message", [("bug_lane_exits_before_shuffle", "deadlock"),
                                          ("bug_barrier_in_divergent_branch", "deadlock"),
                                          ("bug_divergent_collectives", "different collectives"),
                                          ("bug_partial_mask", "full-warp masks")])
def test_emulator_reports_what_the_gpu_leaves_undefined(name, message, ucontext):
    status, text = selftest(name, ucontext)
    assert status == 1 and message in text, text


def test_portable_fiber_switch_runs_the_kernels(monkeypatch):
    """The ucontext build (what a machine other than x86-64 runs) on a Gaussian and a convex scene."""
    use_simt_kernels(monkeypatch, ucontext=True)
    tensors, kwargs = gaussian_tests.scene(200, 4, 64, 48, seed=3)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")
    convex_tests._compare("cpu", "cpu", 6, 1)


# --- Gaussians ---

@pytest.mark.parametrize("n,C,W,H,seed", gaussian_tests.CASES)
def test_gaussian_kernels_match_reference(simt, n, C, W, H, seed):
    tensors, kwargs = gaussian_tests.scene(n, C, W, H, seed)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


@pytest.mark.parametrize("nearfar_k", [0, 1, 5, 16])
def test_gaussian_kernels_match_reference_nearfar_k(simt, nearfar_k):
    tensors, kwargs = gaussian_tests.scene(300, 3, 33, 20, seed=11, nearfar_k=nearfar_k)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


def test_gaussian_kernels_edge_cases(simt):
    tensors, kwargs = gaussian_tests.edge_case_scene()
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


def test_gaussian_kernels_zero_primitives_and_64_channels(simt):
    gaussian_tests.test_zero_primitives_render_background("cpu")  # every output asked for, each shaped [H, W]
    tensors, kwargs = gaussian_tests.scene(400, 64, 37, 21, seed=8)
    assert_backends_agree(le3d.rasterize_gaussians, tensors, kwargs, "cpu")


@pytest.mark.parametrize(**gaussian_tests.SOME_OPTIONAL_OUTPUTS)
def test_gaussian_kernels_with_some_optional_outputs(simt, distortion, nearfar_k, C):
    gaussian_tests.test_backend_matches_reference_with_some_optional_outputs("cpu", distortion, nearfar_k, C)


@pytest.mark.parametrize("loss_on", [("image",), ("alpha", "far_depth"), ("depth", "distortion", "near_depth")])
def test_gaussian_kernels_when_outputs_take_no_part_in_the_loss(simt, loss_on):
    gaussian_tests.test_backend_matches_reference_when_outputs_take_no_part_in_the_loss("cpu", loss_on)


@pytest.mark.parametrize("kind", ["expanded", "transposed", "strided"])
def test_gaussian_kernels_read_upstream_gradients_of_any_layout(simt, kind, monkeypatch):
    gaussian_tests.test_upstream_gradients_of_any_layout_are_read_in_place("cpu", kind, monkeypatch)


# --- convexes ---

@pytest.mark.parametrize("k,seed,C,grad_K", [(3, 0, 3, False), (6, 1, 3, False), (6, 1, 3, True), (8, 2, 3, False),
                                             (6, 4, 8, False), (6, 5, 19, False), (8, 8, 19, False)])
def test_convex_kernels_match_reference(simt, k, seed, C, grad_K):
    """K = 6: hulls of at most 6 edges, the backward's merged slot layout; K = 8: hulls of 7 edges, the
    full layout; C = 8 and 19: the kernels' 5..16 and 17..64 channel instances, features from global
    memory and a warp sum per channel."""
    ref = convex_tests._compare("cpu", "cpu", k, seed, C=C, grad_K=grad_K)
    assert (ref.radii > 0).sum() >= 10


@pytest.mark.parametrize("k", [6, 8])
def test_convex_kernels_over_several_batches(simt, k):
    """600 convexes on 6 tiles: lists of up to ~500 entries, so pixels composite across two shared-memory
    batches of 256 (the other convex scenes fit in one)."""
    pts, delta, sigma, opac, feats = convex_tests.random_convexes(600, k, seed=9)
    viewmat, K = camera(convex_tests.W, convex_tests.H)
    params, _, depths, bounds, _ = project_convexes(pts, delta, sigma, opac, viewmat, K, convex_tests.W, convex_tests.H)
    out = rasterize_forward_simt(params.detach().contiguous(), FOOTPRINT_CONVEX, feats, depths.detach().contiguous(),
                                 None, bounds, torch.zeros(3), convex_tests.W, convex_tests.H, 0)
    assert out[6][..., 1].max() > 256  # a pixel's last contributor is in the second batch
    convex_tests._compare("cpu", "cpu", k, 9, n=600)


@pytest.mark.parametrize("pixel_slope", [(0.02, 1.99), (2.01, 30.0)])
def test_convex_kernels_soft_and_sharp(simt, pixel_slope):
    ref = convex_tests._compare("cpu", "cpu", 6, 3, n=32, pixel_slope=pixel_slope)
    assert (ref.radii > 0).sum() >= 15 and ref.alpha.max() > 0.3


@pytest.mark.parametrize(**convex_tests.SOME_OPTIONAL_OUTPUTS)
def test_convex_kernels_with_some_optional_outputs(simt, with_coords, nearfar_k, C):
    convex_tests.test_backend_matches_reference_with_some_optional_outputs("cpu", with_coords, nearfar_k, C)


# --- binning ---

@pytest.mark.parametrize("make", [binning_tests.gaussian_inputs, binning_tests.convex_inputs], ids=["gaussian", "convex"])
@pytest.mark.parametrize("size", [(binning_tests.W, binning_tests.H), binning_tests.BIG])
def test_binning_kernels_list_what_the_cpu_lists(make, size):
    """The count / fill-keys / offsets kernels and a stable sort (cub's radix sort on the GPU) give the CPU
    binning's tile lists, in the same (depth, id) order."""
    params, depths, bounds, footprint, size = make(150, 0, size)
    n = params.shape[0]
    args = (params, footprint, torch.full((n, 1), 0.5), depths, None, bounds, torch.zeros(1), *size, 0)
    got = rasterize_forward_simt(*args)
    want = binning_tests.ext.rasterize_forward_cpu(*args)
    assert len(want[8]) > n
    assert torch.equal(got[7], want[7]) and torch.equal(got[8], want[8])
