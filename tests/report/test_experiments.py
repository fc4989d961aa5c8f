"""``python -m autosample_ext.experiments``: the plan of runs, reuse across tables, resume/skip,
and the report with its tables and figures (on a tiny dataset, two epochs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig
from autosample_ext.experiments import ExperimentConfig, plan
from autosample_ext.experiments.__main__ import main


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    data = default_dataset(seed=3, config=SyntheticConfig(num_users=300, num_items=200,
                                                          mean_interactions=15.0))
    rows: dict[int, list[int]] = {}
    for split in (data.train, data.valid, data.test):
        users, items = split.pairs()
        for u, i in zip(users.tolist(), items.tolist()):
            rows.setdefault(u, []).append(i)
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text("".join(f"{u} {' '.join(map(str, items))}\n" for u, items in sorted(rows.items())))
    return path


def test_plan_shares_runs_between_tables():
    cfg = ExperimentConfig(datasets=("../x/lastfm", "default"), models=("mf",), seeds=(0, 1),
                           subsets=(("rns", "dns"),), runs="R")
    items = plan(cfg)
    names = [(i.setting, i.name) for i in items]
    assert names[:14] == [("lastfm-mf", n) for n in (
        "compare", "sh-tie0", "sh-tiebest", "negatives", "retrain-random", "space-0-as",
        "space-0-sh", "schedule", "sh-schedules", "grid", "sh", "sh-auto", "sh-auto-harder",
        "sh-classic")]
    by = {n: i.config for (s, n), i in zip(names, items) if s == "lastfm-mf"}
    assert by["compare"].mode == "compare" and by["negatives"].num_negatives == 4
    assert by["retrain-random"].retrain_init == "random"
    assert by["space-0-sh"].search == "sh" and by["space-0-sh"].search_space == ("rns", "dns")
    assert by["sh-schedules"].search_space[-1] == "aobpr@5+dns"
    assert by["sh-tie0"].sh_tie_se == 0 and by["sh-tie0"].search == "sh"
    assert by["sh-tiebest"].sh_tie_anchor == "best"
    assert items[14].config.data is None and items[14].setting == "default-mf"
    assert by["sh-auto"].search_space == ("auto",) and by["grid"].search == "grid"
    # the race table alone: the three race runs; another split names the setting
    race = plan(ExperimentConfig(datasets=("../x/lastfm",), tables=("race",), runs="R",
                                 base=RunConfig(split="loo")))
    assert [(i.setting, i.name) for i in race] == [("lastfm-loo-mf", n)
                                                   for n in ("grid", "sh", "sh-auto", "sh-auto-harder",
                                                             "sh-classic")]
    assert race[0].config.split == "loo"
    with pytest.raises(ValueError, match="--tables"):
        ExperimentConfig(datasets=("default",), tables=("7",))
    only = plan(ExperimentConfig(datasets=("default",), tables=("6",), runs="R"))
    assert [i.name for i in only] == ["compare", "retrain-random"]


def test_experiments_command_runs_reuses_and_reports(tiny_file, tmp_path, capsys):
    argv = ["--data", str(tiny_file), "--seeds", "0,1", "--epochs", "3", "--patience", "2",
            "--search-space", "rns,dns", "--subsets", "rns,dns", "--schedules", "rns@1+dns",
            "--tables", "3,4,5,6,schedule,sh-ties",
            "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "rep")]
    assert main(argv) == 0
    root = tmp_path / "runs" / "tiny-mf"
    assert sorted(p.name for p in root.iterdir()) == [
        "compare", "negatives", "retrain-random", "schedule", "sh-schedules", "sh-tie0",
        "sh-tiebest", "space-0-as", "space-0-sh"]
    # Table 6 reused the search of the compare run: same alpha*, same pick.
    cmp = json.loads((root / "compare" / "metrics.json").read_text())
    rnd = json.loads((root / "retrain-random" / "metrics.json").read_text())
    assert {s: a["alpha_star"] for s, a in cmp["autosample"].items()} == \
        {s: a["alpha_star"] for s, a in rnd["autosample"].items()}
    for seed in (0, 1):  # the search was not trained again: its checkpoint is the copy
        name = f"checkpoints/seed{seed}-search.pt"
        assert (root / "retrain-random" / name).read_bytes() == (root / "compare" / name).read_bytes()
    report = (tmp_path / "rep" / "report.md").read_text()
    for title in ("SH without tie rule", "SH, ties vs the leader", "## Headline", "## The pick table",
                  "## Table 3", "## Table 4", "## Table 5", "## Table 6",
                  "## Schedules", "## Figure 3", "## Figure 4", "| rns@1+dns |"):
        assert title in report, title
    for png in ("fig3_search_cost.png", "fig4_alpha_tiny-mf.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"
    # report.json holds what the figures need: they are redrawn from it alone
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert [r["epoch"] for r in saved["tiny-mf"]["compare"]["alpha"] if r["seed"] == 0] == \
        [e["epoch"] for e in map(json.loads, (root / "compare" / "log.jsonl").read_text().splitlines())
         if e["run"] == "seed0/search"]
    assert main(["--report-only", "--from-json", str(tmp_path / "rep" / "report.json"),
                 "--report", str(tmp_path / "again")]) == 0
    for png in ("fig3_search_cost.png", "fig4_alpha_tiny-mf.png"):
        assert (tmp_path / "again" / png).read_bytes()[:4] == b"\x89PNG"
    # Started again: every run is finished and skipped (nothing trains; metrics unchanged).
    mtime = (root / "compare" / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (root / "compare" / "metrics.json").stat().st_mtime_ns == mtime
    # Another configuration in the same folder is refused, naming the folder.
    capsys.readouterr()
    assert main(argv[:5] + ["4"] + argv[6:]) == 1
    assert "another configuration" in capsys.readouterr().err


def test_report_only_needs_finished_runs(tmp_path, capsys):
    # a mistyped folder is a bad argument; a folder without a finished run, unusable input
    assert main(["--report-only", "--runs", str(tmp_path / "none"), "--report",
                 str(tmp_path / "rep")]) == 2
    assert "--runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--report-only", "--runs", str(tmp_path / "empty"), "--report",
                 str(tmp_path / "rep")]) == 1
    assert "no finished run" in capsys.readouterr().err
    assert not (tmp_path / "rep" / "report.md").exists()
    assert RunConfig().epochs == 300 and RunConfig().patience == 10


def _metrics_without_times(path: Path) -> dict:
    drop = {"seconds", "cpu_seconds", "wall_seconds", "search_seconds", "retrain_seconds",
            "total_seconds", "costs", "_path"}

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x
    return clean(json.loads((path / "metrics.json").read_text()))


def test_an_interrupted_planned_run_is_resumed_to_the_same_result(tiny_file, tmp_path):
    """What a killed experiments command leaves (a run directory with checkpoints, no
    metrics.json) is resumed by the next one and ends as an uninterrupted run does."""
    from autosample_ext.run import run
    from autosample_ext.experiments.plan import run_planned
    from autosample_ext.training import StopFlag, TrainingInterrupted

    def item(root: Path, name: str):
        cfg = ExperimentConfig(datasets=(str(tiny_file),), seeds=(0,), tables=("6", "sh-ties"),
                               runs=str(root), base=RunConfig(epochs=3, patience=2, dim=8,
                                                              search_space=("rns", "dns")))
        return next(i for i in plan(cfg) if i.name == name)

    ref = item(tmp_path / "ref", "sh-tie0")
    assert run_planned(ref, tmp_path / "ref") == "ran"
    cut = item(tmp_path / "cut", "sh-tie0")
    stop = StopFlag()

    def fault(tag, step):
        if tag == "seed0/sh-dns" and step == 2:
            stop.request("test")

    with pytest.raises(TrainingInterrupted):
        run(cut.config, stop=stop, on_step=fault)
    assert not (Path(cut.config.out) / "metrics.json").exists()
    assert run_planned(cut, tmp_path / "cut") == "resumed"
    assert _metrics_without_times(Path(cut.config.out)) == \
        _metrics_without_times(Path(ref.config.out))
    assert run_planned(cut, tmp_path / "cut") == "done already"
    # Table 6 reuses the compare run's search: without it, the error names the missing file.
    with pytest.raises(FileNotFoundError, match="seed0-search.pt.*'compare'"):
        run_planned(item(tmp_path / "none", "retrain-random"), tmp_path / "none")


def test_a_run_locked_by_another_writer_is_a_clear_error(tiny_file, tmp_path, capsys):
    from autosample_ext.run.lock import RunLock

    folder = tmp_path / "runs" / "tiny-mf" / "compare"
    folder.mkdir(parents=True)
    lock = RunLock(folder).acquire()
    try:
        assert main(["--data", str(tiny_file), "--seeds", "0", "--epochs", "2",
                     "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "rep")]) == 1
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "error:" in err and str(folder) in err and "Traceback" not in err


def test_race_table_runs_the_grid_sh_and_auto_and_reports_targets(tiny_file, tmp_path):
    argv = ["--data", str(tiny_file), "--seeds", "0,1", "--epochs", "6", "--patience", "2",
            "--tables", "race", "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "rep")]
    assert main(argv) == 0
    root = tmp_path / "runs" / "tiny-mf"
    assert sorted(p.name for p in root.iterdir()) == ["grid", "sh", "sh-auto", "sh-auto-harder",
                                                      "sh-classic"]
    # the curriculum run reused the auto races: same picks before its stage, same race costs
    auto_m = json.loads((root / "sh-auto" / "metrics.json").read_text())["sh"]
    cur_m = json.loads((root / "sh-auto-harder" / "metrics.json").read_text())["sh"]
    for seed, race in auto_m.items():
        assert cur_m[seed]["runs"] == race["runs"] and cur_m[seed]["decisions"] == race["decisions"]
        assert cur_m[seed]["chosen"].split(">>")[0] == race["chosen"]
    auto = json.loads((root / "sh-auto" / "config.json").read_text())
    expansion = auto["search_space_expansion"]
    assert expansion["given"] == ["auto"] and expansion["raced"][:4] == ["rns", "pns", "dns", "aobpr"]
    assert set(expansion["added"]) == {"0", "1"} and any(expansion["added"].values())
    metrics = json.loads((root / "sh-auto" / "metrics.json").read_text())
    for seed, added in expansion["added"].items():     # every schedule added is in the race
        raced = [r["sampler"] for r in metrics["sh"][seed]["runs"]]
        assert raced == expansion["raced"] + added
    table = (root / "sh-auto" / "table.md").read_text()
    assert "The race's candidates:" in table and "| 0 | dns(top_k=2)" in table
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "## Racing configurations" in report and "| tiny-mf (2 seeds) |" in report
    assert "### The curriculum stage" in report
    assert "## Table 3" not in report            # the race table alone ran no compare run
    row = next(line for line in report.splitlines() if line.startswith("| tiny-mf (2 seeds) |"))
    assert row.count("|") == 10 and ("met" in row or "missed" in row)
