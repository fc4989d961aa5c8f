"""Atomic checkpoints that hold only tensors and plain types (DESIGN.md §6).

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
import tempfile
from pathlib import Path
from typing import Any

import torch

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


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location="cpu", weights_only=True)


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
