"""One writer per run directory: ``<run>/.lock`` holds the owner's pid and host.

Contract: :meth:`RunLock.acquire` succeeds only if no live process holds the lock of the same
folder. On POSIX the file is held with ``fcntl.flock`` for the life of the owner, so a lock left
behind by a killed process (SIGKILL, power loss) is free again and simply taken over; the pid in
the file only serves the message. Without ``fcntl`` the pid decides: a lock whose pid is not a
running process on this host is stale and replaced. :func:`remove_stale_temps` is called by the
new owner: a temporary file in the folder can then only be left over by a writer that died.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another live process writes this run directory."""


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a running process of this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


class RunLock:
    """``with RunLock(run_dir): ...`` or ``acquire()`` / ``release()``; the folder must exist."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def _refuse(self, owner: dict) -> RunLocked:
        pid = owner.get("pid", "?")
        host = owner.get("host", "?")
        return RunLocked(f"{self.folder.resolve()} is being written by another process (pid {pid} "
                         f"on {host}, lock file {self.path}); wait for it to finish or choose "
                         f"another --out")

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(5):
            if fcntl is None:  # pragma: no cover - Windows
                self._acquire_by_pid(me)
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._refuse(_read_owner(self.path)) from None
                raise
            # The previous owner may have unlinked the file between our open and our flock:
            # then we hold a lock nobody else can see; start again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = _read_owner(self.path)
            if previous.get("pid") not in (None, me["pid"]):
                log.warning("%s: taking over a stale lock of pid %s (no longer running)",
                            self.folder, previous.get("pid"))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            os.fsync(fd)
            self._fd = fd
            return self
        raise RunLocked(f"{self.path}: could not take the lock (it kept changing owner)")

    def _acquire_by_pid(self, me: dict) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _read_owner(self.path)
                if owner.get("host") == me["host"] and not pid_alive(int(owner.get("pid", -1))):
                    log.warning("%s: removing a stale lock of pid %s", self.folder, owner.get("pid"))
                    self.path.unlink(missing_ok=True)
                    continue
                raise self._refuse(owner) from None
            os.write(fd, json.dumps(me).encode())
            self._fd = fd
            return
        raise self._refuse(_read_owner(self.path))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the ``*.tmp`` files of a run directory and its ``checkpoints/`` (left by a writer
    killed between writing a temp file and renaming it). Call only while holding the lock."""
    folder = Path(folder)
    removed = []
    for sub in (folder, folder / "checkpoints"):
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            if p.name.endswith(".tmp") and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted write: %s", folder,
                 len(removed), ", ".join(p.name for p in removed))
    return removed
