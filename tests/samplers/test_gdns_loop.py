"""GDNS as the paper trains it: the exact (dense) gain or the slot approximation, chosen against
a memory budget before anything is allocated; the paper's epoch (each user once, batches of
users); the gain diagnostics of log.jsonl; checkpoints of the dense state (compact, exact, a
resumed run identical); the uniform-group control; bad options on the command line."""
from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch

from autosample_ext import data as D
from autosample_ext.models import build_model
from autosample_ext.samplers import build_sampler
from autosample_ext.samplers.base import SamplerOptionError
from autosample_ext.samplers.gdns_state import plan_table
from autosample_ext.samplers.registry import parse_sampler_opt
from autosample_ext.train import main
from autosample_ext.training import (
    SamplerObjective,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
)
from autosample_ext.training.config import StopFlag

SMALL = dict(group_size=4, num_candidates=8)


@pytest.fixture(scope="module")
def loo(tmp_path_factory):
    """200 users x 60 items, leave-one-out with fixed evaluation negatives (every user's
    negatives are seen within a few epochs, so the gain comes alive in a short test)."""
    rng = np.random.default_rng(0)
    weight = 1.0 / np.arange(1, 61) ** 0.7
    path = tmp_path_factory.mktemp("loo") / "pairs.csv"
    with open(path, "w") as fh:
        fh.write("user,item\n")
        for u in range(200):
            for i in rng.choice(60, size=int(rng.integers(6, 14)), replace=False,
                                p=weight / weight.sum()):
                fh.write(f"{u},{i}\n")
    return D.load(path, split="loo", seed=0, num_negatives=20)


def trainer(data, *, epochs=3, batch=64, checkpoint=None, stop=None, on_step=None, **options):
    model = build_model("gmf", data, 8, seed=0)
    sampler = build_sampler("gdns", data, seed=0, **{**SMALL, **options})
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=0.05, l2=0.0, optimizer="adagrad",
                         eval_protocol="sampled", metric="ndcg@3", ks=(1, 3), patience=0,
                         progress=False, seed=1)
    return Trainer(data, model, SamplerObjective(sampler, l2=0.0), config,
                   checkpoint_path=checkpoint, stop=stop, on_step=on_step)


