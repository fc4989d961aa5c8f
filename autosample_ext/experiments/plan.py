"""Which runs the paper's tables and figures need, and running them (resumable).

One *setting* is a (dataset, model) pair; its runs live in ``<runs>/<dataset>-<model>/<name>/``
(ordinary run directories of :func:`autosample_ext.run.run`). One set of runs serves
several tables:

==================  ====================================================  ====================
run                 what                                                  serves
==================  ====================================================  ====================
``compare``         AutoSample (search + retrain), SH, every candidate     Table 3, Figures 3-4,
                    alone (= the grid), every candidate for AutoSample's  Table 6 (searched),
                    epochs; paired t-tests; costs                         Tables 4, 5 (singles)
``sh-tie0``         SH without the tie rule (``--sh-tie-se 0``)           Table 3, Figure 3
                    (table ``sh-ties``)
``sh-tiebest``      SH, ties judged against the leader (``sh-ties``)     Table 3, Figure 3
``negatives``       every candidate alone with T = |space| negatives      Table 4
``retrain-random``  AutoSample's retrain from a random init, the search   Table 6
                    reused from ``compare`` (its checkpoints are copied)
``space-<i>-as``    AutoSample on the i-th search-space subset            Table 5
``space-<i>-sh``    SH on the i-th subset                                 Table 5
``schedule``        the schedules alone (``aobpr@5+dns``)                 schedule table
``sh-schedules``    SH over the candidates plus the schedules             schedule table
``grid``            every candidate alone (``--search grid``)             race table
``sh``              SH at its defaults over the candidates                race table
``sh-auto``         SH over ``--search-space auto``                       race table
``sh-classic``      SH with the rule as first shipped (``--sh-rule halving``  race table
                    ``--sh-first-rung 3 --sh-tie-anchor last``, no catch-up,
                    every validation user in the bootstrap)
``sh-auto-harder``  the same races (checkpoints copied from ``sh-auto``)  race table
                    and the curriculum stage (``--sh-curriculum harder``)
==================  ====================================================  ====================

``compare`` (and the SH variants beside it) run when any of Tables 3-6 or the schedule table is
asked for; ``--tables race`` alone runs the three race runs only. A setting split other than
the default 3:1:1 (``--split loo``: one validation and one test item per user) is part of the
setting's name (``lastfm-loo-mf``).

Single samplers are deterministic functions of (seed, sampler), whatever run they sit in, so
Table 5's best single of a subset and the schedule table's DNS come from ``compare``.
A finished run (``metrics.json`` present, same config) is skipped; a started one is resumed.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from autosample_ext.run import DEFAULT_SEARCH_SPACE, RunConfig, run
from autosample_ext.run.rundir import read_saved_config
from autosample_ext.training import StopFlag

log = logging.getLogger(__name__)

#: "sh-ties": the SH races without the tie rule and with ties judged against the leader;
#: "race": the grid, SH at its defaults and SH over the auto space, side by side
TABLES: tuple[str, ...] = ("3", "4", "5", "6", "schedule", "sh-ties", "race")
#: successive halving as first shipped (the race table's "today" row)
CLASSIC_SH: dict[str, object] = {"sh_rule": "halving", "sh_first_rung": 3, "sh_tie_anchor": "last",
                                 "sh_catch_up_se": 0.0, "sh_bootstrap_users": 0}
#: the tables that need the ``compare`` run
COMPARE_TABLES: tuple[str, ...] = ("3", "4", "5", "6", "schedule", "sh-ties")
#: Table 5's search spaces besides the full one (which is ``compare``'s)
DEFAULT_SUBSETS: tuple[tuple[str, ...], ...] = (("rns", "pns"), ("rns", "dns"), ("dns", "aobpr"),
                                                ("rns", "pns", "dns"))
DEFAULT_SCHEDULES: tuple[str, ...] = ("aobpr@5+dns",)


@dataclass
class ExperimentConfig:
    """What the experiments command runs; ``base`` holds the shared training settings."""

    datasets: tuple[str, ...]                 # paths, or "default" for the embedded data
    models: tuple[str, ...] = ("mf",)
    seeds: tuple[int, ...] = (0, 1, 2)
    tables: tuple[str, ...] = TABLES
    subsets: tuple[tuple[str, ...], ...] = DEFAULT_SUBSETS
    schedules: tuple[str, ...] = DEFAULT_SCHEDULES
    runs: str = "runs/experiments"
    base: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        bad = [t for t in self.tables if t not in TABLES]
        if bad:
            raise ValueError(f"--tables: unknown table(s) {bad}; choose from {list(TABLES)}")


def dataset_name(path: str) -> str:
    return "default" if path in ("default", "") else Path(path).stem


def setting_dir(runs: str | Path, dataset: str, model: str, split: str = "3:1:1") -> Path:
    """``<runs>/<dataset>-<model>``, with the split in the name when it is not the default
    (``lastfm-loo-mf``)."""
    tag = "" if split == RunConfig().split else "-" + split.replace(":", "-")
    return Path(runs) / f"{dataset_name(dataset)}{tag}-{model}"


@dataclass
class PlannedRun:
    setting: str      # "<dataset>-<model>"
    name: str         # run name within the setting
    config: RunConfig
    reuse_search_from: str | None = None   # run whose search checkpoints are copied
    #: the checkpoints copied from it, per seed (a race's: its state and every candidate's)
    reuse_globs: tuple[str, ...] = ("seed{seed}-search.pt",)


def plan(cfg: ExperimentConfig) -> list[PlannedRun]:
    """The runs of ``cfg``, cheapest settings first is the caller's choice (order kept)."""
    out: list[PlannedRun] = []
    space = tuple(cfg.base.search_space) or DEFAULT_SEARCH_SPACE
    for dataset in cfg.datasets:
        for model in cfg.models:
            root = setting_dir(cfg.runs, dataset, model, cfg.base.split)
            setting = root.name
            common = dataclasses.replace(cfg.base, data=None if dataset == "default" else dataset,
                                         model=model, seeds=tuple(cfg.seeds),
                                         search_space=space, progress=False)

            def add(name: str, **changes) -> PlannedRun:
                run_cfg = dataclasses.replace(common, out=str(root / name), **changes)
                item = PlannedRun(setting, name, run_cfg)
                out.append(item)
                return item

            if any(t in COMPARE_TABLES for t in cfg.tables):
                add("compare", compare=True)
            if "sh-ties" in cfg.tables:
                add("sh-tie0", search="sh", sh_tie_se=0.0)
                add("sh-tiebest", search="sh", sh_tie_anchor="best")
            if "4" in cfg.tables:
                add("negatives", sampler=space, num_negatives=len(space))
            if "6" in cfg.tables:
                add("retrain-random", retrain_init="random").reuse_search_from = "compare"
            if "5" in cfg.tables:
                for i, subset in enumerate(cfg.subsets):
                    add(f"space-{i}-as", search_space=tuple(subset))
                    add(f"space-{i}-sh", search_space=tuple(subset), search="sh")
            if "schedule" in cfg.tables and cfg.schedules:
                add("schedule", sampler=tuple(cfg.schedules))
                add("sh-schedules", search="sh", search_space=space + tuple(cfg.schedules))
            if "race" in cfg.tables:
                add("grid", search="grid")
                add("sh", search="sh")
                add("sh-auto", search="sh", search_space=("auto",))
                # the curriculum stage on top of the same races (their checkpoints copied)
                cur = add("sh-auto-harder", search="sh", search_space=("auto",),
                          sh_curriculum="harder")
                cur.reuse_search_from = "sh-auto"
                cur.reuse_globs = ("seed{seed}-sh.pt", "seed{seed}-sh-*.pt")
                add("sh-classic", search="sh", **CLASSIC_SH)
    return out


