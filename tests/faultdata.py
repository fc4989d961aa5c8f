"""Tiny inputs shared by the bad-input and fault tests (not a test module)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

FAST = ["--epochs", "1", "--dim", "8", "--batch-size", "512", "--no-progress", "--threads", "1"]


def skewed_lines(path: Path, users: int = 80, items: int = 40, per_user: int = 8,
                 seed: int = 0) -> Path:
    """``user item item ...`` lines, item popularity ~ 1/rank^1.5: the popularity ranking is a
    strong floor that an untrained model stays below."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, items + 1) ** 1.5
    p /= p.sum()
    with open(path, "w") as fh:
        for u in range(users):
            row = rng.choice(items, size=per_user, replace=False, p=p)
            fh.write(" ".join(map(str, [u, *sorted(row.tolist())])) + "\n")
    return path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path
