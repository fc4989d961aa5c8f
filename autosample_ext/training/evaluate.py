"""Full-ranking evaluation of a model during and after training."""
from __future__ import annotations

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.eval import evaluate_full_ranking, evaluate_sampled
from autosample_ext.models.base import Recommender


def evaluate_model(model: Recommender, data: InteractionData, split: str, ks: tuple[int, ...],
                   *, batch_size: int = 1024, progress: bool = False,
                   protocol: str = "full") -> dict[str, float]:
    """Metrics of ``model`` on ``split`` ("valid" or "test"), model in eval mode.

    ``protocol="full"``: full ranking. Excluded from the ranking: train items for validation;
    train and validation items for test (DESIGN.md §5; with no validation split, train only: the
    DENS protocol). Returns ``{"recall@20": ..., "ndcg@20": ..., "precision@20": ...,
    "hit@20": ..., "mrr@20": ...}`` for every k.
    ``protocol="sampled"``: the leave-one-out protocol (GDNS / SRNS), the held-out item ranked
    among the dataset's fixed ``eval_negatives``: ``ndcg@K`` and ``recall@K`` for every k
    (:func:`autosample_ext.eval.evaluate_sampled`).
    """
    if protocol not in ("full", "sampled"):
        raise ValueError(f"evaluate_model: protocol must be 'full' or 'sampled', got {protocol!r}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            user_table, item_table = model.propagate()
        # MF's tables are its Parameters: detach so the ranking op sees plain tensors.
        if protocol == "sampled":
            metrics = evaluate_sampled(user_table.detach(), item_table.detach(), data, ks,
                                       split=split)
        else:
            metrics = evaluate_full_ranking(user_table.detach(), item_table.detach(), data, split,
                                            ks, batch_size=batch_size, progress=progress)
    finally:
        model.train(was_training)
    return metrics.to_dict()
