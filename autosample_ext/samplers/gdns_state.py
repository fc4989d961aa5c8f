"""GDNS's per-(user, item) state, H and G, in one of two layouts (docs/search.md; the rules
are in csrc/include/autosample/gdns_table.h, the operators in :mod:`autosample_ext.ops.gdns`).

* ``dense``: the paper's exact gain, ``h, g [U, I]`` float32 (``I`` = items, ``U`` = the users
  of this process), 1.0 for a pair never selected. Memory ``8 * U * I`` bytes (ml-1m: 6,040 x
  3,706 x 8 = 179 MB).
* ``slots``: a named approximation for data too large for that: ``S`` slots per user holding
  (item, H, G), ``16 * U * S`` bytes; an absent pair reads 1 until its user's row is full, then
  the row's mean G; a full row evicts the entry whose G is closest to that mean.

:func:`plan_table` picks the layout and size from the options BEFORE anything is allocated,
against ``max_table_bytes``; :class:`GainTable` holds the tensors and counts, per epoch, how
live the gain is (selected negatives whose G was measured, i.e. G < 1 for the dense table, an
entry in the table for the slots) and the mean G of the selected negatives and of every pair
seen so far.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from autosample_ext import ops
from autosample_ext.samplers.base import SamplerOptionError

log = logging.getLogger(__name__)

TABLES: tuple[str, ...] = ("auto", "dense", "slots")
DENSE_BYTES_PER_PAIR = 8     # H and G, float32
SLOT_BYTES = 16              # item key int64, H and G float32

#: the per-epoch counters: selected negatives, those with a measured gain, the sum of their G
_SELECTED, _LIVE, _SUM_G = range(3)


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


@dataclass(frozen=True)
class TablePlan:
    """layout: ``"dense"`` or ``"slots"``; num_slots: S (slots only); nbytes: the state's size."""

    layout: str
    num_slots: int
    nbytes: int


def plan_table(table: str, max_table_bytes: int, num_slots: int | None, num_users: int,
               num_items: int, *, quiet: bool = False) -> TablePlan:
    """The layout of the GDNS state of ``num_users`` users (this process's) and ``num_items``
    items, decided before allocating. ``table="dense"`` over the budget raises
    :class:`SamplerOptionError` naming the option, the size and the budget; ``"auto"`` takes the
    dense table when it fits and otherwise falls back to the slot table, logging one line that
    says so (unless ``quiet``); slots with ``num_slots=None`` get as many per user as the budget allows (at most
    ``num_items``, which holds every pair)."""
    if table not in TABLES:
        raise SamplerOptionError(f"gdns.table={table}: expected one of {', '.join(TABLES)}")
    dense = DENSE_BYTES_PER_PAIR * num_users * num_items
    if table in ("auto", "dense") and dense <= max_table_bytes:
        return TablePlan("dense", 0, dense)
    if table == "dense":
        raise SamplerOptionError(
            f"gdns.table=dense: H and G of {num_users:,} users x {num_items:,} items take "
            f"{_size(dense)} ({dense:,} bytes), over gdns.max_table_bytes={max_table_bytes:,} "
            f"({_size(max_table_bytes)}); raise --sampler-opt gdns.max_table_bytes, or use "
            f"--sampler-opt gdns.table=slots (an approximation)")
    fit = max_table_bytes // max(SLOT_BYTES * num_users, 1)
    slots = min(num_items, fit) if num_slots is None else num_slots
    nbytes = SLOT_BYTES * num_users * slots
    if slots < 1 or nbytes > max_table_bytes:
        need = f"{slots} slot(s) per user" if num_slots is not None else "one slot per user"
        raise SamplerOptionError(
            f"gdns.max_table_bytes={max_table_bytes:,} ({_size(max_table_bytes)}) cannot hold "
            f"{need} for {num_users:,} users ({_size(SLOT_BYTES * num_users * max(slots, 1))}); "
            f"raise --sampler-opt gdns.max_table_bytes or lower gdns.num_slots")
    if table == "auto" and not quiet:
        log.warning("gdns: the dense gain table (%s users x %s items, %s) exceeds "
                    "gdns.max_table_bytes (%s): using the slot table, %d slots per user (%s), "
                    "an approximation (docs/search.md, \"GDNS state\")", f"{num_users:,}",
                    f"{num_items:,}", _size(dense), _size(max_table_bytes), slots, _size(nbytes))
    return TablePlan("slots", slots, nbytes)


