"""``python -m autosample_ext.train``: argument errors, the run directory, a meaningful result."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import autosample_ext
from autosample_ext.train import main

ROOT = Path(__file__).resolve().parents[2]


def _fails(capsys, argv, *needles, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_sampler_name(capsys):
    _fails(capsys, ["--sampler", "nosuch"], "unknown sampler 'nosuch'", "known samplers: rns")
    _fails(capsys, ["--search-space", "rns,bogus"], "--search-space", "'bogus'")
    _fails(capsys, ["--search-space", "rns"], "at least 2")


@pytest.mark.skipif(autosample_ext.cuda_compiled() and torch.cuda.is_available(),
                    reason="CUDA is usable here")
def test_bad_device(capsys):
    _fails(capsys, ["--device", "cuda"], "--device cuda", "CUDA")
    _fails(capsys, ["--device", "tpu"], "--device")


def test_missing_data_path(capsys, tmp_path):
    _fails(capsys, ["--data", str(tmp_path / "nowhere")], "--data", "does not exist")


@pytest.mark.parametrize("seeds", ["0,x", "", "1,1", "-1", "0,,2"])
def test_bad_seeds(capsys, seeds):
    _fails(capsys, ["--seeds", seeds], "--seeds")


def test_other_bad_arguments(capsys, tmp_path):
    _fails(capsys, ["--epochs", "0"], "--epochs")
    _fails(capsys, ["--tau", "-1"], "--tau")
    _fails(capsys, ["--metric", "auc@5"], "--metric")
    _fails(capsys, ["--grid", "--sampler", "rns"], "one of --sampler, --grid, --compare")
    _fails(capsys, ["--protocol", "dens", "--compare"], "--protocol dens", "compare",
           "no validation split")
    _fails(capsys, ["--resume"], "--resume needs --out")
    _fails(capsys, ["--resume", "--out", str(tmp_path)], "nothing to resume")
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "many"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--model", "transformer"])
    assert exc.value.code == 2


# A rule of a setting lives in RunConfig (or the lower layer's config it builds); the command
# line only names the option: its message is RunConfig's, led by the option instead of the field.
@pytest.mark.parametrize("option,value", [
    ("--epochs", "0"), ("--batch-size", "0"), ("--checkpoint-every", "-1"), ("--tau", "0"),
    ("--lr", "0"), ("--patience", "-1"), ("--sh-eta", "1"), ("--probe-users", "0"),
    ("--valid-fraction", "1.5"), ("--split", "half"), ("--ks", "0"), ("--metric", "auc@5"),
    ("--search-space", "rns"), ("--alpha-objective", "loss")])
def test_the_cli_names_the_option_of_a_runconfig_rule(capsys, option, value):
    from autosample_ext.run import RunConfig
    from autosample_ext.train import config_from_args
    from autosample_ext.train_parser import build_parser

    ns = build_parser().parse_args([option, value])
    field = option[2:].replace("-", "_")
    with pytest.raises(ValueError) as exc:
        config_from_args(ns)
    with pytest.raises(ValueError) as direct:
        RunConfig(**{field: getattr(ns, field)})  # lists as the CLI writes them: "0", "rns"
    rule = str(direct.value).removeprefix(field).removeprefix(":").strip()
    assert str(exc.value) == f"{option}: {rule}"
    _fails(capsys, [option, value], f"error: {option}: {rule}")


def test_every_option_of_train_sets_a_runconfig_field():
    """The option -> field table the errors are named by covers every option but the process's
    own (threads, timeouts, logging, --resume)."""
    import dataclasses

    from autosample_ext.run import RunConfig
    from autosample_ext.train_parser import build_parser, option_of_field

    table = option_of_field(build_parser())
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(table) - fields == {"help", "resume", "verbose", "threads", "dist_timeout"}
    assert table["sampler_options"] == "--sampler-opt" and table["epochs"] == "--epochs"


def test_bad_data_file_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 2\n1 x 3\n")
    err = _fails(capsys, ["--data", str(bad), "--out", str(tmp_path / "o")], "bad.txt", code=1)
    assert "line 2" in err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--data", "--format", "--model", "--search-space", "--sampler", "--grid",
                "--epochs", "--patience", "--lr", "--alpha-lr", "--tau", "--batch-size", "--dim",
                "--seeds", "--device", "--out", "--resume", "--protocol", "--retrain-init"):
        assert opt in out


def test_module_entry_point_exit_status(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "autosample_ext.train", "--sampler", "nosuch"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "unknown sampler" in proc.stderr


def test_end_to_end_on_embedded_data_writes_every_file(capsys, tmp_path):
    out = tmp_path / "run"
    code = main(["--epochs", "2", "--seeds", "0,1", "--dim", "16", "--batch-size", "8192",
                 "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "AutoSample" in printed and "chose" in printed and "popularity" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "log.jsonl", "alpha.csv", "alpha.png", "metrics.json", "table.md",
            "checkpoints"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["search_space"] == ["rns", "pns", "dns", "aobpr"]
    assert config["config"]["seeds"] == [0, 1] and config["data"]["name"] == "default"
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    search = [e for e in lines if e["run"] == "seed0/search"]
    assert [e["epoch"] for e in search] == [1, 2]
    for e in search:
        assert {"loss", "alpha", "valid", "seconds"} <= set(e)
        assert abs(sum(e["alpha"].values()) - 1) < 1e-6
        assert 0 <= e["valid"]["recall@20"] <= 1
    assert {e["run"] for e in lines} == {"seed0/search", "seed0/retrain", "seed1/search",
                                        "seed1/retrain"}
    with open(out / "alpha.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["seed", "epoch", "rns", "pns", "dns", "aobpr"] and len(rows) == 4
    assert (out / "alpha.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    autos = [r for r in metrics["runs"] if r["method"] == "autosample"]
    assert [r["seed"] for r in autos] == [0, 1]
    for r in autos:
        assert r["sampler"] in ("rns", "pns", "dns", "aobpr")
        assert set(r["test"]) == {"recall@20", "ndcg@20", "precision@20", "hit@20", "mrr@20"}
    agg = metrics["aggregate"]["autosample"]["recall@20"]
    assert agg["n"] == 2
    values = [r["test"]["recall@20"] for r in autos]
    assert agg["mean"] == pytest.approx(sum(values) / 2)
    table = (out / "table.md").read_text()
    # one row (AutoSample over two seeds): no rank columns, which would all read (1)
    assert table.startswith("| Sampler | R@20 | N@20 | P@20 | H@20 |\n")
    header, _, row = table.splitlines()[:3]
    assert row.startswith("| AutoSample |") and "±" in row and "(1)" not in row
    assert "Avg rank" not in header and "(rank) per metric" not in table
    assert "R/N/P/H@20 = Recall, NDCG, Precision, Hit rate in the top 20" in table
    assert "Legend:" in printed and "alpha* = AutoSample's learned sampler weights" in printed
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "seed0-retrain.pt", "seed0-search.pt", "seed1-retrain.pt", "seed1-search.pt"]


def test_mf_rns_beats_popularity_on_embedded_data(tmp_path):
    from autosample_ext import data as D
    from autosample_ext.eval import evaluate_full_ranking, popularity_tables
    from autosample_ext.run import RunConfig, run

    data = D.load(None, split="3:1:1", seed=0)
    summary = run(RunConfig(out=str(tmp_path / "r"), sampler=("rns",), epochs=3, patience=0,
                            lr=0.01, batch_size=1024, progress=False), data=data)
    mf = summary.records[0].result.test["recall@20"]
    pop = evaluate_full_ranking(*popularity_tables(data), data, "test", (20,))["recall@20"]
    assert mf > pop * 1.2, (mf, pop)
    assert summary.metrics["popularity"]["test"]["recall@20"] == pytest.approx(pop)
