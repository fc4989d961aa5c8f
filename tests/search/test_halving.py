"""Successive halving: rungs, the paired bootstrap, the tie rule, the race against single runs,
interrupt + resume mid-race, and the costs written beside the grid's."""
from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.search import (
    HalvingConfig,
    SuccessiveHalving,
    paired_bootstrap_se,
    rung_epochs,
)
from autosample_ext.training import StopFlag, TrainingInterrupted
from autosample_ext.training.checkpoint import load_checkpoint

SPACE = ("rns", "pns", "dns", "aobpr")


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def test_rung_epochs():
    assert rung_epochs(3, 2, 300) == [3, 6, 12, 24, 48, 96, 192]
    assert rung_epochs(3, 3, 100) == [3, 9, 27, 81]
    assert rung_epochs(3, 2, 30, eval_every=5) == [5, 10, 15, 25]   # 3,6,12,24 rounded up
    assert rung_epochs(3, 2, 3) == [] and rung_epochs(1, 2, 5) == [1, 2, 4]
    with pytest.raises(ValueError, match="eta"):
        HalvingConfig(eta=1)
    with pytest.raises(ValueError, match="first_rung"):
        HalvingConfig(first_rung=0)


def test_paired_bootstrap_se_matches_the_analytic_se_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.random(2000)
    b = a - 0.01 + 0.05 * rng.standard_normal(2000)
    se = paired_bootstrap_se(a, b, 2000, np.random.default_rng(1))
    analytic = (a - b).std(ddof=1) / math.sqrt(a.size)
    assert se == pytest.approx(analytic, rel=0.08)
    assert se == paired_bootstrap_se(a, b, 2000, np.random.default_rng(1))
    # Pairing: a common per-user component does not inflate the SE.
    common = 10 * rng.random(2000)
    assert paired_bootstrap_se(a + common, b + common, 2000, np.random.default_rng(1)) == \
        pytest.approx(se, rel=1e-6)
    assert paired_bootstrap_se(a, a, 100, np.random.default_rng(1)) == 0.0


def _fake_race(values, per_user, tie_se=2.0, eta=2, anchor="last", rule="halving",
               previous=None, epochs=3, catch_up_se=2.0):
    """A race whose survivors have best values ``values`` at ``epochs`` (``previous`` at
    ``ceil(epochs / eta)``) and per-user arrays ``per_user``."""
    names = list(values)
    race = SuccessiveHalving(names, lambda n: None, data=None,
                             config=HalvingConfig(eta=eta, tie_se=tie_se, tie_anchor=anchor,
                                                  rule=rule, catch_up_se=catch_up_se),
                             seed=0)
    cfg = SimpleNamespace(metric="recall@20", eval_split="valid")
    prev_epoch = math.ceil(epochs / eta)

    def logged(n):
        lines = [{"epoch": prev_epoch, "valid": {"recall@20": (previous or {}).get(n, 0.0)}}]
        return lines + [{"epoch": epochs, "valid": {"recall@20": values[n]}}]

    race.trainers = {n: SimpleNamespace(best_value=values[n], config=cfg, log=logged(n),
                                        epoch=epochs) for n in names}
    users = np.arange(len(next(iter(per_user.values()))))
    race._per_user = lambda name, metric: (users, per_user[name])
    return race


def test_tie_rule_keeps_the_first_dropped_within_two_bootstrap_se():
    rng = np.random.default_rng(0)
    base = rng.random(500)
    noise = 0.2 * rng.standard_normal(500)   # per-user difference noise: SE ~ 0.009
    noise -= noise.mean()
    per = {"a": base + 0.3, "b": base + 0.1, "c": base + 0.1 - 0.005 + noise, "d": base}
    values = {n: float(v.mean()) for n, v in per.items()}
    d = _fake_race(values, per)._decide(0, 3)
    assert d.kept == ["a", "b", "c"] and d.dropped == ["d"]        # c within 2 SE of b, d not
    assert [t["dropped"] for t in d.ties] == ["c", "d"]
    assert d.ties[0]["kept_both"] and not d.ties[1]["kept_both"]
    assert d.ties[0]["diff"] < 2 * d.ties[0]["se"]
    # With a clear gap the cut is ceil(n / eta); the rule switched off cuts there too.
    per["c"] = base + 0.05
    values["c"] = float(per["c"].mean())
    assert _fake_race(values, per)._decide(0, 3).kept == ["a", "b"]
    assert _fake_race(values, per, tie_se=0)._decide(0, 3).ties == []
    assert _fake_race(values, per, eta=3)._decide(0, 3).kept == ["a", "b"]   # ceil(4/3) = 2


