"""Training beyond one process: the process's place in a torch.distributed run and its
collectives (:mod:`~autosample_ext.distributed.context`, which states the contract), the process
group's set-up and tear-down under torchrun (:mod:`~autosample_ext.distributed.launch`), the
gradient reduction (:mod:`~autosample_ext.distributed.reducer`) and the naming of a failed rank
(:mod:`~autosample_ext.distributed.failures`). Nothing here imports the trainer: training builds
on this package."""
from autosample_ext.distributed.context import (
    DistContext,
    DistributedError,
    RemoteError,
)
from autosample_ext.distributed.launch import init_from_env

__all__ = ["DistContext", "DistributedError", "RemoteError", "init_from_env"]
