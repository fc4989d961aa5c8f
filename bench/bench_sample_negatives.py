"""sample_negatives (C++ CPU kernel) vs a searchsorted rejection loop in PyTorch.

1M draws (4096 users x 256 samples) on the ML-1M training CSR (6,040 users x 3,706 items,
~132 positives per user): ../shared/data/ml-1m/train.txt beside the repository (or
$AUTOSAMPLE_DATA_DIR/ml-1m/train.txt) when present, else a synthetic CSR
of that shape with a fixed seed. Both modes: uniform over non-positives and alias table
(popularity^0.75) restricted to non-positives. Correctness is checked before timing.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from autosample_ext import ops
from autosample_ext.data.interactions import CSR
from autosample_ext.ops import reference

NUM_USERS, NUM_ITEMS, BATCH, SAMPLES = 6040, 3706, 4096, 256
ML1M = Path(os.environ.get("AUTOSAMPLE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ml-1m" / "train.txt"


def load_csr() -> CSR:
    """ML-1M train split (lines: user item item ...), or a synthetic one of the same shape."""
    if ML1M.is_file():
        users, items = [], []
        for line in ML1M.read_text().splitlines():
            ids = [int(x) for x in line.split()]
            users += [ids[0]] * (len(ids) - 1)
            items += ids[1:]
        return CSR.from_pairs(np.array(users), np.array(items), NUM_USERS)
    rng = np.random.default_rng(0)
    popularity = rng.zipf(1.3, NUM_ITEMS).astype(np.float64)
    degrees = np.clip(rng.lognormal(4.3, 1.0, NUM_USERS).astype(np.int64), 20, 2000)
    p = popularity / popularity.sum()
    rows = [rng.choice(NUM_ITEMS, size=min(d, NUM_ITEMS - 1), replace=False, p=p) for d in degrees]
    users = np.repeat(np.arange(NUM_USERS), [len(r) for r in rows])
    return CSR.from_pairs(users, np.concatenate(rows), NUM_USERS)


def pair_keys(csr: CSR) -> torch.Tensor:
    """Sorted user * N + item keys of every positive."""
    users, items = csr.pairs()
    return users * NUM_ITEMS + items


def rejection_sampler(keys: torch.Tensor, users: torch.Tensor, num_samples: int,
                      gen: torch.Generator, alias: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Baseline: draw items (uniform or alias), redraw those found among the positives with
    torch.searchsorted on the sorted user * N + item keys, until none remains."""

    def draw(count: int) -> torch.Tensor:
        col = torch.randint(0, NUM_ITEMS, (count,), generator=gen)
        if alias is None:
            return col
        keep = torch.rand(count, generator=gen) < alias[0][col]
        return torch.where(keep, col, alias[1][col])

    row_users = users.repeat_interleave(num_samples)
    out = draw(row_users.numel())
    todo = torch.arange(out.numel())
    while todo.numel():
        query = row_users[todo] * NUM_ITEMS + out[todo]
        pos = torch.searchsorted(keys, query).clamp_max_(keys.numel() - 1)
        todo = todo[keys[pos] == query]
        out[todo] = draw(todo.numel())
    return out.view(users.numel(), num_samples)


@pytest.fixture(scope="module")
def setup():
    csr = load_csr()
    users = torch.randint(0, NUM_USERS, (BATCH,), generator=torch.Generator().manual_seed(1))
    popularity = torch.bincount(csr.indices, minlength=NUM_ITEMS).double() + 1.0
    alias = ops.build_alias_table(popularity**0.75)
    return csr, users, pair_keys(csr), alias


def assert_no_positive(csr: CSR, users: torch.Tensor, out: torch.Tensor) -> None:
    assert out.shape == (BATCH, SAMPLES)
    assert ((out >= 0) & (out < NUM_ITEMS)).all()
    assert not reference.is_positive(csr.indptr, csr.indices, NUM_ITEMS,
                                     users.unsqueeze(1).expand_as(out), out).any()


@pytest.mark.benchmark(group="sample_negatives-uniform")
def test_uniform_kernel(benchmark, setup) -> None:
    csr, users, _, _ = setup
    out = ops.sample_negatives(csr.indptr, csr.indices, users, NUM_ITEMS, SAMPLES, 7, 3)
    assert torch.equal(out, reference.sample_negatives(csr.indptr, csr.indices, users, NUM_ITEMS,
                                                       SAMPLES, 7, 3))
    assert_no_positive(csr, users, out)
    benchmark(ops.sample_negatives, csr.indptr, csr.indices, users, NUM_ITEMS, SAMPLES, 7, 3)


@pytest.mark.benchmark(group="sample_negatives-uniform")
def test_uniform_rejection_baseline(benchmark, setup) -> None:
    csr, users, keys, _ = setup
    gen = torch.Generator().manual_seed(0)
    assert_no_positive(csr, users, rejection_sampler(keys, users, SAMPLES, gen))
    benchmark(rejection_sampler, keys, users, SAMPLES, gen)


@pytest.mark.benchmark(group="sample_negatives-alias")
def test_alias_kernel(benchmark, setup) -> None:
    csr, users, _, (prob, idx) = setup
    out = ops.sample_negatives(csr.indptr, csr.indices, users, NUM_ITEMS, SAMPLES, 7, 3, prob, idx)
    small = slice(0, 256)  # the oracle's rejection loop is slow; compare on a slice of rows
    want = reference.sample_negatives(csr.indptr, csr.indices, users[small], NUM_ITEMS, SAMPLES, 7,
                                      3, prob, idx)
    assert torch.equal(out[small], want)
    assert_no_positive(csr, users, out)
    benchmark(ops.sample_negatives, csr.indptr, csr.indices, users, NUM_ITEMS, SAMPLES, 7, 3,
              prob, idx)


@pytest.mark.benchmark(group="sample_negatives-alias")
def test_alias_rejection_baseline(benchmark, setup) -> None:
    csr, users, keys, alias = setup
    gen = torch.Generator().manual_seed(0)
    assert_no_positive(csr, users, rejection_sampler(keys, users, SAMPLES, gen, alias))
    benchmark(rejection_sampler, keys, users, SAMPLES, gen, alias)