class GainTable:
    """H and G of this process's users (rows = :meth:`UserShard.rows`), in the planned layout."""

    def __init__(self, plan: TablePlan, num_users: int, num_items: int, device: torch.device) -> None:
        self.plan = plan
        self.num_items = num_items
        if plan.layout == "dense":
            self.h = torch.ones(num_users, num_items, dtype=torch.float32, device=device)
            self.g = torch.ones(num_users, num_items, dtype=torch.float32, device=device)
            self.keys: torch.Tensor | None = None
        else:
            shape = (num_users, plan.num_slots)
            self.keys = torch.full(shape, -1, dtype=torch.int64, device=device)
            self.h = torch.ones(shape, dtype=torch.float32, device=device)
            self.g = torch.ones(shape, dtype=torch.float32, device=device)
        self.counters = torch.zeros(3, dtype=torch.float64, device=device)

    @property
    def dense(self) -> bool:
        return self.keys is None

    def gain(self, rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``[B, M]`` G of (row, item) pairs as the selection reads it."""
        if self.dense:
            return ops.gdns_dense_lookup(self.g, rows, items)
        return ops.gdns_lookup(self.keys, self.g, rows, items)

    def measured(self, rows: torch.Tensor, items: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """``[B, n]`` bool: the pair's G was measured (an update reached it and it is still
        held): G < 1 in the dense table, an entry in the slot table."""
        if self.dense:
            return gain < 1
        return ops.gdns_contains(self.keys, rows, items)

    def count_selected(self, rows: torch.Tensor, items: torch.Tensor, gain: torch.Tensor) -> None:
        """Add the selected negatives ``items [B, n]`` with their read ``gain`` to the epoch's
        counters."""
        live = self.measured(rows, items, gain)
        self.counters += torch.stack([torch.tensor(float(items.numel()), dtype=torch.float64,
                                                   device=self.counters.device),
                                      live.sum().to(torch.float64),
                                      gain.sum(dtype=torch.float64)])

    def update(self, rows: torch.Tensor, items: torch.Tensor, pos_scores: torch.Tensor,
               neg_scores: torch.Tensor, alpha: float, eps: float) -> None:
        pos = pos_scores.to(self.h.dtype).contiguous()
        neg = neg_scores.to(self.h.dtype).contiguous()
        if self.dense:
            ops.gdns_dense_update(self.h, self.g, rows, items, pos, neg, alpha, eps)
        else:
            ops.gdns_update(self.keys, self.h, self.g, rows, items, pos, neg, alpha, eps)

    def epoch_sums(self) -> dict[str, float]:
        """This process's sums for the epoch's log line (summed over the ranks by the trainer):
        selected negatives, those with a measured gain, the sum of their G, and over the whole
        table the pairs seen so far and the sum of their G. Resets the per-epoch counters."""
        if self.dense:
            # A selected pair has H < 1 (a mean of sigmoids); a pair never selected holds
            # H = G = 1, so the G of the seen pairs sums to all G minus one per unseen pair
            # (two passes over the table, no boolean gather; float32's cascaded sum, which is
            # 40x faster than a float64 one here, is off by ~1e-7 of the table's total).
            seen = float(torch.count_nonzero(self.h != 1))
            sum_g = float(self.g.sum()) - (self.g.numel() - seen)
        else:
            held = self.keys >= 0
            seen = float(held.sum())
            sum_g = float(torch.where(held, self.g, 0).sum(dtype=torch.float64))
        c = self.counters.tolist()
        self.counters.zero_()
        return {"selected": c[_SELECTED], "live": c[_LIVE], "sum_g_selected": c[_SUM_G],
                "seen": seen, "sum_g_seen": sum_g}

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The state, compactly for the dense table: a bit mask of the pairs whose H or G is not 1
        and their values (a table of 1.0s costs one bit a pair; exact: a pair not in the mask
        holds H = G = 1)."""
        out: dict[str, Any] = {"layout": self.plan.layout, "counters": self.counters.clone()}
        if not self.dense:
            out.update(keys=self.keys.clone(), h=self.h.clone(), g=self.g.clone())
            return out
        touched = (self.h != 1) | (self.g != 1)
        out.update(shape=list(self.h.shape),
                   mask=torch.from_numpy(np.packbits(touched.cpu().numpy().reshape(-1))),
                   h=torch.masked_select(self.h, touched).cpu(),
                   g=torch.masked_select(self.g, touched).cpu())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("layout") != self.plan.layout:
            raise ValueError(f"gdns: the checkpoint holds a {state.get('layout')!r} gain table, this "
                             f"run plans a {self.plan.layout!r} one (gdns.table, "
                             f"gdns.max_table_bytes); resume with the original options")
        self.counters.copy_(state["counters"])
        if not self.dense:
            for key, mine in (("keys", self.keys), ("h", self.h), ("g", self.g)):
                value = state[key]
                if tuple(value.shape) != tuple(mine.shape) or value.dtype != mine.dtype:
                    raise ValueError(f"gdns: state {key!r} is {tuple(value.shape)} {value.dtype}, "
                                     f"expected {tuple(mine.shape)} {mine.dtype}")
                mine.copy_(value)
            return
        if list(state["shape"]) != list(self.h.shape):
            raise ValueError(f"gdns: the checkpoint's gain table is {list(state['shape'])}, this "
                             f"run needs {list(self.h.shape)}")
        n = self.h.numel()
        touched = torch.from_numpy(np.unpackbits(state["mask"].numpy(), count=n).astype(bool))
        touched = touched.reshape(self.h.shape).to(self.h.device)
        self.h.fill_(1.0).masked_scatter_(touched, state["h"].to(self.h.device))
        self.g.fill_(1.0).masked_scatter_(touched, state["g"].to(self.g.device))
