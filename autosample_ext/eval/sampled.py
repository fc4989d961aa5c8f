"""Sampled (leave-one-out) protocol: the test item ranked among its 100 fixed negatives."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.eval.full_ranking import RankingMetrics, _check_ks, _check_tables


def sampled_ranks(user_table: torch.Tensor, item_table: torch.Tensor, users: torch.Tensor,
                  targets: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among ``[target] + negatives`` (int64 ``[E]``).

    ``users [E]``, ``targets [E]``, ``negatives [E, M]`` item ids. Ties are pessimistic: the
    target ranks after every negative scored equal to it, so
    ``rank = #{neg : s_neg >= s_target}``. (A constant model therefore scores 0, never 1.)
    """
    u = user_table[users]
    pos = (u * item_table[targets]).sum(-1)
    neg = torch.einsum("ed,emd->em", u, item_table[negatives])
    return (neg >= pos[:, None]).sum(1)


def evaluate_sampled(
    user_table: torch.Tensor,
    item_table: torch.Tensor,
    data: InteractionData,
    ks: Iterable[int] = (1, 3),
    *,
    split: str = "test",
    per_user: bool = False,
    users: torch.Tensor | np.ndarray | None = None,
) -> RankingMetrics:
    """NDCG@K and Recall@K of the leave-one-out protocol (GDNS / SRNS): NDCG@1, NDCG@3, Recall@3.

    Each user with one item in ``split`` is ranked against ``data.eval_negatives[u]`` (its fixed
    sampled negatives, ``[U, M]``, M = 100). With a single relevant item and 0-based rank r
    (pessimistic ties, see :func:`sampled_ranks`)::

        recall@K = [r < K]            ndcg@K = [r < K] / log2(r + 2)

    Users without an item in ``split`` are skipped; a user with more than one raises (this
    protocol has exactly one held-out item per user). Returns keys ``ndcg@K`` and
    ``recall@K`` for every K in ``ks``. ``users``: restrict to these user ids (still only those
    with an item in ``split``; none left raises, as for a split without held-out items).
    """
    fn = "evaluate_sampled"
    if data.eval_negatives is None:
        raise ValueError(f"{fn}: data {data.name!r} has no eval_negatives (use a leave-one-out split)")
    if split not in ("test", "valid"):
        raise ValueError(f"{fn}: split must be 'test' or 'valid', got {split!r}")
    _check_tables(fn, user_table, item_table, data)
    negatives = data.eval_negatives
    if negatives.dim() != 2 or negatives.shape[0] != data.num_users:
        raise ValueError(f"{fn}: eval_negatives must be [num_users={data.num_users}, M], got "
                         f"{tuple(negatives.shape)}")
    ks = _check_ks(fn, ks, negatives.shape[1] + 1)
    target = getattr(data, split)
    deg = target.degrees()
    if bool((deg > 1).any()):
        bad = int(torch.nonzero(deg > 1)[0])
        raise ValueError(f"{fn}: user {bad} has {int(deg[bad])} items in split {split!r}; the "
                         f"sampled protocol needs at most one per user")
    held = deg == 1
    if users is not None:
        chosen = torch.zeros_like(held)
        chosen[torch.as_tensor(users, dtype=torch.long)] = True
        held &= chosen
    users = torch.nonzero(held).flatten()
    if users.numel() == 0:
        raise ValueError(f"{fn}: no user of {data.name!r} has an item in split {split!r}")
    device = user_table.device
    targets = target.indices[target.indptr[users]]
    with torch.no_grad():
        ranks = sampled_ranks(user_table, item_table, users.to(device), targets.to(device),
                              negatives[users].to(device)).cpu().numpy()
    arrays: dict[str, np.ndarray] = {}
    gain = 1.0 / np.log2(ranks + 2.0)
    for k in ks:
        inside = ranks < k
        arrays[f"ndcg@{k}"] = np.where(inside, gain, 0.0)
        arrays[f"recall@{k}"] = inside.astype(np.float64)
    values = {key: float(arr.mean()) for key, arr in arrays.items()}
    return RankingMetrics(ks=ks, values=values, num_users=int(users.numel()),
                          users=users.numpy(), per_user=arrays if per_user else {})
