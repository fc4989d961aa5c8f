"""The cases of ``bench/cli_battery.py``: bad and edge inputs of ``train``, ``experiments``,
the false-negative analysis and ``data info``, with what a clear or correct outcome is.

Placeholders in arguments: ``{tmp}`` the case's fresh working folder, ``{data}`` the shared
data folder, ``{tree}`` the checkout under test. Error cases of the commands that train get
short settings first on the command line (``--epochs 1 --dim 8 ...``): the case's own value of
the same option comes later and wins, and a case a checkout wrongly accepts ends in seconds.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from faultdata import s_binary as binary
from faultdata import s_full_user as full_user
from faultdata import s_given_folder as given_folder
from faultdata import s_gzip as gzipped
from faultdata import s_huge_ids as huge_ids
from faultdata import s_latin1_csv as latin1
from faultdata import s_odd_columns as odd_columns
from faultdata import s_one_by_one as one_by_one
from faultdata import s_one_user as one_user
from faultdata import s_pairs_of_two as pairs_of_two
from faultdata import s_ratings_dat as ratings_dat
from faultdata import skewed_lines, write

MODULES = {"train": "autosample_ext.train", "experiments": "autosample_ext.experiments",
           "fn": "autosample_ext.studies.false_negatives", "data": "autosample_ext.data"}
#: an unwritable folder, also for root: sysfs refuses mkdir with EPERM
UNWRITABLE = "/sys/autosample-battery/run"
BIG = "100000000000000000000000"


@dataclass
class Case:
    id: str
    cmd: str
    args: list[str]
    expect: int                      # the exit status of a clear (or correct) outcome
    needles: list[str] = field(default_factory=list)   # in stderr (errors) / the output (0)
    setup: Callable[[Path], None] | None = None
    check: Callable[[Path, str, str], str | None] | None = None
    issue: bool = False              # one of the cases the issue lists
    group: str = ""


# -- inputs ------------------------------------------------------------------------------------

def lines_file(path: Path, users: int, items: int, per_user: int, seed: int = 0) -> Path:
    """``user item item ...`` lines, popularity ~ 1/rank^1.5 (a strong popularity floor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return skewed_lines(path, users, items, per_user, seed)


def tiny(tmp: Path) -> None:
    lines_file(tmp / "tiny.txt", 80, 40, 8)


def wide(tmp: Path) -> None:  # enough items for leave-one-out's 100 negatives per user
    lines_file(tmp / "wide.txt", 60, 160, 10, seed=1)


def few_items(tmp: Path) -> None:  # 6 items: below the RecBole protocol's fixed cut-off 10
    lines_file(tmp / "few.txt", 40, 6, 4, seed=2)


def negative_id(tmp: Path) -> None:
    write(tmp / "neg.txt", "0 1\n1 -2\n")


def empty(tmp: Path) -> None:
    write(tmp / "empty.txt", "")


def header_only(tmp: Path) -> None:
    write(tmp / "h.csv", "user,item\n")


def rated_csv(tmp: Path) -> None:  # ratings and timestamps, 150 items: the GDNS protocol's input
    rng = np.random.default_rng(3)
    rows = ["user,item,rating,timestamp"]
    for u in range(50):
        for k, i in enumerate(rng.choice(150, size=12, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(3, 6))},{1000 * u + k}")
    write(tmp / "rated.csv", "\n".join(rows) + "\n")


def a_file(tmp: Path) -> None:
    write(tmp / "afile", "x")


def empty_folder(tmp: Path) -> None:
    (tmp / "emptyruns").mkdir()


def saved_run(tmp: Path) -> None:
    """A run folder's config.json as train writes it (RNS alone, dim 8)."""
    write(tmp / "saved" / "config.json", json.dumps(
        {"config": {"sampler": ["rns"], "epochs": 1, "dim": 8, "out": ".", "progress": False}}))


def broken_run(tmp: Path) -> None:
    write(tmp / "broken" / "config.json", "{not json")


def report_json(tmp: Path) -> None:
    """A small report.json as the experiments report writes it (one setting)."""
    per_seed = {str(s): {"autosample": {"cpu_seconds": 5.0 + s, "wall_seconds": 9.0},
                         "sh": {"cpu_seconds": 2.0, "wall_seconds": 3.0},
                         "grid": {"cpu_seconds": 6.0, "wall_seconds": 8.0}} for s in (0, 1)}
    alpha = [{"seed": s, "epoch": e, "rns": 0.25 + 0.01 * e, "dns": 0.25 - 0.01 * e}
             for s in (0, 1) for e in range(1, 9)]
    runs = [{"seed": s, "method": "search", "sampler": "rns", "best_epoch": 6} for s in (0, 1)]
    write(tmp / "report.json", json.dumps({"toy-mf": {"compare": {
        "costs": {"per_seed": per_seed}, "alpha": alpha, "runs": runs}}}))


def fn_json(tmp: Path) -> None:
    """A false_negatives.json as the analysis wrote it before the snapshot histograms."""
    epochs = {str(e): {"selected": 1000, "planted": 3 * e, "expected_uniform": 5.0,
                       "rate": 0.003 * e, "lift": 0.6 * e,
                       "h_planted": [1] * 50, "h_ordinary": [2] * 50,
                       "g_planted": [0] * 49 + [5], "g_ordinary": [0] * 49 + [9]}
              for e in (1, 2)}
    stats = {"mean": 0.4, "median": 0.4, "p10": 0.1, "p90": 0.8}
    snaps = {"2": {k: stats for k in ("h_planted", "h_ordinary", "g_planted", "g_ordinary")}}
    sampler = {"epochs": epochs, "valid_best": {"ndcg@3": 0.3}, "best_epoch": 2,
               "valid_curve": [0.2, 0.3]}
    write(tmp / "fn" / "false_negatives.json", json.dumps({
        "data": "toy", "users_with_planted": 10, "epochs": 2, "seed": 0, "plant_seed": 0,
        "settings": {"model": "gmf"},
        "samplers": {"gdns": {**sampler, "snapshots": snaps}, "rns": sampler}}))


def garbage_json(tmp: Path) -> None:
    write(tmp / "garbage.json", "{ nope")


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        for s in setups:
            s(tmp)
    return run


# -- checks of correct outcomes ------------------------------------------------------------------

def files(*names: str) -> Callable[[Path, str, str], str | None]:
    def check(tmp: Path, out: str, err: str) -> str | None:
        missing = [n for n in names if not (tmp / n).is_file()]
        return f"missing {missing[0]}" if missing else None
    return check


def all_of(*checks: Callable[[Path, str, str], str | None]) -> Callable[[Path, str, str], str | None]:
    def check(tmp: Path, out: str, err: str) -> str | None:
        for c in checks:
            problem = c(tmp, out, err)
            if problem:
                return problem
        return None
    return check


def table_printed(tmp: Path, out: str, err: str) -> str | None:
    return None if "| Sampler |" in out else "no table printed"


def one_floor_line(tmp: Path, out: str, err: str) -> str | None:
    n = sum("below the popularity floor" in line for line in out.splitlines())
    if n > 1:
        return f"{n} 'below the popularity floor' lines after the table (one expected)"
    return None if n == 1 else "no below-floor warning although every row is below the floor"


def no_empty_lines(tmp: Path, out: str, err: str) -> str | None:
    bad = [line for line in out.splitlines() if re.fullmatch(r"[^:|]*:\s*", line)]
    return f"an empty line: {bad[0]!r}" if bad else None


def no_ranks_for_one_row(tmp: Path, out: str, err: str) -> str | None:
    rows = [line for line in out.splitlines() if line.startswith("| ") and "Sampler" not in line]
    if len(rows) == 1 and ("Avg rank" in out or " (1)" in rows[0]):
        return "a one-row table with rank columns ((1), Avg rank)"
    return None


def legend(*words: str) -> Callable[[Path, str, str], str | None]:
    def check(tmp: Path, out: str, err: str) -> str | None:
        lines = [line for line in out.splitlines() if all(w in line for w in words)]
        return None if len(lines) == 1 else f"no one line spelling out {', '.join(words)}"
    return check


def config_has(path: str, key: str, value) -> Callable[[Path, str, str], str | None]:
    def check(tmp: Path, out: str, err: str) -> str | None:
        try:
            saved = json.loads((tmp / path / "config.json").read_text())
        except (OSError, ValueError):
            return f"no {path}/config.json"
        got = saved
        for part in key.split("."):
            got = got.get(part, {}) if isinstance(got, dict) else {}
        return None if got == value else f"config.json {key} = {got!r}, expected {value!r}"
    return check


# -- the cases -----------------------------------------------------------------------------------

TRAIN_FAST = ["--epochs", "1", "--dim", "8", "--batch-size", "512", "--no-progress", "--threads", "1"]
EXP_FAST = ["--epochs", "1", "--seeds", "0", "--tables", "", "--search-space", "rns,dns",
            "--runs", "{tmp}/runs", "--report", "{tmp}/rep"]
FN_FAST = ["--epochs", "1", "--out", "{tmp}/fn", "--data", "{tmp}/wide.txt", "--no-progress"]
# the protocols fix --epochs and --dim: their cases go without the short settings
PROTOCOL_OUT = ["--out", "{tmp}/run", "--no-progress"]
CASES: list[Case] = []


def E(id: str, cmd: str, args: list[str], code: int, needles: list[str], setup=None, *,
      issue: bool = False, bare: bool = False) -> None:
    """An error case: exit ``code`` with ``needles`` in stderr."""
    prefix = [] if bare else {"train": TRAIN_FAST + ["--out", "{tmp}/run"], "experiments": EXP_FAST,
                              "fn": FN_FAST, "data": []}[cmd]
    if cmd == "fn" and not bare:
        setup = both(wide, setup) if setup else wide
    CASES.append(Case(id, cmd, prefix + args, code, needles, setup, None, issue, cmd))


def OK(id: str, cmd: str, args: list[str], needles: list[str] | None = None, setup=None,
       check=None, *, issue: bool = False, code: int = 0) -> None:
    """A case that must run and give the checked result."""
    CASES.append(Case(id, cmd, args, code, needles or [], setup, check, issue, cmd))


# ---- train: arguments, refused before any data is read (exit 2) --------------------------------
for opt, bad in [("--threads", ["0", "-2", "x", "1.5", BIG]),
                 ("--epochs", ["0", "-1", "x", "1.5"]),
                 ("--dim", ["0", "-4", "x"]),
                 ("--layers", ["0", "x"]),
                 ("--batch-size", ["0", "-1", "x"]),
                 ("--eval-every", ["0", "x"]),
                 ("--sh-first-rung", ["0", "x"]),
                 ("--sh-eta", ["1", "0"]),
                 ("--num-negatives", ["0", "x"]),
                 ("--retrain-epochs", ["0"]),
                 ("--checkpoint-every", ["-1"]),
                 ("--patience", ["-1", "x"]),
                 ("--eval-start", ["0"]),
                 ("--split-seed", ["-1", "x"]),
                 ("--seeds", ["x", "-1", "", "1,1", "0,,2", BIG]),
                 ("--ks", ["0", "x", "", "5,5"])]:
    for value in bad:
        E(f"train{opt}={value or 'empty'}"[:60], "train", [opt, value], 2, [opt])
for opt, bad in [("--lr", ["0", "-1", "nan", "inf", "x"]),
                 ("--alpha-lr", ["0", "nan", "inf"]),
                 ("--tau", ["0", "-1", "nan", "inf"]),
                 ("--l2", ["-1", "inf"]),
                 ("--sh-tie-se", ["-1", "inf", "x"]),
                 ("--valid-fraction", ["0", "1", "1.5", "nan", "-0.1"]),
                 ("--min-rating", ["nan", "inf"]),
                 ("--dist-timeout", ["-1", "nan", "inf", "1e+300"])]:
    for value in bad:
        E(f"train{opt}={value}", "train", [opt, value], 2, [opt, value])
E("train--lr=-inf", "train", ["--lr=-inf"], 2, ["--lr", "-inf"])
E("train--lr -inf", "train", ["--lr", "-inf"], 2, ["--lr", "expected one argument"])
E("train-l2-nan", "train", ["--l2", "nan"], 2, ["--l2", "nan"], issue=True)
E("train-sh-tie-se-nan", "train", ["--search", "sh", "--sh-tie-se", "nan"], 2,
  ["--sh-tie-se", "nan"], issue=True)
E("train-dist-timeout-0", "train", ["--dist-timeout", "0"], 2, ["--dist-timeout", "got 0"], issue=True)
for i, (args, needles) in enumerate([
        (["--split", "3:1:1:1"], ["--split", "'3:1:1:1'"]),
        (["--split", "half"], ["--split", "'half'"]),
        (["--split", "0:1:1"], ["--split", "'0:1:1'"]),
        (["--split", "3:1:0"], ["--split", "'3:1:0'"]),
        (["--format", "parquet"], ["--format", "'parquet'"]),
        (["--model", "bert"], ["--model", "'bert'"]),
        (["--search", "bogus"], ["--search", "'bogus'"]),
        (["--grid", "--search", "sh"], ["--grid", "--search sh"]),
        (["--grid", "--sampler", "rns"], ["--sampler", "--grid"]),
        (["--compare", "--sampler", "rns"], ["--sampler", "--compare"]),
        (["--search-space", "rns"], ["--search-space", "at least 2"]),
        (["--search-space", "rns,rns"], ["--search-space", "repeated"]),
        (["--search-space", "rns,bogus"], ["--search-space", "'bogus'"]),
        (["--search-space", ""], ["--search-space"]),
        (["--search-space", "rns,,dns"], ["--search-space"]),
        (["--sampler", "bogus"], ["--sampler", "'bogus'"]),
        (["--sampler", "rns,rns"], ["--sampler", "repeated"]),
        (["--sampler", "mixgcf"], ["--sampler mixgcf", "--model mf"]),
        (["--search-space", "rns,mixgcf"], ["--search-space mixgcf", "--model mf"]),
        (["--sampler", "aobpr@x+dns"], ["--sampler", "aobpr@x+dns"]),
        (["--sampler", "aobpr@0+dns"], ["--sampler", "aobpr@0+dns"]),
        (["--sampler", "dns@3"], ["--sampler", "dns@3"]),
        (["--metric", "auc@5"], ["--metric", "'auc@5'"]),
        (["--metric", "recall@0"], ["--metric", "'recall@0'"]),
        (["--metric", "recall"], ["--metric", "'recall'"]),
        (["--device", "tpu"], ["--device", "'tpu'"]),
        (["--device", "cuda"], ["--device cuda"]),
        (["--device", "cuda:7"], ["--device cuda:7"]),
        (["--init", "bogus"], ["--init", "'bogus'"]),
        (["--optimizer", "bogus"], ["--optimizer", "'bogus'"]),
        (["--propagation", "bogus"], ["--propagation", "'bogus'"]),
        (["--retrain-init", "bogus"], ["--retrain-init", "'bogus'"]),
        (["--eval-protocol", "sampled"], ["--eval-protocol sampled", "--split loo"]),
        (["--eval-start", "5", "--epochs", "3"], ["--eval-start 5", "--epochs 3"]),
        (["--valid-fraction", "0.1", "--split", "3:1:1"], ["--valid-fraction 0.1", "--split 3:1:1"]),
        (["--protocol", "dens", "--compare", *PROTOCOL_OUT], ["--protocol dens", "compare"]),
        (["--protocol", "gdns", "--dim", "64", *PROTOCOL_OUT], ["--dim 64", "gdns"]),
        (["--protocol", "bogus"], ["--protocol", "'bogus'"]),
        (["--protocol", "gdns", "--metric", "precision@3", *PROTOCOL_OUT], ["--metric", "precision@3"]),

        (["--search-sp", "rns,dns"], ["--search-sp"]),
        (["--epoch", "3"], ["--epoch"]),
        (["--bogus-option"], ["--bogus-option"]),
        (["--data", "{tmp}/nowhere"], ["--data", "{tmp}/nowhere", "does not exist"])]):
    E(f"train-args-{i:02d}-{args[0].strip('-')}", "train", args, 2, needles,
      bare=args[-len(PROTOCOL_OUT):] == PROTOCOL_OUT)
for i, (opt, needles) in enumerate([
        ("dns.num_candidates=x", ["dns.num_candidates", "integer"]),
        ("dns.nope=1", ["dns", "'nope'"]),
        ("bogus.x=1", ["'bogus'"]),
        ("dns.num_candidates=0", ["dns.num_candidates", "0"]),
        ("dns", ["SAMPLER.FIELD=VALUE", "'dns'"]),
        ("pns.beta=nan", ["pns.beta", "nan"]),
        ("pns.beta=-1", ["pns.beta", "-1"]),
        ("pns.smoothing=inf", ["pns.smoothing", "inf"]),
        ("gdns.eps=inf", ["gdns.eps", "inf"]),
        ("gdns.alpha=nan", ["gdns.alpha", "nan"]),
        ("srns.temperature=inf", ["srns.temperature", "inf"]),
        ("aobpr.rank_lambda=inf", ["aobpr.rank_lambda", "inf"]),
        ("dns.rank_lambda=nan", ["dns.rank_lambda", "nan"]),
        ("dns.top_k=100", ["top_k", "100"]),
        ("dns.num_candidates=1000000000000", ["dns.num_candidates", "available"]),
        ("srns.memory_size=1000000000000", ["srns.memory_size", "available"]),
        ("gdns.num_slots=1000000000000", ["gdns.num_slots", "available"])]):
    name = opt.split("=")[0]
    sampler = name.split(".")[0] if "." in name else "dns"
    extra = ["--sampler", sampler] if sampler in ("dns", "pns", "gdns", "srns", "aobpr") else []
    E(f"train-sampler-opt-{i:02d}-{name}", "train", extra + ["--sampler-opt", opt], 2, needles)
E("train-pns-beta-inf", "train", ["--sampler", "pns", "--sampler-opt", "pns.beta=inf"], 2,
  ["pns.beta", "inf"], issue=True)
E("train-sampler-opt-twice", "train", ["--sampler", "dns", "--sampler-opt", "dns.top_k=2",
                                       "--sampler-opt", "dns.top_k=3"], 2, ["dns.top_k", "twice"])
E("train-sampler-opt-not-trained", "train", ["--sampler", "rns", "--sampler-opt",
                                             "dns.top_k=2"], 2, ["dns.top_k", "not trained"])
E("train-mixgcf-pool-1e12", "train", ["--model", "lightgcn", "--sampler", "mixgcf",
                                      "--sampler-opt", "mixgcf.num_candidates=1000000000000"], 2,
  ["mixgcf.num_candidates", "available"])
E("train-dim-1e10", "train", ["--dim", "10000000000"], 2, ["--dim", "available"])
E("train-num-negatives-1e13", "train", ["--sampler", "rns", "--num-negatives", "10000000000000"],
  2, ["--num-negatives", "available"])
E("train-resume-needs-out", "train", ["--resume"], 2, ["--resume needs --out"], bare=True)
E("train-resume-nothing", "train", ["--resume", "--out", "{tmp}/none"], 2,
  ["--resume", "nothing to resume"])
E("train-resume-other-dim", "train", ["--resume", "--out", "{tmp}/saved", "--dim", "16"], 2,
  ["--resume", "--dim 16", "differs"], saved_run)
E("train-resume-broken-config", "train", ["--resume", "--out", "{tmp}/broken"], 2,
  ["--resume", "config.json"], broken_run)

# ---- train: data and files that cannot be used (exit 1) ----------------------------------------
for i, (args, needles, setup) in enumerate([
        (["--data", "{tmp}/blob.bin"], ["{tmp}/blob.bin", "binary"], binary),
        (["--data", "{tmp}/data.txt"], ["{tmp}/data.txt", "gzip"], gzipped),
        (["--data", "{tmp}/r.csv"], ["{tmp}/r.csv", "line 3", "UTF-8"], latin1),
        (["--data", "{tmp}/neg.txt"], ["{tmp}/neg.txt", "line 2"], negative_id),
        (["--data", "{tmp}/empty.txt"], ["{tmp}/empty.txt"], empty),
        (["--data", "{tmp}/h.csv"], ["{tmp}/h.csv"], header_only),
        (["--data", "{tmp}/one.txt"], ["{tmp}/one.txt", "--ks"], one_user),
        (["--data", "{tmp}/two.txt", "--split", "3:1:1"], ["{tmp}/two.txt", "no validation pairs"],
         pairs_of_two),
        (["--data", "{tmp}/1x1.txt"], ["{tmp}/1x1.txt", "no negative"], one_by_one),
        (["--data", "{tmp}/full", "--split", "given"], ["{tmp}/full/train.txt", "every one of the 3 items"],
         full_user),
        (["--data", "{tmp}/tiny.txt", "--split", "given"], ["{tmp}/tiny.txt", "--split given"], tiny),
        (["--data", "{tmp}/huge.tsv.txt"], ["{tmp}/huge.tsv.txt", "--remap"], huge_ids),
        (["--data", "{tmp}/odd.csv"], ["{tmp}/odd.csv", "--user-col"], odd_columns),
        (["--data", "{tmp}/odd.csv", "--user-col", "nobody"], ["{tmp}/odd.csv", "'nobody'"], odd_columns),
        (["--data", "{tmp}/tiny.txt", "--min-rating", "4"], ["{tmp}/tiny.txt", "rating"], tiny),
        (["--data", "{tmp}/tiny.txt", "--ks", "50", "--metric", "recall@50"], ["cut-off 50", "--ks"], tiny),
        (["--data", "{tmp}/tiny.txt", "--dim", "200000000"], ["--dim", "available"], tiny),
        (["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--num-negatives", "1000000000"],
         ["--num-negatives", "available"], tiny),
        (["--data", "{tmp}/tiny.txt", "--out", "{tmp}/afile/run"], ["{tmp}/afile/run"],
         both(tiny, a_file)),
        (["--data", "{tmp}/tiny.txt", "--out", UNWRITABLE], [UNWRITABLE], tiny)]):
    E(f"train-data-{i:02d}-{args[1].split('/')[-1]}", "train", args, 1, needles, setup)
E("train-dns-pool-1e9", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "dns",
                                  "--sampler-opt", "dns.num_candidates=1000000000"], 1,
  ["dns.num_candidates", "available"], tiny, issue=True)
