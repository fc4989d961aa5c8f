"""End-to-end epoch benchmark: MF + DNS on ml-1m, one training epoch.

The same :class:`~autosample_ext.search.Trainer` runs one epoch (every step: propagation, DNS
negatives = ``sample_negatives`` + ``score_topk``, BPR, backward, Adam) once with the project's
operators and once with the pure-PyTorch oracles of :mod:`autosample_ext.ops.reference` (the code
a user would otherwise write). Before timing, both produce the same negatives and the same loss
for a batch. A second pair times the DNS sampling of an epoch's batches alone (fixed tables),
the operators' share of the step. Run:

    PYTHONPATH=. pytest bench/bench_epoch.py --benchmark-only --benchmark-json=bench/results/epoch.json

Data: ``$AUTOSAMPLE_DATA_DIR/ml-1m`` (default ``../shared/data/ml-1m``); skipped when missing.

How the reference operators are used: the samplers call ``autosample_ext.ops`` through their
module's ``ops`` name and take no operator argument, so the reference run swaps that name for
the duration of the call (:func:`reference_ops`), restoring it afterwards.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

from autosample_ext import ops as project_ops
from autosample_ext.ops import reference
from autosample_ext.samplers import dns as dns_module

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data")) / "ml-1m"

REFERENCE_OPS = SimpleNamespace(
    sample_negatives=reference.sample_negatives,
    score_candidates=reference.score_candidates,
    score_topk=reference.score_topk,
    select_topk=reference.select_topk,
    rank_topk=reference.rank_topk_fast,
    build_alias_table=project_ops.build_alias_table,
)


@contextlib.contextmanager
def reference_ops():
    """DNS draws with the reference operators inside the block."""
    with mock.patch.object(dns_module, "ops", REFERENCE_OPS):
        yield


@pytest.fixture(scope="module")
def ml1m():
    if not (DATA / "train.txt").is_file():
        pytest.skip(f"ml-1m not found at {DATA} (set AUTOSAMPLE_DATA_DIR)")
    from autosample_ext.data import load

    return load(DATA, split="given")


def make_trainer(data):
    from autosample_ext.models import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, TrainConfig, Trainer

    model = build_model("mf", data, 64, seed=0)
    sampler = build_sampler("dns", data, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=2048, lr=1e-3, l2=1e-4, eval_split="test",
                      progress=False)
    return Trainer(data, model, SamplerObjective(sampler, l2=1e-4), cfg)


def one_epoch(trainer):
    trainer.batch = 0
    trainer.loss_sum.zero_()
    trainer.train_batches(0)
    return float(trainer.loss_sum) / trainer.num_batches


def test_same_negatives_and_loss(ml1m):
    from autosample_ext.samplers import SampleContext

    trainer = make_trainer(ml1m)
    users, items = trainer.train_users[:2048], trainer.train_items[:2048]
    with torch.no_grad():
        u, i = trainer.model.propagate()
    ctx = SampleContext(users, items, trainer.model, u, i, step=7)
    ours = trainer.objective.sampler.sample(ctx).items
    with reference_ops():
        theirs = trainer.objective.sampler.sample(ctx).items
    assert torch.equal(ours, theirs)
    a = make_trainer(ml1m)
    b = make_trainer(ml1m)
    a._train_step(users, items, 0)
    with reference_ops():
        b._train_step(users, items, 0)
    torch.testing.assert_close(a.loss_sum, b.loss_sum)
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict())


@pytest.mark.benchmark(group="epoch-mf-dns-ml1m")
def test_epoch_project_ops(benchmark, ml1m):
    trainer = make_trainer(ml1m)
    loss = benchmark.pedantic(one_epoch, args=(trainer,), rounds=2, iterations=1, warmup_rounds=0)
    assert 0 < loss < 1.0


@pytest.mark.benchmark(group="epoch-mf-dns-ml1m")
def test_epoch_reference_ops(benchmark, ml1m):
    trainer = make_trainer(ml1m)
    with reference_ops():
        loss = benchmark.pedantic(one_epoch, args=(trainer,), rounds=2, iterations=1,
                                  warmup_rounds=0)
    assert 0 < loss < 1.0


def sampling_epoch(trainer):
    """DNS negatives for every batch of an epoch (fixed tables): the operators' share alone."""
    from autosample_ext.samplers import SampleContext

    cfg = trainer.config
    with torch.no_grad():
        u, i = trainer.model.propagate()
    total = 0
    for b in range(trainer.num_batches):
        sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
        ctx = SampleContext(trainer.train_users[sl], trainer.train_items[sl], trainer.model, u, i,
                            step=b)
        total += int(trainer.objective.sampler.sample(ctx).items.shape[0])
    return total


@pytest.mark.benchmark(group="dns-sampling-epoch-ml1m")
def test_sampling_project_ops(benchmark, ml1m):
    trainer = make_trainer(ml1m)
    n = benchmark.pedantic(sampling_epoch, args=(trainer,), rounds=2, iterations=1)
    assert n == ml1m.train.nnz


@pytest.mark.benchmark(group="dns-sampling-epoch-ml1m")
def test_sampling_reference_ops(benchmark, ml1m):
    trainer = make_trainer(ml1m)
    with reference_ops():
        n = benchmark.pedantic(sampling_epoch, args=(trainer,), rounds=2, iterations=1)
    assert n == ml1m.train.nnz
