"""Header formats: CSV / TSV / RecBole ``.inter``. Columns are found by name (explicit
:class:`ColumnSpec` first, else the known names below, case-insensitive, ``name:type`` allowed);
ids may be any token (non-integer ids are kept as strings and remapped by the loader)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.raw import RawTable, read_bytes
from autosample_ext.data.textcheck import check_utf8

if TYPE_CHECKING:  # pandas is imported where a table is parsed (1 s on a busy machine)
    import pandas as pd

USER_COLUMNS = ("user", "user_id", "userid", "uid", "u", "user_idx", "reviewerid", "visitorid")
ITEM_COLUMNS = ("item", "item_id", "itemid", "iid", "i", "item_idx", "movie", "movie_id",
                "movieid", "product_id", "productid", "asin", "business_id", "track_id",
                "artist_id", "book_id", "isbn")
RATING_COLUMNS = ("rating", "ratings", "score", "rate", "stars", "value", "weight")
TIMESTAMP_COLUMNS = ("timestamp", "time", "ts", "date", "datetime", "unix_time", "created_at")


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
    buf = read_bytes(path)
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
