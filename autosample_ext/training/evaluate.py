"""Evaluation of a model during and after training (full ranking, or the sampled leave-one-out
protocol), in one process or sharded by users over the ranks of a distributed run."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.eval import evaluate_full_ranking, evaluate_sampled
from autosample_ext.eval.full_ranking import FULL_RANKING_METRICS, RankingMetrics, _check_ks, _check_tables
from autosample_ext.models.base import Recommender

if TYPE_CHECKING:
    from autosample_ext.distributed.context import DistContext

EVAL_FUNCTIONS = {"full": "evaluate_full_ranking", "sampled": "evaluate_sampled"}
SAMPLED_METRIC_NAMES = ("ndcg", "recall")


def evaluate_model(model: Recommender, data: InteractionData, split: str, ks: tuple[int, ...],
                   *, batch_size: int = 1024, progress: bool = False, protocol: str = "full",
                   dist: DistContext | None = None) -> dict[str, float]:
    """Metrics of ``model`` on ``split`` ("valid" or "test"), model in eval mode.

    ``protocol="full"``: full ranking. Excluded from the ranking: train items for validation;
    train and validation items for test (docs/search.md; with no validation split, train only: the
    DENS protocol). Returns ``{"recall@20": ..., "ndcg@20": ..., "precision@20": ...,
    "hit@20": ..., "mrr@20": ...}`` for every k.
    ``protocol="sampled"``: the leave-one-out protocol (GDNS / SRNS), the held-out item ranked
    among the dataset's fixed ``eval_negatives``: ``ndcg@K`` and ``recall@K`` for every k
    (:func:`autosample_ext.eval.evaluate_sampled`).
    ``dist``: in a distributed run every rank evaluates its own users (``u % world_size ==
    rank``) and the per-user sums are all-reduced (:func:`sharded_metrics`); every rank returns
    the same numbers, equal to one process's to float rounding. Both protocols.
    """
    _check_protocol(protocol)
    user_table, item_table = model_tables(model)
    if dist is not None and dist.distributed:
        metrics = sharded_metrics(user_table, item_table, data, split, ks, dist, protocol=protocol,
                                  batch_size=batch_size, progress=progress)
    else:
        metrics = _local(protocol, user_table, item_table, data, split, ks,
                         batch_size=batch_size, progress=progress)
    return metrics.to_dict()


def _check_protocol(protocol: str) -> None:
    if protocol not in EVAL_FUNCTIONS:
        raise ValueError(f"evaluate_model: protocol must be 'full' or 'sampled', got {protocol!r}")


def _local(protocol: str, user_table: torch.Tensor, item_table: torch.Tensor,
           data: InteractionData, split: str, ks: tuple[int, ...], *, batch_size: int = 1024,
           progress: bool = False, users: torch.Tensor | None = None,
           per_user: bool = False) -> RankingMetrics:
    """One process's evaluation under ``protocol`` (of ``users`` only, when given)."""
    if protocol == "sampled":
        return evaluate_sampled(user_table, item_table, data, ks, split=split, users=users,
                                per_user=per_user)
    return evaluate_full_ranking(user_table, item_table, data, split, ks, batch_size=batch_size,
                                 users=users, per_user=per_user, progress=progress)


