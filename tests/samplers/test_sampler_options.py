"""``--sampler-opt SAMPLER.FIELD=VALUE`` and ``RunConfig.sampler_options``: parsing, validation,
the values reaching every sampler built (alone, search candidates, grid), config.json."""
from __future__ import annotations

import json

import pytest

from autosample_ext.run import RunConfig, run
from autosample_ext.samplers import check_sampler_options, parse_sampler_opt, resolved_options
from autosample_ext.train import main


def test_parse_converts_to_the_field_type():
    assert parse_sampler_opt("dns.num_candidates=8") == ("dns", "num_candidates", 8)
    assert parse_sampler_opt("DNS.rank_lambda=none") == ("dns", "rank_lambda", None)
    assert parse_sampler_opt("dns.rank_lambda=2") == ("dns", "rank_lambda", 2.0)
    assert parse_sampler_opt("aobpr.top_ranks=None") == ("aobpr", "top_ranks", None)
    assert parse_sampler_opt("mixgcf.hop_score=layer") == ("mixgcf", "hop_score", "layer")
    assert parse_sampler_opt(" gdns.alpha = 0.3 ") == ("gdns", "alpha", 0.3)


@pytest.mark.parametrize("text, needles", [
    ("dns.num_candidate=8", ["no option 'num_candidate'", "did you mean 'num_candidates'",
                             "num_candidates, rank_lambda, top_k"]),
    ("dns.num_candidates=x", ["dns.num_candidates=x", "expected an integer"]),
    ("dns.num_candidates=8.5", ["expected an integer"]),
    ("aobpr.rank_lambda=none", ["aobpr.rank_lambda=none", "expected a number"]),
    ("mixgcf.hop_score=best", ["expected one of auto, pooled, layer"]),
    ("nosuch.a=1", ["unknown sampler 'nosuch'"]),
    ("rns.x=1", ["sampler 'rns' has no options"]),
    ("dns=8", ["SAMPLER.FIELD=VALUE"]),
    ("dns.num_candidates=", ["SAMPLER.FIELD=VALUE"]),
])
def test_parse_errors_name_sampler_field_and_value(text, needles):
    with pytest.raises(ValueError) as exc:
        parse_sampler_opt(text)
    for needle in needles:
        assert needle in str(exc.value), str(exc.value)


def test_values_are_range_checked_by_the_options_dataclass():
    with pytest.raises(ValueError, match=r"dns.num_candidates=0: dns: num_candidates must be >= 1"):
        check_sampler_options({"dns": {"num_candidates": 0}})
    with pytest.raises(ValueError, match=r"top_k must be in \[1, num_candidates=4\]"):
        check_sampler_options({"dns": {"num_candidates": 4, "top_k": 5}})
    assert check_sampler_options({"DNS": {"num_candidates": 4}}) == {"dns": {"num_candidates": 4}}
    assert resolved_options("dns", {"num_candidates": 4}) == {
        "num_candidates": 4, "top_k": 1, "rank_lambda": None}