def _saved_config(path: Path) -> RunConfig | None:
    if not (path / "config.json").is_file():
        return None
    return read_saved_config(path)[0]


def _same(a: RunConfig, b: RunConfig) -> bool:
    """Equal configurations, up to the output folder, progress bars, device, the spelling
    of the data path, and the race settings (``sh_*``) of runs that do not race (a grid run
    made before a race default changed is still that grid run)."""
    skip = {"out", "progress", "device"}
    if a.mode not in ("sh", "compare") and b.mode not in ("sh", "compare"):
        skip |= {k for k in a.to_json() if k.startswith("sh_")}
    da = {k: v for k, v in a.to_json().items() if k not in skip}
    db = {k: v for k, v in b.to_json().items() if k not in skip}
    for d in (da, db):
        if d.get("data"):
            d["data"] = str(Path(d["data"]).resolve())
    return da == db


def run_planned(item: PlannedRun, runs_root: str | Path, stop: StopFlag | None = None) -> str:
    """Run (or resume, or skip) one planned run; returns what was done. ``stop``: set by
    signal handlers (checkpoint and raise TrainingInterrupted)."""
    path = Path(item.config.out)
    saved = _saved_config(path)
    if saved is not None and not _same(saved, item.config.resolved()):
        raise ValueError(f"{path} holds a run with another configuration; move it away or "
                         "choose another --runs folder")
    if saved is not None and (path / "metrics.json").is_file():
        return "done already"
    resume = saved is not None
    if item.reuse_search_from and not resume:
        src = Path(runs_root) / item.setting / item.reuse_search_from / "checkpoints"
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        for seed in item.config.seeds:
            for pattern in item.reuse_globs:
                found = sorted(src.glob(pattern.format(seed=seed)))
                if not found:
                    raise FileNotFoundError(f"{src / pattern.format(seed=seed)} is missing: run "
                                            f"{item.reuse_search_from!r} of this setting first")
                for file in found:
                    shutil.copy2(file, path / "checkpoints" / file.name)
        resume = True  # the copied checkpoints are picked up as finished phases
    log.info("%s/%s: %s", item.setting, item.name, "resuming" if resume else "starting")
    run(item.config, resume=resume, stop=stop)
    return "resumed" if saved is not None else "ran"


def run_all(items: Sequence[PlannedRun], runs_root: str | Path,
            stop: StopFlag | None = None) -> None:
    for item in items:
        what = run_planned(item, runs_root, stop)
        log.info("%s/%s: %s", item.setting, item.name, what)
