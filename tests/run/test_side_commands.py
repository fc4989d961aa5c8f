"""Bad inputs of the side commands (``experiments``, the false-negative analysis, ``data
info``) and the checks they share with ``train`` (finite numbers, seeds, memory, output
folders): one row per case, asserting the exit status and that the message names the option
and its value (or the folder). Every row is refused before any data is read or anything runs
(in-process, a fraction of a second each). The whole battery, with the cases that train, is
``bench/cli_battery.py``."""
from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from faultdata import read_only_folders, skewed_lines, write

from autosample_ext.data.__main__ import build_parser as data_parser
from autosample_ext.data.__main__ import main as data_main
from autosample_ext.studies.false_negatives import main as fn_main
from autosample_ext.studies.false_negatives_cli import build_parser as fn_parser
from autosample_ext.experiments.__main__ import build_parser as exp_parser
from autosample_ext.experiments.__main__ import main as exp_main
from autosample_ext.train import main as train_main
from autosample_ext.train_parser import build_parser as train_parser

ROOT = Path(__file__).resolve().parents[2]
MAINS = {"train": train_main, "experiments": exp_main, "fn": fn_main, "data": data_main}
# the settings a wrongly accepted case would run with: seconds, not hours
QUICK = {"experiments": ["--epochs", "1", "--seeds", "0", "--tables", "", "--search-space",
                         "rns,dns", "--runs", "{tmp}/runs", "--report", "{tmp}/rep"],
         "fn": ["--epochs", "1", "--data", "{tmp}/d.txt", "--out", "{tmp}/fn"],
         "train": ["--epochs", "1", "--dim", "8", "--out", "{tmp}/run", "--no-progress"],
         "data": []}


def s_file(tmp: Path, mp) -> None:
    write(tmp / "afile", "x")


def s_read_only(tmp: Path, mp) -> None:
    read_only_folders(mp)


def s_run_folder(tmp: Path, mp) -> None:
    write(tmp / "saved" / "config.json", json.dumps({"config": {"sampler": ["rns"]}}))


def s_same_names(tmp: Path) -> None:
    for folder in ("a", "b"):
        (tmp / folder).mkdir()
        skewed_lines(tmp / folder / "d.txt")


def s_empty_runs(tmp: Path, mp) -> None:
    (tmp / "empty").mkdir()


@dataclass
class Case:
    id: str
    cmd: str
    argv: list[str]
    code: int
    needles: list[str]
    setup: Callable | None = None


