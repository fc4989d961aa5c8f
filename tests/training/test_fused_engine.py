"""The fused training engine (training/fused.py): the same parameters as the autograd path after
N steps (float64, SGD and AdaGrad, every sampler it draws for, MF and GMF, schedules), where it
applies and where the run stays on autograd (one notice line), its checkpoints and resume, and
the engine recorded in config.json and metrics.json."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.run.engine import engine_plan
from autosample_ext.models import build_model
from autosample_ext.samplers import build_sampler
from autosample_ext.search import AutoSampleObjective
from autosample_ext.training import (
    SamplerObjective,
    StopFlag,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
)
from autosample_ext.training import fused as fused_mod
from autosample_ext.training.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=200, num_items=150, mean_interactions=12.0)
    return default_dataset(seed=3, config=cfg)


def trained(data, engine: str, *, sampler="rns", model="mf", optimizer="sgd", epochs=2,
            options=None, dtype=torch.float64, **cfg):
    net = build_model(model, data, 8, seed=0).to(dtype)
    smp = build_sampler(sampler, data, seed=5, **(options or {}))
    trainer = Trainer(data, net, SamplerObjective(smp, l2=1e-3),
                      TrainConfig(epochs=epochs, batch_size=128, progress=False, optimizer=optimizer,
                                  lr=0.05, engine=engine, eval_every=10, **cfg))
    trainer.train_until(epochs)
    return trainer, {k: v.clone() for k, v in net.state_dict().items()}


SAMPLERS = [("rns", {}), ("pns", {}), ("dns", {}), ("dns", {"top_k": 3, "rank_lambda": 1.0}),
            ("aobpr", {"rank_lambda": 2.0})]


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("sampler,options", SAMPLERS)
@pytest.mark.parametrize("model", ["mf", "gmf"])
def test_fused_equals_autograd_float64(tiny, optimizer, sampler, options, model):
    """Same batches, same negatives, same loss: the parameters after two epochs (about 30 steps)
    agree to float64 rounding, and so do the logged losses."""
    f, fp = trained(tiny, "fused", sampler=sampler, model=model, optimizer=optimizer, options=options)
    a, ap = trained(tiny, "autograd", sampler=sampler, model=model, optimizer=optimizer, options=options)
    assert (f.engine, a.engine) == ("fused", "autograd")
    for key in fp:
        torch.testing.assert_close(fp[key], ap[key], rtol=1e-10, atol=1e-12)
    assert f.log[-1]["loss"] == pytest.approx(a.log[-1]["loss"], rel=1e-12)
    assert fp["user_embedding.weight"].sub(build_model(model, tiny, 8, seed=0).double()
                                           .user_embedding.weight).abs().max() > 1e-4  # it trained


def test_schedule_switches_segment_by_epoch(tiny):
    f, fp = trained(tiny, "fused", sampler="rns@1+dns", optimizer="adagrad")
    a, ap = trained(tiny, "autograd", sampler="rns@1+dns", optimizer="adagrad")
    torch.testing.assert_close(fp["item_embedding.weight"], ap["item_embedding.weight"], rtol=1e-10,
                               atol=1e-12)
    assert f.objective.epoch_fields() == a.objective.epoch_fields() == {"active": "dns"}


def test_chunk_size_does_not_change_the_result(tiny, monkeypatch):
    _, one_call = trained(tiny, "fused", sampler="dns", optimizer="adam", dtype=torch.float32)
    monkeypatch.setattr(fused_mod, "STEPS_PER_CALL", 3)
    _, chunks = trained(tiny, "fused", sampler="dns", optimizer="adam", dtype=torch.float32)
    for key in one_call:
        assert torch.equal(one_call[key], chunks[key])


def test_lazy_adam_moves_the_batch_rows_only(tiny):
    """optimizer="lazy_adam" (fused engine only): after two steps, the users of neither batch
    keep their initial rows and zero moments (dense Adam would have moved the first batch's
    users again in the second step); the state is the checkpointed optimiser state."""
    from autosample_ext.training.trainer import epoch_permutation

    net = build_model("mf", tiny, 8, seed=0)
    init = net.user_embedding.weight.detach().clone()
    t = Trainer(tiny, net, SamplerObjective(build_sampler("rns", tiny, seed=5), l2=1e-3),
                TrainConfig(batch_size=32, optimizer="lazy_adam", progress=False),
                on_step=lambda step: None)  # one step per operator call
    perm = epoch_permutation(0, 0, t.train_users.shape[0])
    t.fused.train_steps(t, 0, perm, 0)
    first = net.user_embedding.weight.detach().clone()
    t.fused.train_steps(t, 0, perm, 1)
    state = t.optimizer.state_dict()
    assert (state["engine"], state["optimizer"], state["steps"]) == ("fused", "lazy_adam", 2)
    in_second = torch.isin(torch.arange(tiny.num_users), t.train_users[perm[32:64]])
    in_any = in_second | torch.isin(torch.arange(tiny.num_users), t.train_users[perm[:32]])
    after = net.user_embedding.weight.detach()
    assert torch.equal(after[~in_any], init[~in_any])
    assert bool((state["state"]["user_exp_avg"][~in_any] == 0).all())
    assert torch.equal(after[~in_second], first[~in_second])  # no momentum tail
    assert not torch.equal(after[in_second], first[in_second])


def test_lazy_adam_needs_the_fused_engine(tiny):
    with pytest.raises(ValueError, match="lazy_adam' needs the fused engine, which does not train "
                                         "the LightGCN model"):
        Trainer(tiny, build_model("lightgcn", tiny, 8, seed=0),
                SamplerObjective(build_sampler("rns", tiny, seed=0), l2=1e-4),
                TrainConfig(epochs=1, optimizer="lazy_adam", progress=False))
    with pytest.raises(ValueError, match="--optimizer lazy_adam: lazy Adam needs the fused engine, "
                                         "and gdns train"):
        RunConfig(sampler=("rns", "gdns"), optimizer="lazy_adam").resolved()
    with pytest.raises(ValueError, match="the AutoSample search"):  # the paper's: autograd
        RunConfig(optimizer="lazy_adam", alpha_objective="train").resolved()
    # the validation-driven search (the default) trains on the fused engine
    assert RunConfig(optimizer="lazy_adam").resolved().optimizer == "lazy_adam"
    assert RunConfig(search="sh", optimizer="lazy_adam").resolved().optimizer == "lazy_adam"


@pytest.mark.parametrize("what", ["lightgcn", "gdns", "search", "autograd"])
def test_where_the_engine_does_not_apply(tiny, what):
    model = build_model("lightgcn" if what == "lightgcn" else "mf", tiny, 8, seed=0)
    if what == "search":
        samplers = [build_sampler(n, tiny, seed=i) for i, n in enumerate(("rns", "dns"))]
        objective = AutoSampleObjective(samplers, ("rns", "dns"), tau=1.0, alpha_lr=0.1, l2=1e-4, seed=0)
    else:
        objective = SamplerObjective(build_sampler("gdns" if what == "gdns" else "rns", tiny, seed=0,
                                                   **({"num_slots": 8} if what == "gdns" else {})),
                                     l2=1e-4)
    cfg = TrainConfig(epochs=1, batch_size=256, progress=False,
                      engine="autograd" if what == "autograd" else "fused")
    trainer = Trainer(tiny, model, objective, cfg)
    assert trainer.engine == "autograd" and trainer.fused is None
    assert isinstance(trainer.optimizer, torch.optim.Optimizer)
    assert {"lightgcn": "LightGCN model", "gdns": "gdns sampler", "search": "AutoSample mixture",
            "autograd": "--engine autograd"}[what] in trainer.autograd_reason


def test_engine_plan_and_the_one_notice(tiny):
    plan = engine_plan(RunConfig(sampler=("rns", "gdns", "aobpr@2+dns")))
    assert plan["samplers"] == {"rns": "fused", "gdns": "autograd", "aobpr@2+dns": "fused"}
    assert plan["notice"] == ("engine: gdns trains with autograd (the fused engine draws RNS, PNS, "
                              "DNS and AOBPR)")
    assert engine_plan(RunConfig(model="lightgcn"))["notice"].startswith("engine: --model lightgcn")
    assert engine_plan(RunConfig(sampler=("rns",)), world_size=2)["samplers"] == {"rns": "autograd"}
    assert engine_plan(RunConfig(sampler=("rns",), engine="autograd"))["notice"] is None
    auto = engine_plan(RunConfig())   # the validation-driven search: one sampler per step
    assert auto["search"] == "fused" and auto["notice"] is None
    paper = engine_plan(RunConfig(alpha_objective="train"))
    assert paper["search_train"] == "autograd" and "AutoSample search" in paper["notice"]
    both = engine_plan(RunConfig(compare=True))
    assert both["search"] == "fused" and both["search_train"] == "autograd"


def test_run_records_the_engines_and_logs_one_line(tiny, tmp_path, caplog):
    cfg = RunConfig(out=str(tmp_path / "r"), sampler=("rns", "srns"), epochs=1, dim=8,
                    batch_size=256, progress=False)
    with caplog.at_level(logging.INFO):
        run(cfg, data=tiny)
    notices = [r.message for r in caplog.records if r.message.startswith("engine:")]
    assert notices == [("engine: srns trains with autograd (the fused engine draws RNS, PNS, DNS and "
                       "AOBPR)")]
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["config"]["engine"] == "fused"
    assert saved["engines"]["samplers"] == {"rns": "fused", "srns": "autograd"}
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert {r["method"]: r["engine"] for r in metrics["runs"]} == {"rns": "fused", "srns": "autograd"}


def test_interrupted_fused_run_resumes_to_the_same_end(tiny, tmp_path, monkeypatch):
    """A stop request in the middle of an epoch (between operator calls of several steps)
    checkpoints the lazy Adam state; the resumed run ends with the uninterrupted run's weights
    and log."""
    monkeypatch.setattr(fused_mod, "STEPS_PER_CALL", 2)

    def make(path, stop=None):
        net = build_model("gmf", tiny, 8, seed=0)
        smp = build_sampler("dns", tiny, seed=5)
        return Trainer(tiny, net, SamplerObjective(smp, l2=1e-4),
                       TrainConfig(epochs=3, batch_size=64, progress=False, eval_every=1),
                       checkpoint_path=path, stop=stop)

    ref = make(tmp_path / "ref.pt")
    ref.fit()
    stop = StopFlag()
    first = make(tmp_path / "run.pt", stop)
    original = fused_mod.FusedEngine.train_steps

    def stopping(self, trainer, epoch, perm, b):
        if epoch == 1 and b >= 2:
            stop.request("test")
        return original(self, trainer, epoch, perm, b)

    monkeypatch.setattr(fused_mod.FusedEngine, "train_steps", stopping)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    monkeypatch.setattr(fused_mod.FusedEngine, "train_steps", original)
    assert (first.epoch, first.batch) == (1, 4)
    again = make(tmp_path / "run.pt")
    assert again.resume()
    result = again.fit()
    for key, value in ref.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])
    assert result.test == ref.result.test and result.engine == "fused"
    strip = lambda e: {k: v for k, v in e.items() if k != "seconds"}
    assert [strip(e) for e in again.log] == [strip(e) for e in ref.log]


def test_resume_with_the_other_engine_is_refused(tiny, tmp_path):
    net = build_model("mf", tiny, 8, seed=0)
    trainer = Trainer(tiny, net, SamplerObjective(build_sampler("rns", tiny, seed=0), l2=1e-4),
                      TrainConfig(epochs=1, batch_size=256, progress=False),
                      checkpoint_path=tmp_path / "c.pt")
    trainer.fit()
    other = Trainer(tiny, build_model("mf", tiny, 8, seed=0),
                    SamplerObjective(build_sampler("rns", tiny, seed=0), l2=1e-4),
                    TrainConfig(epochs=1, batch_size=256, progress=False, engine="autograd"),
                    checkpoint_path=tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="was trained by the fused engine, this run uses the "
                                              "autograd engine.*resume with --engine fused"):
        other.resume()


def test_runs_saved_before_the_engine_resume_with_autograd():
    assert RunConfig.from_json({"sampler": ["rns"]}).engine == "autograd"
    assert RunConfig.from_json({"sampler": ["rns"], "engine": "fused"}).engine == "fused"
