"""select_topk and score_candidates against the reference, CPU, 2 threads.

select_topk: keys [4096, 256] float32, k in {1, 8, 64}; baselines reference.select_topk
(stable sort, the oracle) and torch.topk (no canonical tie order).
score_candidates: B=4096, M=256, d=64, N=65,536; baselines reference.score_candidates
(gather + bmm) and torch.compile of it.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

B, M, D, N = 4096, 256, 64, 65_536
ROUNDS = 5


@pytest.fixture(scope="module")
def keys():
    return torch.randn(B, M, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def scoring_inputs():
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(B, D, generator=gen), torch.randn(N, D, generator=gen),
            torch.randint(0, N, (B, M), generator=gen))


SELECT = {
    "autosample": ops.select_topk,
    "reference": ref.select_topk,
    "torch_topk": lambda keys, k: torch.topk(keys, k, dim=1),
}


@pytest.mark.parametrize("k", [1, 8, 64])
@pytest.mark.parametrize("impl", list(SELECT))
def test_select_topk(benchmark, keys, impl, k):
    benchmark.group = f"select_topk {B}x{M} k={k}"
    fn = SELECT[impl]
    values, positions = fn(keys, k)
    want_values, want_positions = ref.select_topk(keys, k)
    assert torch.equal(values, want_values)
    assert torch.equal(torch.gather(keys, 1, positions), values)
    if impl != "torch_topk":  # torch.topk does not promise the canonical tie order
        assert torch.equal(positions, want_positions)
    benchmark.pedantic(fn, args=(keys, k), rounds=ROUNDS, iterations=1, warmup_rounds=1)


SCORE = {
    "autosample": ops.score_candidates,
    "reference": ref.score_candidates,
    "compiled_reference": torch.compile(ref.score_candidates, dynamic=False),
}


@pytest.mark.parametrize("impl", list(SCORE))
def test_score_candidates(benchmark, scoring_inputs, impl):
    benchmark.group = f"score_candidates B={B} M={M} d={D} N={N}"
    fn = SCORE[impl]
    torch.testing.assert_close(fn(*scoring_inputs), ref.score_candidates(*scoring_inputs),
                               rtol=1e-5, atol=1e-5)
    benchmark.pedantic(fn, args=scoring_inputs, rounds=ROUNDS, iterations=1, warmup_rounds=1)
