"""Bad inputs and faults of ``python -m autosample_ext.train``: one row per case, asserting the
exit status and that the message names the file/line or the option and its value.

Exit statuses: 0 done, 1 bad data / files / run directory, 2 bad argument, 3 training diverged,
130 interrupted (checkpoint written). Rows run ``main()`` in-process on a tiny dataset (seconds in
all). Resume, checkpoint and lock faults: test_resume_faults.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from faultdata import (
    FAST,
    read_only_folders,
    s_binary,
    s_full_user,
    s_given_folder,
    s_gzip,
    s_huge_ids,
    s_latin1_csv,
    s_odd_columns,
    s_one_by_one,
    s_one_user,
    s_pairs_of_two,
    s_ratings_dat,
    skewed_lines,
    write,
)

from autosample_ext.train import main

# ---------------------------------------------------------------------------------------------
# Tiny inputs
# ---------------------------------------------------------------------------------------------

def s_tiny(tmp: Path, mp) -> None:
    skewed_lines(tmp / "tiny.txt")


def s_read_only(tmp: Path, mp) -> None:
    s_tiny(tmp, mp)
    read_only_folders(mp)


def s_out_is_a_file(tmp: Path, mp) -> None:
    s_tiny(tmp, mp)
    write(tmp / "afile", "x")


@dataclass
class Case:
    id: str
    argv: list[str]
    code: int
    needles: list[str]
    setup: Callable | None = None
    stdout: list[str] = field(default_factory=list)


CASES = [
    # -- arguments: exit 2, the option and the value named
    Case("threads-0", ["--threads", "0"], 2, ["--threads", "must be >= 1", "got 0"]),
    Case("threads-neg", ["--threads", "-2"], 2, ["--threads", "got -2"]),
    Case("split-4-parts", ["--split", "3:1:1:1"], 2, ["--split", "'3:1:1:1'"]),
    Case("split-words", ["--split", "half"], 2, ["--split", "'half'"]),
    Case("format-unknown", ["--format", "parquet"], 2, ["--format", "'parquet'", "ratings.dat"]),
    Case("mf-mixgcf-before-data", ["--sampler", "mixgcf", "--data", "{tmp}/blob.bin"], 2,
         ["--sampler mixgcf", "--model mf", "--model lightgcn"], s_binary),
    Case("mf-mixgcf-search", ["--search-space", "rns,mixgcf"], 2,
         ["--search-space mixgcf", "--model mf"]),
    Case("abbreviation-off", ["--search-sp", "rns,dns"], 2, ["unrecognized arguments: --search-sp"]),
    Case("abbreviation-epoch", ["--epoch", "3"], 2, ["unrecognized arguments: --epoch"]),
    Case("valid-fraction-range", ["--valid-fraction", "1.5"], 2, ["--valid-fraction", "1.5"]),
    Case("valid-fraction-with-valid-share", ["--valid-fraction", "0.1", "--split", "3:1:1"], 2,
         ["--valid-fraction 0.1", "--split 3:1:1"]),
    Case("resume-needs-out", ["--resume"], 2, ["--resume needs --out"]),
    Case("resume-nothing", ["--resume", "--out", "{tmp}/none"], 2,
         ["--resume", "{tmp}/none/config.json", "nothing to resume"]),
    # -- data: exit 1, the file (and line) named
    Case("binary-file", ["--data", "{tmp}/blob.bin"], 1, ["{tmp}/blob.bin", "binary file", "NUL byte at offset 8"],
         s_binary),
    Case("gzip-file", ["--data", "{tmp}/data.txt"], 1, ["{tmp}/data.txt", "gzip-compressed"],
         s_gzip),
    Case("latin1-csv", ["--data", "{tmp}/r.csv"], 1, ["{tmp}/r.csv", "line 3", "not UTF-8"],
         s_latin1_csv),
    Case("one-user-ks", ["--data", "{tmp}/one.txt", *FAST], 1,
         ["{tmp}/one.txt", "only 12 item(s)", "cut-off 20", "--ks"], s_one_user),
    Case("no-validation", ["--data", "{tmp}/two.txt", "--split", "3:1:1", *FAST], 1,
         ["{tmp}/two.txt", "--split 3:1:1", "no validation pairs", "0 of the 30 users",
          "at least 3 interactions"], s_pairs_of_two),
    Case("one-by-one", ["--data", "{tmp}/1x1.txt", *FAST], 1,
         ["{tmp}/1x1.txt", "user 0", "every one of the 1 items", "no negative"], s_one_by_one),
    Case("user-owns-every-item", ["--data", "{tmp}/full", "--split", "given", *FAST], 1,
         ["{tmp}/full/train.txt", "user 0", "every one of the 3 items"], s_full_user),
    Case("given-on-single-file", ["--data", "{tmp}/tiny.txt", "--split", "given", *FAST], 1,
         ["{tmp}/tiny.txt", "--split given", "single file"], s_tiny),
    Case("huge-ids-say-remap", ["--data", "{tmp}/huge.tsv.txt", *FAST], 1,
         ["{tmp}/huge.tsv.txt", "--remap"], s_huge_ids),
    Case("column-names-say-cli", ["--data", "{tmp}/odd.csv", *FAST], 1,
         ["{tmp}/odd.csv", "line 1", "'who'", "--user-col"], s_odd_columns),
    Case("missing-named-column", ["--data", "{tmp}/odd.csv", "--user-col", "nobody", *FAST], 1,
         ["{tmp}/odd.csv", "missing user column 'nobody' (--user-col)"], s_odd_columns),
    # -- the run directory
    Case("read-only-out", ["--data", "{tmp}/tiny.txt", "--out", "{tmp}/ro/run", *FAST], 1,
         ["cannot write the run directory", "{tmp}/ro/run", "Read-only file system"], s_read_only),
    Case("out-under-a-file", ["--data", "{tmp}/tiny.txt", "--out", "{tmp}/afile/run", *FAST], 1,
         ["cannot write the run directory", "{tmp}/afile/run"], s_out_is_a_file),
    # -- training: divergence, floor; the fixes that make formerly rejected input work
    Case("diverged-lr", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--lr", "1e9",
                         "--out", "{tmp}/div", *FAST, "--epochs", "3", "--batch-size", "128"], 3,
         ["seed0/rns", "diverged at epoch 1", "lr = 1e+09", "--lr"], s_tiny),
    Case("below-popularity", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--lr", "1e-7",
                              "--ks", "5", "--metric", "recall@5", "--out", "{tmp}/low", *FAST],
         0, [], s_tiny, stdout=["WARNING: seed0/rns is below the popularity floor: recall@5"]),
    Case("ratings-dat-format", ["--data", "{tmp}/ml.txt", "--format", "ratings_dat",
                                "--sampler", "rns", "--out", "{tmp}/ml", *FAST],
         0, [], s_ratings_dat, stdout=["RNS"]),
    Case("given-split-valid-from-train", ["--data", "{tmp}/given", "--split", "given",
                                          "--sampler", "rns", "--out", "{tmp}/g", *FAST],
         0, [], s_given_folder, stdout=["RNS"]),
    Case("remap-from-cli", ["--data", "{tmp}/huge.tsv.txt", "--remap", "--sampler", "rns",
                            "--ks", "10", "--metric", "recall@10", "--out", "{tmp}/h", *FAST],
         0, [], s_huge_ids, stdout=["RNS"]),
    Case("columns-from-cli", ["--data", "{tmp}/odd.csv", "--user-col", "who", "--item-col", "what",
                              "--sampler", "rns", "--ks", "10", "--metric", "recall@10",
                              "--out", "{tmp}/c", *FAST], 0, [], s_odd_columns, stdout=["RNS"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, capsys):
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    fill = lambda s: s.replace("{tmp}", str(tmp_path))  # noqa: E731
    argv = [fill(a) for a in case.argv]
    if "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(tmp_path / "run")]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.code, (code, err[-2000:])
    for needle in case.needles:
        assert fill(needle) in err, (needle, err)
    for needle in case.stdout:
        assert fill(needle) in out, (needle, out)
    if case.code not in (0, 3):
        assert "Traceback" not in err
        # a refused run writes nothing beside its inputs
        assert not (tmp_path / "run" / "config.json").exists()


def test_given_split_draws_validation_from_train(tmp_path, capsys):
    s_given_folder(tmp_path, None)
    out = tmp_path / "g"
    assert main(["--data", str(tmp_path / "given"), "--split", "given", "--sampler", "rns",
                 "--valid-fraction", "0.25", "--out", str(out), *FAST]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["valid_fraction"] == 0.25
    assert saved["data"]["valid"] == 60 * round(6 * 0.25)  # 2 of each user's 6 train items
    assert saved["data"]["train"] + saved["data"]["valid"] == 60 * 6


def test_below_popularity_is_recorded_in_metrics(tmp_path, capsys):
    skewed_lines(tmp_path / "tiny.txt")
    out = tmp_path / "low"
    assert main(["--data", str(tmp_path / "tiny.txt"), "--sampler", "rns", "--lr", "1e-7",
                 "--ks", "5", "--metric", "recall@5", "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    (flag,) = metrics["below_popularity"]
    assert flag["run"] == "seed0/rns" and flag["value"] < flag["popularity"]
    assert metrics["runs"][0]["below_popularity"] is True
    assert flag["popularity"] == metrics["popularity"]["test"]["recall@5"]


def test_divergence_is_logged_and_stops_before_evaluation(tmp_path, capsys):
    skewed_lines(tmp_path / "tiny.txt")
    out = tmp_path / "div"
    assert main(["--data", str(tmp_path / "tiny.txt"), "--sampler", "rns", "--lr", "1e9",
                 "--out", str(out), *FAST, "--epochs", "5", "--batch-size", "128"]) == 3
    (entry,) = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert entry["diverged"] is True and entry["epoch"] == 1 and "valid" not in entry
    assert not (out / "metrics.json").exists()


def test_divergence_guard_unit():
    from autosample_ext.training import TrainingDiverged, check_divergence

    check_divergence(0.5, 0.69, factor=1e3, tag="t", epoch=1, lr=1e-3)
    check_divergence(900.0, 0.69, factor=1e3, tag="t", epoch=1, lr=1e-3)  # floor of 1
    with pytest.raises(TrainingDiverged, match="t: training diverged at epoch 2: the mean "
                                               "training loss 1001 is more than 1000x"):
        check_divergence(1001.0, 0.69, factor=1e3, tag="t", epoch=2, lr=1e-3)
    with pytest.raises(TrainingDiverged, match="nan"):
        check_divergence(float("nan"), 0.69, factor=0, tag="t", epoch=1, lr=1e-3)
    check_divergence(1e30, 0.69, factor=0, tag="t", epoch=1, lr=1e-3)  # bound disabled
    check_divergence(5e5, 1024.0, factor=1e3, tag="t", epoch=1, lr=1e-3)  # GDNS-sized losses
