"""Seeded per-user splits and sampled evaluation negatives, vectorised with numpy.

Every function takes unique ``(users, items)`` int64 pairs with internal ids and returns a
per-pair assignment (``TRAIN`` / ``VALID`` / ``TEST``, int8). Results depend only on the pair
*set*, the seed and the timestamps, never on the input order (pairs are put in canonical
(user, item) order before any draw).

Users with few interactions (a user always keeps at least one training item):

* ratio split ``a:b:c`` (train:valid:test), ``rounding="half_up"`` (default): per user with
  ``n`` interactions, ``n_test = round(n * c / (a+b+c))`` and ``n_valid = round(n * b / (a+b+c))``
  (round half up), then ``n = 1``: train only; ``n = 2``: one test item (no validation);
  ``n >= 3``: at least one test and, when ``b > 0``, one validation item; if train would be
  empty, validation then test give items back until train holds one.
* ratio split, ``rounding="floor"``: RecBole's ``Dataset._calcu_split_ids`` (RecBole 1.2.1)
  exactly: with ``r_v, r_t`` the normalised ratios (float64, as RecBole computes them),
  ``n_valid = floor(r_v * n)``, ``n_test = floor(r_t * n)``, train the rest; then for test and
  then validation: stop as soon as train holds <= 1 item, otherwise a part with
  ``0 < r * n < 1`` gets one item from train. So n = 1: (1, 0, 0); n = 2: (1, 0, 1); 8:1:1 with
  3 <= n <= 9: (n - 2, 1, 1); n = 10..19: (n - 2, 1, 1); n = 20: (16, 2, 2).
  The items of each part are a uniformly random subset, as RecBole's shuffle ("RO") then
  in-order slicing per user gives.
* leave-one-out: ``n = 1``: train only (no test item: the user is skipped by evaluation);
  ``n = 2``: one test item; ``n >= 3``: one test and, when ``valid=True``, one validation item.
  The held-out items are the latest by timestamp when timestamps are given (ties broken at
  random), else random.
* validation from train: per user with ``n >= 2`` training items,
  ``max(1, round(n * fraction))`` move to validation, at most ``n - 1``; ``n = 1`` stays in train.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from autosample_ext.data.interactions import CSR

logger = logging.getLogger(__name__)

TRAIN, VALID, TEST = 0, 1, 2

# Independent random streams per purpose, so that changing one option never shifts other draws.
STREAM_SYNTHETIC, STREAM_SPLIT, STREAM_VALID, STREAM_NEGATIVES = 0, 1, 2, 3


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def parse_ratio(split: str | tuple[float, ...]) -> tuple[float, float, float]:
    """``"3:1:1"`` / ``(8, 1, 1)`` -> normalised (train, valid, test); ``"8:2"`` means no valid."""
    parts = split.split(":") if isinstance(split, str) else list(split)
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"split ratio {split!r} must be numbers separated by ':'") from None
    if len(nums) == 2:
        nums = [nums[0], 0.0, nums[1]]
    if len(nums) != 3 or min(nums) < 0 or nums[0] <= 0 or nums[2] <= 0:
        raise ValueError(f"split ratio {split!r} must be train:valid:test (or train:test) with "
                         f"train > 0, test > 0, valid >= 0")
    total = sum(nums)
    return nums[0] / total, nums[1] / total, nums[2] / total


def has_valid_share(split: str | None) -> bool:
    """A ratio split that assigns validation pairs itself (3:1:1 does, 8:2, given and loo do not)."""
    return split not in (None, "given", "loo") and parse_ratio(split)[1] > 0


def _canonical(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Permutation putting pairs in (user, item) order (one sort of a combined int64 key)."""
    if users.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argsort(users * (int(items.max()) + 1) + items, kind="stable")


