"""Builds le3d._C from csrc/: the C++ CPU backend always, the CUDA backend when asked for.

LE3D_BUILD_CUDA=auto (default): build CUDA kernels only when torch sees a GPU and nvcc is found.
LE3D_BUILD_CUDA=1: build them headless (set TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0"), failing loudly.
LE3D_BUILD_CUDA=0: CPU backend only.
"""
import importlib.util
import os

from setuptools import setup


def _ext_modules():
    # le3d/_build.py is loaded by path so that building never imports the package itself.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "le3d", "_build.py")
    module_spec = importlib.util.spec_from_file_location("le3d_build", path)
    build = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(build)

    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:  # torch missing in an isolated build: package still installs, JIT later
        print("le3d: torch not importable at build time; the extension will be built on first use")
        return [], {}
    root = os.path.dirname(os.path.abspath(__file__))
    spec = build.extension_spec(root=root)
    kind = CUDAExtension if spec["with_cuda"] else CppExtension
    ext = kind(
        name="le3d._C",
        sources=[os.path.relpath(src, root) for src in spec["sources"]],  # setuptools wants relative
        include_dirs=spec["include_dirs"],
        extra_compile_args={"cxx": spec["cxx_flags"], "nvcc": spec["nvcc_flags"]},
        extra_link_args=spec["link_flags"],
        define_macros=[(m, None) for m in spec["defines"]],
    )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = ([], {}) if os.environ.get("LE3D_NO_EXTENSION") == "1" else _ext_modules()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
