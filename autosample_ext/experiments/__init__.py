"""The paper's experiments as one command: ``python -m autosample_ext.experiments``.

:mod:`~autosample_ext.experiments.plan` decides and runs the run directories that Tables 3-6,
the schedule table and Figures 3-4 need (resumable, one set of runs serving several tables);
:mod:`~autosample_ext.report.experiments` reads them and writes ``report.md`` with PNGs.
"""
from autosample_ext.experiments.plan import (
    DEFAULT_SCHEDULES,
    DEFAULT_SUBSETS,
    TABLES,
    ExperimentConfig,
    PlannedRun,
    plan,
    run_all,
    run_planned,
)
from autosample_ext.report.experiments import load_runs, write_report

__all__ = ["DEFAULT_SCHEDULES", "DEFAULT_SUBSETS", "TABLES", "ExperimentConfig", "PlannedRun",
           "plan", "run_all", "run_planned", "load_runs", "write_report"]