E("train-loo-small-advice", "train", ["--data", "{tmp}/tiny.txt", "--split", "loo"], 1,
  ["{tmp}/tiny.txt", "--split 8:1:1"], tiny, issue=True)
E("train-recbole-ks-advice", "train", ["--protocol", "recbole", "--data", "{tmp}/few.txt",
                                       "--no-progress", "--out", "{tmp}/run"], 1,
  ["--protocol recbole fixes --ks 10"], few_items, issue=True, bare=True)
E("train-gdns-protocol-small", "train", ["--protocol", "gdns", "--data", "{tmp}/tiny.txt",
                                         "--no-progress", "--out", "{tmp}/run"], 1,
  ["--protocol gdns fixes --split loo"], tiny, bare=True)
E("train-lr-diverges", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--lr", "1e9",
                                 "--epochs", "3", "--batch-size", "128"], 3,
  ["diverged at epoch 1", "--lr"], tiny)

# ---- train: runs that must work, with what they print ----------------------------------------
OK("train-rns-tiny", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--out", "{tmp}/r",
                               *TRAIN_FAST], ["RNS"], tiny,
   all_of(table_printed, files("r/metrics.json", "r/log.jsonl", "r/config.json")))
OK("train-compare-below-floor-summary", "train",
   ["--data", "{tmp}/tiny.txt", "--compare", "--seeds", "0,1", "--lr", "1e-7", "--ks", "5",
    "--metric", "recall@5", "--search-space", "rns,dns", "--out", "{tmp}/c", *TRAIN_FAST],
   [], tiny, all_of(table_printed, one_floor_line), issue=True)
