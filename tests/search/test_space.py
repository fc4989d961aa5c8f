"""Search spaces of configurations: the candidate syntax (options, alternatives, learning rates,
schedules with options), its errors (the candidate and the field named, exit 2 on the command
line), candidates built and trained as written, and ``--search-space auto``'s static part."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.samplers import build_sampler
from autosample_ext.search.auto_space import auto_space, dns_pools
from autosample_ext.search.space import (
    AUTO,
    CandidateError,
    expand_space,
    parse_candidate,
    split_space,
)


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def test_alternatives_expand_in_order_with_canonical_names():
    assert expand_space("rns,DNS(num_candidates=4|8|32), pns(beta=0.5|1.0)") == (
        "rns", "dns(num_candidates=4)", "dns(num_candidates=8)", "dns(num_candidates=32)",
        "pns(beta=0.5)", "pns(beta=1.0)")
    # several fields: every combination, the first field varying slowest; lr written last
    assert expand_space("dns(lr=1e-3|5e-3,top_k=1|2)") == (
        "dns(top_k=1,lr=0.001)", "dns(top_k=2,lr=0.001)", "dns(top_k=1,lr=0.005)",
        "dns(top_k=2,lr=0.005)")
    assert expand_space(["aobpr@5+dns(num_candidates=8|16)", AUTO]) == (
        "aobpr@5+dns(num_candidates=8)", "aobpr@5+dns(num_candidates=16)", AUTO)
    assert split_space("a(x=1,y=2|3),b") == ["a(x=1,y=2|3)", "b"]
    c = parse_candidate("rns@3 + dns(num_candidates=8, lr=1E-3)")
    assert c.name == "rns@3+dns(num_candidates=8,lr=0.001)" and c.lr == 0.001
    assert c.samplers == ("rns", "dns") and c.options() == {"num_candidates": 8}
    assert c.schedule_text == "rns@3+dns" and parse_candidate(c.name) == c
    assert parse_candidate("dns(rank_lambda=none)").options() == {"rank_lambda": None}


@pytest.mark.parametrize("text,needles", [
    ("dns(num_candidates=0)", ["'dns(num_candidates=0)'", "num_candidates", ">= 1"]),
    ("dns(num_candidate=8)", ["num_candidate", "did you mean 'num_candidates'"]),
    ("dns(num_candidates=x)", ["dns.num_candidates=x", "integer"]),
    ("dns(top_k=4,num_candidates=2)", ["top_k", "num_candidates=2"]),
    ("pns(beta=-1)", ["beta", ">= 0"]),
    ("dns(lr=0)", ["lr=0.0", "> 0"]),
    ("dns(lr=inf)", ["lr=inf", "finite"]),
    ("dns(num_candidates=8", ["'(' without ')'"]),
    ("dns)", ["')' without '('"]),
    ("dns()", ["empty '()'"]),
    ("dns(num_candidates)", ["FIELD=VALUE"]),
    ("dns(num_candidates=4|)", ["num_candidates: empty value"]),
    ("dns(top_k=1,top_k=2)", ["'top_k' is given twice"]),
    ("foo(x=1)", ["unknown sampler 'foo'"]),
    ("rns(lr=0.1)@3+dns", ["lr is the learning rate of the whole run"]),
    ("aobpr@5", ["takes no @epochs"]),
    ("aobpr+dns", ["needs @epochs"]),
    ("aobpr@0+dns", ["integer >= 1"]),
])
def test_bad_candidates_name_the_candidate_and_the_field(text, needles):
    with pytest.raises(CandidateError) as exc:
        expand_space(text)
    for needle in needles:
        assert needle in str(exc.value), (needle, str(exc.value))
    assert "candidate" in str(exc.value) or "empty" in str(exc.value)


def test_repeated_candidate_after_expansion_is_refused():
    with pytest.raises(CandidateError, match="'dns\\(num_candidates=8\\)' appears twice"):
        expand_space("dns(num_candidates=8|8)")


def test_cli_bad_candidate_exits_2_naming_it(capsys):
    from autosample_ext.train import main

    assert main(["--search", "sh", "--search-space", "rns,dns(num_candidates=0|8)"]) == 2
    err = capsys.readouterr().err
    assert "--search-space" in err and "num_candidates" in err and "Traceback" not in err
    assert main(["--search-space", "rns,dns(lr=1e-3|5e-3)"]) == 2       # AutoSample: one model
    assert "own learning rate" in capsys.readouterr().err
    assert main(["--search-space", "auto"]) == 2                          # auto: sh only
    assert "--search sh" in capsys.readouterr().err
    assert main(["--sampler", "dns(top_k=99)"]) == 2
    assert "top_k" in capsys.readouterr().err


def test_configured_candidate_builds_its_options_and_wins_over_the_runs(tiny):
    s = build_sampler(parse_candidate("dns(num_candidates=8,top_k=2)"), tiny, seed=0,
                      num_candidates=64)
    assert (s.options.num_candidates, s.options.top_k) == (8, 2)
    sched = build_sampler(parse_candidate("pns(beta=0.5)@1+dns(num_candidates=4)"), tiny, seed=0,
                          options={"dns": {"num_candidates": 64, "top_k": 2}})
    assert sched.parts[0].options.beta == 0.5
    assert (sched.parts[1].options.num_candidates, sched.parts[1].options.top_k) == (4, 2)
    assert sched.name == "pns(beta=0.5)@1+dns(num_candidates=4)"
    with pytest.raises(ValueError, match="parse_candidate"):   # option text is not parsed here
        build_sampler("dns(num_candidates=8)", tiny)


def test_grid_trains_each_candidate_with_its_options_and_learning_rate(tiny, tmp_path):
    cfg = RunConfig(search="grid", search_space="dns(num_candidates=4|16),dns(lr=0.05)",
                    epochs=2, patience=0, dim=8, batch_size=256, progress=False,
                    out=str(tmp_path / "g"))
    summary = run(cfg, data=tiny)
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["config"]["search_space"] == ["dns(num_candidates=4)", "dns(num_candidates=16)",
                                                "dns(lr=0.05)"]
    ck = torch.load(tmp_path / "g" / "checkpoints" / "seed0-dns(lr=0.05).pt", weights_only=True)
    assert ck["config"]["lr"] == 0.05 and ck["optimizer"]["lr"] == 0.05  # the fused engine's
    # the same candidate on the autograd engine: torch's optimiser holds the candidate's rate
    run(dataclasses.replace(cfg, engine="autograd", out=str(tmp_path / "ga")), data=tiny)
    ck = torch.load(tmp_path / "ga" / "checkpoints" / "seed0-dns(lr=0.05).pt", weights_only=True)
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.05
    results = {r.method: r.result for r in summary.records if r.method != "grid"}
    assert results["dns(num_candidates=4)"].log != results["dns(num_candidates=16)"].log
    # a candidate with the run's options is the plain sampler's run (same stream and options)
    plain = run(RunConfig(sampler="dns,dns(num_candidates=32)", epochs=2, patience=0, dim=8,
                          batch_size=256, progress=False, out=str(tmp_path / "p")), data=tiny)
    a, b = (r.result for r in plain.records)
    assert (a.valid, a.test) == (b.valid, b.test)


def test_auto_space_static_part_follows_the_data(tiny):
    assert dns_pools(4165, 32) == (8, 64)          # lastfm: 2% of the items = 83 -> 64
    assert dns_pools(1500, 32) == (8, 16)          # the embedded data: 30 -> 16
    assert dns_pools(200, 32) == (4, 8)                # 4 items' worth: the cap is 4
    space = auto_space(tiny)                       # 200 items: cap 4
    assert space[:4] == ("rns", "pns", "dns", "aobpr")
    assert "dns(top_k=2)" in space and all(parse_candidate(n) for n in space)
    assert auto_space(tiny, {"dns": {"num_candidates": 16}})[4] == "dns(num_candidates=4)"
    cfg = RunConfig(search="sh", search_space="auto")
    assert cfg.trained_samplers() == ("rns", "pns", "dns", "aobpr")