def _rank_within_user(users: np.ndarray, num_users: int, position: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each pair inside its user when ordered by ``position``, a
    permutation of ``arange(n)`` (distinct int64 keys, so one argsort suffices)."""
    n = users.size
    order = np.argsort(users * max(n, 1) + position, kind="stable")
    counts = np.bincount(users, minlength=num_users)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[users[order]]
    return rank


def _random_positions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.permutation(n).astype(np.int64)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


SPLIT_ROUNDINGS: tuple[str, ...] = ("half_up", "floor")


def floor_split_sizes(n: np.ndarray, ratio: tuple[float, float, float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(n_valid, n_test)`` per user of RecBole's ``_calcu_split_ids`` (module docstring)."""
    total = float(ratio[0]) + float(ratio[1]) + float(ratio[2])
    rv, rt = float(ratio[1]) / total, float(ratio[2]) / total
    n = np.asarray(n, dtype=np.int64)
    n_valid = np.floor(rv * n.astype(np.float64)).astype(np.int64)
    n_test = np.floor(rt * n.astype(np.float64)).astype(np.int64)
    n_train = n - n_valid - n_test
    for part, r in ((n_test, rt), (n_valid, rv)):       # RecBole: the last part first
        x = r * n.astype(np.float64)
        give = (n_train > 1) & (x > 0) & (x < 1)
        part += give
        n_train = n_train - give
    return n_valid, n_test


def ratio_split(users: np.ndarray, items: np.ndarray, num_users: int,
                ratio: tuple[float, float, float], seed: int,
                rounding: str = "half_up") -> np.ndarray:
    """Random per-user ``train:valid:test`` split; see the module docstring for the rounding
    and small users."""
    if rounding not in SPLIT_ROUNDINGS:
        raise ValueError(f"split rounding must be one of {SPLIT_ROUNDINGS}, got {rounding!r}")
    _, fv, ft = ratio
    canon = _canonical(users, items)
    u = users[canon]
    rank = _rank_within_user(u, num_users, _random_positions(rng_for(seed, STREAM_SPLIT), u.size))
    n = np.bincount(u, minlength=num_users)
    if rounding == "floor":
        n_valid, n_test = floor_split_sizes(n, ratio)
        return _assign(u, canon, rank, n_test[u], n_valid[u])
    n_test = _round_half_up(n * ft)
    n_valid = _round_half_up(n * fv)
    n_test = np.where(n >= 2, np.maximum(n_test, 1), 0)
    n_valid = np.where((n >= 3) & (fv > 0), np.maximum(n_valid, 1), 0)
    excess = np.maximum(n_test + n_valid - (n - 1), 0)
    give = np.minimum(excess, np.maximum(n_valid - 1, 0))
    n_valid, excess = n_valid - give, excess - give
    give = np.minimum(excess, np.maximum(n_test - 1, 0))
    n_test, excess = n_test - give, excess - give
    n_valid = n_valid - np.minimum(excess, n_valid)
    return _assign(u, canon, rank, n_test[u], n_valid[u])


def _assign(u: np.ndarray, canon: np.ndarray, rank: np.ndarray, nt: np.ndarray,
            nv: np.ndarray) -> np.ndarray:
    """Per pair (input order): TEST for the ``nt`` lowest ranks of its user, VALID for the next
    ``nv``, TRAIN for the rest."""
    out = np.full(u.size, TRAIN, dtype=np.int8)
    out[rank < nt + nv] = VALID
    out[rank < nt] = TEST
    result = np.empty_like(out)
    result[canon] = out
    return result


def leave_one_out_split(users: np.ndarray, items: np.ndarray, num_users: int, seed: int,
                        timestamps: np.ndarray | None = None, valid: bool = True) -> np.ndarray:
    """Per user: the latest (by timestamp, else random) pair to test, the next one to valid."""
    canon = _canonical(users, items)
    u = users[canon]
    position = _random_positions(rng_for(seed, STREAM_SPLIT), u.size)
    if timestamps is not None:
        # latest first; equal timestamps keep the random order of ``position``
        ts = np.asarray(timestamps, dtype=np.float64)[canon]
        shuffled = np.argsort(position)
        by_time = shuffled[np.argsort(-ts[shuffled], kind="stable")]
        position = np.empty(u.size, dtype=np.int64)
        position[by_time] = np.arange(u.size)
    rank = _rank_within_user(u, num_users, position)
    n = np.bincount(u, minlength=num_users)[u]
    out = np.full(u.size, TRAIN, dtype=np.int8)
    out[(rank == 0) & (n >= 2)] = TEST
    if valid:
        out[(rank == 1) & (n >= 3)] = VALID
    result = np.empty_like(out)
    result[canon] = out
    return result


def valid_from_train(train: CSR, fraction: float, seed: int) -> tuple[CSR, CSR]:
    """Move ``fraction`` of each user's training items to a validation CSR (seeded)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {fraction}")
    users, items = (t.numpy() for t in train.pairs())
    n_users = train.num_users
    rank = _rank_within_user(users, n_users, _random_positions(rng_for(seed, STREAM_VALID),
                                                               users.size))
    n = np.bincount(users, minlength=n_users)
    nv = np.where(n >= 2, np.clip(_round_half_up(n * fraction), 1, np.maximum(n - 1, 1)), 0)
    to_valid = rank < nv[users]
    return (CSR.from_pairs(users[~to_valid], items[~to_valid], n_users),
            CSR.from_pairs(users[to_valid], items[to_valid], n_users))


class NotEnoughNegatives(ValueError):
    """Users with fewer never-interacted items than the leave-one-out negatives to draw."""


def sample_eval_negatives(positives: CSR, num_items: int, num_negatives: int,
                          seed: int) -> torch.Tensor:
    """``[num_users, num_negatives]`` int64: per user, distinct items never among its positives,
    a uniformly random subset (drawn without replacement), each row sorted ascending.

    ``positives`` should hold every positive of the user (train, valid and test). Raises
    :class:`NotEnoughNegatives` (a ValueError) when a user has fewer than ``num_negatives``
    non-positive items.
    """
    k = int(num_negatives)
    num_users = positives.num_users
    if k <= 0:
        raise ValueError(f"num_negatives must be positive, got {k}")
    indptr = positives.indptr.numpy()
    pos_items = positives.indices.numpy()
    deg = np.diff(indptr)
    free = num_items - deg
    short = np.flatnonzero(free < k)
    if short.size:
        raise NotEnoughNegatives(
            f"{short.size} user(s) have fewer than num_negatives={k} items they never interacted "
            f"with (user {int(short[0])}: {int(free[short[0]])} of {num_items}): the "
            f"leave-one-out split ranks each held-out item among {k} fixed negatives "
            f"(load(..., num_negatives=N) draws fewer)")
    rng = rng_for(seed, STREAM_NEGATIVES)
    out = np.empty((num_users, k), dtype=np.int64)
    pos_keys = np.repeat(np.arange(num_users, dtype=np.int64), deg) * num_items + pos_items
    # Dense users (few free items): enumerate the complement and choose from it directly.
    dense = np.flatnonzero(free < 4 * k)
    for u in dense:
        comp = np.setdiff1d(np.arange(num_items), pos_items[indptr[u]:indptr[u + 1]],
                            assume_unique=True)
        out[u] = np.sort(rng.choice(comp, size=k, replace=False))
    # Others: rejection rounds. The first k distinct accepted draws of an i.i.d. uniform stream
    # over the free items are a uniform k-subset.
    todo = np.setdiff1d(np.arange(num_users), dense)
    chosen_u = np.zeros(0, dtype=np.int64)
    chosen_i = np.zeros(0, dtype=np.int64)
    need = np.full(num_users, k, dtype=np.int64)
    while todo.size:
        draws = np.ceil(need[todo] * num_items / free[todo] * 1.3).astype(np.int64) + 4
        cu = np.repeat(todo, draws)
        ci = rng.integers(0, num_items, size=cu.size)
        ckeys = cu * num_items + ci
        hit = np.searchsorted(pos_keys, ckeys)
        hit = np.minimum(hit, max(pos_keys.size - 1, 0))
        is_pos = pos_keys[hit] == ckeys if pos_keys.size else np.zeros(cu.size, dtype=bool)
        cu, ci, ckeys = cu[~is_pos], ci[~is_pos], ckeys[~is_pos]
        all_keys = np.concatenate((chosen_u * num_items + chosen_i, ckeys))
        all_u = np.concatenate((chosen_u, cu))
        _, first = np.unique(all_keys, return_index=True)
        first.sort()  # keep draw order: earlier chosen items, then this round's in draw order
        keys_u = all_u[first]
        order = np.argsort(keys_u, kind="stable")
        first, keys_u = first[order], keys_u[order]
        counts = np.bincount(keys_u, minlength=num_users)
        starts = np.cumsum(counts) - counts
        rank = np.arange(first.size) - starts[keys_u]
        keep = first[rank < k]
        chosen_u = all_u[keep]
        chosen_i = all_keys[keep] - chosen_u * num_items
        have = np.bincount(chosen_u, minlength=num_users)
        need = k - have
        todo = todo[need[todo] > 0]
    # every non-dense user now holds exactly k items: sort by (user, item) and fill its row
    sel = np.argsort(chosen_u * num_items + chosen_i, kind="stable")
    rows = np.setdiff1d(np.arange(num_users), dense)
    out[rows] = chosen_i[sel].reshape(rows.size, k)
    return torch.from_numpy(out)
