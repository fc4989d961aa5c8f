"""Full-ranking evaluation (docs/search.md): Recall / Precision / NDCG / Hit @K over all items."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from autosample_ext import ops
from autosample_ext.data.interactions import CSR, InteractionData

logger = logging.getLogger(__name__)

FULL_RANKING_METRICS: tuple[str, ...] = ("recall", "precision", "ndcg", "hit", "mrr")
SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass
class RankingMetrics:
    """Metric means, and optionally per-user values, of one evaluation.

    ``values`` maps ``"<metric>@<k>"`` (e.g. ``"recall@20"``) to the mean over the evaluated
    users. ``users`` (int64 ``[E]``, ascending) are the users evaluated (those with at least one
    target item); ``per_user`` maps the same keys to float64 ``[E]`` arrays aligned with
    ``users`` when asked for, else it is empty.
    """

    ks: tuple[int, ...]
    values: dict[str, float]
    num_users: int
    users: np.ndarray
    per_user: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def to_dict(self) -> dict[str, float]:
        return dict(self.values)


def _check_tables(fn: str, user_table: torch.Tensor, item_table: torch.Tensor,
                  data: InteractionData) -> None:
    if user_table.dim() != 2 or item_table.dim() != 2:
        raise ValueError(f"{fn}: user_table and item_table must be 2-D, got shapes "
                         f"{tuple(user_table.shape)} and {tuple(item_table.shape)}")
    if user_table.shape[1] != item_table.shape[1]:
        raise ValueError(f"{fn}: user_table width {user_table.shape[1]} != item_table width "
                         f"{item_table.shape[1]}")
    if user_table.shape[0] != data.num_users or item_table.shape[0] != data.num_items:
        raise ValueError(f"{fn}: tables are {user_table.shape[0]} users x {item_table.shape[0]} "
                         f"items, data {data.name!r} has {data.num_users} x {data.num_items}")
    if user_table.device != item_table.device or user_table.dtype != item_table.dtype:
        raise ValueError(f"{fn}: user_table ({user_table.dtype}, {user_table.device}) and "
                         f"item_table ({item_table.dtype}, {item_table.device}) must match")
    for name, table in (("user_table", user_table), ("item_table", item_table)):
        if not bool(torch.isfinite(table).all()):
            raise ValueError(f"{fn}: {name} has non-finite values (diverged model?)")


def _check_ks(fn: str, ks: Iterable[int], upper: int) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1 or out[-1] > upper:
        raise ValueError(f"{fn}: ks must be non-empty integers in [1, {upper}], got {tuple(ks)}")
    return out


def merge_rows(parts: Sequence[CSR], num_items: int) -> CSR:
    """Row-wise union of CSRs with the same number of rows: rows sorted, unique."""
    if len(parts) == 1:
        return parts[0]
    rows = parts[0].num_users
    keys = torch.cat([users * num_items + items for users, items in (p.pairs() for p in parts)])
    keys = torch.unique(keys, sorted=True)
    owner = torch.div(keys, num_items, rounding_mode="floor")
    indptr = torch.zeros(rows + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(owner, minlength=rows), 0, out=indptr[1:])
    return CSR(indptr, keys - owner * num_items)


def _rank(user_rows: torch.Tensor, item_table: torch.Tensor, excl: CSR, k: int,
          num_items: int) -> torch.Tensor:
    """Top-``k`` item ids ``[B, k]`` per row; rows with fewer than k candidates padded with -1."""
    device = user_rows.device
    avail = num_items - excl.degrees()
    full = avail >= k
    out = torch.full((user_rows.shape[0], k), -1, dtype=torch.int64, device=device)
    if bool(full.all()):
        _, items = ops.rank_topk(user_rows, item_table, excl.indptr.to(device),
                                 excl.indices.to(device), k)
        return items
    # Rare: users whose exclusions leave fewer than k items; each is ranked over what is left.
    for rows in [torch.nonzero(full).flatten()] + [r.view(1) for r in torch.nonzero(~full).flatten()]:
        if rows.numel() == 0:
            continue
        kk = min(k, int(avail[rows].min()))
        if kk == 0:
            continue
        sub = excl.select_rows(rows)
        _, items = ops.rank_topk(user_rows[rows.to(device)], item_table, sub.indptr.to(device),
                                 sub.indices.to(device), kk)
        out[rows.to(device), :kk] = items
    return out


def evaluate_full_ranking(
    user_table: torch.Tensor,
    item_table: torch.Tensor,
    data: InteractionData,
    split: str = "test",
    ks: Iterable[int] = (20,),
    *,
    exclude: Sequence[str] | None = None,
    batch_size: int = 1024,
    users: torch.Tensor | np.ndarray | None = None,
    per_user: bool = False,
    progress: bool = False,
) -> RankingMetrics:
    """Full-ranking metrics of ``split``'s items, every item scored by ``<user, item>``.

    Args:
        user_table, item_table: final embedding tables ``[U, d']``, ``[N, d']`` (same dtype and
            device, CPU or CUDA; typically ``model.propagate()`` under ``torch.no_grad()``).
        data: the dataset; ``split`` (``"test"`` or ``"valid"``) gives each user's targets T_u.
        ks: cut-offs; the top ``max(ks)`` is computed once per user.
        exclude: splits whose items are removed from each user's ranking. Default
            ``("train", "valid")`` for the test split, ``("train",)`` for validation. The DENS
            protocol (no validation split) is ``exclude=("train",)``. A target that is also
            excluded (lastfm's test pairs that repeat train pairs) stays in T_u and cannot be hit.
        batch_size: users per ``rank_topk`` call.
        users: restrict to these user ids (still only those with at least one target).
        per_user: also return per-user arrays (for the per-user t-test).
        progress: show a tqdm bar over user batches (only when stderr is a terminal).

    Definitions (averaged over users with ``|T_u| >= 1``; hits = top-K items in T_u)::

        recall@K = hits / |T_u|        precision@K = hits / K        hit@K = [hits > 0]
        ndcg@K   = sum_{j<K, item_j in T_u} 1/log2(j+2) / sum_{j<min(|T_u|,K)} 1/log2(j+2)
        mrr@K    = 1 / (j* + 1), j* the 0-based position of the first hit, 0 without a hit in
                   the top K (RecBole's MRR@K)

    Ranking order is ``rank_topk``'s: larger score first, ties to the smaller item id.
    """
    fn = "evaluate_full_ranking"
    if split not in ("test", "valid"):
        raise ValueError(f"{fn}: split must be 'test' or 'valid', got {split!r}")
    if exclude is None:
        exclude = ("train", "valid") if split == "test" else ("train",)
    exclude = tuple(exclude)
    for name in exclude:
        if name not in SPLITS or name == split:
            raise ValueError(f"{fn}: exclude entries must be splits other than {split!r} "
                             f"(one of {SPLITS}), got {name!r}")
    if batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be >= 1, got {batch_size}")
    _check_tables(fn, user_table, item_table, data)
    num_items = data.num_items
    ks = _check_ks(fn, ks, num_items)
    kmax = ks[-1]

    target: CSR = getattr(data, split)
    eval_users = torch.nonzero(target.degrees() > 0).flatten()
    if users is not None:
        wanted = torch.as_tensor(users).to(device="cpu", dtype=torch.int64)
        eval_users = eval_users[torch.isin(eval_users, wanted)]
    if eval_users.numel() == 0:
        raise ValueError(f"{fn}: no user of {data.name!r} has items in split {split!r}")

    device = user_table.device
    discount = 1.0 / torch.log2(torch.arange(kmax, dtype=torch.float64, device=device) + 2.0)
    ideal = torch.cumsum(discount, 0)
    excluded = [getattr(data, name) for name in exclude]
    chunks: dict[str, list[torch.Tensor]] = {f"{m}@{k}": [] for m in FULL_RANKING_METRICS for k in ks}

    batches = range(0, eval_users.numel(), batch_size)
    with torch.no_grad():
        for start in tqdm(batches, desc=f"eval {split}", unit="batch",
                          disable=None if progress else True, leave=False):  # None: tty only
            bu = eval_users[start: start + batch_size]
            excl = merge_rows([csr.select_rows(bu) for csr in excluded], num_items) if excluded \
                else CSR.empty(bu.numel())
            top = _rank(user_table[bu.to(device)], item_table, excl, kmax, num_items)
            tgt = target.select_rows(bu)
            rows = torch.arange(bu.numel(), device=device)
            tgt_keys = torch.repeat_interleave(rows, tgt.degrees().to(device)) * num_items \
                + tgt.indices.to(device)
            hit = torch.isin(rows[:, None] * num_items + top, tgt_keys) & (top >= 0)
            hit = hit.to(torch.float64)
            n_tgt = tgt.degrees().to(device=device, dtype=torch.float64)
            dcg = torch.cumsum(hit * discount, 1)
            hits = torch.cumsum(hit, 1)
            first = torch.argmax(hit, 1).to(torch.float64)   # first hit (0 when none: masked)
            for k in ks:
                h = hits[:, k - 1]
                idcg = ideal[torch.clamp(n_tgt, max=k).long() - 1]
                chunks[f"recall@{k}"].append(h / n_tgt)
                chunks[f"precision@{k}"].append(h / k)
                chunks[f"ndcg@{k}"].append(dcg[:, k - 1] / idcg)
                chunks[f"hit@{k}"].append((h > 0).to(torch.float64))
                chunks[f"mrr@{k}"].append(torch.where(h > 0, 1.0 / (first + 1.0),
                                                      torch.zeros_like(first)))

    arrays = {key: torch.cat(parts).cpu().numpy() for key, parts in chunks.items()}
    values = {key: float(arr.mean()) for key, arr in arrays.items()}
    logger.debug("%s on %s/%s: %s", fn, data.name, split, values)
    return RankingMetrics(ks=ks, values=values, num_users=int(eval_users.numel()),
                          users=eval_users.numpy(), per_user=arrays if per_user else {})


def popularity_tables(data: InteractionData, device: torch.device | str = "cpu"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables whose dot product is each item's training popularity: the popularity baseline.

    Returns ``(ones [U, 1], popularity [N, 1])`` float32, for :func:`evaluate_full_ranking`
    (ties between equally popular items go to the smaller item id).
    """
    users = torch.ones(data.num_users, 1, dtype=torch.float32, device=device)
    items = data.item_popularity.to(device=device, dtype=torch.float32).unsqueeze(1)
    return users, items


def evaluate_model(model: torch.nn.Module, data: InteractionData, split: str = "test",
                   ks: Iterable[int] = (20,), **kwargs) -> RankingMetrics:
    """:func:`evaluate_full_ranking` of a Recommender's ``propagate()`` tables in eval mode.

    The model is put in eval mode (no message dropout) for the call and restored after.
    ``kwargs`` go to :func:`evaluate_full_ranking`.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            user_table, item_table = model.propagate()
        return evaluate_full_ranking(user_table, item_table, data, split, ks, **kwargs)
    finally:
        model.train(was_training)