def model_tables(model: Recommender) -> tuple[torch.Tensor, torch.Tensor]:
    """The final tables of ``model`` in eval mode (no message dropout), detached."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            user_table, item_table = model.propagate()
    finally:
        model.train(was_training)
    # MF's tables are its Parameters: detach so the ranking op sees plain tensors.
    return user_table.detach(), item_table.detach()


def _evaluated_users(protocol: str, data: InteractionData, split: str) -> torch.Tensor:
    """The users a protocol averages over: those with an item in ``split`` (the sampled protocol
    allows one at most; :func:`evaluate_sampled` raises on more, on every rank)."""
    degrees = getattr(data, split).degrees()
    return torch.nonzero(degrees > 0).flatten()


def sharded_metrics(user_table: torch.Tensor, item_table: torch.Tensor, data: InteractionData,
                    split: str, ks: tuple[int, ...], dist: DistContext, *,
                    protocol: str = "full", batch_size: int = 1024, progress: bool = False,
                    per_user: bool = False, users: torch.Tensor | None = None) -> RankingMetrics:
    """:func:`~autosample_ext.eval.evaluate_full_ranking` (``protocol="full"``) or
    :func:`~autosample_ext.eval.evaluate_sampled` (``"sampled"``) with the users split over the
    ranks (rank r evaluates the users it owns, ``u % world_size == r``); the per-user sums of
    every metric and the number of users are all-reduced in float64, so every rank gets the
    means of one process to float rounding. ``per_user``: also gather every rank's per-user
    values (ascending user ids, as one process returns them), e.g. for paired tests. ``users``:
    evaluate only these (a subset of the split's users, ascending)."""
    _check_protocol(protocol)
    fn = EVAL_FUNCTIONS[protocol]
    if split not in ("test", "valid"):
        raise ValueError(f"{fn}: split must be 'test' or 'valid', got {split!r}")
    _check_tables(fn, user_table, item_table, data)
    if protocol == "sampled":
        if data.eval_negatives is None:
            raise ValueError(f"{fn}: data {data.name!r} has no eval_negatives "
                             "(use a leave-one-out split)")
        ks = _check_ks(fn, ks, data.eval_negatives.shape[1] + 1)
        names: tuple[str, ...] = SAMPLED_METRIC_NAMES
    else:
        ks = _check_ks(fn, ks, data.num_items)
        names = FULL_RANKING_METRICS
    keys = [f"{m}@{k}" for m in names for k in ks]
    if users is None:
        users = _evaluated_users(protocol, data, split)
    mine = users[dist.shard.owns(users)]
    arrays: dict[str, np.ndarray] = {key: np.zeros(0) for key in keys}
    if mine.numel():
        local = _local(protocol, user_table, item_table, data, split, ks, batch_size=batch_size,
                       progress=progress, users=mine, per_user=True)
        arrays = local.per_user
    sums = torch.tensor([float(mine.numel())] + [float(arrays[k].sum()) for k in keys],
                        dtype=torch.float64, device=user_table.device)
    dist.all_reduce_(sums, f"evaluation on {split}")
    count = int(round(float(sums[0])))
    if count == 0:
        raise ValueError(f"{fn}: no user of {data.name!r} has items in split {split!r}")
    values = {key: float(sums[i + 1]) / count for i, key in enumerate(keys)}
    all_users, gathered = mine.numpy(), {}
    if per_user:
        parts = dist.all_gather_object((mine.numpy(), arrays), f"per-user metrics on {split}")
        all_users = np.concatenate([u for u, _ in parts])
        order = np.argsort(all_users, kind="stable")
        all_users = all_users[order]
        gathered = {key: np.concatenate([a[key] for _, a in parts])[order] for key in keys}
    return RankingMetrics(ks=ks, values=values, num_users=count, users=all_users,
                          per_user=gathered)


def sharded_full_ranking(user_table: torch.Tensor, item_table: torch.Tensor, data: InteractionData,
                         split: str, ks: tuple[int, ...], dist: DistContext, *,
                         batch_size: int = 1024, progress: bool = False,
                         per_user: bool = False) -> RankingMetrics:
    """:func:`sharded_metrics` with full ranking."""
    return sharded_metrics(user_table, item_table, data, split, ks, dist, protocol="full",
                           batch_size=batch_size, progress=progress, per_user=per_user)


def per_user_metric(model: Recommender, data: InteractionData, split: str, metric: str, *,
                    batch_size: int = 1024, dist: DistContext | None = None,
                    protocol: str = "full", users: torch.Tensor | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(users, values)``: ``metric`` (``"recall@20"``) per evaluated user under ``protocol``,
    ascending ids, on every rank (gathered over the ranks of a distributed run). ``users``:
    only these (ascending ids of users with items in ``split``; default: all of them)."""
    _check_protocol(protocol)
    k = int(metric.partition("@")[2])
    user_table, item_table = model_tables(model)
    if dist is not None and dist.distributed:
        m = sharded_metrics(user_table, item_table, data, split, (k,), dist, protocol=protocol,
                            batch_size=batch_size, per_user=True, users=users)
    else:
        m = _local(protocol, user_table, item_table, data, split, (k,), batch_size=batch_size,
                   per_user=True, users=users)
    return m.users, m.per_user[metric]


def evaluated_users(data: InteractionData, split: str, protocol: str = "full") -> torch.Tensor:
    """The users an evaluation of ``split`` averages over (ascending ids)."""
    _check_protocol(protocol)
    return _evaluated_users(protocol, data, split)
