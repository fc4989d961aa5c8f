"""Build of the autosample_ext._C extension.

CUDA sources are compiled when
  * AUTOSAMPLE_WITH_CUDA=1 (a missing CUDA toolkit is then an error), or
  * AUTOSAMPLE_WITH_CUDA is unset and both the installed torch is a CUDA build and a CUDA
    toolkit is found (CUDA_HOME).
AUTOSAMPLE_WITH_CUDA=0 forces a CPU-only build. torch.cuda.is_available() is never consulted:
wheel builders have no GPU. TORCH_CUDA_ARCH_LIST chooses the architectures (default 8.0;9.0).

Build time: the sources include ATen/core/Tensor.h + per-operator ATen/ops/*.h and
torch/library.h rather than torch/extension.h / ATen/ATen.h, the module is made with the Python
C API (no pybind11), and debug info is off (-g0: Python's own CFLAGS carry -g, which doubled
the time of every file). Files compile in parallel (ninja; MAX_JOBS caps the jobs).
-ffp-contract=off: no fused multiply-adds in the CPU kernels, whatever -march a host adds, so
their dot products keep the CUDA kernels' bits (csrc/include/autosample/dot.h).
-fno-math-errno: sqrt need not set errno, so loops with a square root vectorise (the fused
training step's AdaGrad / Adam rows); results are unchanged (sqrt is exact either way).
"""
from __future__ import annotations

import glob
import os
import sysconfig
from pathlib import Path

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = Path(__file__).parent.resolve()
VERSION = "0.1.0"
DEFAULT_CUDA_ARCHS = "8.0;9.0"


def want_cuda() -> bool:
    flag = os.environ.get("AUTOSAMPLE_WITH_CUDA", "").strip()
    if flag == "0":
        return False
    if flag == "1":
        if cpp_extension.CUDA_HOME is None:
            raise RuntimeError(
                "AUTOSAMPLE_WITH_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME to the "
                "toolkit root (the folder above nvcc's bin/)."
            )
        if torch.version.cuda is None:
            raise RuntimeError(
                f"AUTOSAMPLE_WITH_CUDA=1 but the installed torch {torch.__version__} is a CPU build."
            )
        return True
    if flag:
        raise RuntimeError(f"AUTOSAMPLE_WITH_CUDA must be 0 or 1, got {flag!r}")
    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def extra_cuda_include_dirs() -> list[str]:
    """Headers of CUDA libraries shipped as pip wheels (cuBLAS, cuSPARSE, ... under nvidia/)."""
    site = Path(sysconfig.get_paths()["purelib"])
    return sorted(str(p) for p in site.glob("nvidia/*/include") if p.is_dir())


def make_extension():
    with_cuda = want_cuda()
    sources = ["csrc/ops.cpp"] + sorted(glob.glob("csrc/cpu/*.cpp"))
    cxx_flags = ["-O3", "-g0", "-ffp-contract=off", "-fno-math-errno",
                 f'-DAUTOSAMPLE_VERSION="{VERSION}"']
    include_dirs = [str(ROOT / "csrc" / "include")]
    kwargs = {}
    if with_cuda:
        archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        defines = ["-DAUTOSAMPLE_WITH_CUDA", f'-DAUTOSAMPLE_CUDA_ARCHS="{archs}"']
        cxx_flags += defines
        include_dirs += extra_cuda_include_dirs()
        kwargs["extra_compile_args"] = {
            "cxx": cxx_flags,
            "nvcc": ["-O3", "--expt-relaxed-constexpr", "-lineinfo"] + defines,
        }
        ext_cls = cpp_extension.CUDAExtension
    else:
        kwargs["extra_compile_args"] = {"cxx": cxx_flags}
        ext_cls = cpp_extension.CppExtension
    cxx = kwargs["extra_compile_args"]["cxx"]
    if not any(f.startswith("-fopenmp") for f in cxx):
        cxx.append("-fopenmp")
    return ext_cls(
        name="autosample_ext._C",
        sources=sources,
        include_dirs=include_dirs,
        extra_link_args=["-fopenmp"],
        **kwargs,
    )


setup(
    version=VERSION,
    ext_modules=[make_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
