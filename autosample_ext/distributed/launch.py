"""A process's entry into and exit from a run: the process group created from torchrun's
environment (:func:`init_from_env`), or found (:func:`current_context`), and destroyed
(:func:`shutdown`); the checks that a run continues with the number of processes that wrote it
(:func:`check_world_size`) and that one-process commands are not started by torchrun
(:func:`single_process_error`). The collectives themselves are
:class:`~autosample_ext.distributed.context.DistContext`'s."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch.distributed as tdist

from autosample_ext.distributed.context import DEFAULT_TIMEOUT_S, DistContext

log = logging.getLogger("autosample_ext.distributed.context")


def check_world_size(saved: int, current: int, where: str, hint: str = "") -> None:
    """Raise ValueError when a run (or checkpoint) written by ``saved`` processes is continued
    by ``current``: the per-rank batches, sampler streams and user-sharded sampler states
    depend on the number of processes."""
    if int(saved) == int(current):
        return
    launch = (f"torchrun --nproc_per_node={saved} -m autosample_ext.train" if saved > 1
              else "python -m autosample_ext.train")
    raise ValueError(
        f"{where} was trained by {saved} process{'es' if saved != 1 else ''} (world_size "
        f"{saved}); this job has {current}. A distributed run continues only with the same "
        f"number of processes (each rank's share of the batches, its sampler streams and its "
        f"users' sampler state depend on it): resume it with {hint or launch} --resume")


def single_process_error(prog: str, advice: str) -> str | None:
    """The error line of a command that must run in one process when torchrun started it
    (``WORLD_SIZE`` > 1: every rank would do the same work and write the same files), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return f"{prog}: error: this command runs in one process (WORLD_SIZE={world}); {advice}"


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """This process's context. Under torchrun (``WORLD_SIZE`` > 1 in the environment, with
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) the default process group is
    created (gloo; :meth:`DistContext.bind_device` adds NCCL for GPUs) with the collective
    timeout ``timeout_s``; otherwise one process."""
    if not timeout_s > 0:
        raise ValueError(f"--dist-timeout: must be > 0 seconds, got {timeout_s}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(timeout_s=timeout_s)
    if not tdist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not tdist.is_initialized():
        tdist.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    ctx = current_context(timeout_s)
    ctx._register()
    return ctx


def current_context(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """The context of the default process group when one is initialised (library use inside a
    torchrun worker), else one process."""
    if not (tdist.is_available() and tdist.is_initialized()) or tdist.get_world_size() == 1:
        return DistContext(timeout_s=timeout_s)
    world = tdist.get_world_size()
    return DistContext(rank=tdist.get_rank(), world_size=world,
                       local_rank=int(os.environ.get("LOCAL_RANK", tdist.get_rank())),
                       local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", world)),
                       backend=str(tdist.get_backend()), timeout_s=timeout_s)


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group (at the end of a run, also a failed one: a group left to the
    interpreter's exit can abort the process). Errors of a group whose peers died are ignored."""
    if ctx.distributed and tdist.is_initialized():
        try:
            tdist.destroy_process_group()
        except Exception as exc:  # noqa: BLE001 - the process is ending anyway
            log.debug("destroy_process_group: %s", exc)