OK("train-grid-no-empty-cpu-line", "train",
   ["--data", "{tmp}/tiny.txt", "--search", "grid", "--search-space", "rns,dns", "--out",
    "{tmp}/g", *TRAIN_FAST], ["grid search best"], tiny, all_of(table_printed, no_empty_lines),
   issue=True)
OK("train-one-row-no-ranks", "train", ["--data", "{tmp}/tiny.txt", "--seeds", "0,1", "--out",
                                       "{tmp}/a", *TRAIN_FAST], ["AutoSample chose"], tiny,
   all_of(table_printed, no_ranks_for_one_row), issue=True)
OK("train-legend", "train", ["--data", "{tmp}/tiny.txt", "--out", "{tmp}/a", *TRAIN_FAST],
   ["alpha*"], tiny, legend("Recall", "NDCG", "Precision", "Hit", "alpha*", "RNS", "AOBPR"),
   issue=True)
OK("train-tqdm-no-escapes", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--epochs",
                                      "2", "--dim", "8", "--out", "{tmp}/p"], ["RNS"], tiny,
   table_printed, issue=True)
OK("train-below-floor-one-run", "train",
   ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--lr", "1e-7", "--ks", "5", "--metric",
    "recall@5", "--out", "{tmp}/low", *TRAIN_FAST],
   ["WARNING: seed0/rns is below the popularity floor"], tiny, one_floor_line)