def test_tie_anchor_best_halves_a_cluster_of_ties_behind_the_leader():
    rng = np.random.default_rng(1)
    base = rng.random(800)
    noise = 0.2 * rng.standard_normal(800)
    noise -= noise.mean()
    # a clear leader, then two candidates that cannot be told apart
    per = {"lead": base + 0.3, "x": base + 0.1, "y": base + 0.1 - 0.002 + noise}
    values = {n: float(v.mean()) for n, v in per.items()}
    assert _fake_race(values, per)._decide(0, 6).kept == ["lead", "x", "y"]          # spec: ties kept
    best = _fake_race(values, per, anchor="best")._decide(0, 6)
    assert best.kept == ["lead", "x"] and best.ties[0]["kept"] == "lead"
    # a dropped candidate close to the leader stays under either anchor
    per2 = {"lead": base + 0.3, "x": base + 0.3 - 0.001 + noise, "y": base}
    values2 = {n: float(v.mean()) for n, v in per2.items()}
    assert _fake_race(values2, per2, eta=3, anchor="best")._decide(0, 6).kept == ["lead", "x"]
    with pytest.raises(ValueError, match="tie_anchor"):
        HalvingConfig(tie_anchor="worst")


def _cfg(tmp_path, name, **kw):
    # engine="autograd": the race's rules on the dense-Adam dynamics these sizes were chosen
    # for (the fused engine's lazy Adam keeps every candidate within the tie rule here)
    base = dict(dim=8, batch_size=128, progress=False, epochs=6, patience=3, sh_first_rung=1,
                sh_eta=2, lr=0.02, engine="autograd")
    base.update(kw)
    return RunConfig(out=str(tmp_path / name), **base)


def test_race_starts_candidates_alike_and_its_winner_is_the_single_run(tiny, tmp_path):
    summary = run(_cfg(tmp_path, "sh", search="sh", search_space=SPACE + ("pns@1+dns",)),
                  data=tiny)
    m = json.loads((tmp_path / "sh" / "metrics.json").read_text())["sh"]["0"]
    chosen = m["chosen"]
    runs = {r["sampler"]: r for r in m["runs"]}
    assert set(runs) == set(SPACE) | {"pns@1+dns"}
    assert [d["epochs"] for d in m["decisions"]] == m["rungs"][:len(m["decisions"])]
    assert m["rungs"] == [1, 2, 4]
    # every candidate has valid metrics; only the winner reached test
    assert all("recall@20" in r["valid"] for r in runs.values())
    assert [n for n, r in runs.items() if "test" in r] == [chosen]
    for d in m["decisions"]:
        assert len(d["kept"]) >= math.ceil(len(d["values"]) / 2)
        assert list(d["values"].values()) == sorted(d["values"].values(), reverse=True)
    # All candidates started from the same weights: their first epoch's logs differ only by
    # the sampler, and the winner's run equals the single run of that sampler (same init, data
    # order and negatives), trained on to --epochs with early stopping.
    single = run(_cfg(tmp_path, "single", sampler=(chosen,)), data=tiny).records[0].result
    winner = summary.records[0].result
    assert (winner.best_epoch, winner.valid, winner.test) == (single.best_epoch, single.valid,
                                                             single.test)
    assert runs[chosen]["test"] == single.test
    eliminated = [r for r in runs.values() if r["eliminated_at_epoch"] is not None]
    assert eliminated and all(r["epochs_run"] <= r["eliminated_at_epoch"] for r in eliminated)
    assert m["cpu_seconds"] == pytest.approx(sum(r["cpu_seconds"] for r in runs.values()),
                                             rel=0.2)


def test_race_rejects_candidates_from_different_initial_weights(tiny):
    from autosample_ext.models import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, TrainConfig, Trainer

    def make(name):
        seed = 0 if name == "rns" else 1
        return Trainer(tiny, build_model("mf", tiny, 8, seed=seed),
                       SamplerObjective(build_sampler(name, tiny, seed=0), l2=1e-4),
                       TrainConfig(epochs=2, batch_size=256, progress=False))

    race = SuccessiveHalving(["rns", "dns"], make, data=tiny)
    with pytest.raises(ValueError, match="same initial weights"):
        race.run()


