"""Errors raised by the data layer."""
from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Bad input data: the message names the file and, when known, the 1-based line.

    ``path`` and ``line`` are kept as attributes so callers can point at the offending input.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}, line {line}"
            where += ": "
        super().__init__(where + message)
