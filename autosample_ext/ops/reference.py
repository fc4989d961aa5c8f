"""Pure-PyTorch oracles of the operators (docs/design.md).

These define what each operator computes. They are the test oracle and the benchmark baseline
("the code a user would otherwise write"); the package never falls back to them at run time.
They follow the same contracts as :mod:`autosample_ext.ops`, including the canonical top-k order
(larger key first, ties to the smaller position / item id, NaN first) and, for
``sample_negatives``, the exact Philox stream, so outputs can be compared bit for bit.
Two families have files of their own: GDNS's gain tables (:mod:`autosample_ext.ops.reference_gdns`)
and the fused MF / GMF training step (:mod:`autosample_ext.ops.reference_mf`).
"""
from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
ALIAS_MAX_ATTEMPTS = 1024


# ---------------------------------------------------------------------------------------------
# Canonical top-k
# ---------------------------------------------------------------------------------------------


def canonical_topk(keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of ``keys [B, M]``: larger first, ties to the smaller position, NaN first."""
    if k < 0 or k > keys.shape[1]:
        raise ValueError(f"k must be in [0, {keys.shape[1]}], got {k}")
    values, positions = torch.sort(keys, dim=1, descending=True, stable=True)
    return values[:, :k].contiguous(), positions[:, :k].contiguous()


def select_topk(keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return canonical_topk(keys, k)


def score_candidates(user_emb: torch.Tensor, item_emb: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Gather + batched dot product: ``out[b, m] = <user_emb[b], item_emb[cand[b, m]]>``."""
    gathered = item_emb[cand]  # [B, M, d]
    return torch.bmm(gathered, user_emb.unsqueeze(2)).squeeze(2)


def score_topk(
    user_emb: torch.Tensor, item_emb: torch.Tensor, cand: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = score_candidates(user_emb, item_emb, cand)
    values, positions = canonical_topk(scores, k)
    return values, torch.gather(cand, 1, positions)


def exclusion_mask(num_rows: int, num_items: int, excl_indptr: torch.Tensor,
                   excl_indices: torch.Tensor) -> torch.Tensor:
    """Dense ``[B, N]`` bool mask of the excluded (row, item) pairs of a CSR list."""
    counts = excl_indptr[1:] - excl_indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(num_rows, device=excl_indices.device), counts)
    mask = torch.zeros(num_rows, num_items, dtype=torch.bool, device=excl_indices.device)
    mask[rows, excl_indices] = True
    return mask


def rank_topk(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    excl_indptr: torch.Tensor,
    excl_indices: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Matmul + mask + top-k over all items (materialises the ``[B, N]`` scores)."""
    scores = user_emb @ item_emb.T
    mask = exclusion_mask(user_emb.shape[0], item_emb.shape[0], excl_indptr, excl_indices)
    scores = scores.masked_fill(mask, float("-inf"))
    # Excluded items go last whatever their score: sort on (excluded, canonical order).
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    excluded_in_order = torch.gather(mask, 1, order)
    order = torch.gather(order, 1, torch.sort(excluded_in_order.to(torch.int8), dim=1, stable=True).indices)
    items = order[:, :k].contiguous()
    return torch.gather(user_emb @ item_emb.T, 1, items), items


def rank_topk_fast(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    excl_indptr: torch.Tensor,
    excl_indices: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a user would write for speed: matmul, masked_fill(-inf), torch.topk.

    Same result as :func:`rank_topk` up to the order of exactly tied scores (torch.topk does not
    promise the canonical tie order). This is the benchmark baseline.
    """
    scores = user_emb @ item_emb.T
    counts = excl_indptr[1:] - excl_indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(user_emb.shape[0], device=scores.device), counts)
    scores[rows, excl_indices] = float("-inf")
    return torch.topk(scores, k, dim=1)


# ---------------------------------------------------------------------------------------------
# Philox4x32-10 stream (csrc/include/autosample/philox.h), vectorised with int64 tensors
# ---------------------------------------------------------------------------------------------


def _mul_hi_lo32(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = b * a  # wraps modulo 2^64 in int64; bits 0..63 stay exact
    return (p >> 32) & _MASK32, p & _MASK32


def philox4x32_10(k0: int, k1: int, c0, c1, c2, c3) -> list[torch.Tensor]:
    """Philox4x32-10 on int64 tensors holding uint32 values; keys are Python ints."""
    m0, m1, w0, w1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    for _ in range(10):
        hi0, lo0 = _mul_hi_lo32(m0, c0)
        hi1, lo1 = _mul_hi_lo32(m1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + w0) & _MASK32
        k1 = (k1 + w1) & _MASK32
    return [c0, c1, c2, c3]


def draw_words(seed: int, offset: int, rows: torch.Tensor, draws: torch.Tensor,
               attempt: int | torch.Tensor) -> list[torch.Tensor]:
    """The 4 words of draw ``draws`` of row ``rows`` (broadcast), as philox.h's draw_words."""
    seed &= _MASK64
    offset &= _MASK64
    k0 = seed & _MASK32
    k1 = ((seed >> 32) ^ (offset >> 32)) & _MASK32
    rows, draws = torch.broadcast_tensors(rows, draws)
    att = torch.as_tensor(attempt, dtype=torch.int64, device=rows.device).expand_as(rows)
    c3 = torch.full_like(rows, offset & _MASK32)
    return philox4x32_10(k0, k1, draws & _MASK32, att & _MASK32, rows & _MASK32, c3)


def uniform_below(lo: torch.Tensor, hi: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """floor(x * n / 2^64) for x = hi * 2^32 + lo, exact for n < 2^31."""
    a = hi * n
    b = lo * n
    return (a + (b >> 32)) >> 32


def uniform_unit(word: torch.Tensor) -> torch.Tensor:
    return (word >> 8).to(torch.float32) * (1.0 / 16777216.0)


def rank_to_non_member(indptr: torch.Tensor, indices: torch.Tensor, num_items: int,
                       users: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """The ranks[...]-th item in [0, N) that is not a positive of users[...] (CSR rows)."""
    num_users = indptr.shape[0] - 1
    counts = indptr[1:] - indptr[:-1]
    owner = torch.repeat_interleave(torch.arange(num_users, device=indices.device), counts)
    within = torch.arange(indices.shape[0], device=indices.device) - indptr[owner]
    stride = num_items + 1
    keys = owner * stride + (indices - within)  # non-decreasing: rows are sorted and unique
    query = users * stride + ranks
    below = torch.searchsorted(keys, query.reshape(-1), right=True).reshape(query.shape)
    return ranks + (below - indptr[users])


def is_positive(indptr: torch.Tensor, indices: torch.Tensor, num_items: int,
                users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Whether items[...] is a training positive of users[...]."""
    num_users = indptr.shape[0] - 1
    counts = indptr[1:] - indptr[:-1]
    owner = torch.repeat_interleave(torch.arange(num_users, device=indices.device), counts)
    keys = owner * num_items + indices
    query = (users * num_items + items).reshape(-1)
    pos = torch.searchsorted(keys, query).clamp_max(max(keys.shape[0] - 1, 0))
    if keys.shape[0] == 0:
        return torch.zeros_like(items, dtype=torch.bool)
    return (keys[pos] == query).reshape(items.shape)


def _check_sample_args(indptr, indices, users, num_items, num_samples):
    num_users = indptr.shape[0] - 1
    if num_samples < 0:
        raise ValueError(f"sample_negatives: num_samples must be >= 0, got {num_samples}")
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= num_users):
        raise ValueError(f"sample_negatives: users must lie in [0, {num_users})")
    degree = indptr[1:] - indptr[:-1]
    full = degree[users] >= num_items
    if bool(full.any()):
        user = int(users[full.nonzero()[0, 0]])
        raise ValueError(f"sample_negatives: user {user} has no non-positive item")


def sample_negatives(
    indptr: torch.Tensor,
    indices: torch.Tensor,
    users: torch.Tensor,
    num_items: int,
    num_samples: int,
    seed: int,
    offset: int,
    alias_prob: torch.Tensor | None = None,
    alias_idx: torch.Tensor | None = None,
) -> torch.Tensor:
    """Same stream and rules as the operator (see ops.sample_negatives), vectorised."""
    _check_sample_args(indptr, indices, users, num_items, num_samples)
    batch = users.shape[0]
    rows = torch.arange(batch, device=users.device).unsqueeze(1).expand(batch, num_samples)
    draws = torch.arange(num_samples, device=users.device).unsqueeze(0).expand(batch, num_samples)
    row_users = users.unsqueeze(1).expand(batch, num_samples)
    degree = (indptr[1:] - indptr[:-1])[row_users]

    def uniform_draw(attempt: int) -> torch.Tensor:
        w = draw_words(seed, offset, rows, draws, attempt)
        ranks = uniform_below(w[0], w[1], num_items - degree)
        return rank_to_non_member(indptr, indices, num_items, row_users, ranks)

    if alias_prob is None:
        return uniform_draw(0)
    out = torch.full((batch, num_samples), -1, dtype=torch.int64, device=users.device)
    pending = torch.ones(batch, num_samples, dtype=torch.bool, device=users.device)
    for attempt in range(ALIAS_MAX_ATTEMPTS):
        if not bool(pending.any()):
            break
        w = draw_words(seed, offset, rows, draws, attempt)
        col = uniform_below(w[0], w[1], torch.full_like(w[0], num_items))
        keep = uniform_unit(w[2]) < alias_prob[col]
        item = torch.where(keep, col, alias_idx[col])
        accept = pending & ~is_positive(indptr, indices, num_items, row_users, item)
        out[accept] = item[accept]
        pending &= ~accept
    if bool(pending.any()):
        fallback = uniform_draw(ALIAS_MAX_ATTEMPTS)
        out[pending] = fallback[pending]
    return out


# ---------------------------------------------------------------------------------------------
# Sparse graph products: spmm, graph_propagate (the torch.sparse.mm code LightGCN / NGCF /
# MixGCF / DENS run)
# ---------------------------------------------------------------------------------------------


def csr_rows(indptr: torch.Tensor, nnz: int) -> torch.Tensor:
    """Row id of every stored entry of a CSR matrix, ``[nnz]`` int64."""
    counts = indptr[1:] - indptr[:-1]
    rows = torch.arange(counts.shape[0], device=indptr.device)
    return torch.repeat_interleave(rows, counts, output_size=nnz)


def csr_to_coo(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
               num_cols: int) -> torch.Tensor:
    """The CSR matrix ``[R, num_cols]`` as a sparse COO tensor (differentiable in ``values``)."""
    rows = csr_rows(indptr, indices.shape[0])
    return torch.sparse_coo_tensor(torch.stack([rows, indices]), values,
                                   (indptr.shape[0] - 1, num_cols), check_invariants=False)


def spmm(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, x: torch.Tensor,
         symmetric: bool = False) -> torch.Tensor:
    """``A @ x`` for the CSR matrix ``A [R, C]`` (``C = x.shape[0]``): torch.sparse.mm on COO.

    ``symmetric`` only tells the operator that ``A^T = A`` (its backward); the product does not
    depend on it.
    """
    del symmetric
    return torch.sparse.mm(csr_to_coo(indptr, indices, values, x.shape[0]), x)


def propagate_layers(adj: torch.Tensor, x: torch.Tensor, num_layers: int) -> list[torch.Tensor]:
    """``[x, A x, A^2 x, ..., A^K x]`` with ``torch.sparse.mm`` (``adj`` sparse COO or CSR)."""
    layers = [x]
    for _ in range(num_layers):
        layers.append(torch.sparse.mm(adj, layers[-1]))
    return layers


def mean_of_layers(adj: torch.Tensor, x: torch.Tensor, num_layers: int) -> torch.Tensor:
    """LightGCN's propagation as its reference code writes it: the layers, stacked, averaged."""
    return torch.stack(propagate_layers(adj, x, num_layers), dim=0).mean(dim=0)


def graph_propagate(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
                    x: torch.Tensor, num_layers: int, symmetric: bool = False) -> torch.Tensor:
    """``mean(x, A x, ..., A^K x)`` for a square CSR matrix ``A [N, N]``, ``x [N, d]``."""
    del symmetric
    if num_layers < 0:
        raise ValueError(f"graph_propagate: num_layers must be >= 0, got {num_layers}")
    return mean_of_layers(csr_to_coo(indptr, indices, values, x.shape[0]), x, num_layers)
