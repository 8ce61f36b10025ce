"""Instructions in the rasterizer kernels' per-pair loops, from their SASS: what a change to the per-pixel
code costs on the GPU, measured without one.

  python scripts/sass_loops.py                 # compiles csrc/cuda/rasterize_cuda.cu for sm_90 (about a minute)
  python scripts/sass_loops.py --arch sm_80
  python scripts/sass_loops.py --sass old.sass # count a saved listing (written by --save) instead
  python scripts/sass_loops.py --gsplat        # also gsplat 1.5's rasterize_to_pixels kernels, built as
                                               # gsplat builds them (-O3 -use_fast_math), CDIM 3 and 4

For each forward/backward kernel (footprint, channel bound C, distortion on/off) it prints the size of
the smallest loop around the footprint's exponential, which is the loop over a tile's primitives, with its
MUFU (exp/log/reciprocal), SHFL, local-memory (spill) and CALL (the IEEE division routine) instructions,
and ptxas's registers and spills. The count is static: every branch and edge counted once; a time needs a GPU.
Needs nvcc (CUDA_HOME or PATH) and cuobjdump (the toolkit's, or the copy in triton's wheel).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_dir(name: str) -> str | None:
    """Where an installed package's files are, without importing it."""
    spec = importlib.util.find_spec(name)
    return spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None


def find_tool(name: str) -> str:
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    candidates = [os.path.join(cuda_home, "bin", name), shutil.which(name) or ""]
    triton = package_dir("triton")
    if triton:
        candidates.append(os.path.join(triton, "backends", "nvidia", "bin", name))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    sys.exit(f"sass_loops: {name} not found (set CUDA_HOME, or install triton for its cuobjdump)")


def compile_sass(source: str, arch: str, std: str, includes=(), flags=()) -> tuple[str, str]:
    """(SASS listing, ptxas report) of one .cu file, with torch's and Python's headers."""
    import torch.utils.cpp_extension as ext

    paths = [*includes, *ext.include_paths(device_type="cuda"), sysconfig.get_paths()["include"]]
    paths += glob.glob(os.path.join(os.path.dirname(os.path.dirname(ext.__file__)), "..", "nvidia", "cu*", "include"))
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "kernels.o")
        cmd = [find_tool("nvcc"), "-O3", *flags, f"-std={std}", f"-arch={arch}", "-Xptxas", "-v", "-c", source,
               "-o", obj, "-DTORCH_EXTENSION_NAME=_C", "-D_GLIBCXX_USE_CXX11_ABI=1", *[f"-I{p}" for p in paths]]
        built = subprocess.run(cmd, capture_output=True, text=True)
        if built.returncode:
            sys.exit(built.stderr[-4000:])
        sass = subprocess.run([find_tool("cuobjdump"), "-sass", obj], capture_output=True, text=True, check=True)
        return sass.stdout, built.stderr


def gsplat_sass(arch: str, std: str) -> tuple[str, str]:
    """gsplat's 3DGS rasterize_to_pixels forward and backward, as its JIT build compiles them."""
    gsplat = package_dir("gsplat")
    if gsplat is None:
        sys.exit("sass_loops: --gsplat needs gsplat installed")
    cuda = os.path.join(gsplat, "cuda")
    listing, report = "", ""
    for name in ("RasterizeToPixels3DGSFwd", "RasterizeToPixels3DGSBwd"):
        got = compile_sass(os.path.join(cuda, "csrc", f"{name}.cu"), arch, std,
                           includes=[os.path.join(cuda, "include"), os.path.join(cuda, "csrc", "third_party", "glm")],
                           flags=["-use_fast_math"])
        listing, report = listing + got[0], report + got[1]
    return listing, report


KERNEL = re.compile(r"(forward|backward)_kernelINS_\d+(\w+?)FootprintELi(\d+)ELb([01])")
GSPLAT_KERNEL = re.compile(r"rasterize_to_pixels_3dgs_(fwd|bwd)_kernelILj([34])Ef")


def kernel_label(name: str) -> str | None:
    m = KERNEL.search(name)
    if m:
        return f"{m.group(1):8s} {m.group(2):8s} C<={m.group(3):2s} distortion {m.group(4)}"
    m = GSPLAT_KERNEL.search(name)
    if m:
        return f"{'forward' if m.group(1) == 'fwd' else 'backward':8s} gsplat   CDIM={m.group(2)}"
    return None


def loop_counts(listing: str) -> dict[str, Counter]:
    """label -> opcode counts of the per-pair loop."""
    out = {}
    for function in re.split(r"\n\s+Function : ", listing)[1:]:
        label = kernel_label(function.split("\n")[0])
        if label is None:
            continue
        code = [(int(a, 16), op) for a, op in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", function)]
        exps = [a for a, op in code if "MUFU.EX2" in op]
        loops = []
        for a, op in code:
            target = re.search(r"BRA (?:!?U?P\d, )?0x([0-9a-f]+)", op)
            if target and int(target.group(1), 16) < a:
                loops.append((int(target.group(1), 16), a))
        loops = [lp for lp in loops if any(lp[0] <= e <= lp[1] for e in exps)]
        if not loops:
            continue
        lo, hi = min(loops, key=lambda lp: lp[1] - lp[0])
        ops = Counter(re.sub(r"^@!?U?P\w+\s+", "", op).split()[0].split(".")[0] for a, op in code if lo <= a <= hi)
        out[label] = ops
    return out


def ptxas_lines(report: str) -> dict[str, str]:
    """label -> 'R registers, spills S/L B' from ptxas -v."""
    out, label = {}, None
    for line in report.splitlines():  # per kernel: its name, then its spills, then its registers
        if "Compiling entry function" in line:
            label = kernel_label(line)
        elif label and "spill" in line:
            st, ld = re.findall(r"(\d+) bytes spill", line)
            out[label] = f"spills {st}/{ld} B"
        elif label and "Used" in line:
            regs = re.search(r"Used (\d+) registers", line)
            out[label] = f"{regs.group(1) if regs else '?'} registers, " + out.get(label, "")
            label = None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--std", default="c++20", help="C++ standard (torch 2.13+ headers need c++20, older c++17)")
    ap.add_argument("--sass", help="count this saved cuobjdump listing instead of compiling")
    ap.add_argument("--save", help="write the compiled listing here")
    ap.add_argument("--gsplat", action="store_true", help="also count gsplat 1.5's kernels (RGB+ED is CDIM=4)")
    args = ap.parse_args()
    if args.sass:
        listing, report = open(args.sass).read(), ""
    else:
        listing, report = compile_sass(os.path.join(ROOT, "csrc", "cuda", "rasterize_cuda.cu"), args.arch, args.std,
                                       includes=[os.path.join(ROOT, "csrc", "include")])
        if args.gsplat:
            theirs = gsplat_sass(args.arch, args.std)
            listing, report = listing + theirs[0], report + theirs[1]
        if args.save:
            with open(args.save, "w") as f:
                f.write(listing)
    regs = ptxas_lines(report)
    print(f"{'kernel':40s} {'loop':>5s} {'MUFU':>5s} {'SHFL':>5s} {'LDL/STL':>7s} {'CALL':>5s}  ptxas")
    for label, ops in sorted(loop_counts(listing).items()):
        print(f"{label:40s} {sum(ops.values()):5d} {ops['MUFU']:5d} {ops['SHFL']:5d} "
              f"{ops['LDL'] + ops['STL']:7d} {ops['CALL']:5d}  {regs.get(label, '')}")


if __name__ == "__main__":
    main()
