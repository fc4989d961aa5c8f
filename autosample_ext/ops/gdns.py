"""The GDNS state operators, in both layouts (docs/search.md "GDNS state"; the rules are in
csrc/include/autosample/gdns_table.h, the oracles in :mod:`autosample_ext.ops.reference_gdns`).

* dense (the paper's exact gain): ``h, g [U, I]``, 1.0 for a pair never selected:
  :func:`gdns_dense_lookup`, :func:`gdns_dense_update`;
* slot table (a named approximation for data too large for the dense table): ``slot_keys,
  slot_h, slot_g [U, S]``: :func:`gdns_lookup`, :func:`gdns_update`, :func:`gdns_contains`.
"""
from __future__ import annotations

import torch

from autosample_ext import _C  # noqa: F401  (loads the operator library)
from autosample_ext.ops._fake_checks import (
    _check_devices,
    _check_float,
    _check_index,
    _check_same_dtype,
)

_ops = torch.ops.autosample


def gdns_lookup(
    slot_keys: torch.Tensor, slot_g: torch.Tensor, users: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    """GDNS gain ``G`` of (user, item) pairs from the per-user slot table (the approximation).

    ``slot_keys [U, S]`` int64 (-1 = empty), ``slot_g [U, S]`` float, ``users [B]``,
    ``items [B, M]`` (ids >= 0) -> ``G [B, M]`` of slot_g's dtype. A pair not in the table reads
    1.0 while its user's row has an empty slot (it was never selected), else the row's default
    gain, the mean G of its S entries (csrc/include/autosample/gdns_table.h).
    """
    return _ops.gdns_lookup(slot_keys, slot_g, users, items)


def gdns_update(
    slot_keys: torch.Tensor,
    slot_h: torch.Tensor,
    slot_g: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    pos_scores: torch.Tensor,
    neg_scores: torch.Tensor,
    alpha: float,
    eps: float,
) -> None:
    """Update the slot table's GDNS state of the selected pairs in place.

    ``items [B, N]`` the selected negatives of user ``users[b]``, ``pos_scores [B, P]``,
    ``neg_scores [B, N]``. For each pair: ``H_new = mean_p sigmoid(neg - pos_p)``,
    ``G <- alpha * G_old + (1 - alpha) * sigmoid((H_old - H_new) / (H_new + eps))``,
    ``H <- H_new``. A pair not in the table is inserted with ``H_old = 1`` and ``G_old`` = what
    :func:`gdns_lookup` reads for it (1, or the full row's mean G).

    Order: pairs are applied one after another in row-major order of ``items`` (row b, then
    column n), each reading what the previous wrote, so a (user, item) pair repeated in one call
    is updated twice. A full user row evicts the entry whose G is closest to the row's mean G
    (ties: lowest slot).
    """
    _ops.gdns_update(
        slot_keys, slot_h, slot_g, users, items, pos_scores, neg_scores, float(alpha), float(eps)
    )


def gdns_contains(slot_keys: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``[B, M]`` bool: whether the slot table holds an entry for (users[b], items[b, m]), i.e.
    whether the gain :func:`gdns_lookup` reads for it was measured rather than a default."""
    return _ops.gdns_contains(slot_keys, users, items)


def gdns_dense_lookup(g: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """GDNS gain ``G`` of (user, item) pairs from the dense table (the paper's exact gain).

    ``g [U, I]`` float, ``users [B]`` in ``[0, U)``, ``items [B, M]`` in ``[0, I)`` ->
    ``out[b, m] = g[users[b], items[b, m]]`` ``[B, M]``.
    """
    return _ops.gdns_dense_lookup(g, users, items)


def gdns_dense_update(
    h: torch.Tensor,
    g: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    pos_scores: torch.Tensor,
    neg_scores: torch.Tensor,
    alpha: float,
    eps: float,
) -> None:
    """Update the dense GDNS state ``h, g [U, I]`` (1.0 for a pair never selected) in place.

    The formula and order of :func:`gdns_update`, applied to ``h[u, item]`` and ``g[u, item]``
    (no insertion, no eviction: every pair has its own entry).
    """
    _ops.gdns_dense_update(
        h, g, users, items, pos_scores, neg_scores, float(alpha), float(eps)
    )


# Fake (meta) kernels: shapes and dtypes only, for torch.compile and opcheck.

@torch.library.register_fake("autosample::gdns_lookup")
def _(slot_keys, slot_g, users, items):
    op = "gdns_lookup"
    _check_index(op, "slot_keys", slot_keys, 2)
    _check_float(op, "slot_g", slot_g, 2)
    _check_index(op, "users", users, 1)
    _check_index(op, "items", items, 2)
    _check_devices(op, "slot_keys", slot_keys, slot_g=slot_g, users=users, items=items)
    return slot_g.new_empty(items.shape)


@torch.library.register_fake("autosample::gdns_update")
def _(slot_keys, slot_h, slot_g, users, items, pos_scores, neg_scores, alpha, eps):
    op = "gdns_update"
    _check_index(op, "slot_keys", slot_keys, 2)
    for name, t in (("slot_h", slot_h), ("slot_g", slot_g), ("pos_scores", pos_scores),
                    ("neg_scores", neg_scores)):
        _check_float(op, name, t, 2)
        _check_same_dtype(op, slot_h, name, t)
    _check_index(op, "users", users, 1)
    _check_index(op, "items", items, 2)
    _check_devices(op, "slot_keys", slot_keys, slot_h=slot_h, slot_g=slot_g, users=users, items=items,
                   pos_scores=pos_scores, neg_scores=neg_scores)


@torch.library.register_fake("autosample::gdns_contains")
def _(slot_keys, users, items):
    op = "gdns_contains"
    _check_index(op, "slot_keys", slot_keys, 2)
    _check_index(op, "users", users, 1)
    _check_index(op, "items", items, 2)
    _check_devices(op, "slot_keys", slot_keys, users=users, items=items)
    return items.new_empty(items.shape, dtype=torch.bool)


@torch.library.register_fake("autosample::gdns_dense_lookup")
def _(g, users, items):
    op = "gdns_dense_lookup"
    _check_float(op, "g", g, 2)
    _check_index(op, "users", users, 1)
    _check_index(op, "items", items, 2)
    _check_devices(op, "g", g, users=users, items=items)
    return g.new_empty(items.shape)


@torch.library.register_fake("autosample::gdns_dense_update")
def _(h, g, users, items, pos_scores, neg_scores, alpha, eps):
    op = "gdns_dense_update"
    for name, t in (("h", h), ("g", g), ("pos_scores", pos_scores), ("neg_scores", neg_scores)):
        _check_float(op, name, t, 2)
        _check_same_dtype(op, h, name, t)
    _check_index(op, "users", users, 1)
    _check_index(op, "items", items, 2)
    _check_devices(op, "h", h, g=g, users=users, items=items, pos_scores=pos_scores,
                   neg_scores=neg_scores)
