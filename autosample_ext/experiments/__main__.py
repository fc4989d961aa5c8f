"""``python -m autosample_ext.experiments``: run the paper's experiments and write the report.

    python -m autosample_ext.experiments --data ../shared/data/lastfm,../shared/data/beauty \
        --models mf,lightgcn --seeds 0,1,2 --runs runs/experiments --report bench/results/experiments

Every run is an ordinary run directory under ``--runs/<dataset>-<model>/``; an interrupted
command continues where it stopped when started again with the same arguments. The report
covers every finished run under ``--runs`` (``--report-only`` writes it without running).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from typing import Sequence

import torch

from autosample_ext.experiment import RunConfig
from autosample_ext.experiment.lock import RunLocked
from autosample_ext.experiments.plan import (DEFAULT_SCHEDULES, DEFAULT_SUBSETS, TABLES,
                                             ExperimentConfig, plan, run_planned)
from autosample_ext.experiments.report import write_report
from autosample_ext.training import StopFlag, TrainingInterrupted
from autosample_ext.training.launch import single_process_error

log = logging.getLogger("autosample_ext.experiments")


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = argparse.ArgumentParser(prog="python -m autosample_ext.experiments",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="default",
                   help="comma-separated dataset paths ('default' = the embedded data)")
    p.add_argument("--models", default="mf", help="comma-separated models (mf, lightgcn, ngcf)")
    p.add_argument("--seeds", default="0,1,2", help="training seeds")
    p.add_argument("--tables", default=",".join(TABLES),
                   help="3 (and Figures 3-4), 4, 5, 6, schedule (all served by the compare run), "
                        "race (the grid, SH at its defaults and SH over --search-space auto, "
                        "side by side)")
    p.add_argument("--subsets", default=";".join(",".join(s) for s in DEFAULT_SUBSETS),
                   help="Table 5's search spaces, ';'-separated")
    p.add_argument("--schedules", default=",".join(DEFAULT_SCHEDULES),
                   help="schedules of the schedule table")
    p.add_argument("--search-space", default=",".join(d.search_space), help="the full space")
    p.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs per stage")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="evaluations without improvement before stopping")
    p.add_argument("--split", default=d.split,
                   help="the split of every setting (3:1:1, or loo: one validation and one test "
                        "item per user, the small-data setting); a split other than 3:1:1 is "
                        "part of the setting's folder name")
    p.add_argument("--runs", default="runs/experiments", help="folder of the run directories")
    p.add_argument("--report", default="runs/experiments/report",
                   help="folder of report.md and the PNGs")
    p.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    refused = single_process_error(parser.prog, "under torchrun start the runs themselves: "
                                   "torchrun ... -m autosample_ext.train")
    if refused:
        print(refused, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    torch.set_num_threads(ns.threads)
    try:
        from autosample_ext.train_parser import _check_split

        base = RunConfig(search_space=ns.search_space, epochs=ns.epochs,
                         patience=ns.patience, split=_check_split(ns.split))
        cfg = ExperimentConfig(
            datasets=_split(ns.data), models=_split(ns.models),
            seeds=tuple(int(s) for s in _split(ns.seeds)), tables=_split(ns.tables),
            subsets=tuple(_split(s) for s in ns.subsets.split(";") if s.strip()),
            schedules=_split(ns.schedules), runs=ns.runs, base=base)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if not ns.report_only:
        stop = StopFlag()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: stop.request(signal.Signals(signum).name))
        items = plan(cfg)
        for item in items:
            try:
                what = run_planned(item, cfg.runs, stop=stop)
            except TrainingInterrupted as exc:
                log.warning("%s; start the same command again to continue", exc)
                return 130
            except (ValueError, FileNotFoundError, RunLocked) as exc:
                print(f"{parser.prog}: error: {exc}", file=sys.stderr)
                return 1
            log.info("%s/%s: %s", item.setting, item.name, what)
    path = write_report(cfg.runs, ns.report,
                        command="python -m autosample_ext.experiments " + shlex.join(argv or sys.argv[1:]))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
