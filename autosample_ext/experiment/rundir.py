"""The run directory (DESIGN.md §6): config.json, log.jsonl, metrics.json, table.md, alpha.csv /
alpha.png and ``checkpoints/``; JSON and text files are replaced atomically."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from autosample_ext.experiment.config import RunConfig


class RunDir:
    """Writes the files of a run directory; log.jsonl is rewritten from checkpoints on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.path / "checkpoints"
        self.checkpoints.mkdir(exist_ok=True)
        self._log = open(self.path / "log.jsonl", "w", encoding="utf-8")

    def close(self) -> None:
        self._log.close()

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


def default_out_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