OK("train-sh-tie-se-0", "train", ["--data", "{tmp}/tiny.txt", "--search", "sh", "--sh-tie-se", "0",
                                  "--search-space", "rns,dns", "--sh-first-rung", "1", "--out",
                                  "{tmp}/s", *TRAIN_FAST], ["successive halving chose"], tiny,
   config_has("s", "config.sh_tie_se", 0.0))
OK("train-schedule", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns@1+dns", "--out",
                               "{tmp}/sc", *TRAIN_FAST, "--epochs", "2"], ["RNS@1+DNS"], tiny)
OK("train-sampler-opt-pool", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "dns",
                                       "--sampler-opt", "dns.num_candidates=4", "--out", "{tmp}/d",
                                       *TRAIN_FAST], ["DNS"], tiny,
   config_has("d", "samplers.dns.num_candidates", 4))
OK("train-loo-sampled", "train", ["--data", "{tmp}/wide.txt", "--split", "loo", "--eval-protocol",
                                  "sampled", "--metric", "ndcg@3", "--ks", "1,3", "--sampler",
                                  "rns", "--out", "{tmp}/l", *TRAIN_FAST], ["RNS"], wide)
OK("train-gdns-protocol", "train", ["--protocol", "gdns", "--data", "{tmp}/rated.csv", "--sampler",
                                    "gdns,rns", "--sampler-opt", "gdns.group_size=4",
                                    "--sampler-opt", "gdns.num_candidates=8",
                                    "--out", "{tmp}/gd", "--no-progress"], ["GDNS"], rated_csv,
   config_has("gd", "data.min_rating_applied", True))
