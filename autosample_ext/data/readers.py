"""Readers: one function per file format, each returning a :class:`RawTable` of raw ids.

Formats (canonical name: what it reads):

* ``lines``: ``user item item ...`` per line, whitespace separated, non-negative integer ids
  (LightGCN / MixGCF / DENS / AHNS ``train.txt``). A line holding only a user id declares that
  user with no items. A user may span several lines.
* ``pairs``: ``user<TAB>item`` per line (any whitespace), exactly two integer ids.
* ``csv`` / ``tsv``: a header naming the user and item columns (optional rating, timestamp);
  ids may be any token (strings are remapped).
* ``u.data``: MovieLens-100K, ``user<TAB>item<TAB>rating<TAB>timestamp``, integer fields.
* ``ratings.dat``: MovieLens-1M/10M, ``user::item::rating::timestamp``, integer fields.
* ``recbole``: RecBole atomic ``.inter`` file: tab separated, header ``name:type`` per column.

The integer formats are parsed by a vectorised byte tokenizer (no per-line Python loop); any
byte other than digits and whitespace is an error naming the file, line and token. The header
formats (csv, tsv, recbole) are read by :mod:`autosample_ext.data.tables`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.raw import RawTable, Source, read_bytes
from autosample_ext.data.tables import ColumnSpec, read_table

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("lines", "pairs", "csv", "tsv", "u.data", "ratings.dat", "recbole")
_ALIASES: dict[str, str] = {
    "lightgcn": "lines", "adjacency": "lines", "user-items": "lines", "txt": "lines",
    "pair": "pairs", "tab": "pairs",
    "ml-100k": "u.data", "movielens-100k": "u.data", "udata": "u.data",
    "ml-1m": "ratings.dat", "movielens-1m": "ratings.dat", "dat": "ratings.dat",
    "ratings_dat": "ratings.dat", "u_data": "u.data",
    "inter": "recbole", ".inter": "recbole",
}

_MAX_DIGITS = 18  # int64 holds every 18-digit number


def canonical_format(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise DataFormatError(
            f"unknown format {name!r}; known formats: {', '.join(FORMATS)} "
            f"(aliases: {', '.join(sorted(_ALIASES))})")
    return key


# ----------------------------------------------------------------------------- integer tokens

@dataclass
class IntTokens:
    """Non-negative integer tokens of a text buffer: ``values`` int64 [T], ``line`` int64 [T]
    (0-based line of each token), in file order; ``num_lines`` lines in the buffer."""

    values: np.ndarray
    line: np.ndarray
    num_lines: int


def _line_text(buf: bytes, pos: int) -> tuple[int, str]:
    line_no = buf.count(b"\n", 0, pos) + 1
    start = buf.rfind(b"\n", 0, pos) + 1
    end = buf.find(b"\n", pos)
    end = len(buf) if end < 0 else end
    return line_no, buf[start:end].decode("utf-8", "replace").rstrip("\r")


def tokenize_ints(buf: bytes, path: Path, what: str = "id") -> IntTokens:
    """Vectorised tokenizer of whitespace-separated non-negative integers.

    Raises DataFormatError at the first byte that is neither a digit nor whitespace, naming the
    line and the token (``-3`` is reported as a negative id, ``abc`` / ``1.5`` as non-integer).
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    allowed = np.zeros(256, dtype=bool)
    allowed[ord("0"): ord("9") + 1] = True
    allowed[[9, 10, 11, 12, 13, 32]] = True
    bad = ~allowed[a]
    if bad.any():
        pos = int(np.argmax(bad))
        ws = b" \t\r\n\v\f"
        start = pos
        while start > 0 and buf[start - 1] not in ws:
            start -= 1
        end = pos
        while end < len(buf) and buf[end] not in ws:
            end += 1
        token = buf[start:end].decode("utf-8", "replace")
        line_no, text = _line_text(buf, pos)
        if re.fullmatch(r"-\d+", token):
            msg = f"negative {what} {token} in {text!r} (ids must be non-negative integers)"
        else:
            msg = (f"non-integer {what} {token!r} in {text!r} (this format takes non-negative "
                   f"integer ids)")
        raise DataFormatError(msg, path, line_no)
    is_digit = (a >= ord("0")) & (a <= ord("9"))
    edge = np.diff(np.concatenate(([0], is_digit.view(np.int8), [0])))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    lengths = ends - starts
    newlines = np.flatnonzero(a == 10)
    num_lines = int(newlines.size) + (1 if a.size and a[-1] != 10 else 0)
    if lengths.size and int(lengths.max()) > _MAX_DIGITS:
        k = int(np.argmax(lengths > _MAX_DIGITS))
        line_no, text = _line_text(buf, int(starts[k]))
        raise DataFormatError(f"{what} with more than {_MAX_DIGITS} digits in {text!r}", path,
                              line_no)
    digit_pos = np.flatnonzero(is_digit)
    digits = a[digit_pos].astype(np.int64) - ord("0")
    owner = np.repeat(np.arange(starts.size), lengths)
    exponent = ends[owner] - 1 - digit_pos
    powers = 10 ** np.arange(_MAX_DIGITS, dtype=np.int64)
    if starts.size:
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        values = np.add.reduceat(digits * powers[exponent], offsets)
    else:
        values = np.zeros(0, dtype=np.int64)
    line = np.searchsorted(newlines, starts).astype(np.int64)
    return IntTokens(values.astype(np.int64), line, num_lines)


