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
byte other than digits and whitespace is an error naming the file, line and token.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.textcheck import check_text, check_utf8

if TYPE_CHECKING:  # pandas is imported where a table is parsed (1 s on a busy machine)
    import pandas as pd

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
USER_COLUMNS = ("user", "user_id", "userid", "uid", "u", "user_idx", "reviewerid", "visitorid")
ITEM_COLUMNS = ("item", "item_id", "itemid", "iid", "i", "item_idx", "movie", "movie_id",
                "movieid", "product_id", "productid", "asin", "business_id", "track_id",
                "artist_id", "book_id", "isbn")
RATING_COLUMNS = ("rating", "ratings", "score", "rate", "stars", "value", "weight")
TIMESTAMP_COLUMNS = ("timestamp", "time", "ts", "date", "datetime", "unix_time", "created_at")

_MAX_DIGITS = 18  # int64 holds every 18-digit number


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


def _read_bytes(path: Path) -> bytes:
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read file: {exc.strerror or exc}", path) from exc
    if not buf.strip():
        raise DataFormatError("file is empty (no interactions)", path)
    check_text(buf, path)
    return buf


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
    buf = _read_bytes(path)
    tok = tokenize_ints(buf, path)
    first = np.ones(tok.values.size, dtype=bool)
    first[1:] = tok.line[1:] != tok.line[:-1]
    head = np.flatnonzero(first)
    owner = np.repeat(tok.values[head], np.diff(np.append(head, tok.values.size)))
    is_item = ~first
    users, items, lines = owner[is_item], tok.values[is_item], tok.line[is_item] + 1
    return RawTable(path, "lines", users, items, lines, declared_users=tok.values[head])


def read_pairs(path: Path) -> RawTable:
    buf = _read_bytes(path)
    rec, lines = _fixed_width(tokenize_ints(buf, path), 2, path, buf, "user<TAB>item")
    return RawTable(path, "pairs", rec[:, 0].copy(), rec[:, 1].copy(), lines)


def read_udata(path: Path) -> RawTable:
    buf = _read_bytes(path)
    rec, lines = _fixed_width(tokenize_ints(buf, path), 4, path, buf,
                              "user<TAB>item<TAB>rating<TAB>timestamp")
    return RawTable(path, "u.data", rec[:, 0].copy(), rec[:, 1].copy(), lines,
                    rec[:, 2].astype(np.float64), rec[:, 3].copy())


def read_ratings_dat(path: Path) -> RawTable:
    buf = _read_bytes(path)
    if b"::" not in buf:
        raise DataFormatError("no '::' separators (ratings.dat is user::item::rating::timestamp)",
                              path, 1)
    buf = buf.replace(b"::", b"\t")
    rec, lines = _fixed_width(tokenize_ints(buf, path), 4, path, buf,
                              "user::item::rating::timestamp")
    return RawTable(path, "ratings.dat", rec[:, 0].copy(), rec[:, 1].copy(), lines,
                    rec[:, 2].astype(np.float64), rec[:, 3].copy())


# ----------------------------------------------------------------------------- tables with header

@dataclass
class ColumnSpec:
    """Explicit column names for header formats; None picks from the known names."""

    user: str | None = None
    item: str | None = None
    rating: str | None = None
    timestamp: str | None = None


def _strip_type(col: str) -> str:
    return col.split(":", 1)[0].strip().lower()


def _pick(header: list[str], wanted: str | None, candidates: tuple[str, ...], role: str,
          path: Path, required: bool) -> str | None:
    norm = {_strip_type(c): c for c in reversed(header)}
    if wanted is not None:
        if wanted in header:
            return wanted
        if _strip_type(wanted) in norm:
            return norm[_strip_type(wanted)]
        raise DataFormatError(f"missing {role} column {wanted!r} (--{role}-col); header has "
                              f"{header}", path, 1)
    for cand in candidates:
        if cand in norm:
            return norm[cand]
    if required:
        raise DataFormatError(
            f"missing {role} column: header {header} names none of {list(candidates)} "
            f"(name it: {role}_col=... in load(), --{role}-col on the command line)", path, 1)
    return None


