"""Records as read from disk, before validation: :class:`RawTable` (one file) and
:class:`Source` (the tables of one dataset, per split), and :func:`read_bytes`, the checked read
every reader starts from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.textcheck import check_text


@dataclass
class RawTable:
    """Interactions as read: one entry per record, ids not yet validated against a range.

    ``users`` / ``items`` are int64 arrays for integer formats, object arrays of str otherwise.
    ``lines`` holds the 1-based source line of each record (for error messages).
    ``declared_users`` are users named with no items (``lines`` format only).
    """

    path: Path
    format: str
    users: np.ndarray
    items: np.ndarray
    lines: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    declared_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def subset(self, keep: np.ndarray) -> "RawTable":
        return RawTable(
            self.path, self.format, self.users[keep], self.items[keep], self.lines[keep],
            None if self.ratings is None else self.ratings[keep],
            None if self.timestamps is None else self.timestamps[keep],
            self.declared_users,
        )


@dataclass
class Source:
    """Resolved input: tables per split name (``"all"`` for a single unsplit file)."""

    name: str
    format: str
    tables: dict[str, RawTable]
    default_remap: bool
    num_users: int | None = None
    num_items: int | None = None


def read_bytes(path: Path) -> bytes:
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read file: {exc.strerror or exc}", path) from exc
    if not buf.strip():
        raise DataFormatError("file is empty (no interactions)", path)
    check_text(buf, path)
    return buf