def test_an_epoch_gives_every_user_one_group(loo):
    t = trainer(loo, epochs=2, batch=64)
    seen: list[torch.Tensor] = []
    sample = t.objective.sampler.sample_groups
    t.objective.sampler.sample_groups = lambda users, step: (seen.append(users.clone()),
                                                             sample(users, step))[1]
    t.train_until(1)
    with_positives = int((loo.train.degrees() > 0).sum())
    assert t.num_batches == math.ceil(with_positives / 64)
    assert len(seen) == t.num_batches and all(int(s.numel()) <= 64 for s in seen)
    users = torch.cat(seen)
    assert torch.equal(torch.sort(users).values, torch.nonzero(loo.train.degrees() > 0).flatten())
    t.train_until(2)  # another epoch: another order
    assert not torch.equal(torch.cat(seen[len(seen) // 2:]), users)


def test_log_reports_how_live_the_gain_is(loo):
    t = trainer(loo, epochs=16, batch=64, table="dense")
    t.fit()
    log = t.log
    for e in log:
        assert 0.0 <= e["gdns_live_fraction"] <= 1.0
        assert 0.0 < e["gdns_mean_g_selected"] <= 1.0
        assert e["gdns_mean_g_seen"] < 1.0
    assert log[0]["gdns_live_fraction"] == 0.0   # epoch 1: every pair unseen (G = 1) wins
    assert log[-1]["gdns_live_fraction"] > 0.5   # 60 items: the seen pairs decide by the end
    assert log[-1]["gdns_mean_g_selected"] < 1.0
    seen = [e["gdns_pairs_seen"] for e in log]
    assert seen == sorted(seen) and seen[-1] > seen[0]


def test_dense_checkpoint_is_compact_and_exact(loo):
    t = trainer(loo, epochs=2, table="dense")
    t.fit()
    table = t.objective.sampler.table
    state = table.state_dict()
    assert state["h"].numel() == int(((table.h != 1) | (table.g != 1)).sum()) < table.h.numel()
    other = trainer(loo, epochs=2, table="dense").objective.sampler.table
    other.load_state_dict(state)
    assert torch.equal(other.h, table.h) and torch.equal(other.g, table.g)


@pytest.mark.parametrize("options", [{"table": "dense"}, {"table": "slots", "num_slots": 8},
                                     {"selection": "uniform"}])
def test_interrupted_run_resumes_identically(loo, tmp_path, options):
    full = trainer(loo, epochs=3, **options)
    full.fit()
    path = tmp_path / "ckpt.pt"
    stop = StopFlag()
    step_of_stop = full.num_batches + 2   # in the middle of epoch 2

    def on_step(step):
        if step == step_of_stop:
            stop.request("test")

    first = trainer(loo, epochs=3, checkpoint=path, stop=stop, on_step=on_step, **options)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    resumed = trainer(loo, epochs=3, checkpoint=path, **options)
    assert resumed.resume() and resumed.batch == step_of_stop + 1 - full.num_batches
    resumed.fit()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    if full.objective.sampler.table is not None:
        for name in ("h", "g"):
            assert torch.equal(getattr(full.objective.sampler.table, name),
                               getattr(resumed.objective.sampler.table, name))
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in full.log]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in resumed.log]


def test_uniform_group_control_keeps_no_gain(loo):
    sampler = build_sampler("gdns", loo, seed=0, selection="uniform", **SMALL)
    assert sampler.table is None and sampler.state_dict() == {}
    users = torch.arange(10)
    groups = sampler.sample_groups(users, 3)
    assert torch.equal(groups.negatives, sampler.candidates(users, 3)[:, :4])
    t = trainer(loo, epochs=1, selection="uniform")
    t.fit()
    assert "gdns_live_fraction" not in t.log[0]


def test_table_plan_against_the_budget(caplog):
    assert plan_table("auto", 10_000, None, 10, 100).layout == "dense"     # 8,000 bytes fit
    assert plan_table("dense", 8_000, None, 10, 100).nbytes == 8_000
    with pytest.raises(SamplerOptionError) as exc:
        plan_table("dense", 7_999, None, 10, 100)
    for needle in ("gdns.table=dense", "10 users x 100 items", "8,000 bytes",
                   "gdns.max_table_bytes=7,999", "gdns.table=slots"):
        assert needle in str(exc.value), str(exc.value)
    with caplog.at_level(logging.WARNING):
        plan = plan_table("auto", 4_000, None, 10, 100)
    assert (plan.layout, plan.num_slots, plan.nbytes) == ("slots", 25, 4_000)
    assert len(caplog.records) == 1 and "using the slot table, 25 slots per user" in caplog.text
    assert plan_table("slots", 1 << 30, None, 10, 100).num_slots == 100     # every pair fits
    with pytest.raises(SamplerOptionError, match="cannot hold 50 slot"):
        plan_table("slots", 4_000, 50, 10, 100)
    with pytest.raises(ValueError, match="expected one of auto, dense, slots"):
        parse_sampler_opt("gdns.table=sparse")


def test_cli_refuses_bad_table_options(tmp_path, capsys):
    from faultdata import rated_csv

    csv = rated_csv(tmp_path / "r.csv")
    base = ["--protocol", "gdns", "--data", str(csv), "--sampler", "gdns", "--no-progress"]
    assert main([*base, "--sampler-opt", "gdns.table=sparse", "--out", str(tmp_path / "a")]) == 2
    assert "gdns.table=sparse: expected one of auto, dense, slots" in capsys.readouterr().err
    out = tmp_path / "b"
    assert main([*base, "--sampler-opt", "gdns.table=dense", "--sampler-opt",
                 "gdns.max_table_bytes=1000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--sampler-opt gdns.table=dense" in err and "gdns.max_table_bytes=1,000" in err
    assert "Traceback" not in err and not out.exists()        # nothing written
    ok = tmp_path / "c"
    assert main([*base, "--sampler-opt", "gdns.group_size=4", "--sampler-opt",
                 "gdns.num_candidates=8", "--epochs", "3", "--out", str(ok)]) == 0
    log = [json.loads(x) for x in (ok / "log.jsonl").read_text().splitlines()]
    assert all("gdns_live_fraction" in e for e in log) and log[0]["steps"] == 1  # 60 users, 1 batch
