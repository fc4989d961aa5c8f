"""rank_topk (tiled at::mm + bounded top-k with exclusion walk) against matmul + mask + topk.

ML-1M shape: 6,040 users x 3,706 items, d=64, K=20, on average ~165 excluded (training) items
per user, float32, CPU, 2 threads. Baselines in the same run: reference.rank_topk_fast
(matmul, masked_fill -inf, torch.topk) and torch.compile of it.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

USERS, ITEMS, D, K = 6040, 3706, 64, 20
ROUNDS = 5


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(USERS, D, generator=gen)
    item = torch.randn(ITEMS, D, generator=gen)
    counts = torch.randint(20, 311, (USERS,), generator=gen)  # mean ~165
    ranks = torch.rand(USERS, ITEMS, generator=gen).argsort(dim=1)
    rows = [ranks[u, : int(c)].sort().values for u, c in enumerate(counts.tolist())]
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    return user, item, indptr, torch.cat(rows)


IMPLS = {
    "autosample": ops.rank_topk,
    "reference_fast": ref.rank_topk_fast,
    "compiled_reference_fast": torch.compile(ref.rank_topk_fast, dynamic=False),
}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_rank_topk(benchmark, inputs, impl):
    benchmark.group = f"rank_topk {USERS}x{ITEMS} d={D} K={K}"
    fn = IMPLS[impl]
    scores, items = fn(*inputs, K)
    want_scores, want_items = ref.rank_topk(*inputs, K)
    torch.testing.assert_close(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert (items == want_items).all(dim=1).float().mean().item() > 0.999
    benchmark.pedantic(fn, args=(*inputs, K), rounds=ROUNDS, iterations=1, warmup_rounds=1)


# --- trained tables: the evaluation's and AOBPR's shape on beauty ----------------------------
# Random tables let the running top-k's threshold settle at once; trained MF tables do not (a
# user's best items are spread over the ids), so the selection, not only the GEMM, costs. Three
# epochs of fused MF + DNS training on beauty give such tables; rank_topk then ranks every user
# (the validation, k=20) and AOBPR's k=50, excluding the training items.


@pytest.fixture(scope="module")
def beauty_tables():
    from interleave import need_dataset

    from autosample_ext.data import load
    from autosample_ext.models import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, TrainConfig, Trainer

    data = load(need_dataset("beauty"), split="3:1:1")
    model = build_model("mf", data, 64, seed=0)
    trainer = Trainer(data, model, SamplerObjective(build_sampler("dns", data, seed=0), l2=1e-4),
                      TrainConfig(epochs=3, batch_size=2048, lr=5e-3, eval_split="valid",
                                  progress=False))
    for epoch in range(3):
        trainer.batch = 0
        trainer.train_batches(epoch)
    with torch.no_grad():
        users, items = (t.detach().contiguous() for t in model.propagate())
    return users, items, data.train.indptr, data.train.indices


@pytest.mark.parametrize("k", [20, 50])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_rank_topk_trained_beauty(benchmark, beauty_tables, impl, k):
    users, items, indptr, indices = beauty_tables
    benchmark.group = f"rank_topk beauty trained {users.shape[0]}x{items.shape[0]} d={D} K={k}"
    fn = IMPLS[impl]
    scores, got = fn(users, items, indptr, indices, k)
    want_scores, want = ref.rank_topk(users, items, indptr, indices, k)
    torch.testing.assert_close(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert (got == want).all(dim=1).float().mean().item() > 0.999
    benchmark.pedantic(fn, args=(users, items, indptr, indices, k), rounds=ROUNDS, iterations=1,
                       warmup_rounds=1)