CASES = [
    # -- experiments: every option, before the first run
    Case("exp-models", "experiments", ["--models", "bert"], 2, ["--models", "'bert'", "lightgcn"]),
    Case("exp-models-repeated", "experiments", ["--models", "mf,mf"], 2, ["--models", "repeated"]),
    Case("exp-threads-0", "experiments", ["--threads", "0"], 2, ["--threads", "got 0"]),
    Case("exp-threads-huge", "experiments", ["--threads", "10000000000"], 2, ["--threads", "4096"]),
    Case("exp-seeds-word", "experiments", ["--seeds", "x"], 2, ["--seeds", "'x'"]),
    Case("exp-seeds-negative", "experiments", ["--seeds", "0,-1"], 2, ["--seeds", "'0,-1'"]),
    Case("exp-epochs", "experiments", ["--epochs", "0"], 2, ["--epochs", "got 0"]),
    Case("exp-patience", "experiments", ["--patience", "-1"], 2, ["--patience", "got -1"]),
    Case("exp-space-one", "experiments", ["--search-space", "rns"], 2, ["--search-space", "at least 2"]),
    Case("exp-space-unknown", "experiments", ["--search-space", "rns,nope"], 2, ["'nope'"]),
    Case("exp-space-model", "experiments", ["--search-space", "rns,mixgcf"], 2,
         ["--search-space mixgcf", "--model mf"]),
    Case("exp-schedule-model", "experiments", ["--tables", "schedule", "--schedules", "mixgcf@1+dns"], 2,
         ["default-mf/schedule", "mixgcf", "--model mf"]),
    Case("exp-subset-one", "experiments", ["--subsets", "rns"], 2, ["--subsets", "at least 2"]),
    Case("exp-schedule", "experiments", ["--schedules", "aobpr@x+dns"], 2,
         ["--schedules", "aobpr@x+dns"]),
    Case("exp-tables", "experiments", ["--tables", "7"], 2, ["--tables", "'7'"]),
    Case("exp-data-missing", "experiments", ["--data", "{tmp}/nowhere"], 2,
         ["--data", "{tmp}/nowhere", "does not exist"]),
    Case("exp-data-same-name", "experiments", ["--data", "{tmp}/a/d.txt,{tmp}/b/d.txt"], 2,
         ["--data", "share the run folders"], lambda t, mp: s_same_names(t)),
    Case("exp-runs-file", "experiments", ["--runs", "{tmp}/afile"], 1,
         ["--runs", "{tmp}/afile", "is a file"], s_file),
    Case("exp-runs-read-only", "experiments", ["--runs", "{tmp}/ro/runs"], 1,
         ["--runs", "{tmp}/ro/runs", "Read-only file system"], s_read_only),
    Case("exp-report-in-a-run", "experiments", ["--report", "{tmp}/saved"], 1,
         ["--report", "run directory"], s_run_folder),
    Case("exp-report-only-mistyped", "experiments", ["--report-only", "--runs", "{tmp}/runz"], 2,
         ["--runs", "{tmp}/runz", "nothing to report"]),
    Case("exp-report-only-empty", "experiments", ["--report-only", "--runs", "{tmp}/empty"], 1,
         ["--runs", "no finished run"], s_empty_runs),
    Case("exp-from-json-alone", "experiments", ["--from-json", "{tmp}/r.json"], 2,
         ["--from-json", "--report-only"]),
    # -- the false-negative analysis
    Case("fn-threads", "fn", ["--threads", "-1"], 2, ["--threads", "got -1"]),
    Case("fn-out-file", "fn", ["--out", "{tmp}/afile"], 1, ["--out", "{tmp}/afile", "is a file"],
         s_file),
    Case("fn-out-read-only", "fn", ["--out", "{tmp}/ro/fn"], 1, ["--out", "Read-only file system"],
         s_read_only),
    Case("fn-out-run-folder", "fn", ["--out", "{tmp}/saved"], 1, ["--out", "training run"],
         s_run_folder),
    Case("fn-data-missing", "fn", ["--data", "{tmp}/nowhere"], 2, ["--data", "{tmp}/nowhere"]),
    Case("fn-samplers", "fn", ["--samplers", "rns,nope"], 2, ["--samplers", "'nope'"]),
    Case("fn-schedule", "fn", ["--samplers", "aobpr@1+dns"], 2, ["--samplers", "schedule"]),
    Case("fn-mixgcf-gmf", "fn", ["--samplers", "mixgcf"], 2, ["mixgcf", "graph model"]),
    Case("fn-epochs", "fn", ["--epochs", "0"], 2, ["--epochs", "got 0"]),
    Case("fn-seed", "fn", ["--seed", "-1"], 2, ["--seed", "got -1"]),
    Case("fn-plant-seed", "fn", ["--plant-seed", str(2**63)], 2, ["--plant-seed", "2^63"]),
    Case("fn-snapshots", "fn", ["--snapshot-epochs", "5"], 2, ["--snapshot-epochs", "--epochs 1"]),
    Case("fn-format", "fn", ["--format", "parquet"], 2, ["--format", "'parquet'"]),
    Case("fn-report-only-nothing", "fn", ["--report-only", "--out", "{tmp}/none"], 2,
         ["--report-only", "false_negatives.json"]),
    # -- data info: bad options 2, the data 1 (train's table)
    Case("data-missing", "data", ["info", "{tmp}/nowhere"], 2, ["{tmp}/nowhere", "does not exist"]),
    Case("data-split", "data", ["info", "default", "--split", "3:1:1:1"], 2, ["--split", "'3:1:1:1'"]),
    Case("data-kcore", "data", ["info", "default", "--kcore", "-1"], 2, ["--kcore", "got -1"]),
    Case("data-min-rating", "data", ["info", "default", "--min-rating", "nan"], 2,
         ["--min-rating", "'nan'"]),
    Case("data-valid-fraction", "data", ["info", "default", "--valid-fraction", "0.1", "--split",
                                         "3:1:1"], 2, ["--valid-fraction 0.1", "--split 3:1:1"]),
    Case("data-unreadable", "data", ["info", "{tmp}/bad.txt"], 1, ["{tmp}/bad.txt", "line 2"],
         lambda t, mp: write(t / "bad.txt", "0 1\n1 -2\n")),
    # -- train's checks the side commands reuse
    Case("train-l2-nan", "train", ["--l2", "nan"], 2, ["--l2", "'nan'", "finite"]),
    Case("train-tie-nan", "train", ["--search", "sh", "--sh-tie-se", "nan"], 2, ["--sh-tie-se", "'nan'"]),
    Case("train-pns-inf", "train", ["--sampler", "pns", "--sampler-opt", "pns.beta=inf"], 2,
         ["pns.beta=inf", "finite"]),
    Case("train-dist-timeout", "train", ["--dist-timeout", "0"], 2, ["--dist-timeout", "got 0"]),
    Case("train-split-seed", "train", ["--split-seed", "-1"], 2, ["--split-seed", "got -1"]),
    Case("train-threads-huge", "train", ["--threads", "10000000000"], 2, ["--threads", "4096"]),
    Case("train-dns-pool", "train", ["--sampler", "dns", "--sampler-opt",
                                     "dns.num_candidates=1000000000000"], 2,
         ["--sampler-opt dns.num_candidates=1000000000000", "DNS's candidate pool", "available"]),
    Case("train-dim", "train", ["--dim", "100000000000"], 2, ["--dim 100000000000", "available"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_side_command_bad_input(case: Case, tmp_path, monkeypatch, capsys):
    skewed_lines(tmp_path / "d.txt")
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    fill = lambda s: s.replace("{tmp}", str(tmp_path))
    argv = [fill(a) for a in QUICK[case.cmd] + case.argv]
    try:
        code = MAINS[case.cmd](argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == case.code, (code, err[-2000:])
    for needle in case.needles:
        assert fill(needle) in err, (needle, err)
    assert "error:" in err.strip().splitlines()[-1]
    # refused before anything ran: no run folder, no report, no analysis
    for name in ("runs", "rep", "fn", "run"):
        assert not (tmp_path / name).exists(), name


@pytest.mark.parametrize("make", [train_parser, exp_parser, fn_parser, data_parser])
def test_no_option_takes_a_plain_float(make):
    """Every float option of every command refuses NaN and infinity (finite_floats)."""
    def actions(parser: argparse.ArgumentParser):
        for a in parser._actions:
            yield a
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    yield from actions(sub)
    assert not [a.dest for a in actions(make()) if a.type is float]


def test_memory_check_names_the_option_and_the_estimate():
    from autosample_ext.run import RunConfig
    from autosample_ext.run.memory import (
        MemoryLimitError,
        check_memory,
        run_needs,
    )

    cfg = RunConfig(sampler=("dns",), sampler_options={"dns": {"num_candidates": 1000}})
    gib = (2**30, "test")
    check_memory(cfg, users=1000, items=500, pairs=10**5, available=gib)
    needs = {n.what: n.bytes for n in run_needs(cfg, users=1000, items=500, pairs=10**5)}
    assert needs["DNS's candidate pool"] == 2048 * 1000 * 8   # rows capped at --batch-size
    assert needs["the model's embedding tables"] == 1500 * 64 * 4 * 4
    assert run_needs(cfg, pairs=100)[1].bytes == 100 * 1000 * 8  # rows capped at the pairs
    big = RunConfig(sampler=("dns",), sampler_options={"dns": {"num_candidates": 10**6}})
    with pytest.raises(MemoryLimitError, match=r"^--sampler-opt dns.num_candidates=1000000: "
                                               r"DNS's candidate pool would need about 16.4 GB"):
        check_memory(big, users=1000, items=500, pairs=10**5, available=gib)
    gdns = RunConfig(sampler=("gdns",), sampler_options={"gdns": {
        "table": "slots", "num_slots": 10**5, "max_table_bytes": 4 * 10**9}})  # over the memory
    with pytest.raises(MemoryLimitError, match=r"^--sampler-opt gdns.num_slots=100000: GDNS's "
                                               r"gain table would need about 1.6 GB \(1,000 users x 100,000 slots"):
        check_memory(gdns, users=1000, items=500, pairs=10**5, available=gib)
    with pytest.raises(MemoryLimitError, match=r"^--dim 1000000: the model's embedding tables"):
        check_memory(RunConfig(sampler=("rns",), dim=10**6), users=1000, items=500,
                     available=gib)
    check_memory(big, available=(None, "unknown"))  # nothing known: nothing refused


def test_run_config_refuses_non_finite_numbers():
    from autosample_ext.data.loader import load
    from autosample_ext.run import RunConfig
    from autosample_ext.samplers import build_sampler

    with pytest.raises(ValueError, match="sh_tie_se must be a finite number, got nan"):
        RunConfig(sh_tie_se=float("nan"))
    with pytest.raises(ValueError, match=r"pns.beta=inf: expected a finite number"):
        RunConfig(sampler=("pns",), sampler_options={"pns": {"beta": float("inf")}})
    with pytest.raises(ValueError, match=r"pns.beta=inf: expected a finite number"):
        build_sampler("pns", load(None), beta=float("inf"))


def test_readme_has_no_absolute_paths():
    """Commands in the README and the docs/ pages run from the repository (data under
    ../shared/data): no path of a particular machine. System locations (/usr/..., /proc/...)
    are fine."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1
    allowed = ("/usr/", "/proc/", "/dev/", "/sys/", "/etc/")
    for page in pages:
        text = page.read_text()
        found = re.findall(r"(?:^|[\s`'\"(=,])(/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.@-]+)+)", text,
                           re.MULTILINE)
        assert [p for p in found if not p.startswith(allowed)] == [], page.name
    reproduces = [page.read_text() for page in pages if "Reproduce (resumable" in page.read_text()]
    assert len(reproduces) == 1
    reproduce = reproduces[0][reproduces[0].index("Reproduce (resumable"):][:400]
    assert "--data ../shared/data/lastfm,../shared/data/beauty" in reproduce


def test_readme_and_docs_link_to_files_that_exist():
    """The README is an overview for newcomers (at most 200 lines) whose links, like those of the
    docs/ pages, lead to files of the repository; every docs/ page is linked from the README."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: {target}"
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", readme))
    assert {f"docs/{p.name}" for p in pages[1:]} <= linked
    assert "Readings of the papers' ambiguous points" in (ROOT / "docs" / "readings.md").read_text()
