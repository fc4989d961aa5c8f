"""``load``: read, validate, filter, remap, split and index a dataset into InteractionData.

Order of operations (all vectorised): read every file (errors name the file and line, nothing
is written anywhere) -> ``min_rating`` filter -> duplicate removal per file (a pair kept once;
with timestamps its earliest occurrence) -> id validation (declared ``num_users`` /
``num_items`` bounds) -> k-core filter (iterated to a fixed point over the union of all files)
-> id remapping -> split -> CSR.

Id range. Without remapping (``lines`` / ``pairs`` default) ids are taken as given and
``num_users`` / ``num_items`` are ``max id + 1`` over *all* files (train, valid, test), or the
declared values when passed; an id at or above a declared bound is an error naming file and line.
With remapping (the other formats' default) ids are numbered over all files in sorted raw
order. Either way a test item that never occurs in train is inside the inferred range, so it is a
*warning* (a known quirk of some published splits, e.g. AHNS ml-1m), counted in ``info``; it is
an error only when it exceeds a declared ``num_items``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from autosample_ext.data import splits as S
from autosample_ext.data.cleaning import check_range, dedup, kcore, remap_ids
from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.data.readers import (ColumnSpec, Source, canonical_format,
                                         read_file, sniff_file_format)
from autosample_ext.data.summary import summarize
from autosample_ext.data.synthetic import SyntheticConfig, default_source

logger = logging.getLogger(__name__)

INTEGER_ID_FORMATS = ("lines", "pairs")
SPLIT_NAMES = ("train", "valid", "test")
_GIVEN_FILES = {"train": ("train.txt",), "valid": ("valid.txt", "val.txt", "validation.txt"),
                "test": ("test.txt",)}


@dataclass
class LoadOptions:
    """Options of :func:`load`.

    split: ``"given"`` (the files' own train/test[/valid]; default for such folders), a ratio
      ``"3:1:1"`` (default for single files and the default dataset), ``"8:1:1"`` or any
      ``"a:b:c"`` train:valid:test, or ``"loo"`` (leave-one-out with ``num_negatives`` fixed
      sampled evaluation negatives per user, drawn for every user, including those left without
      a test item). A non-given split on a train/test folder re-splits the union of its files.
      How users with few interactions are split: see ``autosample_ext.data.splits``.
    valid_fraction: when the split gives no validation pairs (a given split without a valid
      file, a ``"train:test"`` ratio such as ``"8:2"``, leave-one-out with ``loo_valid=False``),
      move this fraction of each user's training items to validation (seeded; see
      ``splits.valid_from_train``); None keeps train intact and valid empty. An error when the
      split already has validation pairs.
    loo_valid: leave-one-out also holds out one validation item per user (n >= 3).
    loo_by: ``"time"`` holds out the latest interactions (when the data has timestamps; random
      otherwise), ``"random"`` ignores timestamps.
    remap: renumber ids contiguously from their sorted raw values (raw ids kept in
      ``raw_user_ids`` / ``raw_item_ids``); None = per format (no for lines/pairs, yes otherwise).
    min_rating: keep records with ``rating >= min_rating`` (error if the data has no rating,
      unless ``min_rating_optional``: then a warning, ``info["min_rating_applied"] = False`` and
      every record is kept).
    split_rounding: ``"half_up"`` (default) or ``"floor"`` (RecBole's per-user sizes) for ratio
      splits; see ``autosample_ext.data.splits``.
    kcore: keep the largest subgraph where every user and item has >= kcore interactions.
    num_users / num_items: declared id ranges (no remapping): ids beyond them are errors.
    """

    split: str | None = None
    seed: int = 0
    valid_fraction: float | None = None
    num_negatives: int = 100
    loo_valid: bool = True
    loo_by: str = "time"
    min_rating: float | None = None
    min_rating_optional: bool = False
    split_rounding: str = "half_up"
    kcore: int = 0
    remap: bool | None = None
    num_users: int | None = None
    num_items: int | None = None
    sep: str | None = None
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in ("given", "loo"):
            S.parse_ratio(self.split)  # raises ValueError naming the bad ratio
        if self.kcore < 0:
            raise ValueError(f"kcore must be >= 0, got {self.kcore}")
        if self.valid_fraction is not None and not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.num_negatives <= 0:
            raise ValueError(f"num_negatives must be positive, got {self.num_negatives}")
        if self.split_rounding not in S.SPLIT_ROUNDINGS:
            raise ValueError(f"split_rounding must be one of {S.SPLIT_ROUNDINGS}, got "
                             f"{self.split_rounding!r}")
        if self.loo_by not in ("time", "random"):
            raise ValueError(f"loo_by must be 'time' or 'random', got {self.loo_by!r}")
        for name in ("num_users", "num_items"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "LoadOptions":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names - {"user_col", "item_col", "rating_col",
                                                "timestamp_col"})
        if unknown:
            raise TypeError(f"unknown load option(s) {unknown}; known: {sorted(names)}")
        cols = {k[:-4]: kwargs.pop(k) for k in list(kwargs) if k.endswith("_col")}
        opts = cls(**kwargs)
        if cols:
            opts.columns = ColumnSpec(**{**opts.columns.__dict__, **cols})
        return opts


def _resolve(path: Path, fmt: str | None, opts: LoadOptions) -> Source:
    if fmt is not None:
        fmt = canonical_format(fmt)
    if path.is_dir():
        found = {}
        for split, names in _GIVEN_FILES.items():
            for n in names:
                if (path / n).is_file():
                    found[split] = path / n
                    break
        inters = sorted(path.glob("*.inter"))
        split_inters = {s: [p for p in inters if p.name.endswith(f".{s}.inter")]
                        for s in SPLIT_NAMES}
        if "train" in found and "test" in found:
            files = found
        elif split_inters["train"] and split_inters["test"]:
            files = {s: v[0] for s, v in split_inters.items() if v}
            fmt = fmt or "recbole"
        elif (path / "u.data").is_file():
            files = {"all": path / "u.data"}
        elif (path / "ratings.dat").is_file():
            files = {"all": path / "ratings.dat"}
        elif len(inters) == 1:
            files = {"all": inters[0]}
        else:
            raise DataFormatError(
                "unknown format: folder has neither train.txt + test.txt, u.data, ratings.dat "
                "nor a single RecBole .inter file", path)
        if fmt is None and len(files) > 1:
            sniffed = {sniff_file_format(p) for p in files.values()}
            # a one-item-per-line test file sniffs as pairs: read the folder uniformly as lines
            if sniffed <= set(INTEGER_ID_FORMATS):
                fmt = "lines"
        tables = {s: read_file(p, fmt, opts.sep, opts.columns) for s, p in files.items()}
        if "train" in files and "test" not in files:
            raise DataFormatError("a given split needs a test file", path)
        name = path.name
    elif path.is_file():
        tables = {"all": read_file(path, fmt, opts.sep, opts.columns)}
        name = path.parent.name if path.stem in ("u", "ratings", "train") else path.stem
    else:
        raise DataFormatError("no such file or folder", path)
    fmt_name = "+".join(sorted({t.format for t in tables.values()}))
    default_remap = not all(t.format in INTEGER_ID_FORMATS for t in tables.values())
    return Source(opts.name or name, fmt_name, tables, default_remap)


def build(source: Source, opts: LoadOptions) -> InteractionData:
    """Filter, remap, split and index the tables of ``source`` (see the module docstring)."""
    tables = dict(source.tables)
    info: dict[str, Any] = {"name": source.name, "format": source.format,
                            "files": {s: str(t.path) for s, t in tables.items()},
                            "rows_read": {s: len(t) for s, t in tables.items()}}
    unrated = [t for t in tables.values() if t.ratings is None]
    if opts.min_rating is not None and opts.min_rating_optional and unrated:
        logger.warning("%s: min_rating=%s not applied: %s (%s) has no rating column; every "
                       "interaction is a positive", source.name, opts.min_rating,
                       unrated[0].path, unrated[0].format)
        info["min_rating_applied"] = False
    elif opts.min_rating is not None:
        info["min_rating_applied"] = True
        dropped = {}
        for s, t in tables.items():
            if t.ratings is None:
                raise ValueError(f"min_rating={opts.min_rating} given but {t.path} "
                                 f"({t.format}) has no rating column")
            keep = t.ratings >= opts.min_rating
            dropped[s] = int((~keep).sum())
            tables[s] = t.subset(keep)
        info["dropped_below_min_rating"] = dropped
    dups = {}
    for s, t in tables.items():
        tables[s], dups[s] = dedup(t)
    info["duplicates_removed"] = {**dups, "total": int(sum(dups.values()))}
    for t in tables.values():
        check_range(t, opts.num_users, "user")
        check_range(t, opts.num_items, "item")
    if opts.kcore and opts.kcore > 1:
        tables, info["kcore"] = kcore(tables, int(opts.kcore))
    if sum(len(t) for t in tables.values()) == 0:
        raise ValueError(f"{source.name}: no interactions left after filtering "
                         f"(min_rating={opts.min_rating}, kcore={opts.kcore})")
    remap = source.default_remap if opts.remap is None else bool(opts.remap)
    ids, nu, ni, raw_u, raw_i = remap_ids(tables, remap, opts, source)
    info["remapped"] = remap
    given = "all" not in tables
    split = opts.split or ("given" if given else "3:1:1")
    info["split"], info["seed"] = split, opts.seed
    eval_negatives = None
    if split == "given":
        if not given:
            path = next(iter(tables.values())).path
            raise ValueError(f"{path}: split='given' (--split given) needs a folder with train.txt "
                             f"and test.txt; this is a single file: choose a ratio such as "
                             f"3:1:1 or 8:1:1, or loo")
        csr = {s: CSR.from_pairs(*ids[s], nu, ni) if s in ids else CSR.empty(nu)
               for s in SPLIT_NAMES}
    else:
        users = np.concatenate([v[0] for v in ids.values()])
        items = np.concatenate([v[1] for v in ids.values()])
        stamps = None
        if all(t.timestamps is not None for t in tables.values()):
            stamps = np.concatenate([t.timestamps for t in tables.values()])
        if len(ids) > 1:  # re-splitting a given folder: the union of its unique pairs
            keys = users * max(ni, 1) + items
            _, first = np.unique(keys, return_index=True)
            users, items = users[first], items[first]
            stamps = None if stamps is None else stamps[first]
        if split == "loo":
            by_time = opts.loo_by == "time" and stamps is not None
            assign = S.leave_one_out_split(users, items, nu, opts.seed,
                                           stamps if by_time else None, opts.loo_valid)
            info["loo_by"] = "time" if by_time else "random"
        else:
            ratio = S.parse_ratio(split)
            assign = S.ratio_split(users, items, nu, ratio, opts.seed, opts.split_rounding)
            info["split_rounding"] = opts.split_rounding
        csr = {s: CSR.from_pairs(users[assign == code], items[assign == code], nu, ni)
               for s, code in (("train", S.TRAIN), ("valid", S.VALID), ("test", S.TEST))}
        if split == "loo":
            everything = CSR.from_pairs(users, items, nu, ni)
            eval_negatives = S.sample_eval_negatives(everything, ni, opts.num_negatives,
                                                     opts.seed)
            info["num_negatives"] = opts.num_negatives
    if opts.valid_fraction is not None:
        if csr["valid"].nnz:
            raise ValueError(
                f"valid_fraction={opts.valid_fraction} given but split {split!r} already has "
                f"validation pairs (a valid file, a ratio with a validation share, or loo_valid)")
        csr["train"], csr["valid"] = S.valid_from_train(csr["train"], opts.valid_fraction,
                                                        opts.seed)
        info["valid_fraction"] = opts.valid_fraction
    data = InteractionData(source.name, nu, ni, csr["train"], csr["valid"], csr["test"],
                           eval_negatives, raw_u, raw_i, info)
    data.info.update(summarize(data))
    for w in data.info["warnings"]:
        logger.warning("%s: %s", source.name, w)
    logger.info("loaded %s: %d users, %d items, train/valid/test %d/%d/%d", source.name, nu, ni,
                csr["train"].nnz, csr["valid"].nnz, csr["test"].nnz)
    return data


def load(path: str | Path | None = None, format: str | None = None, *,
         options: LoadOptions | None = None, **kwargs: Any) -> InteractionData:
    """Load a dataset into :class:`InteractionData`.

    ``path``: a file, a folder (``train.txt`` + ``test.txt`` [+ ``valid.txt``], ``u.data``,
    ``ratings.dat``, a RecBole ``.inter`` or ``name.{train,valid,test}.inter``), or None /
    ``"default"`` for the embedded synthetic dataset. ``format`` forces a reader (see
    ``readers.FORMATS``); options are :class:`LoadOptions` fields, given as keywords or as
    ``options``. Bad input raises :class:`DataFormatError` naming the file and line.
    """
    if options is not None and kwargs:
        raise TypeError("pass either options=LoadOptions(...) or keyword options, not both")
    opts = options or LoadOptions.from_kwargs(**kwargs)
    if path is None or (isinstance(path, str) and path == "default"):
        return build_default(opts)
    return build(_resolve(Path(path), format, opts), opts)


def build_default(opts: LoadOptions, config: SyntheticConfig | None = None) -> InteractionData:
    """The default dataset generated with ``opts.seed`` and processed with ``opts``."""
    cfg = config or SyntheticConfig()
    data = build(default_source(opts.seed, cfg), opts)
    data.info["synthetic"] = dict(cfg.__dict__)
    return data


def default_dataset(seed: int = 0, config: SyntheticConfig | None = None,
                    **options: Any) -> InteractionData:
    """The embedded default dataset, split 3:1:1 per user unless ``split=`` says otherwise.

    ``seed`` drives both the generator and the split; other keywords are LoadOptions.
    """
    return build_default(LoadOptions.from_kwargs(seed=seed, **options), config)


def with_valid_from_train(data: InteractionData, fraction: float, seed: int) -> InteractionData:
    """``data`` with ``fraction`` of each user's training items moved to validation (what
    ``load(..., valid_fraction=fraction)`` gives); ``data`` must have no validation pairs."""
    if data.valid.nnz:
        raise ValueError(f"{data.name}: already has {data.valid.nnz} validation pairs")
    train, valid = S.valid_from_train(data.train, fraction, seed)
    info = {**data.info, "valid_fraction": fraction}
    out = InteractionData(data.name, data.num_users, data.num_items, train, valid, data.test,
                          data.eval_negatives, data.raw_user_ids, data.raw_item_ids, info)
    out.info.update(summarize(out))
    return out
