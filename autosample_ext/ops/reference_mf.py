"""Pure-PyTorch oracle of ``mf_bpr_train``: whole MF / GMF BPR training steps (negatives, BPR + L2
gradient by autograd, an update of the touched rows), built on the sampling and scoring
oracles of :mod:`autosample_ext.ops.reference`; docs/performance.md's "Fused training
engine" describes the operator.

Per step ``s`` (rows ``[s*B, min((s+1)*B, T))`` of ``users`` / ``pos_items``, ``B_s`` of them,
Philox offset ``offset + s * offset_stride``):

* negatives ``[B_s, n]``: ``"rns"`` / ``"pns"``: :func:`sample_negatives` (uniform / alias table);
  ``"dns"``: ``n * M`` uniform candidates per row (pool j = draws ``j*M .. (j+1)*M-1``), the best
  by ``<P_u (. w), Q_i>`` (:func:`score_topk`'s order), or a draw among the ``top_k`` best with
  ``uniforms`` against ``cdf`` (the DNS sampler's ``draw_from_cdf``); ``"given"``: ``negatives``.
* loss ``mean_{b,j} softplus(r_bj - r_b) + l2 * (sum_b |P_u|^2 + |Q_pos|^2 + sum_j |Q_neg_j|^2) / B_s``
  with ``r = <P_u (. w), Q_i>`` (the trainer's BPR + L2), its gradient by autograd;
* the update: ``"sgd"`` ``p -= lr g`` and ``"adagrad"`` ``s += g^2, p -= lr g / (sqrt(s) + eps)``
  on the touched rows (the batch's users, positives and negatives; ``w`` every step: the other
  rows have a zero gradient, which changes nothing); ``"adam"``: torch.optim.Adam on every row,
  ``m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` with ``t = opt_step + s + 1`` and
  ``g = 0`` for rows not in the batch (their moments decay and they keep moving, as dense Adam
  does); ``"lazy_adam"`` (lazy / sparse Adam): the same formula on the touched rows only (the other
  rows keep their moments, not decayed, and do not move).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SAMPLERS = ("rns", "pns", "dns", "given")
OPTIMIZERS = ("sgd", "adagrad", "adam", "lazy_adam")
_STATE = {"sgd": [], "adagrad": ["sum"], "adam": ["exp_avg", "exp_avg_sq"],
          "lazy_adam": ["exp_avg", "exp_avg_sq"]}


def draw_from_cdf(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Ranks for uniforms ``u`` against an unnormalised cdf (samplers/dns.py's rule)."""
    target = u.to(torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, target.contiguous(), right=True).clamp_max(cdf.shape[0] - 1)


def state_names(optimizer: str, gmf: bool) -> list[str]:
    """The order of the ``state`` list: per table (users, items[, weight]) its state tensors."""
    per = _STATE[optimizer]
    tables = ["user", "item"] + (["weight"] if gmf else [])
    return [f"{t}_{p}" for t in tables for p in per]


def lazy_adam_rows(param: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                   rows: torch.Tensor, grad: torch.Tensor, lr: float, beta1: float, beta2: float,
                   eps: float, step: int) -> None:
    """Lazy (sparse) Adam on the rows ``rows`` of ``param`` with their gradient ``grad``: the
    moments of other rows are neither decayed nor used; bias corrections use the global ``step``
    (1-based), so a row touched at every step follows torch.optim.Adam exactly."""
    m = exp_avg[rows] * beta1 + grad * (1 - beta1)
    v = exp_avg_sq[rows] * beta2 + grad * grad * (1 - beta2)
    exp_avg[rows] = m
    exp_avg_sq[rows] = v
    bc1 = 1 - beta1 ** step
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    param[rows] -= (lr / bc1) * m / (v.sqrt() / bc2_sqrt + eps)


def _update(optimizer: str, param: torch.Tensor, states: list[torch.Tensor], rows: torch.Tensor,
            grad: torch.Tensor, lr: float, beta1: float, beta2: float, eps: float, step: int) -> None:
    if optimizer == "sgd":
        param[rows] -= lr * grad
    elif optimizer == "adagrad":
        acc = states[0][rows] + grad * grad
        states[0][rows] = acc
        param[rows] -= lr * grad / (acc.sqrt() + eps)
    else:  # adam on the rows given (all of them for dense Adam), lazy_adam on the touched ones
        lazy_adam_rows(param, states[0], states[1], rows, grad, lr, beta1, beta2, eps, step)


