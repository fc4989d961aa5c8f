"""autosample::sample_negatives on CPU against the oracle (autosample_ext/ops/reference.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from autosample_ext import ops
from autosample_ext.data.interactions import CSR
from autosample_ext.ops import reference


def random_csr(num_users: int, num_items: int, density: float, seed: int) -> CSR:
    rng = np.random.default_rng(seed)
    mask = rng.random((num_users, num_items)) < density
    mask[np.arange(num_users), rng.integers(0, num_items, num_users)] = False  # >= 1 non-positive
    users, items = np.nonzero(mask)
    return CSR.from_pairs(users, items, num_users)


def alias_table(num_items: int, seed: int, beta: float = 0.75):
    popularity = np.random.default_rng(seed).integers(1, 50, num_items).astype(np.float64)
    prob, idx = ops.build_alias_table(popularity**beta)
    return popularity**beta, prob, idx


def both(csr: CSR, users, num_items, num_samples, seed, offset, alias=None):
    extra = () if alias is None else alias
    got = ops.sample_negatives(csr.indptr, csr.indices, users, num_items, num_samples, seed,
                               offset, *extra)
    want = reference.sample_negatives(csr.indptr, csr.indices, users.contiguous(), num_items,
                                      num_samples, seed, offset, *extra)
    return got, want


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize("mode", ["uniform", "alias"])
def test_equals_reference(case: int, mode: str) -> None:
    rng = np.random.default_rng(case)
    num_users, num_items = int(rng.integers(1, 40)), int(rng.integers(1, 60))
    csr = random_csr(num_users, num_items, float(rng.uniform(0, 0.95)), case)
    batch, num_samples = int(rng.integers(0, 50)), int(rng.integers(0, 20))
    users = torch.from_numpy(rng.integers(0, num_users, batch))
    seed, offset = int(rng.integers(-2**62, 2**62)), int(rng.integers(-2**62, 2**62))
    alias = alias_table(num_items, case)[1:] if mode == "alias" else None
    got, want = both(csr, users, num_items, num_samples, seed, offset, alias)
    assert got.shape == (batch, num_samples) and got.dtype == torch.int64
    assert torch.equal(got, want)


def test_empty_batch_and_zero_samples() -> None:
    csr = random_csr(5, 10, 0.3, 0)
    assert ops.sample_negatives(csr.indptr, csr.indices, torch.zeros(0, dtype=torch.long), 10, 7,
                                1, 2).shape == (0, 7)
    assert ops.sample_negatives(csr.indptr, csr.indices, torch.arange(5), 10, 0, 1, 2).shape == (5, 0)


def test_non_contiguous_inputs() -> None:
    csr = random_csr(20, 30, 0.4, 1)
    users = torch.randint(0, 20, (64, 2), generator=torch.Generator().manual_seed(0))[:, 1]
    assert not users.is_contiguous()
    got, want = both(csr, users, 30, 9, 5, 6)
    assert torch.equal(got, want)
    _, prob, idx = alias_table(30, 0)
    prob2 = torch.stack([prob, prob], 1)[:, 0]
    idx2 = torch.stack([idx, idx], 1)[:, 0]
    got, want = both(csr, users, 30, 9, 5, 6, (prob2, idx2))
    assert torch.equal(got, want)


@pytest.mark.parametrize("mode", ["uniform", "alias"])
def test_never_a_positive_even_with_one_free_item(mode: str) -> None:
    num_users, num_items = 30, 40
    csr = random_csr(num_users, num_items, 0.5, 2)
    rows = [csr.row(u).tolist() for u in range(num_users)]
    # Users 0..9: every item but one is positive (the free one differs by user).
    pairs = [(u, i) for u in range(num_users) for i in rows[u] if u >= 10]
    pairs += [(u, i) for u in range(10) for i in range(num_items) if i != (7 * u) % num_items]
    u_arr, i_arr = np.array(pairs).T
    csr = CSR.from_pairs(u_arr, i_arr, num_users)
    users = torch.arange(num_users).repeat(4)
    alias = alias_table(num_items, 3)[1:] if mode == "alias" else None
    got, want = both(csr, users, num_items, 50, 11, 12, alias)
    assert torch.equal(got, want)
    assert not reference.is_positive(csr.indptr, csr.indices, num_items,
                                     users.unsqueeze(1).expand_as(got), got).any()
    assert ((got >= 0) & (got < num_items)).all()
    for u in range(10):
        assert (got[users == u] == (7 * u) % num_items).all()


def test_deterministic_by_seed_and_offset() -> None:
    csr = random_csr(50, 500, 0.1, 4)
    users = torch.arange(50)
    a = ops.sample_negatives(csr.indptr, csr.indices, users, 500, 32, 42, 7)
    assert torch.equal(a, ops.sample_negatives(csr.indptr, csr.indices, users, 500, 32, 42, 7))
    for seed, offset in [(42, 8), (43, 7), (42, 7 + 2**32), (42 + 2**32, 7)]:
        other = ops.sample_negatives(csr.indptr, csr.indices, users, 500, 32, seed, offset)
        assert (a != other).float().mean() > 0.9


def test_thread_count_does_not_change_output() -> None:
    csr = random_csr(64, 200, 0.2, 5)
    users = torch.arange(64).repeat(8)
    a = ops.sample_negatives(csr.indptr, csr.indices, users, 200, 16, 3, 4)
    torch.set_num_threads(1)
    assert torch.equal(a, ops.sample_negatives(csr.indptr, csr.indices, users, 200, 16, 3, 4))


def test_uniform_over_non_positives_chi_square() -> None:
    num_items = 60
    positives = np.array([0, 3, 4, 10, 11, 12, 30, 59])
    csr = CSR.from_pairs(np.zeros_like(positives), positives, 1)
    draws = ops.sample_negatives(csr.indptr, csr.indices, torch.zeros(200, dtype=torch.long),
                                 num_items, 300, 9, 0).reshape(-1).numpy()
    counts = np.bincount(draws, minlength=num_items)
    assert counts[positives].sum() == 0
    free = np.setdiff1d(np.arange(num_items), positives)
    assert stats.chisquare(counts[free]).pvalue > 1e-4


def test_alias_distribution_restricted_to_non_positives_chi_square() -> None:
    num_items = 50
    weights, prob, idx = alias_table(num_items, 6)
    positives = np.array([1, 2, 8, 20, 21, 49])
    csr = CSR.from_pairs(np.zeros_like(positives), positives, 1)
    draws = ops.sample_negatives(csr.indptr, csr.indices, torch.zeros(300, dtype=torch.long),
                                 num_items, 300, 13, 1, prob, idx).reshape(-1).numpy()
    counts = np.bincount(draws, minlength=num_items)
    assert counts[positives].sum() == 0
    free = np.setdiff1d(np.arange(num_items), positives)
    expected = weights[free] / weights[free].sum() * draws.size
    assert stats.chisquare(counts[free], expected).pvalue > 1e-4
    uniform = np.full(free.size, draws.size / free.size)
    assert stats.chisquare(counts[free], uniform).pvalue < 1e-6  # it is not the uniform law


def test_alias_fallback_after_1024_rejections() -> None:
    # Alias mass only on item 0, a positive: every alias attempt fails, the fallback is uniform.
    num_items = 8
    prob, idx = ops.build_alias_table(np.r_[1.0, np.zeros(num_items - 1)])
    csr = CSR.from_pairs(np.zeros(2, dtype=np.int64), np.array([0, 5]), 1)
    users = torch.zeros(4, dtype=torch.long)
    got, want = both(csr, users, num_items, 20, 1, 2, (prob, idx))  # 8-lane path and tail
    assert torch.equal(got, want)
    assert not np.isin(got.numpy(), [0, 5]).any()
    fallback = reference.sample_negatives(csr.indptr, csr.indices, users, num_items, 20, 1, 2)
    assert not torch.equal(got, fallback)  # attempt 1024, not attempt 0


def _call(csr: CSR, **kw):
    args = dict(indptr=csr.indptr, indices=csr.indices, users=torch.tensor([0, 1]), num_items=10,
                num_samples=3, seed=0, offset=0)
    args.update(kw)
    return torch.ops.autosample.sample_negatives(
        args["indptr"], args["indices"], args["users"], args["num_items"], args["num_samples"],
        args["seed"], args["offset"], args.get("alias_prob"), args.get("alias_idx"))


@pytest.mark.parametrize("kw, pattern", [
    (dict(users=torch.tensor([0.0, 1.0])), r"sample_negatives.*'users'.*int64.*Float"),
    (dict(users=torch.tensor([[0, 1]])), r"sample_negatives.*'users'.*1-D"),
    (dict(indptr=torch.tensor([0, 2, 3], dtype=torch.int32)), r"sample_negatives.*'indptr'.*int64"),
    (dict(users=torch.tensor([0, 2])), r"sample_negatives.*'users'.*user 2.*\[0, 2\)"),
    (dict(users=torch.tensor([-1])), r"sample_negatives.*'users'.*user -1"),
    (dict(num_items=3), r"sample_negatives.*user 0.*no non-positive"),
    (dict(num_items=0), r"sample_negatives.*'num_items'.*0"),
    (dict(num_samples=-1), r"sample_negatives.*'num_samples'.*-1"),
    (dict(alias_prob=torch.ones(10)), r"sample_negatives.*'alias_prob' and 'alias_idx'.*together"),
    (dict(alias_idx=torch.zeros(10, dtype=torch.long)), r"'alias_prob' and 'alias_idx'"),
    (dict(alias_prob=torch.ones(9), alias_idx=torch.zeros(9, dtype=torch.long)),
     r"sample_negatives.*'alias_prob'.*num_items = 10.*9"),
    (dict(alias_prob=torch.ones(10, dtype=torch.float64), alias_idx=torch.zeros(10, dtype=torch.long)),
     r"sample_negatives.*'alias_prob'.*float32"),
    (dict(alias_prob=torch.zeros(10), alias_idx=torch.full((10,), 10)),
     r"sample_negatives.*'alias_idx'.*10.*outside"),
])
def test_errors(kw, pattern) -> None:
    csr = CSR(torch.tensor([0, 3, 4]), torch.tensor([0, 1, 2, 5]))
    with pytest.raises(RuntimeError, match=pattern):
        _call(csr, **kw)


def test_error_item_out_of_range() -> None:
    csr = CSR(torch.tensor([0, 2, 3]), torch.tensor([1, 12, 4]))
    with pytest.raises(RuntimeError, match=r"sample_negatives: argument 'indices' holds item id 12 in row 0 \(at indices\[1\]\)"):
        _call(csr)


def test_opcheck() -> None:
    csr = random_csr(10, 20, 0.3, 7)
    users = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(1))
    _, prob, idx = alias_table(20, 7)
    torch.library.opcheck(torch.ops.autosample.sample_negatives,
                          (csr.indptr, csr.indices, users, 20, 5, 1, 2))
    torch.library.opcheck(torch.ops.autosample.sample_negatives,
                          (csr.indptr, csr.indices, users, 20, 5, 1, 2, prob, idx))


def test_torch_compile_fullgraph() -> None:
    csr = random_csr(10, 20, 0.3, 8)
    users = torch.arange(10)

    def step(indptr, indices, users, seed: int, offset: int):
        return ops.sample_negatives(indptr, indices, users, 20, 4, seed, offset) + 0

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(csr.indptr, csr.indices, users, 3, 4),
                       step(csr.indptr, csr.indices, users, 3, 4))
