"""Naming the process that failed in a distributed run (distributed/context.py, "Failures").

Every rank records ``"<host> <pid>"`` in the process group's store when it joins
(:func:`register`), and its error message when it fails with one (:func:`report`). A rank whose
collective failed asks :func:`peer_report`: ranks that recorded an error are named with it, and
ranks on this host whose process is gone (or a zombie) are named with their pid. Ranks on other
hosts that died without a message cannot be told apart from slow ones here; the launcher
(torchrun) names them in its report. Everything here is best effort: a store that went away
with its host process yields an empty report.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any

import torch.distributed as tdist

PREFIX = "autosample_ext"


def _store() -> Any:
    try:
        return tdist.distributed_c10d._get_default_store()
    except Exception:  # noqa: BLE001 - private API; the report is best effort
        return None


def register(rank: int) -> None:
    store = _store()
    try:
        if store is not None:
            store.set(f"{PREFIX}/proc/{rank}", f"{socket.gethostname()} {os.getpid()}")
            store.delete_key(f"{PREFIX}/failed/{rank}")   # left by an earlier attempt
    except Exception:  # noqa: BLE001
        pass


def report(rank: int, message: str) -> None:
    store = _store()
    try:
        if store is not None:
            store.set(f"{PREFIX}/failed/{rank}", message[:800])
    except Exception:  # noqa: BLE001
        pass


def process_gone(pid: int) -> bool:
    """True when ``pid`` is not a running process of this host (gone, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):  # pragma: no cover - no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def peer_report(rank: int, world_size: int, wait_s: float = 3.0) -> str:
    """The other ranks that failed or are gone, as far as this process can tell; waits up to
    ``wait_s`` for a dying process to finish exiting (its sockets close before it does)."""
    store = _store()
    if store is None:
        return ""
    host = socket.gethostname()
    deadline = time.monotonic() + wait_s
    while True:
        notes: list[str] = []
        for r in range(world_size):
            if r == rank:
                continue
            try:
                key = f"{PREFIX}/failed/{r}"
                if store.check([key]):
                    notes.append(f"rank {r} failed: {store.get(key).decode(errors='replace')}")
                    continue
                key = f"{PREFIX}/proc/{r}"
                if store.check([key]):
                    their_host, pid = store.get(key).decode().rsplit(" ", 1)
                    if their_host == host and process_gone(int(pid)):
                        notes.append(f"rank {r} (pid {pid}) is no longer running")
            except Exception:  # noqa: BLE001 - the store went with a dead rank 0
                return "; ".join(notes)
        if notes or time.monotonic() >= deadline:
            return "; ".join(notes)
        time.sleep(0.1)