def _strip(metrics):
    out = json.loads(json.dumps(metrics))
    for key in ("seconds", "cpu_seconds", "wall_seconds", "costs"):
        out.pop(key, None)

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()
                    if k not in ("seconds", "cpu_seconds", "wall_seconds", "search_seconds",
                                 "retrain_seconds", "total_seconds")}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x
    return clean(out)


class Boom(RuntimeError):
    pass


def interrupt_and_resume(tiny, tmp_path, kw, hits, crash=False):
    """Run ``kw`` uninterrupted, then again with a stop request (or a crash) at the first step
    where ``hits(tag, step)`` holds, then resumed; returns the uninterrupted summary and
    metrics and the resumed ones, after checking they are the same."""
    ref = run(_cfg(tmp_path, "ref", **kw), data=tiny)
    ref_metrics = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    stop, hit = StopFlag(), []

    def fault(t, step):
        if not hit and hits(t, step, ref_metrics):
            hit.append(step)
            if crash:
                raise Boom("simulated crash")
            stop.request("test")

    cfg = _cfg(tmp_path, "run", **kw)
    with pytest.raises(Boom if crash else TrainingInterrupted):
        run(cfg, data=tiny, stop=stop, on_step=fault)
    assert hit
    resumed = run(cfg, data=tiny, resume=True)
    got = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert _strip(got) == _strip(ref_metrics)
    assert resumed.records[0].result.test == ref.records[0].result.test
    return ref, ref_metrics, resumed, got


@pytest.mark.parametrize("where,tag,epoch", [("crash", "seed0/sh-dns", 2),
                                             ("signal", "seed0/sh-aobpr", 1),
                                             ("signal", "winner", 5)])
def test_interrupt_and_resume_mid_race_give_identical_results(tiny, tmp_path, where, tag, epoch):
    nb = math.ceil(tiny.train.nnz / 128)
    at = epoch * nb + nb // 2          # the middle of epoch ``epoch + 1`` of that candidate

    def hits(t, step, ref_metrics):
        want = f"seed0/sh-{ref_metrics['sh']['0']['chosen']}" if tag == "winner" else tag
        return t == want and step == at

    _, _, _, got = interrupt_and_resume(tiny, tmp_path, {"search": "sh", "seeds": (0,)}, hits,
                                        crash=where == "crash")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "seed0-sh.pt")
    assert got["sh"]["0"]["chosen"] in {n for alive in state["alive"] for n in alive}
    lines = lambda p: [{k: v for k, v in json.loads(x).items() if k != "seconds"}
                       for x in (p / "log.jsonl").read_text().splitlines()]
    assert sorted(map(json.dumps, lines(tmp_path / "run"))) == \
        sorted(map(json.dumps, lines(tmp_path / "ref")))


def test_compare_reports_sh_grid_budget_singles_and_costs_side_by_side(tiny, tmp_path):
    cfg = _cfg(tmp_path, "cmp", compare=True, seeds=(0, 1), search_space=("rns", "dns"),
               epochs=4, patience=2)
    summary = run(cfg, data=tiny)
    m = summary.metrics
    for seed in ("0", "1"):
        auto = m["autosample"][seed]
        singles = [r for r in m["runs"] if r["seed"] == int(seed) and r["method"] in ("rns", "dns")]
        # the grid's cost is the sum of its singles'; the ratio is computed per seed
        assert m["grid"][seed]["cpu_seconds"] == pytest.approx(sum(r["cpu_seconds"] for r in singles))
        assert m["costs"]["per_seed"][seed]["sh"]["cpu_seconds"] == m["sh"][seed]["cpu_seconds"]
        assert m["sh"][seed]["chosen"] in ("rns", "dns")
        budget = [r for r in m["runs"] if r["seed"] == int(seed) and r["method"].endswith(":budget")]
        assert {r["method"] for r in budget} == {"rns:budget", "dns:budget"}
        for r in budget:
            assert r["budget_epochs"] == auto["epochs"]
            assert r["epochs_run"] == auto["epochs"] or r.get("same_as_single")
        assert m["grid"][seed]["chosen"] == max(m["grid"][seed]["valid"],
                                                 key=m["grid"][seed]["valid"].get)
    ratios = m["costs"]["cpu_ratio_to_grid"]
    assert ratios["grid"] == pytest.approx(1.0) and {"sh", "autosample"} <= set(ratios)
    table = (tmp_path / "cmp" / "table.md").read_text()
    for row in ("| AutoSample |", "| SH |", "| Grid pick |", "| RNS (AutoSample's epochs) |",
                "| Method | CPU s | wall s | CPU / grid CPU |"):
        assert row in table


