"""Compiles gsplat's CUDA code ahead of time as the module gsplat.csrc, which gsplat imports before it
would compile itself on first use (gsplat/cuda/_backend.py). scripts/device_prebuild.sh runs it with the
device machines' Python and torch, so that a device call carries gsplat ready to run.

  python scripts/prebuild_gsplat.py OUT_DIR [BUILD_DIR]     (TORCH_CUDA_ARCH_LIST picks the GPUs)
"""
import glob
import importlib.util
import os
import shutil
import sys

from torch.utils.cpp_extension import load


def main():
    out_dir = sys.argv[1]
    build_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(out_dir, "build")
    cuda_dir = os.path.join(importlib.util.find_spec("gsplat").submodule_search_locations[0], "cuda")
    sources = (sorted(glob.glob(os.path.join(cuda_dir, "csrc", "*.cu")))
               + sorted(glob.glob(os.path.join(cuda_dir, "csrc", "*.cpp")))
               + [os.path.join(cuda_dir, "ext.cpp")])
    os.makedirs(build_dir, exist_ok=True)
    # the flags gsplat's own JIT build uses (fast math on, -O3)
    load(name="csrc", sources=sources, build_directory=build_dir, verbose=True,
         extra_cflags=["-O3", "-Wno-attributes"], extra_cuda_cflags=["-O3", "-use_fast_math"],
         extra_include_paths=[os.path.join(cuda_dir, "include"), os.path.join(cuda_dir, "csrc", "third_party", "glm")])
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(os.path.join(build_dir, "csrc.so"), os.path.join(out_dir, "csrc.so"))
    print("prebuild_gsplat: wrote", os.path.join(out_dir, "csrc.so"))


if __name__ == "__main__":
    main()