def _to_ids(col: pd.Series, line_of: np.ndarray, path: Path, role: str) -> np.ndarray:
    """Raw id column -> int64 when every value is an integer, else object array of str."""
    import pandas as pd

    values = col.to_numpy(dtype=object)
    empty = pd.isna(col).to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        k = int(np.argmax(empty))
        raise DataFormatError(f"missing {role} value", path, int(line_of[k]))
    stripped = col.astype(str).str.strip()
    is_int = stripped.str.fullmatch(r"[+-]?\d{1,18}").to_numpy()
    if is_int.all():
        ints = stripped.astype(np.int64).to_numpy()
        if (ints < 0).any():
            k = int(np.argmax(ints < 0))
            raise DataFormatError(f"negative {role} id {ints[k]} (ids must be non-negative)", path,
                                  int(line_of[k]))
        return ints
    return stripped.to_numpy(dtype=object) if values.size else values


def _to_float(col: pd.Series, line_of: np.ndarray, path: Path, role: str) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(out)
    if bad.any():
        k = int(np.argmax(bad))
        raise DataFormatError(f"{role} {col.iloc[k]!r} is not a number", path, int(line_of[k]))
    return out


def _to_timestamp(col: pd.Series, line_of: np.ndarray, path: Path) -> np.ndarray:
    import pandas as pd

    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=np.float64)
    dt = pd.to_datetime(col, errors="coerce", utc=True)
    bad = dt.isna().to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise DataFormatError(f"timestamp {col.iloc[k]!r} is neither a number nor a date", path,
                              int(line_of[k]))
    return (dt.astype("int64") // 10**9).to_numpy(dtype=np.float64)


def read_table(path: Path, fmt: str, sep: str | None = None,
               columns: ColumnSpec | None = None) -> RawTable:
    """CSV / TSV / RecBole ``.inter``: a header line, then one record per line."""
    import pandas as pd

    columns = columns or ColumnSpec()
    buf = _read_bytes(path)
    check_utf8(buf, path)
    if sep is None:
        first = buf.lstrip().split(b"\n", 1)[0]
        if fmt in ("tsv", "recbole") or b"\t" in first:
            sep = "\t"
        elif b"," in first or fmt == "csv" and path.suffix.lower() == ".csv":
            sep = ","
        elif b";" in first:
            sep = ";"
        else:
            sep = r"\s+"
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, engine="c", on_bad_lines="error")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise DataFormatError(f"malformed line: {exc}", path,
                              int(m.group(1)) if m else None) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError("file is empty (no header)", path) from exc
    header = [str(c) for c in frame.columns]
    ucol = _pick(header, columns.user, USER_COLUMNS, "user", path, True)
    icol = _pick(header, columns.item, ITEM_COLUMNS, "item", path, True)
    rcol = _pick(header, columns.rating, RATING_COLUMNS, "rating", path, False)
    tcol = _pick(header, columns.timestamp, TIMESTAMP_COLUMNS, "timestamp", path, False)
    line_of = np.arange(len(frame), dtype=np.int64) + 2
    blank = (frame.apply(lambda c: c.astype(str).str.strip()) == "").all(axis=1).to_numpy()
    frame, line_of = frame.loc[~blank], line_of[~blank]
    if len(frame) == 0:
        raise DataFormatError("file has a header but no interactions", path)
    users = _to_ids(frame[ucol], line_of, path, "user")
    items = _to_ids(frame[icol], line_of, path, "item")
    ratings = None if rcol is None else _to_float(frame[rcol], line_of, path, "rating")
    stamps = None if tcol is None else _to_timestamp(frame[tcol], line_of, path)
    return RawTable(path, fmt, users, items, line_of, ratings, stamps)


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
    head = _read_bytes(path)[: 1 << 16]
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


@dataclass
class Source:
    """Resolved input: tables per split name (``"all"`` for a single unsplit file)."""

    name: str
    format: str
    tables: dict[str, RawTable]
    default_remap: bool
    num_users: int | None = None
    num_items: int | None = None