def _fixed_width(tokens: IntTokens, width: int, path: Path, buf: bytes,
                 layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Tokens as ``[records, width]`` plus each record's 1-based line; every non-blank line must
    hold exactly ``width`` fields."""
    per_line = np.bincount(tokens.line, minlength=tokens.num_lines)
    wrong = np.flatnonzero((per_line != 0) & (per_line != width))
    if wrong.size:
        ln = int(wrong[0])
        start = 0 if ln == 0 else int(np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)[ln - 1]) + 1
        _, text = _line_text(buf, start)
        raise DataFormatError(
            f"expected {width} fields ({layout}), found {int(per_line[ln])} in {text!r}", path,
            ln + 1)
    return tokens.values.reshape(-1, width), tokens.line[::width] + 1


def read_lines(path: Path) -> RawTable:
    """``user item item ...`` lines: first token of a line is the user, the rest its items."""
    buf = read_bytes(path)
    tok = tokenize_ints(buf, path)
    first = np.ones(tok.values.size, dtype=bool)
    first[1:] = tok.line[1:] != tok.line[:-1]
    head = np.flatnonzero(first)
    owner = np.repeat(tok.values[head], np.diff(np.append(head, tok.values.size)))
    is_item = ~first
    users, items, lines = owner[is_item], tok.values[is_item], tok.line[is_item] + 1
    return RawTable(path, "lines", users, items, lines, declared_users=tok.values[head])


def read_pairs(path: Path) -> RawTable:
    buf = read_bytes(path)
    rec, lines = _fixed_width(tokenize_ints(buf, path), 2, path, buf, "user<TAB>item")
    return RawTable(path, "pairs", rec[:, 0].copy(), rec[:, 1].copy(), lines)


def read_udata(path: Path) -> RawTable:
    buf = read_bytes(path)
    rec, lines = _fixed_width(tokenize_ints(buf, path), 4, path, buf,
                              "user<TAB>item<TAB>rating<TAB>timestamp")
    return RawTable(path, "u.data", rec[:, 0].copy(), rec[:, 1].copy(), lines,
                    rec[:, 2].astype(np.float64), rec[:, 3].copy())


def read_ratings_dat(path: Path) -> RawTable:
    buf = read_bytes(path)
    if b"::" not in buf:
        raise DataFormatError("no '::' separators (ratings.dat is user::item::rating::timestamp)",
                              path, 1)
    buf = buf.replace(b"::", b"\t")
    rec, lines = _fixed_width(tokenize_ints(buf, path), 4, path, buf,
                              "user::item::rating::timestamp")
    return RawTable(path, "ratings.dat", rec[:, 0].copy(), rec[:, 1].copy(), lines,
                    rec[:, 2].astype(np.float64), rec[:, 3].copy())


# ----------------------------------------------------------------------------- detection

def sniff_file_format(path: Path) -> str:
    """Format of one file: by name first (u.data, ratings.dat, .inter, .csv, .tsv), else by
    content: a header line -> csv/tsv; ``::`` -> ratings.dat; two integers on every line of the
    first 64 KiB -> pairs; other integer lines -> lines. A headerless 4-column file is read as
    ``lines``: name it u.data or pass ``format="u.data"``."""
    name, suffix = path.name.lower(), path.suffix.lower()
    if name == "u.data":
        return "u.data"
    if name == "ratings.dat":
        return "ratings.dat"
    if suffix == ".inter":
        return "recbole"
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    head = read_bytes(path)[: 1 << 16]
    if len(head) == 1 << 16:
        head = head[: head.rfind(b"\n") + 1] or head
    rows = [r for r in head.splitlines() if r.strip()]
    first = rows[0]
    if b"::" in first:
        return "ratings.dat"
    if re.search(rb"[A-Za-z_]", first):
        return "tsv" if b"\t" in first else "csv"
    if all(len(r.split()) == 2 for r in rows):
        return "pairs"
    return "lines"


READERS = {
    "lines": read_lines,
    "pairs": read_pairs,
    "u.data": read_udata,
    "ratings.dat": read_ratings_dat,
}


def read_file(path: Path, fmt: str | None, sep: str | None = None,
              columns: ColumnSpec | None = None) -> RawTable:
    """Read one file in ``fmt`` (canonical or alias; None sniffs it)."""
    if not path.is_file():
        raise DataFormatError("no such file", path)
    fmt = sniff_file_format(path) if fmt is None else canonical_format(fmt)
    logger.debug("reading %s as %s", path, fmt)
    if fmt in READERS:
        return READERS[fmt](path)
    return read_table(path, fmt, sep, columns)


__all__ = ["FORMATS", "ColumnSpec", "RawTable", "Source", "canonical_format", "read_file",
           "sniff_file_format", "tokenize_ints", "read_lines", "read_pairs", "read_udata",
           "read_ratings_dat"]
