"""The run directory (docs/design.md): config.json, log.jsonl, metrics.json, table.md, alpha.csv /
alpha.png and ``checkpoints/``; JSON and text files are replaced atomically.

The folder is the run: ``config.json`` stores ``out`` as ``"."`` and ``data`` relative to the
folder (plus its absolute path), so a run folder that was moved, or a relative ``runs/...`` folder
resumed from another working directory, is still found and continued in place. One process
writes a folder at a time (``.lock``, :mod:`autosample_ext.run.lock`); the writer that
takes the lock deletes temporary files a killed writer left behind.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from autosample_ext.run.config import RunConfig
from autosample_ext.run.lock import RunLock, remove_stale_temps

CONFIG_NAME = "config.json"


class RunDirError(RuntimeError):
    """The run directory cannot be created or written (read-only, not a folder, ...)."""


class RunDir:
    """Writes the files of a run directory; log.jsonl is rewritten from checkpoints on resume.

    Holds the folder's lock from construction to :meth:`close`. ``new=True``: refuse (with
    FileExistsError) a folder that already holds a run, checked under the lock.
    """

    def __init__(self, path: str | Path, *, new: bool = False) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
            self.lock = RunLock(self.path).acquire()
        except OSError as exc:
            raise RunDirError(f"cannot write the run directory {self.path.resolve()}: "
                              f"{exc.strerror or exc}"
                              + (f" ({exc.filename})" if exc.filename else "")
                              + "; choose another --out") from None
        try:
            if new and (self.path / CONFIG_NAME).exists():
                raise FileExistsError(f"{self.path} already holds a run; use --resume to continue "
                                      "it or choose another --out")
            remove_stale_temps(self.path)
            self._log = open(self.path / "log.jsonl", "w", encoding="utf-8")
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self._log.close()
        self.lock.release()

    def checkpoint(self, seed: int, phase: str) -> Path:
        return self.checkpoints / f"seed{seed}-{phase}.pt"

    def append_log(self, entry: dict[str, Any]) -> None:
        self._log.write(json.dumps(entry, sort_keys=False) + "\n")
        self._log.flush()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        return target


class RankRunDir:
    """What ranks other than 0 of a distributed run see of the run directory: the same
    checkpoint paths (rank 0 reads and writes them), no files, no lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    def close(self) -> None:
        pass

    def checkpoint(self, seed: int, phase: str) -> Path:
        return self.checkpoints / f"seed{seed}-{phase}.pt"

    def append_log(self, entry: dict[str, Any]) -> None:
        pass


def default_out_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.mode}-{time.strftime('%Y%m%d-%H%M%S')}"


def config_record(cfg: RunConfig, run_dir: str | Path) -> dict[str, Any]:
    """``cfg`` as stored in config.json: ``out`` is ``"."`` and ``data`` is relative to the run
    directory (absolute when no relative path exists, e.g. another drive)."""
    plain = cfg.to_json()
    plain["out"] = "."
    if cfg.data is not None:
        try:
            plain["data"] = os.path.relpath(Path(cfg.data).resolve(), Path(run_dir).resolve())
        except ValueError:
            plain["data"] = str(Path(cfg.data).resolve())
    return plain


def read_saved_config(run_dir: str | Path, data: str | None = None) -> tuple[RunConfig, dict]:
    """The RunConfig of the run in ``run_dir`` with ``out`` = the folder (absolute) and ``data``
    found again: ``data`` when given (the dataset moved), else the saved path relative to the
    folder, else the saved absolute path, else (runs written before paths were relative) the
    saved path relative to the working directory. Also returns the whole config.json."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_NAME
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        plain = dict(obj["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable run configuration ({exc})") from None
    saved_data = plain.get("data")
    if data is not None:
        plain["data"] = str(Path(data).resolve())
    elif saved_data is not None:
        tried = [run_dir / saved_data]
        if (obj.get("data") or {}).get("path"):
            tried.append(Path(obj["data"]["path"]))
        tried.append(Path(saved_data))
        found = next((t for t in tried if t.exists()), None)
        if found is None:
            raise FileNotFoundError(
                f"{path}: the run's dataset {saved_data!r} was not found (tried "
                f"{', '.join(str(t) for t in tried)}); pass --data PATH with --resume to say "
                f"where it is now")
        plain["data"] = str(found.resolve())
    plain["out"] = str(run_dir.resolve())
    try:
        return RunConfig.from_json(plain), obj
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


_NOT_COMPARED = ("out", "progress", "device", "data", "protocol_defaults_applied")


def check_same_run(cfg: RunConfig, out_path: Path) -> dict[str, Any]:
    """Resuming ``out_path`` with ``cfg``: raise ValueError naming every setting that differs
    from the saved run's (the dataset is compared by its sizes, :func:`check_same_data`, so a
    moved dataset can be named anew). Returns the saved config.json."""
    saved_cfg, saved = read_saved_config(out_path, data=cfg.data)
    mine, theirs = cfg.to_json(), saved_cfg.to_json()
    diff = [f"{k}={mine[k]!r} (saved {theirs.get(k)!r})" for k in mine
            if k not in _NOT_COMPARED and mine[k] != theirs.get(k)]
    if (cfg.data is None) != (saved_cfg.data is None):
        diff.append(f"data={cfg.data!r} (saved {saved_cfg.data!r})")
    if diff:
        raise ValueError(f"resume {out_path}: this config differs from the saved run's: "
                         f"{', '.join(diff)}; resume with the saved config")
    return saved


def check_same_data(saved: dict[str, Any], facts: dict[str, Any], out_path: Path) -> None:
    """The dataset of a resumed run must have the saved run's sizes."""
    old = saved.get("data") or {}
    diff = [f"{k} {facts[k]} (saved {old[k]})" for k in ("users", "items", "train", "valid", "test")
            if k in old and old[k] != facts[k]]
    if diff:
        raise ValueError(f"resume {out_path}: the dataset is not the run's: {', '.join(diff)}")