OK("train-recbole-protocol", "train", ["--protocol", "recbole", "--data", "{tmp}/wide.txt",
                                       "--out", "{tmp}/rb", "--no-progress"],
   ["MRR@10"], wide)
OK("train-dist-timeout-ok", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns",
                                      "--dist-timeout", "5", "--out", "{tmp}/dt", *TRAIN_FAST],
   ["RNS"], tiny)
OK("train-threads-2", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--out", "{tmp}/t2",
                                *TRAIN_FAST, "--threads", "2"], ["RNS"], tiny)
OK("train-huge-epochs-early-stop", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns",
                                             "--out", "{tmp}/he", *TRAIN_FAST, "--epochs", BIG,
                                             "--patience", "1"], ["RNS"], tiny)
OK("train-huge-batch", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns", "--out",
                                 "{tmp}/hb", *TRAIN_FAST, "--batch-size", BIG], ["RNS"], tiny)
OK("train-ratings-dat", "train", ["--data", "{tmp}/ml.txt", "--format", "ratings_dat", "--sampler",
                                  "rns", "--out", "{tmp}/ml", *TRAIN_FAST], ["RNS"], ratings_dat)
OK("train-given-folder-resplit", "train", ["--data", "{tmp}/given", "--sampler", "rns", "--out",
                                           "{tmp}/gr", *TRAIN_FAST], ["RNS"], given_folder,
   config_has("gr", "data.split", "3:1:1"))
