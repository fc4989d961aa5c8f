"""Sampler schedules (``aobpr@5+dns``): parsing, the switch by epoch, group mode, resume, CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.models import build_model
from autosample_ext.samplers import SampleContext, ScheduleSampler, build_sampler, parse_schedule
from autosample_ext.samplers.base import mix_seed
from autosample_ext.search.space import canonical_name
from autosample_ext.training import SamplerObjective, StopFlag, TrainConfig, Trainer, TrainingInterrupted
from autosample_ext.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def test_parse_schedule_segments_and_canonical_text():
    s = parse_schedule("AOBPR@5 + dns")
    assert s.segments == (("aobpr", 5),) and s.last == "dns" and str(s) == "aobpr@5+dns"
    s = parse_schedule("rns@3+dns@10+aobpr")
    assert s.ends == (3, 13) and s.samplers == ("rns", "dns", "aobpr")
    assert [s.segment_at(e) for e in (0, 2, 3, 12, 13, 500)] == [0, 0, 1, 1, 2, 2]
    assert canonical_name(" Aobpr@5+DNS ") == "aobpr@5+dns" and canonical_name("DNS") == "dns"


@pytest.mark.parametrize("text,needle", [
    ("aobpr@5", "takes no @epochs"), ("aobpr+dns", "needs @epochs"), ("foo@5+dns", "unknown sampler 'foo'"),
    ("aobpr@0+dns", "integer >= 1"), ("aobpr@x+dns", "integer >= 1"), ("+dns", "empty segment"),
    ("aobpr@5+nosuch", "unknown sampler 'nosuch'"),
])
def test_parse_schedule_errors_name_the_part(text, needle):
    with pytest.raises(ValueError, match="schedule") as exc:
        parse_schedule(text)
    assert needle in str(exc.value)


def _ctx(data, model, epoch, step=0, n=64):
    users, items = data.train.pairs()
    u, i = model.propagate()
    return SampleContext(users[:n], items[:n], model, u.detach(), i.detach(), step=step, epoch=epoch)


def test_schedule_draws_with_the_segment_of_the_epoch(tiny):
    model = build_model("mf", tiny, 8, seed=0)
    sched = build_sampler("pns@2+dns", tiny, seed=7)
    assert isinstance(sched, ScheduleSampler) and sched.name == "pns@2+dns"
    pns = build_sampler("pns", tiny, seed=mix_seed(7, 0))
    dns = build_sampler("dns", tiny, seed=mix_seed(7, 1))
    for epoch, ref in ((0, pns), (1, pns), (2, dns), (9, dns)):
        ctx = _ctx(tiny, model, epoch, step=3 + epoch)
        assert sched.active(ctx) is sched.parts[0 if ref is pns else 1]
        assert torch.equal(sched.sample(ctx).items, ref.sample(ctx).items)
    with pytest.raises(ValueError, match="epoch is unknown"):
        sched.sample(_ctx(tiny, model, None))


def test_trainer_switches_and_logs_the_active_segment(tiny):
    model = build_model("mf", tiny, 8, seed=0)
    obj = SamplerObjective(build_sampler("rns@2+dns", tiny, seed=0), l2=1e-4)
    result = Trainer(tiny, model, obj, TrainConfig(epochs=4, batch_size=256, patience=0,
                                                   progress=False)).fit()
    assert [e["active"] for e in result.log] == ["rns", "rns", "dns", "dns"]


def test_schedule_with_gdns_segment_trains_in_group_mode(tiny):
    model = build_model("mf", tiny, 8, seed=0)
    sched = build_sampler("rns@1+gdns", tiny, seed=0,
                            options={"gdns": dict(group_size=4, num_candidates=8)})
    gdns = sched.parts[1]
    Trainer(tiny, model, SamplerObjective(sched, l2=1e-4),
            TrainConfig(epochs=1, batch_size=256, patience=0, progress=False)).fit()
    assert not bool((gdns.table.h != 1).any())          # epoch 1: RNS only
    Trainer(tiny, build_model("mf", tiny, 8, seed=0), SamplerObjective(sched, l2=1e-4),
            TrainConfig(epochs=2, batch_size=256, patience=0, progress=False)).fit()
    assert bool((gdns.table.h != 1).any())              # epoch 2: GDNS groups observed


def test_schedule_state_roundtrip_and_mismatch(tiny):
    a = build_sampler("rns@1+dns", tiny, seed=0)
    b = build_sampler("rns@1+dns", tiny, seed=0)
    b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="checkpoint holds schedule"):
        build_sampler("rns@2+dns", tiny, seed=0).load_state_dict(a.state_dict())


def test_schedule_run_resumes_across_the_switch_exactly(tiny, tmp_path):
    base = dict(epochs=4, patience=0, dim=8, batch_size=128, progress=False,
                sampler=("srns@2+dns",))
    ref = run(RunConfig(out=str(tmp_path / "ref"), **base), data=tiny)
    nb = math.ceil(tiny.train.nnz / 128)
    stop = StopFlag()

    def fault(tag, step):
        if step == 2 * nb + 1:      # second step of epoch 3, after the switch to DNS
            stop.request("test")

    cfg = RunConfig(out=str(tmp_path / "run"), **base)
    with pytest.raises(TrainingInterrupted):
        run(cfg, data=tiny, stop=stop, on_step=fault)
    ck = load_checkpoint(tmp_path / "run" / "checkpoints" / "seed0-srns@2+dns.pt")
    assert ck["epoch"] == 2 and ck["objective"]["sampler"]["schedule"] == "srns@2+dns"
    resumed = run(cfg, data=tiny, resume=True)
    a, b = ref.records[0].result, resumed.records[0].result
    assert (a.best_epoch, a.valid, a.test) == (b.best_epoch, b.valid, b.test)
    strip = lambda log: [{k: v for k, v in e.items() if k != "seconds"} for e in log]  # noqa: E731
    assert strip(a.log) == strip(b.log)


def test_cli_accepts_schedules_and_rejects_bad_ones(capsys, tmp_path):
    from autosample_ext.train import main

    assert main(["--sampler", "aobpr@5"]) == 2
    assert "takes no @epochs" in capsys.readouterr().err
    assert main(["--search-space", "rns,foo@2+dns"]) == 2
    assert "unknown sampler 'foo'" in capsys.readouterr().err
    out = tmp_path / "r"
    assert main(["--sampler", "PNS@1+dns", "--epochs", "2", "--dim", "8", "--batch-size", "8192",
                 "--out", str(out), "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["sampler"] == ["pns@1+dns"]
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["active"] for e in lines] == ["pns", "dns"]


def test_autosample_search_and_grid_accept_schedules_as_candidates(tiny, tmp_path):
    space = ("rns", "pns@1+dns")
    for mode in ({}, {"search": "grid"}):
        summary = run(RunConfig(out=str(tmp_path / f"r{len(mode)}"), epochs=2, patience=0, dim=8,
                                batch_size=256, progress=False, search_space=space, **mode),
                      data=tiny)
        methods = {r.method for r in summary.records}
        if mode:
            assert {"rns", "pns@1+dns", "grid"} <= methods
        else:
            search = next(r for r in summary.records if r.method == "search")
            assert set(search.result.log[-1]["alpha"]) == set(space)
            assert summary.metrics["autosample"]["0"]["chosen"] in space
