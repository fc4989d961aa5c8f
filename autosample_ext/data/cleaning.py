"""The cleaning steps of :func:`~autosample_ext.data.loader.load`, between reading and
splitting: duplicate removal, id range checks, the k-core filter and id remapping. Each works on
:class:`RawTable` arrays, vectorised (numpy / pandas codes), and names the file and line of a bad
record."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.raw import RawTable, Source

if TYPE_CHECKING:
    from autosample_ext.data.loader import LoadOptions

_MAX_UNMAPPED_RANGE = 1 << 31  # ids are used as array indices when not remapped


def pair_keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """One int64 key per (user, item), equal iff the raw pair is equal."""
    u, i = pd_codes(users), pd_codes(items)
    if u.size and (int(u.max()) + 1) * (int(i.max()) + 1) >= 2**62:
        u, i = pd_codes(u.astype(object)), pd_codes(i.astype(object))
    return u * (int(i.max(initial=0)) + 1) + i


def dedup(table: RawTable) -> tuple[RawTable, int]:
    """Unique (user, item) pairs; with timestamps the earliest occurrence is kept, else the
    first in file order. Records keep their file order."""
    if len(table) == 0:
        return table, 0
    keys = pair_keys(table.users, table.items)
    if table.timestamps is not None:
        order = np.lexsort((table.timestamps, keys))
    else:
        order = np.argsort(keys, kind="stable")
    sk = keys[order]
    keep = np.ones(sk.size, dtype=bool)
    keep[1:] = sk[1:] != sk[:-1]
    if keep.all():
        return table, 0
    kept = np.sort(order[keep])
    return table.subset(kept), int(len(table) - kept.size)


def pd_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of raw ids (identity for int64, factorised for strings)."""
    if values.dtype == np.int64:
        return values
    import pandas as pd

    return pd.factorize(values, sort=True)[0].astype(np.int64)


def check_range(table: RawTable, bound: int | None, which: str) -> None:
    if bound is None:
        return
    ids = table.users if which == "user" else table.items
    bad = np.flatnonzero(ids >= bound)
    if bad.size:
        k = int(bad[0])
        raise DataFormatError(
            f"{which} id {int(ids[k])} is out of range: num_{which}s={bound} was declared",
            table.path, int(table.lines[k]))


def kcore(tables: dict[str, RawTable], k: int) -> tuple[dict[str, RawTable], dict]:
    """Iterated k-core over the union of all tables (unique pairs)."""
    allu = pd_codes_union(tables, "users")
    alli = pd_codes_union(tables, "items")
    nu, ni = int(allu.max(initial=-1)) + 1, int(alli.max(initial=-1)) + 1
    keys = np.sort(allu * max(ni, 1) + alli)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    pairs = np.stack([keys // max(ni, 1), keys % max(ni, 1)], 1)
    alive = np.ones(pairs.shape[0], dtype=bool)
    iterations = 0
    while True:
        iterations += 1
        du = np.bincount(pairs[alive, 0], minlength=nu)
        di = np.bincount(pairs[alive, 1], minlength=ni)
        ok = alive & (du[pairs[:, 0]] >= k) & (di[pairs[:, 1]] >= k)
        if ok.sum() == alive.sum():
            break
        alive = ok
    good_u = np.zeros(nu, dtype=bool)
    good_i = np.zeros(ni, dtype=bool)
    good_u[pairs[alive, 0]] = True
    good_i[pairs[alive, 1]] = True
    out, offset = {}, 0
    for s, t in tables.items():
        n = len(t)
        u, i = allu[offset:offset + n], alli[offset:offset + n]
        offset += n
        out[s] = t.subset(good_u[u] & good_i[i])
    stats = {"k": k, "iterations": iterations,
             "users_removed": int((np.bincount(pairs[:, 0], minlength=nu) > 0).sum()
                                  - good_u.sum()),
             "items_removed": int((np.bincount(pairs[:, 1], minlength=ni) > 0).sum()
                                  - good_i.sum()),
             "pairs_removed": int((~alive).sum())}
    return out, stats


def pd_codes_union(tables: dict[str, RawTable], attr: str) -> np.ndarray:
    """Codes of ``attr`` ids over all tables (concatenated in table order), consistent across."""
    import pandas as pd

    vals = [getattr(t, attr) for t in tables.values()]
    joined = (np.concatenate(vals) if all(v.dtype == np.int64 for v in vals)
              else np.concatenate([v.astype(str).astype(object) for v in vals]))
    return pd.factorize(joined, sort=True)[0].astype(np.int64)


def remap_ids(tables: dict[str, RawTable], remap: bool, opts: LoadOptions,
           source: Source) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int, int,
                                      np.ndarray | None, np.ndarray | None]:
    """Internal int64 ids per table, the id ranges and the raw id maps (None without remap)."""
    if not remap:
        for t in tables.values():
            for ids, which in ((t.users, "user"), (t.items, "item")):
                if ids.dtype != np.int64:
                    bad = np.flatnonzero([not str(x).isdigit() for x in ids[:1000]])
                    line = int(t.lines[bad[0]]) if bad.size else None
                    raise DataFormatError(
                        f"{which} ids are not integers; number them with remap=True (command "
                        f"line: --remap)", t.path,
                        line)
        nu = max([int(t.users.max(initial=-1)) for t in tables.values()]
                 + [int(t.declared_users.max(initial=-1)) for t in tables.values()]) + 1
        ni = max(int(t.items.max(initial=-1)) for t in tables.values()) + 1
        nu = max(nu, opts.num_users or 0, source.num_users or 0)
        ni = max(ni, opts.num_items or 0, source.num_items or 0)
        for which, n in (("user", nu), ("item", ni)):
            if n > _MAX_UNMAPPED_RANGE:
                raise DataFormatError(
                    f"{which} ids reach {n - 1}: too large to index without remapping; pass "
                    f"remap=True (command line: --remap)", next(iter(tables.values())).path)
        return {s: (t.users, t.items) for s, t in tables.items()}, nu, ni, None, None
    import pandas as pd

    out_ids: dict[str, list[np.ndarray]] = {s: [] for s in tables}
    raw_maps = []
    for attr in ("users", "items"):
        vals = [getattr(t, attr) for t in tables.values()]
        joined = (np.concatenate(vals) if all(v.dtype == np.int64 for v in vals)
                  else np.concatenate([v.astype(str).astype(object) for v in vals]))
        codes, uniques = pd.factorize(joined, sort=True)
        raw_maps.append(np.asarray(uniques))
        offset = 0
        for s, v in zip(tables, vals):
            out_ids[s].append(codes[offset:offset + v.size].astype(np.int64))
            offset += v.size
    mapped = {s: (v[0], v[1]) for s, v in out_ids.items()}
    return mapped, raw_maps[0].size, raw_maps[1].size, raw_maps[0], raw_maps[1]
