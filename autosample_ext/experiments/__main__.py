"""``python -m autosample_ext.experiments``: run the paper's experiments and write the report.

    python -m autosample_ext.experiments --data ../shared/data/lastfm,../shared/data/beauty \
        --models mf,lightgcn --seeds 0,1,2 --runs runs/experiments --report bench/results/experiments

Every run is an ordinary run directory under ``--runs/<dataset>-<model>/``; an interrupted
command continues where it stopped when started again with the same arguments. The report
covers every finished run under ``--runs`` (``--report-only`` writes it without running;
``--report-only --from-json report.json`` redraws the figures from a report written earlier).

Every option is checked before anything runs, with ``train``'s rules where ``train`` has the
option (``--seeds``, ``--search-space``, ``--epochs``, ``--patience``, ``--threads``, ``--data``):
a bad argument exits with status 2 naming the option and the value; a folder that cannot be
written or read, or a run that fails, with status 1 (docs/cli.md, "Errors and exit statuses").
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

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
from autosample_ext.models import MODEL_NAMES
from autosample_ext.run import RunConfig
from autosample_ext.run.lock import RunLocked
from autosample_ext.run.rundir import RunDirError
from autosample_ext.experiments.plan import (
    DEFAULT_SCHEDULES,
    DEFAULT_SUBSETS,
    TABLES,
    ExperimentConfig,
    PlannedRun,
    dataset_name,
    plan,
    run_planned,
)
from autosample_ext.report.experiments import load_runs, replot_from_json, write_report
from autosample_ext.train_parser import CLIError, name_list
from autosample_ext.training import StopFlag, TrainingInterrupted
from autosample_ext.training.guard import TrainingDiverged

log = logging.getLogger("autosample_ext.experiments")


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = argparse.ArgumentParser(prog="python -m autosample_ext.experiments",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--data", default="default",
                   help="comma-separated dataset paths ('default' = the embedded data)")
    p.add_argument("--models", default="mf",
                   help=f"comma-separated models ({', '.join(MODEL_NAMES)})")
    p.add_argument("--seeds", default="0,1,2", help="training seeds")
    p.add_argument("--tables", default=",".join(TABLES),
                   help="3 (Table 3, the pick table and Figures 3-4), 4, 5, 6, schedule, sh-ties "
                        "(SH without the tie rule and with ties against the leader): all served "
                        "by the compare run; race (the grid, SH at its defaults and SH over "
                        "--search-space auto, side by side)")
    p.add_argument("--no-budget-singles", action="store_true",
                   help="compare runs without the singles trained for AutoSample's epochs")
    p.add_argument("--subsets", default=";".join(",".join(s) for s in DEFAULT_SUBSETS),
                   help="Table 5's search spaces, ';'-separated, each of 2 samplers or more")
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
    p.add_argument("--from-json", metavar="REPORT_JSON",
                   help="with --report-only: redraw the figures into --report from a report.json "
                        "written earlier (no run folders needed)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, >= 1")
    return finite_floats(p)


def _names(text: str, option: str, *, at_least: int = 1) -> tuple[str, ...]:
    names = name_list(text, option)  # train's rule for sampler lists (and schedules)
    if len(names) < at_least:
        raise CLIError(f"{option}: each search space needs at least {at_least} samplers, got "
                       f"{text!r}")
    return names


def experiment_config(ns: argparse.Namespace) -> ExperimentConfig:
    """The experiments of the arguments, every option checked (``CLIError``: exit 2)."""
    base = train_checked(search_space=ns.search_space, epochs=ns.epochs, patience=ns.patience,
                         seeds=ns.seeds, split=ns.split, threads=ns.threads)
    models = _split(ns.models)
    unknown = [m for m in models if m not in MODEL_NAMES]
    if not models or unknown:
        raise CLIError(f"--models: unknown model(s) {', '.join(map(repr, unknown))}; known models: "
                       f"{', '.join(MODEL_NAMES)}" if unknown else
                       f"--models: expected comma-separated models such as mf,lightgcn, got "
                       f"{ns.models!r}")
    if len(set(models)) != len(models):
        raise CLIError(f"--models: repeated model in {ns.models!r}")
    datasets = _split(ns.data)
    if not datasets:
        raise CLIError(f"--data: expected comma-separated dataset paths or 'default', got {ns.data!r}")
    settings: dict[str, str] = {}
    for path in datasets:
        if path != "default":
            train_checked(data=path)  # --data: PATH does not exist
        other = settings.setdefault(dataset_name(path), path)
        if other != path:
            raise CLIError(f"--data: {other} and {path} would share the run folders "
                           f"{Path(ns.runs) / dataset_name(path)}-<model>; give datasets "
                           f"distinct folder names")
    subsets = tuple(_names(s, "--subsets", at_least=2) for s in ns.subsets.split(";") if s.strip())
    schedules = _names(ns.schedules, "--schedules") if ns.schedules.strip() else ()
    try:
        cfg = ExperimentConfig(datasets=datasets, models=models, seeds=base.seeds,
                               tables=_split(ns.tables), subsets=subsets, schedules=schedules,
                               runs=ns.runs, base=RunConfig(search_space=base.search_space,
                                                            epochs=base.epochs,
                                                            patience=base.patience,
                                                            split=base.split,
                                                            budget_singles=not ns.no_budget_singles))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    for item in plan(cfg):  # every planned run's settings, before the first one starts
        try:
            item.config.resolved()  # raises what would stop the run (run/config.py)
        except ValueError as exc:
            raise CLIError(f"{item.setting}/{item.name}: {exc}") from None
    return cfg


def check_folders(ns: argparse.Namespace) -> None:
    """--runs and --report can be written and do not clash (``OutputDirError``: exit 1)."""
    if not ns.report_only:
        check_output_dir(ns.runs, "--runs")
    report = check_output_dir(ns.report, "--report")
    if (report / "config.json").is_file():
        raise OutputDirError(f"--report {ns.report}: {report} is a run directory (it holds "
                             f"config.json); choose another --report")


def report_only(ns: argparse.Namespace, argv: Sequence[str]) -> Path:
    """The report of runs already made, or the figures redrawn from a saved report.json."""
    if ns.from_json:
        source = Path(ns.from_json)
        if not source.is_file():
            raise CLIError(f"--from-json: {ns.from_json} is not a file")
        try:
            runs = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"--from-json {ns.from_json}: cannot be read as JSON ({exc})") from None
        return replot_from_json(runs, ns.report, source=str(source))
    root = Path(ns.runs)
    if not root.is_dir():
        raise CLIError(f"--runs: {ns.runs} is not a folder (nothing to report)")
    if not load_runs(root):
        raise ValueError(f"--runs {ns.runs}: no finished run ({root}/<dataset>-<model>/<run>/"
                         f"metrics.json) to report; run the experiments first (without "
                         f"--report-only), or check the folder")
    return write_report(root, ns.report, command=_command(argv))


def _command(argv: Sequence[str] | None) -> str:
    return "python -m autosample_ext.experiments " + shlex.join(
        sys.argv[1:] if argv is None else argv)


def run_all_planned(items: list[PlannedRun], runs: str, parser: argparse.ArgumentParser) -> int:
    """Run (resume, skip) every planned run; the exit status."""
    stop = StopFlag()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.request(signal.Signals(signum).name))
    for item in items:
        try:
            what = run_planned(item, runs, stop=stop)
        except TrainingInterrupted as exc:
            log.warning("%s; start the same command again to continue", exc)
            return 130
        except TrainingDiverged as exc:
            print(f"{parser.prog}: error: {item.setting}/{item.name}: {exc}", file=sys.stderr)
            return 3
        except (ValueError, OSError, RunDirError, RunLocked) as exc:
            return fail(parser, f"{item.setting}/{item.name}: {exc}")
        log.info("%s/%s: %s", item.setting, item.name, what)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parse_one_process(parser, argv, "under torchrun start the runs themselves: "
                                         "torchrun ... -m autosample_ext.train")
    if isinstance(ns, int):
        return ns
    try:
        if ns.from_json and not ns.report_only:
            raise CLIError("--from-json: only with --report-only (it redraws a saved report)")
        cfg = experiment_config(ns)
        check_folders(ns)
    except CLIError as exc:
        return usage_error(parser, exc)
    except OutputDirError as exc:
        return fail(parser, exc)
    torch.set_num_threads(ns.threads)
    if not ns.report_only:
        status = run_all_planned(plan(cfg), cfg.runs, parser)
        if status:
            return status
    try:
        path = report_only(ns, argv) if ns.report_only else \
            write_report(cfg.runs, ns.report, command=_command(argv))
    except CLIError as exc:
        return usage_error(parser, exc)
    except (ValueError, OSError) as exc:
        return fail(parser, exc)
    except KeyError as exc:  # a metrics.json of another kind of run under --runs
        return fail(parser, f"--runs {ns.runs}: a run's metrics.json lacks {exc}; the report "
                            f"reads the runs this command makes")
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
