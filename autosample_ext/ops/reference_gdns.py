"""Pure-PyTorch oracles of GDNS's per-user gain tables: the slot table (``gdns_lookup``,
``gdns_update``, ``gdns_contains``) and the dense users x items table (``gdns_dense_lookup``,
``gdns_dense_update``), with the gain formula they share (``gdns_h_new``, ``gdns_next_gain``).

Python loops over small inputs: the test oracles of the operators of
:mod:`autosample_ext.ops.gdns`, following csrc/include/autosample/gdns_table.h slot for slot
(the home slot's hash, linear probing, the eviction rule), so tables compare exactly.
"""
from __future__ import annotations

import torch

from autosample_ext.ops.reference import _MASK64


def gdns_home_slot(item: int, num_slots: int) -> int:
    x = item & _MASK64
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    return x % num_slots


def _gdns_find(keys: list[int], item: int) -> int:
    s = len(keys)
    slot = gdns_home_slot(item, s)
    for _ in range(s):
        if keys[slot] == item:
            return slot
        if keys[slot] == -1:
            return -1
        slot = (slot + 1) % s
    return -1


def gdns_default_gain(keys: list[int], g: list[float], dtype: torch.dtype) -> torch.Tensor:
    """The gain an absent pair of a slot row reads: 1 while the row has an empty slot, else the
    mean G of its entries (summed in slot order in float64, then cast)."""
    if -1 in keys:
        return torch.tensor(1.0, dtype=dtype)
    total = 0.0
    for value in g:
        total += value
    return torch.tensor(total / len(g), dtype=torch.float64).to(dtype)


def gdns_lookup(slot_keys: torch.Tensor, slot_g: torch.Tensor, users: torch.Tensor,
                items: torch.Tensor) -> torch.Tensor:
    """Python-loop oracle of the slot table lookup (small inputs only)."""
    out = torch.ones(items.shape, dtype=slot_g.dtype)
    keys = slot_keys.tolist()
    g = slot_g.tolist()
    for b, u in enumerate(users.tolist()):
        for m, item in enumerate(items[b].tolist()):
            slot = _gdns_find(keys[u], item)
            out[b, m] = g[u][slot] if slot >= 0 else gdns_default_gain(keys[u], g[u], slot_g.dtype)
    return out


def gdns_contains(slot_keys: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Whether the slot table holds each (users[b], items[b, m]) pair."""
    return (slot_keys[users].unsqueeze(1) == items.unsqueeze(2)).any(dim=2)


def gdns_h_new(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """``H_new[b, n] = mean_p sigmoid(neg[b, n] - pos[b, p])``."""
    return torch.sigmoid(neg_scores.unsqueeze(2) - pos_scores.unsqueeze(1)).mean(dim=2)


def gdns_next_gain(g_old, h_old, h_new, alpha: float, eps: float):
    gain = torch.sigmoid(torch.as_tensor((h_old - h_new) / (h_new + eps)))
    return alpha * g_old + (1.0 - alpha) * gain


def gdns_update(slot_keys: torch.Tensor, slot_h: torch.Tensor, slot_g: torch.Tensor,
                users: torch.Tensor, items: torch.Tensor, pos_scores: torch.Tensor,
                neg_scores: torch.Tensor, alpha: float, eps: float) -> None:
    """Python-loop oracle of the slot-table update, in place (small inputs only).

    Pairs are applied in row-major order. An absent pair takes an empty slot of its probe path
    (``H_old = G_old = 1``); in a full row it overwrites the entry whose G is closest to the
    row's default gain (lowest slot on ties), with ``H_old = 1`` and ``G_old`` = that default,
    as csrc/include/autosample/gdns_table.h.
    """
    h_new_all = gdns_h_new(pos_scores, neg_scores)
    num_slots = slot_keys.shape[1]
    dtype = slot_g.dtype
    for b, u in enumerate(users.tolist()):
        for n, item in enumerate(items[b].tolist()):
            keys = slot_keys[u].tolist()
            slot = gdns_home_slot(item, num_slots)
            target, found = -1, False
            for _ in range(num_slots):
                if keys[slot] == item:
                    target, found = slot, True
                    break
                if keys[slot] == -1:
                    target = slot
                    break
                slot = (slot + 1) % num_slots
            g_old = torch.tensor(1.0, dtype=dtype)
            if target < 0:
                g_old = gdns_default_gain(keys, slot_g[u].tolist(), dtype)
                dist = (slot_g[u] - g_old).abs().tolist()
                target = min(range(num_slots), key=lambda j: (dist[j], j))
            elif found:
                g_old = slot_g[u, target].clone()
            h_old = slot_h[u, target].clone() if found else torch.tensor(1.0, dtype=dtype)
            h_new = h_new_all[b, n]
            slot_keys[u, target] = item
            slot_g[u, target] = gdns_next_gain(g_old, h_old, h_new, alpha, eps)
            slot_h[u, target] = h_new


def gdns_dense_lookup(g: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``g[users[b], items[b, m]]``: the dense table's gain of each pair."""
    return g[users.unsqueeze(1), items]


def gdns_dense_update(h: torch.Tensor, g: torch.Tensor, users: torch.Tensor, items: torch.Tensor,
                      pos_scores: torch.Tensor, neg_scores: torch.Tensor, alpha: float,
                      eps: float) -> None:
    """The dense users x items formulation (H = G = 1 initially), in place, row-major order."""
    h_new_all = gdns_h_new(pos_scores, neg_scores)
    for b, u in enumerate(users.tolist()):
        for n, item in enumerate(items[b].tolist()):
            h_new = h_new_all[b, n]
            g[u, item] = gdns_next_gain(g[u, item], h[u, item], h_new, alpha, eps)
            h[u, item] = h_new
