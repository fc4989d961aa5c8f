"""Atomic checkpoints that hold only tensors and plain types (docs/design.md).

A checkpoint is written to a temporary file in the target's folder, flushed and fsync'ed, then
moved over the target with :func:`os.replace`, so a reader sees either the previous complete
file or the new complete file, never a partial one. Reading uses
``torch.load(..., weights_only=True)``: opening a checkpoint never runs code from it.

Allowed content: tensors, ``None``, ``bool``, ``int``, ``float``, ``str`` and (nested) ``dict``
with ``str`` keys, ``list`` and ``tuple`` of those. :func:`save_checkpoint` checks this before
writing so that a state that would not load back is refused at save time.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from autosample_ext.distributed.launch import check_world_size

_PLAIN = (type(None), bool, int, float, str)


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise TypeError naming the path of the first value that is not a tensor or plain type."""
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: dict key {key!r} is {type(key).__name__}, not str/int")
            check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not allowed in a checkpoint "
                    "(only tensors, None, bool, int, float, str, dict, list, tuple)")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + fsync + os.replace)."""
    check_plain(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names the file and what to do."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` onto the CPU.

    Raises :class:`CheckpointError` naming the file when it is truncated or corrupt, or when it
    holds pickled Python objects (refused unread: it is not a checkpoint of this tool).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise CheckpointError(
                f"checkpoint {path} is not a checkpoint of this tool (it holds pickled Python "
                f"objects, which are never unpickled here); it was not loaded. Delete or move it "
                f"to restart this stage") from None
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc}); it was not loaded. Delete "
                              f"it to restart this stage from scratch") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        size = path.stat().st_size
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({size} bytes; torch.load: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); it was not "
            f"loaded. Delete it to restart this stage from scratch") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a "
                              f"checkpoint of this tool; it was not loaded")
    return state


def load_for_rank(path: str | os.PathLike, dist: Any) -> dict[str, Any] | None:
    """The checkpoint at ``path`` as this process needs it, or None when there is none.

    ``dist``: the process's :class:`~autosample_ext.distributed.context.DistContext`. One
    process: :func:`load_checkpoint`. Distributed: rank 0 reads the file; the replicated part is
    sent to every rank and each other rank receives its own ``rank_states`` entry merged into
    the top level (``objective``, ``rng``, ``epoch_cpu_seconds``). A checkpoint written by
    another number of processes raises ValueError on every rank.
    """
    path = Path(path)

    def read() -> tuple[dict[str, Any] | None, list[Any] | None]:
        if not path.is_file():
            return None, None
        state = load_checkpoint(path)
        return state, state.pop("rank_states", None)

    if not dist.distributed:
        state, parts = read()
        if state is not None and parts:
            check_world_size(int(state.get("world_size", 1)), 1, f"checkpoint {path}")
        return state
    state, parts = dist.on_main(read, f"reading {path.name}") or (None, None)
    header = None
    if dist.is_main and state is not None:
        header = (int(state.get("world_size", 1)), None if parts is None else len(parts) + 1)
    header = dist.broadcast_object(header, f"reading {path.name}")
    if header is None:
        return None
    saved_world, ranks_in_file = header
    if ranks_in_file is not None:
        check_world_size(saved_world, dist.world_size, f"checkpoint {path}")
        if ranks_in_file != saved_world:
            raise CheckpointError(f"checkpoint {path} holds the states of {ranks_in_file} "
                                  f"processes for world_size {saved_world}; it was not loaded")
    state = dist.broadcast_object(state, f"sending {path.name}")
    if ranks_in_file is not None:
        mine = dist.scatter_object([None, *parts] if dist.is_main else None,
                                   f"sending each rank its part of {path.name}")
        if not dist.is_main:
            state = {**state, **mine}
    return state


def check_shapes(saved: dict[str, Any], current: dict[str, torch.Tensor], what: str,
                 path: str | os.PathLike | None) -> None:
    """Raise :class:`CheckpointError` when the tensors of a saved state dict do not have the
    shapes of ``current`` (a checkpoint of a run with another ``--dim``, ``--layers`` or data)."""
    where = f"checkpoint {path}" if path is not None else "checkpoint"
    missing = sorted(set(current) - set(saved))
    extra = sorted(set(saved) - set(current))
    if missing or extra:
        raise CheckpointError(f"{where}: its {what} has entries {extra or 'none'} this run lacks "
                              f"and lacks {missing or 'none'}; it was written by another model")
    for key, tensor in current.items():
        value = saved[key]
        if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{where}: {what} {key!r} has shape {list(value.shape)}, this run needs "
                f"{list(tensor.shape)}: it was written by a run with other settings (--dim, "
                f"--layers, --model or data); it was not loaded. Resume with the original "
                f"settings, or delete the checkpoint to restart this stage")


def cpu_state(obj: Any) -> Any:
    """A deep copy of a (nested) state with every tensor detached, cloned and moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [cpu_state(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(cpu_state(v) for v in obj)
    return obj