def _negatives(sampler: str, user_emb, item_emb, weight, indptr, indices, users, n, M, k,
               alias_prob, alias_idx, cdf, uniforms, seed, offset, given) -> torch.Tensor:
    from autosample_ext.ops.reference import sample_negatives, score_topk

    num_items = item_emb.shape[0]
    if sampler == "given":
        return given
    if sampler == "rns":
        return sample_negatives(indptr, indices, users, num_items, n, seed, offset)
    if sampler == "pns":
        return sample_negatives(indptr, indices, users, num_items, n, seed, offset, alias_prob, alias_idx)
    batch = users.shape[0]
    cand = sample_negatives(indptr, indices, users, num_items, n * M, seed, offset).view(batch * n, M)
    u = user_emb[users] if weight is None else user_emb[users] * weight
    _, top = score_topk(u.repeat_interleave(n, dim=0), item_emb, cand, k)
    if k > 1:
        top = top.gather(1, draw_from_cdf(cdf, uniforms.reshape(batch * n, 1)))
    return top[:, :1].reshape(batch, n)


def mf_bpr_train(user_emb: torch.Tensor, item_emb: torch.Tensor, weight: torch.Tensor | None,
                 state: list[torch.Tensor], indptr: torch.Tensor, indices: torch.Tensor,
                 users: torch.Tensor, pos_items: torch.Tensor, negatives: torch.Tensor | None,
                 batch_size: int, num_negatives: int, sampler: str, num_candidates: int,
                 top_k: int, alias_prob: torch.Tensor | None, alias_idx: torch.Tensor | None,
                 cdf: torch.Tensor | None, uniforms: torch.Tensor | None, seed: int, offset: int,
                 offset_stride: int, lr: float, l2: float, optimizer: str, beta1: float,
                 beta2: float, eps: float, opt_step: int) -> torch.Tensor:
    """The steps of ``mf_bpr_train`` (module docstring), in place; returns the losses
    ``[steps]`` float64. ``state``: :func:`state_names` order."""
    if sampler not in SAMPLERS or optimizer not in OPTIMIZERS:
        raise ValueError(f"mf_bpr_train: sampler {sampler!r} / optimizer {optimizer!r}")
    n = num_negatives
    per = len(_STATE[optimizer])
    tables = [user_emb, item_emb] + ([weight] if weight is not None else [])
    states = [state[i * per:(i + 1) * per] for i in range(len(tables))]
    losses = []
    total = users.shape[0]
    for s, r0 in enumerate(range(0, total, batch_size)):
        u_ids, p_ids = users[r0:r0 + batch_size], pos_items[r0:r0 + batch_size]
        rows = u_ids.shape[0]
        with torch.no_grad():
            neg = _negatives(sampler, user_emb, item_emb, weight, indptr, indices, u_ids, n,
                             num_candidates, top_k, alias_prob, alias_idx, cdf,
                             None if uniforms is None else uniforms[r0:r0 + batch_size],
                             seed, offset + s * offset_stride,
                             None if negatives is None else negatives[r0:r0 + batch_size])
        leaves = [t.detach().clone().requires_grad_(True) for t in tables]
        P, Q = leaves[0], leaves[1]
        ue = F.embedding(u_ids, P)
        ut = ue if weight is None else ue * leaves[2]
        qp, qn = F.embedding(p_ids, Q), F.embedding(neg, Q)
        pos = (ut * qp).sum(-1)
        negs = (ut.unsqueeze(1) * qn).sum(-1)
        loss = F.softplus(negs - pos.unsqueeze(1)).mean()
        loss = loss + l2 * (ue.pow(2).sum() + qp.pow(2).sum() + qn.pow(2).sum()) / rows
        loss.backward()
        losses.append(float(loss.detach()))
        t = opt_step + s + 1
        with torch.no_grad():
            touched = [torch.unique(u_ids), torch.unique(torch.cat([p_ids, neg.reshape(-1)]))]
            if optimizer == "adam":  # dense: every row, a zero gradient for the others
                touched = [torch.arange(t.shape[0], device=users.device) for t in tables[:2]]
            if weight is not None:
                touched.append(torch.zeros(1, dtype=torch.int64, device=users.device))
            for table, leaf, st, idx in zip(tables, leaves, states, touched):
                g = leaf.grad if table.dim() == 2 else leaf.grad.unsqueeze(0)
                view = table if table.dim() == 2 else table.unsqueeze(0)
                sv = [x if x.dim() == 2 else x.unsqueeze(0) for x in st]
                _update(optimizer, view, sv, idx, g[idx], lr, beta1, beta2, eps, t)
    return torch.tensor(losses, dtype=torch.float64, device=users.device)
