"""The command line of the false-negative analysis (``python -m
autosample_ext.studies.false_negatives``, :mod:`.false_negatives`).

Every option is checked before the data is read, with ``train``'s rules where ``train`` has
the option (``--data``, ``--format``, ``--epochs``, ``--threads``, sampler names, seeds; the
GDNS protocol's settings and the memory its samplers need): a bad argument exits with status 2
naming the option and the value; data that cannot be used, or an ``--out`` that cannot be
written, with status 1 (docs/cli.md, "Errors and exit statuses"). ``--report-only`` redraws the
figures and the report of an earlier analysis from its ``false_negatives.json``.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from autosample_ext.cli_common import (
    OutputDirError,
    check_output_dir,
    fail,
    finite_floats,
    parse_one_process,
    train_checked,
    usage_error,
)
from autosample_ext.train_parser import CLIError, check_seed, int_list, name_list

PROG = "python -m autosample_ext.studies.false_negatives"


def build_parser() -> argparse.ArgumentParser:
    from autosample_ext.studies import false_negatives

    p = argparse.ArgumentParser(prog=PROG, description=false_negatives.__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("--data", help="dataset (GDNS protocol: re-split leave-one-out); required "
                                  "unless --report-only")
    p.add_argument("--format", default=None, help="force a reader (default: detected)")
    p.add_argument("--out", help="output folder; with --report-only: the folder of an earlier "
                                 "analysis (its false_negatives.json), where the figures are redrawn")
    p.add_argument("--samplers", default="gdns,rns,dns",
                   help="samplers to compare (gdns gives the H / G densities) [default: gdns,rns,dns]")
    p.add_argument("--epochs", type=int, default=20, help="epochs per sampler, >= 1 [default: 20]")
    p.add_argument("--seed", type=int, default=0, help="training seed, >= 0 [default: 0]")
    p.add_argument("--split-seed", type=int, default=0,
                   help="leave-one-out split seed, >= 0 [default: 0]")
    p.add_argument("--plant-seed", type=int, default=0,
                   help="which positives are planted, >= 0 [default: 0]")
    p.add_argument("--snapshot-epochs", default=None,
                   help="epochs of the H/G population snapshots [default: 1, 25%%, 50%%, last]")
    p.add_argument("--threads", type=int, default=None, help="torch threads, >= 1")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are off anyway when stderr is not a terminal)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: redraw the figures and report.md of an earlier analysis "
                        "from --out's false_negatives.json (or --from-json's file) into --out")
    p.add_argument("--from-json", metavar="FILE",
                   help="with --report-only: the false_negatives.json to redraw from")
    return finite_floats(p)


def check_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The analysis's arguments, each checked (``CLIError``: exit 2); returns the keyword
    arguments of :func:`~.false_negatives.run_analysis` with the data and format to load."""
    from autosample_ext.studies.false_negatives import analysis_config
    from autosample_ext.samplers.schedule import is_schedule

    if ns.out is None:
        raise CLIError("--out: required (the output folder)")
    if ns.report_only:
        if ns.from_json is not None and not Path(ns.from_json).is_file():
            raise CLIError(f"--from-json: {ns.from_json} is not a file")
        if ns.from_json is None and not (Path(ns.out) / "false_negatives.json").is_file():
            raise CLIError(f"--report-only: {Path(ns.out) / 'false_negatives.json'} does not exist "
                           f"(nothing to redraw; give the folder of an earlier analysis, or "
                           f"--from-json FILE)")
        return {}
    if ns.from_json is not None:
        raise CLIError("--from-json: only with --report-only (it redraws a saved analysis)")
    if ns.data is None:
        raise CLIError("--data: required (the dataset to analyse)")
    seed = check_seed(ns.seed, "--seed")
    options = {"data": ns.data, "epochs": ns.epochs}
    if ns.format is not None:
        options["format"] = ns.format
    if ns.threads is not None:
        options["threads"] = ns.threads
    train_checked(**options)  # --data exists, --format known, --epochs >= 1, --threads >= 1
    names = name_list(ns.samplers, "--samplers")
    schedules = [n for n in names if is_schedule(n)]
    if schedules:
        raise CLIError(f"--samplers: the analysis trains samplers alone, not schedules such as "
                       f"{schedules[0]!r}")
    try:
        # resolved, so checked: the model serves every sampler, the sizes fit in memory
        cfg = analysis_config(names, seed, ns.epochs)
    except ValueError as exc:
        raise CLIError(f"--samplers {ns.samplers}: {exc}") from None
    if ns.snapshot_epochs:
        snaps = sorted(int_list(ns.snapshot_epochs, "--snapshot-epochs"))
        if snaps[0] < 1 or snaps[-1] > ns.epochs:
            raise CLIError(f"--snapshot-epochs: values must be in [1, --epochs {ns.epochs}], got "
                           f"{ns.snapshot_epochs!r}")
    else:
        snaps = sorted({1, max(1, ns.epochs // 4), max(1, ns.epochs // 2), ns.epochs})
    return {"samplers": names, "epochs": ns.epochs, "seed": seed,
            "plant_seed": check_seed(ns.plant_seed, "--plant-seed"),
            "split_seed": check_seed(ns.split_seed, "--split-seed"), "snapshot_epochs": snaps,
            "progress": not ns.no_progress, "config": cfg}


def check_out(ns: argparse.Namespace) -> None:
    """``--out`` can be written and is not a training run's folder (``OutputDirError``)."""
    out = check_output_dir(ns.out, "--out")
    if (out / "config.json").is_file():
        raise OutputDirError(f"--out {ns.out}: {out} holds a training run (config.json); "
                             f"choose another --out")


def analyse(ns: argparse.Namespace, args: dict[str, Any]) -> None:
    """Load the data (the GDNS protocol's split), check it against the settings, run."""
    from autosample_ext import data as D
    from autosample_ext.data.splits import NotEnoughNegatives
    from autosample_ext.studies.false_negatives import run_analysis
    from autosample_ext.run.phases import loo_advice
    from autosample_ext.run.validate import check_data

    cfg = args.pop("config")
    split_seed = args.pop("split_seed")
    try:
        data = D.load(ns.data, ns.format, split="loo", seed=split_seed, min_rating=4.0,
                      min_rating_optional=True)
    except NotEnoughNegatives as exc:
        raise ValueError(f"{ns.data}: {exc}; {loo_advice(cfg)}") from None
    check_data(cfg, data)  # cut-offs fit the items; tables and pools fit in memory
    run_analysis(data, Path(ns.out), **args)


def main(argv: Sequence[str] | None = None) -> int:
    from autosample_ext.report.false_negatives import replot
    from autosample_ext.run.rundir import RunDirError

    parser = build_parser()
    ns = parse_one_process(parser, argv, "start it with python, not torchrun")
    if isinstance(ns, int):
        return ns
    try:
        args = check_args(ns)
        check_out(ns)
    except CLIError as exc:
        return usage_error(parser, exc)
    except OutputDirError as exc:
        return fail(parser, exc)
    if ns.threads:
        torch.set_num_threads(ns.threads)
    try:
        if ns.report_only:
            source = Path(ns.from_json) if ns.from_json else Path(ns.out) / "false_negatives.json"
            written = replot(source, Path(ns.out))
            print("redrawn: " + ", ".join(str(p) for p in written))
            return 0
        analyse(ns, args)
    except (ValueError, OSError, RunDirError) as exc:
        return fail(parser, exc)
    print((Path(ns.out) / "report.md").read_text())
    return 0