def _fails(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err


def test_cli_errors(capsys):
    _fails(capsys, ["--sampler", "dns", "--sampler-opt", "dns.num_candidates=0"],
           "--sampler-opt", "dns.num_candidates=0", "must be >= 1")
    _fails(capsys, ["--sampler", "dns", "--sampler-opt", "dns.candidates=8"],
           "--sampler-opt dns.candidates=8", "did you mean 'num_candidates'")
    _fails(capsys, ["--sampler", "dns", "--sampler-opt", "dns.num_candidates=8",
                    "--sampler-opt", "dns.num_candidates=4"], "given twice")
    # an option for a sampler the run does not train is an error, not silently ignored
    _fails(capsys, ["--sampler", "rns", "--sampler-opt", "dns.num_candidates=8"],
           "dns.num_candidates", "not trained in this run", "samplers: rns")
    _fails(capsys, ["--search-space", "rns,pns", "--sampler-opt", "mixgcf.num_candidates=8"],
           "'mixgcf' is not trained")


def _recording(monkeypatch):
    import autosample_ext.run.phases as phases
    import autosample_ext.search.autosample_phases as autosample_phases

    built: list[tuple[str, dict]] = []
    real = phases.build_sampler

    def record(name, data, seed, device, num_negatives=1, options=None, shard=None, **kw):
        sampler = real(name, data, seed, device, num_negatives, options, shard=shard, **kw)
        built.append((str(name), dict((options or {}).get(str(name), {})),
                      getattr(sampler, "options", None)))
        return sampler

    for module in (phases, autosample_phases):  # every module that builds a run's samplers
        monkeypatch.setattr(module, "build_sampler", record)
    return built


def test_options_reach_search_candidates_retrain_and_grid(tmp_path, monkeypatch):
    from autosample_ext import data as D

    data = D.load(None, split="3:1:1", seed=0)
    built = _recording(monkeypatch)
    opts = {"dns": {"num_candidates": 3, "top_k": 2}, "pns": {"beta": 0.5}}
    run(RunConfig(out=str(tmp_path / "a"), search_space=("rns", "pns", "dns"), epochs=1,
                  dim=8, batch_size=8192, sampler_options=opts, retrain_init="random",
                  progress=False), data=data)
    cands = {name: o for name, _, o in built}
    assert cands["dns"].num_candidates == 3 and cands["dns"].top_k == 2
    assert cands["pns"].beta == 0.5
    # the retrained (chosen) sampler is built with its options too
    chosen_name, chosen_opts, chosen_built = built[-1]
    assert chosen_opts == opts.get(chosen_name, {})
    built.clear()
    summary = run(RunConfig(out=str(tmp_path / "g"), search_space=("rns", "dns"), grid=True,
                            epochs=1, dim=8, batch_size=8192,
                            sampler_options={"dns": {"num_candidates": 5}}, progress=False),
                  data=data)
    assert [(n, o.num_candidates) for n, _, o in built if n == "dns"] == [("dns", 5)]
    config = json.loads((summary.path / "config.json").read_text())
    assert config["config"]["sampler_options"] == {"dns": {"num_candidates": 5}}
    assert config["samplers"]["dns"] == {"num_candidates": 5, "top_k": 1, "rank_lambda": None}
    assert config["samplers"]["rns"] == {}


def test_cli_option_changes_the_run_and_is_recorded(tmp_path, capsys):
    outs = {}
    for m in (1, 16):
        out = tmp_path / f"m{m}"
        assert main(["--sampler", "dns", "--sampler-opt", f"dns.num_candidates={m}",
                     "--epochs", "2", "--dim", "8", "--batch-size", "4096", "--out", str(out),
                     "--no-progress"]) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["config"]["sampler_options"] == {"dns": {"num_candidates": m}}
        assert config["samplers"]["dns"]["num_candidates"] == m
        outs[m] = [json.loads(x)["loss"] for x in (out / "log.jsonl").read_text().splitlines()]
    capsys.readouterr()
    # harder negatives from the larger pool: a larger BPR loss on the same data and seed
    assert outs[16][1] > outs[1][1] + 0.01, outs


def test_options_reach_samplers_inside_schedules_and_the_race(tmp_path, monkeypatch):
    from autosample_ext import data as D

    data = D.load(None, split="3:1:1", seed=0)
    built = _recording(monkeypatch)
    cfg = RunConfig(out=str(tmp_path / "s"), sampler=("rns@1+dns",), epochs=2, dim=8,
                    batch_size=8192, sampler_options={"dns": {"num_candidates": 3}},
                    progress=False)
    assert cfg.resolved().trained_samplers() == ("rns", "dns")
    summary = run(cfg, data=data)
    schedule = [s for n, _, s in built if n == "rns@1+dns"]
    assert schedule == [None]          # a schedule has no options of its own: its parts do
    config = json.loads((summary.path / "config.json").read_text())
    assert config["samplers"]["dns"]["num_candidates"] == 3
    import autosample_ext.run.phases as phases

    sampler = phases.build_sampler("rns@1+dns", data, 0, "cpu", options={"dns": {"num_candidates": 3}})
    assert sampler.parts[1].options.num_candidates == 3
    built.clear()
    run(RunConfig(out=str(tmp_path / "h"), search="sh", search_space=("rns", "dns"),
                  sh_first_rung=1, epochs=2, dim=8, batch_size=8192,
                  sampler_options={"dns": {"num_candidates": 5}}, progress=False), data=data)
    assert {o.num_candidates for n, _, o in built if n == "dns"} == {5}
    # an option for a sampler only found inside a schedule is not "unused"
    assert RunConfig(sampler=("aobpr@2+dns",),
                     sampler_options={"dns": {"num_candidates": 2}}).resolved()
