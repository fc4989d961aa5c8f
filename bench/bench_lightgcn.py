"""LightGCN training with the graph operators vs the same code on the reference path, CPU.

Both sides are this toolkit's trainer with the DENS protocol's settings (LightGCN 3 layers,
d = 64, Xavier init, Adam 1e-3, batch 2048, L2 5e-5, BPR, RNS); the only difference is
``propagation="ops"`` (graph_propagate / spmm) against ``propagation="reference"``
(torch.sparse.mm on COO + torch.stack(...).mean(0), the research code's path). Timed
interleaved in one run (bench/interleave.py), correctness checked first:

  * one training step on beauty (the goal's case) and lastfm (propagation, RNS negatives,
    BPR + L2, backward, Adam);
  * a whole 100-epoch lastfm run of the DENS protocol (test every 5 epochs, no early stopping,
    checkpoints at the default cadence), as ``python -m autosample_ext.train --protocol dens
    --data lastfm --sampler rns --epochs 100 --patience 0`` does it.

    PYTHONPATH=. pytest bench/bench_lightgcn.py --benchmark-json=bench/results/lightgcn.json

Threads: AUTOSAMPLE_BENCH_THREADS (default 1). Data: $AUTOSAMPLE_DATA_DIR (../shared/data).
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from interleave import DATA, THREADS, Interleaved, bench_threads, need_dataset  # noqa: F401

SIDES = {"autosample": "ops", "reference_path": "reference"}
pytestmark = pytest.mark.usefixtures("bench_threads")


@functools.cache
def dataset(name: str):
    from autosample_ext.data import load

    return load(need_dataset(name), split="given")


def dens_trainer(data, propagation: str):
    from autosample_ext.run import RunConfig
    from autosample_ext.run.phases import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, Trainer

    cfg = RunConfig(protocol="dens", sampler=("rns",), propagation=propagation,
                    progress=False).resolved()
    model = build_model(cfg, data, 0)
    sampler = build_sampler("rns", data, 1, "cpu")
    return Trainer(data, model, SamplerObjective(sampler, l2=cfg.l2), cfg.train_config(0))


@pytest.mark.parametrize("name", ["beauty", "lastfm"])
def test_lightgcn_rns_step(benchmark, name):
    data = dataset(name)
    trainers = {side: dens_trainer(data, p) for side, p in SIDES.items()}
    users, items = trainers["autosample"].train_users[:2048], trainers["autosample"].train_items[:2048]
    for t in trainers.values():  # one step each from the same weights: same loss, same update
        t._train_step(users, items, 0)
    a, b = (t.model.state_dict() for t in trainers.values())
    torch.testing.assert_close(trainers["autosample"].loss_sum, trainers["reference_path"].loss_sum)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    step = {"n": 1}

    def stepper(t):
        def run():
            t._train_step(users, items, step["n"])

        return run

    bench = Interleaved({side: stepper(t) for side, t in trainers.items()})
    benchmark.group = f"LightGCN RNS training step {name} threads={THREADS}"
    benchmark.pedantic(bench.round, rounds=12, iterations=1, warmup_rounds=1)
    info = bench.record(benchmark, batch=2048)
    print(f"\n{benchmark.group}: {info}")


def test_lightgcn_dens_run_lastfm_100_epochs(benchmark):
    from autosample_ext.run import RunConfig, run

    data = dataset("lastfm")
    workdir = Path(tempfile.mkdtemp(prefix="bench_lightgcn_"))
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}

    def runner(side):
        def go():
            out = workdir / f"{side}-{len(results[side])}"
            cfg = RunConfig(data=str(DATA / "lastfm"), protocol="dens", sampler=("rns",),
                            epochs=100, patience=0, progress=False, out=str(out),
                            propagation=SIDES[side])
            summary = run(cfg, data=data)
            results[side].append(summary.records[0].result.valid)
            shutil.rmtree(out)

        return go

    try:
        bench = Interleaved({side: runner(side) for side in SIDES})
        benchmark.group = f"LightGCN DENS run lastfm 100 epochs RNS threads={THREADS}"
        benchmark.pedantic(bench.round, rounds=2, iterations=1, warmup_rounds=0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ours, theirs = results["autosample"], results["reference_path"]
    assert all(r == ours[0] for r in ours) and all(r == theirs[0] for r in theirs)  # deterministic
    # Same method, float rounding apart: the best test metrics agree closely.
    assert abs(ours[0]["recall@20"] - theirs[0]["recall@20"]) < 0.005, (ours[0], theirs[0])
    info = bench.record(benchmark, best_test_ops=ours[0], best_test_reference=theirs[0])
    print(f"\n{benchmark.group}: {info}")