OK("train-given-valid-from-train", "train", ["--data", "{tmp}/given", "--split", "given",
                                             "--valid-fraction", "0.25", "--sampler", "rns",
                                             "--out", "{tmp}/gv", *TRAIN_FAST], ["RNS"],
   given_folder, config_has("gv", "config.valid_fraction", 0.25))
OK("train-remap", "train", ["--data", "{tmp}/huge.tsv.txt", "--remap", "--sampler", "rns",
                            "--ks", "10", "--metric", "recall@10", "--out", "{tmp}/h", *TRAIN_FAST],
   ["RNS"], huge_ids)
OK("train-columns", "train", ["--data", "{tmp}/odd.csv", "--user-col", "who", "--item-col", "what",
                              "--sampler", "rns", "--ks", "10", "--metric", "recall@10",
                              "--out", "{tmp}/oc", *TRAIN_FAST], ["RNS"], odd_columns)
OK("train-help", "train", ["--help"], ["--dist-timeout", "--sampler-opt"])
OK("train-existing-run-refused", "train", ["--data", "{tmp}/tiny.txt", "--sampler", "rns",
                                           "--out", "{tmp}/saved", *TRAIN_FAST],
   ["already holds a run", "--resume"], both(tiny, saved_run), code=1)

# ---- experiments -----------------------------------------------------------------------------
E("exp-models-bert", "experiments", ["--models", "bert"], 2, ["--models", "'bert'"], issue=True)
E("exp-threads-0", "experiments", ["--threads", "0"], 2, ["--threads", "got 0"], issue=True)
E("exp-seeds-x", "experiments", ["--seeds", "x"], 2, ["--seeds", "'x'"], issue=True)
E("exp-runs-readonly", "experiments", ["--runs", UNWRITABLE], 1, ["--runs", UNWRITABLE], issue=True)
E("exp-report-only-mistyped-runs", "experiments", ["--report-only", "--runs", "{tmp}/runz"], 2,
  ["--runs", "{tmp}/runz"], issue=True)