def test_budget_single_continues_the_single_run_exactly(tiny, tmp_path):
    """A single run stopped early and continued to N epochs without early stopping equals a
    run trained N epochs without early stopping from scratch."""
    from autosample_ext.run.phases import (
        RunContext,
        run_budget_single,
        run_single,
    )
    from autosample_ext.run.rundir import RunDir

    cfg = _cfg(tmp_path, "b", epochs=30, patience=1, lr=0.2)   # stops early
    out = RunDir(tmp_path / "b")
    ctx = RunContext(cfg, tiny, out, StopFlag(), False)
    single = run_single(ctx, 0, "dns")
    assert single.result.stopped_early and single.result.epochs_run < 8
    budget = run_budget_single(ctx, 0, "dns", single, 8)
    assert budget.extra["continued_from_epoch"] == single.result.epochs_run
    scratch = run(_cfg(tmp_path, "s", epochs=8, patience=0, lr=0.2, sampler=("dns",)),
                  data=tiny).records[0].result
    out.close()
    got = budget.result
    assert (got.best_epoch, got.valid, got.test, got.epochs_run) == \
        (scratch.best_epoch, scratch.valid, scratch.test, scratch.epochs_run)
    strip = lambda log: [(e["epoch"], e["loss"], e.get("valid")) for e in log]
    assert strip(got.log) == strip(scratch.log)


def test_race_state_resume_fills_options_added_later_and_refuses_another_anchor():
    """A race state written before brackets, the race rule and ``tie_anchor`` existed (version
    1: one list of rungs and survivors) resumes as the race it was: the classic rule, anchor
    "last"; a resume under other settings is refused, naming the key."""
    legacy = HalvingConfig(first_rung=3, tie_anchor="last", rule="halving", catch_up_se=0.0,
                           brackets=1, bootstrap_users=0)
    old = {"version": 1, "candidates": ["rns", "dns"],
           "config": {"first_rung": 3, "eta": 2, "tie_se": 2.0, "bootstrap_samples": 1000},
           "rungs": [3, 6], "rungs_done": 1, "survivors": ["dns"], "decisions": [],
           "decision_cpu": 0.0, "decision_wall": 0.0}
    again = SuccessiveHalving(["rns", "dns"], lambda n: None, data=None, seed=0, config=legacy)
    again.bracket_rungs = [[3, 6]]
    again.load_state_dict(old)
    assert (again.steps_done, again.survivors, again.alive) == (1, ["dns"], [["dns"]])
    other = SuccessiveHalving(["rns", "dns"], lambda n: None, data=None, seed=0,
                              config=dataclasses.replace(legacy, tie_anchor="best"))
    other.bracket_rungs = [[3, 6]]
    with pytest.raises(ValueError, match="config=.*same setting"):
        other.load_state_dict(old)
    new = SuccessiveHalving(["rns", "dns"], lambda n: None, data=None, seed=0)
    new.bracket_rungs = [[3, 6]]
    with pytest.raises(ValueError, match="config=.*same setting"):
        new.load_state_dict(old)      # today's defaults are another race


def test_cli_sh_tie_anchor_reaches_the_race(tiny, tmp_path):
    from autosample_ext.train import build_parser, config_from_args

    cfg, given = config_from_args(build_parser().parse_args(["--search", "sh",
                                                             "--sh-tie-anchor", "best"]))
    assert cfg.sh_tie_anchor == "best" and given["sh_tie_anchor"] == "best"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--sh-tie-anchor", "worst"])
    with pytest.raises(ValueError, match="sh_tie_anchor"):
        RunConfig(sh_tie_anchor="worst")
    run(_cfg(tmp_path, "best", search="sh", sh_tie_anchor="best", epochs=3), data=tiny)
    state = load_checkpoint(tmp_path / "best" / "checkpoints" / "seed0-sh.pt")
    assert state["config"]["tie_anchor"] == "best"
