"""Full-ranking evaluation of a model during and after training, in one process or sharded by
users over the ranks of a distributed run."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.eval import evaluate_full_ranking
from autosample_ext.eval.full_ranking import FULL_RANKING_METRICS, RankingMetrics, _check_ks, _check_tables
from autosample_ext.models.base import Recommender

if TYPE_CHECKING:
    from autosample_ext.training.distributed import DistContext


def evaluate_model(model: Recommender, data: InteractionData, split: str, ks: tuple[int, ...],
                   *, batch_size: int = 1024, progress: bool = False,
                   dist: DistContext | None = None) -> dict[str, float]:
    """Full-ranking metrics of ``model`` on ``split`` ("valid" or "test"), model in eval mode.

    Excluded from the ranking: train items for validation; train and validation items for test
    (DESIGN.md §5; with no validation split, train only: the DENS protocol). Returns
    ``{"recall@20": ..., "ndcg@20": ..., "precision@20": ..., "hit@20": ...}`` for every k.
    ``dist``: in a distributed run every rank ranks its own users and the sums are all-reduced
    (:func:`sharded_full_ranking`); every rank returns the same numbers.
    """
    user_table, item_table = model_tables(model)
    if dist is not None and dist.distributed:
        metrics = sharded_full_ranking(user_table, item_table, data, split, ks, dist,
                                       batch_size=batch_size, progress=progress)
    else:
        metrics = evaluate_full_ranking(user_table, item_table, data, split, ks,
                                        batch_size=batch_size, progress=progress)
    return metrics.to_dict()


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


def sharded_full_ranking(user_table: torch.Tensor, item_table: torch.Tensor, data: InteractionData,
                         split: str, ks: tuple[int, ...], dist: DistContext, *,
                         batch_size: int = 1024, progress: bool = False,
                         per_user: bool = False) -> RankingMetrics:
    """:func:`~autosample_ext.eval.evaluate_full_ranking` with the users split over the ranks
    (rank r ranks the users it owns, ``u % world_size == r``); the per-user sums of every
    metric and the number of users are all-reduced in float64, so every rank gets the means
    of one process to float rounding. ``per_user``: also gather every rank's per-user values
    (ascending user ids, as one process returns them), e.g. for paired tests."""
    fn = "evaluate_full_ranking"
    if split not in ("test", "valid"):
        raise ValueError(f"{fn}: split must be 'test' or 'valid', got {split!r}")
    _check_tables(fn, user_table, item_table, data)
    ks = _check_ks(fn, ks, data.num_items)
    keys = [f"{m}@{k}" for m in FULL_RANKING_METRICS for k in ks]
    target = getattr(data, split)
    users = torch.nonzero(target.degrees() > 0).flatten()
    mine = users[dist.shard.owns(users)]
    arrays: dict[str, np.ndarray] = {key: np.zeros(0) for key in keys}
    if mine.numel():
        local = evaluate_full_ranking(user_table, item_table, data, split, ks,
                                      batch_size=batch_size, users=mine, per_user=True,
                                      progress=progress)
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


def per_user_metric(model: Recommender, data: InteractionData, split: str, metric: str, *,
                    batch_size: int = 1024, dist: DistContext | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(users, values)``: ``metric`` (``"recall@20"``) per evaluated user, ascending ids, on
    every rank (gathered over the ranks of a distributed run)."""
    k = int(metric.partition("@")[2])
    user_table, item_table = model_tables(model)
    if dist is not None and dist.distributed:
        m = sharded_full_ranking(user_table, item_table, data, split, (k,), dist,
                                 batch_size=batch_size, per_user=True)
    else:
        m = evaluate_full_ranking(user_table, item_table, data, split, (k,), per_user=True,
                                  batch_size=batch_size)
    return m.users, m.per_user[metric]