for i, (args, code, needles, setup) in enumerate([
        (["--models", ""], 2, ["--models"], None),
        (["--models", "mf,mf"], 2, ["--models", "repeated"], None),
        (["--models", "mf,transformer"], 2, ["--models", "'transformer'"], None),
        (["--threads", "-1"], 2, ["--threads", "-1"], None),
        (["--threads", "x"], 2, ["--threads", "'x'"], None),
        (["--threads", BIG], 2, ["--threads"], None),
        (["--seeds", "-1"], 2, ["--seeds", "-1"], None),
        (["--seeds", ""], 2, ["--seeds"], None),
        (["--seeds", "1,1"], 2, ["--seeds", "repeated"], None),
        (["--seeds", BIG], 2, ["--seeds"], None),
        (["--epochs", "0"], 2, ["--epochs", "got 0"], None),
        (["--epochs", "-5"], 2, ["--epochs", "-5"], None),
        (["--epochs", "x"], 2, ["--epochs", "'x'"], None),
        (["--patience", "-1"], 2, ["--patience", "-1"], None),
        (["--patience", "x"], 2, ["--patience", "'x'"], None),
        (["--search-space", "rns"], 2, ["--search-space", "at least 2"], None),
        (["--search-space", "rns,bogus"], 2, ["--search-space", "'bogus'"], None),
        (["--search-space", ""], 2, ["--search-space"], None),
        (["--search-space", "rns,mixgcf"], 2, ["mixgcf", "--model mf"], None),
        (["--subsets", "rns"], 2, ["--subsets", "at least 2"], None),
        (["--subsets", "rns,bogus"], 2, ["--subsets", "'bogus'"], None),
        (["--subsets", "rns,dns;pns"], 2, ["--subsets"], None),
        (["--schedules", "aobpr@x+dns"], 2, ["--schedules", "aobpr@x+dns"], None),
        (["--schedules", "bogus"], 2, ["--schedules", "'bogus'"], None),
        (["--tables", "7"], 2, ["--tables", "'7'"], None),
        (["--tables", "3,x"], 2, ["--tables", "'x'"], None),
        (["--data", "{tmp}/nowhere"], 2, ["--data", "{tmp}/nowhere"], None),
        (["--data", ""], 2, ["--data"], None),
        (["--data", "{tmp}/a/x.txt,{tmp}/b/x.txt"], 2, ["--data", "share"],
         lambda t: (lines_file(t / "a" / "x.txt", 20, 10, 3), lines_file(t / "b" / "x.txt", 20, 10, 3))),
        (["--runs", "{tmp}/afile"], 1, ["--runs", "{tmp}/afile"], a_file),
        (["--runs", "{tmp}/afile/runs"], 1, ["--runs", "{tmp}/afile"], a_file),
        (["--report", "{tmp}/afile"], 1, ["--report", "{tmp}/afile"], a_file),
        (["--report", UNWRITABLE], 1, ["--report", UNWRITABLE], None),
        (["--report", "{tmp}/saved"], 1, ["--report", "run directory"], saved_run),
        (["--report-only", "--runs", "{tmp}/emptyruns"], 1, ["--runs", "no finished run"], empty_folder),
        (["--report-only", "--runs", "{tmp}/afile"], 2, ["--runs", "{tmp}/afile"], a_file),
        (["--report-only", "--from-json", "{tmp}/missing.json"], 2, ["--from-json", "missing.json"], None),
        (["--report-only", "--from-json", "{tmp}/garbage.json"], 1, ["garbage.json", "JSON"], garbage_json),
        (["--from-json", "{tmp}/report.json"], 2, ["--from-json", "--report-only"], report_json),
        (["--model", "mf"], 2, ["--model"], None),
        (["--bogus"], 2, ["--bogus"], None)]):
    E(f"exp-{i:02d}-{args[0].strip('-')}", "experiments", args, code, needles, setup)
OK("exp-tiny-run-and-report", "experiments",
   ["--data", "{tmp}/tiny.txt", "--seeds", "0", "--epochs", "2", "--patience", "1", "--tables", "",
    "--search-space", "rns,dns", "--runs", "{tmp}/runs", "--report", "{tmp}/rep"], ["report:"],
   tiny, files("rep/report.md", "rep/report.json", "rep/fig3_search_cost.png",
               "rep/fig4_alpha_tiny-mf.png"))
OK("exp-replot-from-json", "experiments", ["--report-only", "--from-json", "{tmp}/report.json",
                                           "--report", "{tmp}/figs"], ["report:"], report_json,
   files("figs/fig3_search_cost.png", "figs/fig4_alpha_toy-mf.png"))
OK("exp-replot-committed-report", "experiments",
   ["--report-only", "--from-json", "{tree}/bench/results/experiments/report.json", "--report",
    "{tmp}/figs"], ["report:"], None, files("figs/fig3_search_cost.png"))
OK("exp-help", "experiments", ["--help"], ["--report-only", "--threads"])

# ---- the false-negative analysis -------------------------------------------------------------
E("fn-threads-neg", "fn", ["--threads", "-1"], 2, ["--threads", "-1"], issue=True)
E("fn-out-existing-file", "fn", ["--out", "{tmp}/afile"], 1, ["--out", "{tmp}/afile"], a_file,
  issue=True)
E("fn-out-readonly", "fn", ["--out", UNWRITABLE], 1, ["--out", UNWRITABLE], issue=True)
for i, (args, code, needles, setup) in enumerate([
        (["--threads", "0"], 2, ["--threads", "got 0"], None),
        (["--threads", "x"], 2, ["--threads", "'x'"], None),
        (["--out", "{tmp}/afile/fn"], 1, ["--out", "{tmp}/afile"], a_file),
        (["--out", "{tmp}/saved"], 1, ["--out", "training run"], saved_run),
        (["--data", "{tmp}/nowhere"], 2, ["--data", "{tmp}/nowhere"], None),
        (["--samplers", "bogus"], 2, ["--samplers", "'bogus'"], None),
        (["--samplers", ""], 2, ["--samplers"], None),
        (["--samplers", "rns,rns"], 2, ["--samplers", "repeated"], None),
        (["--samplers", "aobpr@1+dns"], 2, ["--samplers", "schedule"], None),
        (["--samplers", "mixgcf"], 2, ["mixgcf", "graph model"], None),
        (["--epochs", "0"], 2, ["--epochs", "got 0"], None),
        (["--epochs", "-1"], 2, ["--epochs", "-1"], None),
        (["--epochs", "x"], 2, ["--epochs", "'x'"], None),
        (["--seed", "-1"], 2, ["--seed", "-1"], None),
        (["--seed", "x"], 2, ["--seed", "'x'"], None),
        (["--seed", BIG], 2, ["--seed"], None),
        (["--split-seed", "-1"], 2, ["--split-seed", "-1"], None),
        (["--plant-seed", "-1"], 2, ["--plant-seed", "-1"], None),
        (["--snapshot-epochs", "0"], 2, ["--snapshot-epochs"], None),
        (["--snapshot-epochs", "5"], 2, ["--snapshot-epochs", "--epochs 1"], None),
        (["--snapshot-epochs", "x"], 2, ["--snapshot-epochs", "'x'"], None),
        (["--format", "parquet"], 2, ["--format", "'parquet'"], None),
        (["--from-json", "{tmp}/fn/false_negatives.json"], 2, ["--from-json", "--report-only"], fn_json),
        (["--report-only", "--out", "{tmp}/nothing"], 2, ["--report-only", "false_negatives.json"], None),
        (["--report-only", "--from-json", "{tmp}/missing.json"], 2, ["--from-json", "missing.json"], None),
        (["--report-only", "--from-json", "{tmp}/garbage.json"], 1, ["garbage.json", "JSON"], garbage_json),
        (["--data", "{tmp}/blob.bin"], 1, ["{tmp}/blob.bin", "binary"], binary),
        (["--data", "{tmp}/tiny.txt"], 1, ["{tmp}/tiny.txt", "100"], tiny),
        (["--bogus"], 2, ["--bogus"], None)]):
    E(f"fn-{i:02d}-{args[0].strip('-')}", "fn", args, code, needles, setup)
