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


# The Python API, importable from the package root. Loaded on first use, so that importing the
# package (and the operators) does not import pandas, scipy or matplotlib.
_LAZY: dict[str, str] = {
    "load": "autosample_ext.data",
    "default_dataset": "autosample_ext.data",
    "InteractionData": "autosample_ext.data",
    "build_model": "autosample_ext.models",
    "build_sampler": "autosample_ext.samplers",
    "TrainConfig": "autosample_ext.training",
    "TrainResult": "autosample_ext.training",
    "Trainer": "autosample_ext.training",
    "SamplerObjective": "autosample_ext.training",
    "StopFlag": "autosample_ext.training",
    "TrainingInterrupted": "autosample_ext.training",
    "evaluate_model": "autosample_ext.training",
    "AutoSampleObjective": "autosample_ext.search",
    "SuccessiveHalving": "autosample_ext.search",
    "HalvingConfig": "autosample_ext.search",
    "ScheduleSampler": "autosample_ext.samplers",
    "parse_schedule": "autosample_ext.samplers",
    "RunConfig": "autosample_ext.run",
    "RunSummary": "autosample_ext.run",
    "run": "autosample_ext.run",
}
# Training beyond one process (torchrun): the process's context and its set-up.
_LAZY.update({"DistContext": "autosample_ext.distributed", "init_from_env": "autosample_ext.distributed"})


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autosample_ext' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["ops", "cuda_compiled", "build_info", "__version__", *_LAZY]
