"""The race rule of successive halving (catching up, the cut once the leader is clear, ties at
the first rung only), Hyperband brackets, the bootstrap's user subsample, branching schedules
from a candidate's run, ``--search-space auto`` and the curriculum stage, each resumed after an
interruption with identical results."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_halving import _cfg, _fake_race, interrupt_and_resume

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.search.curriculum import harder_candidate
from autosample_ext.search import HalvingConfig
from autosample_ext.search.rungs import RungDecision, decide_race


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def _per_user(values, n=600, noise=0.2, seed=0):
    """Per-user arrays with the given means and a shared per-user component."""
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    out = {}
    for i, (name, v) in enumerate(values.items()):
        e = noise * np.random.default_rng(seed + i + 1).standard_normal(n)
        e -= e.mean()
        out[name] = base - base.mean() + v + e
    return out


def test_a_late_bloomer_closing_in_on_the_leader_is_kept_outside_the_quota():
    # rung at epoch 8: the leader fast, "late" far behind but its relative gap fell from 50% at
    # epoch 4 to 10%; "pace" keeps its 50% gap; "ahead" is second
    values = {"lead": 0.30, "ahead": 0.29, "late": 0.27, "pace": 0.15}
    previous = {"lead": 0.20, "ahead": 0.19, "late": 0.10, "pace": 0.10}
    per = _per_user(values, noise=0.05)
    d = _fake_race(values, per, rule="race", previous=previous, epochs=8)._decide(0, 8)
    assert d.kept == ["lead", "ahead", "late"] and d.dropped == ["pace"]
    assert d.reasons == {"lead": "leader", "ahead": "quota", "late": "catching up"}
    assert d.previous["late"] == 0.10
    # the protection is the catch-up rule's: off, the late bloomer is cut
    off = _fake_race(values, per, rule="race", previous=previous, epochs=8, catch_up_se=0)
    assert off._decide(0, 8).kept == ["lead", "ahead"]


def test_the_cut_once_the_leader_is_clear_and_ties_at_the_first_rung_only():
    per = _per_user({"lead": 0.30, "x": 0.2995, "tied": 0.299, "far": 0.20, "far2": 0.19},
                    noise=0.05)

    def decide(values, later=False):
        race = _fake_race(values, {n: per[n] for n in values}, rule="race", epochs=8,
                          previous={n: v / 2 for n, v in values.items()})  # nobody closing in
        if later:     # the bracket decided a rung before: this is not its first
            race.decisions = [RungDecision(0, 4, {}, [], [])]
        return race._decide(0, 8)

    # first rung: the quota (ceil(n/2)) stays whatever the gaps, and a tie below it too
    assert decide({"lead": 0.30, "far": 0.20, "far2": 0.19}).kept == ["lead", "far"]
    first = decide({"lead": 0.30, "x": 0.2995, "tied": 0.299, "far": 0.20})
    assert first.kept == ["lead", "x", "tied"] and first.reasons["tied"] == "tie"
    # later rungs: a quota member clearly behind the leader is cut (the leader is clear) ...
    later = decide({"lead": 0.30, "far": 0.20, "far2": 0.19}, later=True)
    assert later.kept == ["lead"] and later.dropped == ["far", "far2"]
    # ... a tied one in the quota stays; below the quota a tie no longer keeps anyone
    d = decide({"lead": 0.30, "x": 0.2995, "tied": 0.299, "far": 0.20}, later=True)
    assert d.kept == ["lead", "x"] and d.dropped == ["tied", "far"]
    tie = next(t for t in d.ties if t["dropped"] == "tied")
    assert tie["diff"] <= 2 * tie["se"] and not tie["kept_both"]


def test_decide_race_is_the_documented_rule_on_plain_numbers():
    se = lambda a, b, rank: 0.01
    d = decide_race(["a", "b", "d", "c"], {"a": 0.5, "b": 0.495, "c": 0.3, "d": 0.49},
                    {"a": 0.4, "b": 0.395, "c": 0.3, "d": 0.1}, eta=2, tie_se=2.0,
                    catch_up_se=2.0, first_rung=False, se=se, index=1, epochs=8)
    # b: quota and tied; c: behind, not closing; d: relative gap 0.75 -> 0.02: catching up
    assert d.reasons == {"a": "leader", "b": "quota", "d": "catching up"} and d.dropped == ["c"]


def test_bootstrap_users_subsample_is_seeded_and_bounded(tiny):
    from autosample_ext.search import SuccessiveHalving

    race = SuccessiveHalving(["rns", "dns"], lambda n: None, data=tiny,
                             config=HalvingConfig(bootstrap_users=50), seed=7)
    race.trainers = {"rns": type("T", (), {"config": type("C", (), {
        "eval_split": "valid", "eval_protocol": "full"})})()}
    race.candidates = ["rns", "dns"]
    a, b = race._users(), race._users()
    assert a.numel() == 50 and bool((a == b).all()) and bool((a[1:] > a[:-1]).all())
    valid_users = set(np.nonzero(tiny.valid.degrees().numpy())[0].tolist())
    assert set(a.tolist()) <= valid_users
    race.config = HalvingConfig(bootstrap_users=0)
    assert race._users() is None


def test_brackets_start_later_and_share_the_trainers(tiny, tmp_path):
    assert HalvingConfig(first_rung=2, brackets=2).bracket_rungs(20) == [[2, 4, 8, 16], [4, 8, 16]]
    summary = run(_cfg(tmp_path, "hb", search="sh", sh_brackets=2, sh_first_rung=1, epochs=6),
                  data=tiny)
    m = summary.metrics["sh"]["0"]
    assert m["bracket_rungs"] == [[1, 2, 4], [2, 4]]
    assert {d["bracket"] for d in m["decisions"]} == {0, 1}
    # every candidate trained once: no epoch appears twice in a candidate's log
    log = [json.loads(x) for x in (tmp_path / "hb" / "log.jsonl").read_text().splitlines()]
    for tag in {e["run"] for e in log}:
        epochs = [e["epoch"] for e in log if e["run"] == tag]
        assert epochs == sorted(set(epochs))


def test_a_branched_schedule_is_the_schedule_trained_alone(tiny, tmp_path):
    """``--search-space auto`` branches ``A@r+B`` from A's run at the first rung: its result
    is the result of ``A@r+B`` trained alone (same initial weights, data order and draws)."""
    cfg = _cfg(tmp_path, "auto", search="sh", search_space=("auto",), epochs=8, patience=3,
               sh_first_rung=2)
    summary = run(cfg, data=tiny)
    m = summary.metrics["sh"]["0"]
    added = m["added"]
    assert added and all(a["epoch"] == 2 for a in added)
    name = next(r for r in m["runs"] if r.get("branched_from"))["sampler"]
    alone = run(_cfg(tmp_path, "alone", sampler=(name,), epochs=8, patience=3), data=tiny)
    ref = alone.records[0].result
    log = [json.loads(x) for x in (tmp_path / "auto" / "log.jsonl").read_text().splitlines()]
    mine = [(e["epoch"], e["loss"], e.get("valid"), e.get("active")) for e in log
            if e["run"] == f"seed0/sh-{name}"]
    theirs = [(e["epoch"], e["loss"], e.get("valid"), e.get("active")) for e in ref.log]
    assert mine == theirs[:len(mine)] and len(mine) > 2
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["search_space_expansion"]["added"]["0"] == [a["name"] for a in added]
    # a branch's inherited prefix is counted once, in its parent
    parent = next(r for r in m["runs"] if r["sampler"] == added[0]["parent"])
    assert parent["epochs_run"] >= 2


@pytest.mark.parametrize("kw,tag", [
    ({"search_space": ("auto",), "sh_first_rung": 2}, "seed0/sh-dns(top_k=2)"),
    ({"sh_brackets": 2, "sh_first_rung": 1}, "seed0/sh-rns"),
    ({"sh_curriculum": "harder", "search_space": ("rns", "dns(num_candidates=4)", "dns")},
     "seed0/sh-curriculum"),
])
def test_interrupted_races_resume_to_identical_results(tiny, tmp_path, kw, tag):
    kw = dict(search="sh", epochs=8, patience=3, **kw)
    nb = math.ceil(tiny.train.nnz / 128)
    hits = lambda t, step, ref: t == tag and step % nb == nb // 2 and step > nb
    _, _, _, got = interrupt_and_resume(tiny, tmp_path, kw, hits)
    if kw.get("sh_curriculum"):
        stage = got["sh"]["0"]["curriculum"]
        assert stage["harder"] == harder_candidate(stage["name"].split(">>")[0],
                                                   list(kw["search_space"]))
        assert got["sh"]["0"]["chosen"] in (stage["name"], stage["name"].split(">>")[0])


def test_harder_candidate_follows_the_hardness_order():
    space = ["rns", "pns", "dns", "aobpr", "dns(num_candidates=8)", "dns(num_candidates=64)",
             "dns(top_k=2)", "aobpr@4+dns", "dns(lr=0.01)"]
    assert harder_candidate("rns", space) == "pns"
    assert harder_candidate("dns(num_candidates=8)", space) == "dns(top_k=2)"  # 8 < 32/2 < 32
    assert harder_candidate("dns(top_k=2)", space) == "dns"
    assert harder_candidate("dns", space) == "dns(num_candidates=64)"
    assert harder_candidate("aobpr@4+dns", space) == "dns(num_candidates=64)"
    assert harder_candidate("aobpr", space) is None
    assert harder_candidate("dns", space, {"dns": {"num_candidates": 128}}) == "aobpr"


def test_cli_race_options_reach_the_race_and_bad_values_exit_2(capsys):
    from autosample_ext.train import build_parser, config_from_args, main

    cfg, _ = config_from_args(build_parser().parse_args([
        "--search", "sh", "--sh-rule", "halving", "--sh-brackets", "2", "--sh-catch-up-se", "1",
        "--sh-bootstrap-users", "0", "--sh-curriculum", "harder"]))
    h = cfg.halving_config()
    assert (h.rule, h.brackets, h.catch_up_se, h.bootstrap_users) == ("halving", 2, 1.0, 0)
    assert cfg.sh_curriculum == "harder"
    for argv, needle in ((["--sh-brackets", "0"], "--sh-brackets"),
                         (["--sh-catch-up-se", "-1"], "--sh-catch-up-se"),
                         (["--sh-bootstrap-users", "-5"], "--sh-bootstrap-users")):
        assert main(["--search", "sh"] + argv) == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(ValueError, match="sh_rule"):
        RunConfig(sh_rule="fast")
    # a config.json written before these settings existed resumes as the race it was
    old = RunConfig().to_json()
    for key in ("sh_rule", "sh_catch_up_se", "sh_brackets", "sh_bootstrap_users",
                "sh_curriculum"):
        del old[key]
    legacy = RunConfig.from_json(old).halving_config()
    assert (legacy.rule, legacy.catch_up_se, legacy.bootstrap_users) == ("halving", 0.0, 0)


def test_a_race_of_twenty_configurations_halves_down_cheaply(tiny, tmp_path):
    space = "dns(num_candidates=2|3|4|5|6|7|8|9|10|11),pns(beta=0|0.25|0.5|0.75|1.0|1.25|1.5|1.75|2.0|2.25)"
    summary = run(_cfg(tmp_path, "many", search="sh", search_space=space, epochs=6, patience=2,
                       sh_first_rung=1), data=tiny)
    m = summary.metrics["sh"]["0"]
    assert len(m["runs"]) == 20 and m["chosen"] in {r["sampler"] for r in m["runs"]}
    first = m["decisions"][0]
    assert len(first["values"]) == 20 and len(first["kept"]) <= 12       # quota 10 + ties
    # halving: at most about half the grid's epochs (the grid would train all 20 for 6 epochs)
    assert sum(r["epochs_run"] for r in m["runs"]) <= 0.5 * 20 * 6
    assert [len(d["values"]) for d in m["decisions"]] == sorted(
        (len(d["values"]) for d in m["decisions"]), reverse=True)
