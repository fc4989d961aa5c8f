"""autosample_ext: implicit-feedback recommenders with automatically selected negative samplers."""
from __future__ import annotations

import torch  # noqa: F401  (loads libc10 / libtorch before the extension)

from autosample_ext import _C  # noqa: F401  (registers torch.ops.autosample.*)
from autosample_ext import ops

__version__: str = _C.__version__


def cuda_compiled() -> bool:
    """True when the installed extension was built with its CUDA kernels."""
    return bool(_C.cuda_compiled)


def build_info() -> dict[str, object]:
    """Facts about the compiled extension: version, CUDA kernels, CUDA architectures."""
    return {
        "version": _C.__version__,
        "cuda_compiled": bool(_C.cuda_compiled),
        "cuda_arch_list": _C.cuda_arch_list,
    }


__all__ = ["ops", "cuda_compiled", "build_info", "__version__"]