E("fn-no-data", "fn", ["--out", "{tmp}/fn"], 2, ["--data"], bare=True)
E("fn-no-out", "fn", ["--data", "{tmp}/wide.txt"], 2, ["--out"], wide, bare=True)
OK("fn-tiny-run", "fn", ["--data", "{tmp}/wide.txt", "--out", "{tmp}/fn", "--epochs", "1",
                         "--no-progress"], ["False-negative analysis"], wide,
   files("fn/false_negatives.json", "fn/selection.png", "fn/densities.png", "fn/report.md"))
OK("fn-replot-old-json", "fn", ["--report-only", "--out", "{tmp}/fn"], ["redrawn"], fn_json,
   files("fn/selection.png", "fn/densities.png", "fn/report.md"))
OK("fn-replot-committed-json", "fn", ["--report-only", "--from-json",
                                      "{tree}/bench/results/gdns_ml1m_false_negatives.json",
                                      "--out", "{tmp}/figs"], ["redrawn"], None,
   files("figs/selection.png", "figs/densities.png", "figs/report.md"))
OK("fn-help", "fn", ["--help"], ["--report-only", "--snapshot-epochs"])

# ---- data info -------------------------------------------------------------------------------
E("data-info-unreadable", "data", ["info", "{tmp}/neg.txt"], 1, ["{tmp}/neg.txt", "line 2"],
  negative_id, issue=True)
for i, (args, code, needles, setup) in enumerate([
        (["info", "{tmp}/nowhere"], 2, ["{tmp}/nowhere", "does not exist"], None),
        (["info", "default", "--format", "parquet"], 2, ["--format", "'parquet'"], None),
        (["info", "default", "--split", "3:1:1:1"], 2, ["--split", "'3:1:1:1'"], None),
        (["info", "default", "--kcore", "-1"], 2, ["--kcore", "-1"], None),
        (["info", "default", "--kcore", "x"], 2, ["--kcore", "'x'"], None),
        (["info", "default", "--seed", "-1"], 2, ["--seed", "-1"], None),
        (["info", "default", "--valid-fraction", "2"], 2, ["--valid-fraction", "2"], None),
        (["info", "default", "--valid-fraction", "nan"], 2, ["--valid-fraction", "nan"], None),
        (["info", "default", "--min-rating", "nan"], 2, ["--min-rating", "nan"], None),
        (["info", "default", "--min-rating", "inf"], 2, ["--min-rating", "inf"], None),
        (["info", "default", "--remap", "maybe"], 2, ["--remap", "'maybe'"], None),
        (["info", "default", "--valid-fraction", "0.1", "--split", "3:1:1"], 2,
         ["--valid-fraction 0.1", "--split 3:1:1"], None),
        (["info"], 2, ["path"], None),
        ([], 2, ["command"], None),
        (["describe", "default"], 2, ["'describe'"], None),
        (["info", "{tmp}/blob.bin"], 1, ["{tmp}/blob.bin", "binary"], binary),
        (["info", "{tmp}/data.txt"], 1, ["{tmp}/data.txt", "gzip"], gzipped),
        (["info", "{tmp}/r.csv"], 1, ["{tmp}/r.csv", "UTF-8"], latin1),
        (["info", "{tmp}/empty.txt"], 1, ["{tmp}/empty.txt"], empty),
        (["info", "{tmp}/tiny.txt", "--split", "loo"], 1, ["{tmp}/tiny.txt", "--split 8:1:1"], tiny),
        (["info", "{tmp}/tiny.txt", "--split", "given"], 1, ["{tmp}/tiny.txt", "given"], tiny),
        (["info", "{tmp}/tiny.txt", "--kcore", "1000"], 1, ["kcore"], tiny)]):
    E(f"data-{i:02d}-{(args[1:2] or ['none'])[0].split('/')[-1]}-{(args[2:3] or [''])[0].strip('-')}",
      "data", args, code, needles, setup)
OK("data-info-default", "data", ["info", "default"], ['"users": 2000'])
OK("data-info-given-folder", "data", ["info", "{tmp}/given"], ['"format": "lines"'], given_folder)
OK("data-info-loo", "data", ["info", "{tmp}/wide.txt", "--split", "loo"], ['"num_negatives": 100'], wide)
OK("data-info-kcore", "data", ["info", "{tmp}/tiny.txt", "--kcore", "2"], ['"kcore"'], tiny)
