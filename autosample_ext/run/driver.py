"""The main job: run the phases a :class:`RunConfig` asks for, seed by seed, and write the run
directory (docs/design.md).

Run directory ``out/``:

* ``config.json``   the resolved :class:`RunConfig` plus dataset facts and ``engines``: which
                    engine trains each sampler and the search (run/engine.py);
* ``log.jsonl``     one line per epoch of every phase: run tag, epoch, loss, alpha (search),
                    validation metrics (when evaluated), seconds;
* ``alpha.csv`` / ``alpha.png``  alpha per candidate per search epoch (the paper's Figure 4);
* ``metrics.json``  validation and test metrics per seed and method, aggregated mean / std,
                    paired t-tests, the searched sampler and the search / grid costs;
* ``table.md``      the paper's Table 3 layout, when several methods or seeds ran;
* ``checkpoints/seed<S>-<phase>.pt``  atomic checkpoints; ``--resume`` continues from them.

Phases run in a fixed order per seed; a phase whose checkpoint says "done" is not re-run on
resume, a partial one continues from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autosample_ext.data.interactions import InteractionData
from autosample_ext.run.config import RunConfig
from autosample_ext.run.engine import engine_plan, log_engine_notice
from autosample_ext.report.figures import setting_title
from autosample_ext.report.printout import legend_line
from autosample_ext.run.protocols import protocol_spec
from autosample_ext.run.phases import RunContext, budget_singles, load_data, run_single
from autosample_ext.search.records import GRID, SH, PhaseRecord, is_autosample
from autosample_ext.report.race import race_table, space_record
from autosample_ext.report.tables import (
    aggregate,
    flag_below_popularity,
    alpha_frame,
    cost_summary,
    metrics_frame,
    paired_ttests,
    render_cost_table,
    render_table,
    write_alpha_plot,
)
from autosample_ext.run.rundir import (
    CONFIG_NAME,
    RankRunDir,
    RunDir,
    check_same_data,
    check_same_run,
    config_record,
    default_out_dir,
)
from autosample_ext.run.validate import check_data
from autosample_ext.samplers.registry import check_sampler_data
from autosample_ext.search.halving_phases import race_space
from autosample_ext.search.strategies import STRATEGIES
from autosample_ext.training.config import StopFlag
from autosample_ext.distributed.context import DistContext
from autosample_ext.distributed.launch import check_world_size, current_context


@dataclass
class RunSummary:
    path: Path
    records: list[PhaseRecord]
    metrics: dict[str, Any]
    table: str
    seconds: float


def run(cfg: RunConfig, *, resume: bool = False, data: InteractionData | None = None,
        stop: StopFlag | None = None, on_step: Callable[[str, int], None] | None = None,
        dist: DistContext | None = None) -> RunSummary:
    """Run the job described by ``cfg`` and write its run directory.

    ``data``: an already loaded dataset to use instead of ``cfg.data`` (library use, tests).
    ``stop``: set by signal handlers: checkpoint at the next step and raise TrainingInterrupted.
    ``on_step(tag, step)``: called after every optimiser step (fault injection in tests).
    ``dist``: the process's place in a distributed run (default: the initialised process group,
    else one process; :mod:`autosample_ext.distributed.context`). Every rank calls ``run``;
    rank 0 alone writes the run directory and returns the full summary, the other ranks a
    summary with the records and no metrics.
    """
    dist = dist or current_context()
    cfg = cfg.resolved()  # the protocol applied, and every check of the config alone
    if not dist.is_main:
        cfg = dataclasses.replace(cfg, progress=False)
    t0 = time.perf_counter()
    out_path = (Path(cfg.out) if cfg.out else default_out_dir(cfg)).resolve()
    out_path = Path(dist.broadcast_object(str(out_path), "naming the run directory"))

    def existing() -> dict[str, Any] | None:
        if not (out_path / CONFIG_NAME).exists():
            return None
        if not resume:
            raise FileExistsError(f"{out_path} already holds a run; use --resume to continue it "
                                  "or choose another --out")
        saved = check_same_run(cfg, out_path)
        check_world_size(int(saved.get("world_size", 1)), dist.world_size,
                         f"resume {out_path}: the run",
                         f"{_launch_hint(saved)} --out {shlex.quote(str(out_path))}")
        return saved

    saved = dist.on_main(existing, "checking the run directory", share=True)
    if data is None:
        data = dist.everywhere(lambda: load_data(cfg), "loading the data")
    facts = {"name": data.name, "users": data.num_users, "items": data.num_items,
             "train": data.train.nnz, "valid": data.valid.nnz, "test": data.test.nnz}
    dist.check_same(facts, "the dataset")
    if saved is not None:
        check_same_data(saved, facts, out_path)
    check_data(cfg, data)
    for name in cfg.trained_samplers():  # e.g. the GDNS gain table against its memory budget
        check_sampler_data(name, cfg.sampler_kwargs(name), dist.shard.count(data.num_users),
                           data.num_items)
    cfg = dataclasses.replace(cfg, out=str(out_path))
    if cfg.data is not None:
        facts["path"] = str(Path(cfg.data).resolve())
    facts.update(data_facts(data))
    engines = engine_plan(cfg, dist.world_size)
    if dist.is_main:
        log_engine_notice(engines)

    record = {"config": config_record(cfg, out_path), "mode": cfg.mode,
              "samplers": sampler_settings(cfg), "data": facts, "engines": engines,
              "world_size": dist.world_size, "launch": dist.launch_record()}
    if cfg.mode in ("sh", "compare"):
        record["search_space_expansion"] = space_record(cfg.search_space,
                                                        static=race_space(cfg, data))

    def open_dir() -> RunDir:
        out = RunDir(out_path, new=not resume)
        try:
            out.write_json(CONFIG_NAME, record)
        except BaseException:
            out.close()
            raise
        return out

    opened = dist.on_main(open_dir, "creating the run directory")
    out = opened if dist.is_main else RankRunDir(out_path)
    try:
        ctx = RunContext(cfg, data, out, stop or StopFlag(), resume, on_step, dist)
        records: list[PhaseRecord] = []
        for seed in cfg.seeds:
            records += run_seed(ctx, seed)
            races = {str(r.seed): r.extra for r in records if r.method == SH}
            if races:   # the schedules the races added, beside the candidates given
                record["search_space_expansion"] = space_record(
                    cfg.search_space, races, static=race_space(cfg, data))
                dist.on_main(lambda: out.write_json(CONFIG_NAME, record), "writing config.json")
        summary = dist.on_main(lambda: _write_outputs(cfg, data, out, records,
                                                      time.perf_counter() - t0),
                               "writing the results")
        return summary if dist.is_main else RunSummary(out_path, records, {}, "",
                                                       time.perf_counter() - t0)
    finally:
        out.close()


def _launch_hint(saved: dict[str, Any]) -> str:
    """The torchrun command of a saved run's process layout (config.json ``launch``)."""
    launch = saved.get("launch") or {}
    world = int(saved.get("world_size", 1))
    if world <= 1:
        return "python -m autosample_ext.train"
    nodes = int(launch.get("nnodes", 1))
    per_node = int(launch.get("nproc_per_node", world))
    return ("torchrun " + (f"--nnodes={nodes} (and your rendezvous flags) " if nodes > 1 else "")
            + f"--nproc_per_node={per_node} -m autosample_ext.train")


def run_seed(ctx: RunContext, seed: int) -> list[PhaseRecord]:
    """The phases of one seed for the run's mode: the samplers alone, or the search strategy
    (:data:`~autosample_ext.search.strategies.STRATEGIES`); ``compare``: every strategy in the
    table's order, then (``budget_singles``) each candidate at AutoSample's epochs."""
    cfg = ctx.cfg
    if cfg.mode == "single":
        return [run_single(ctx, seed, name) for name in cfg.sampler]
    strategies = STRATEGIES.values() if cfg.mode == "compare" else [STRATEGIES[cfg.mode]]
    records: list[PhaseRecord] = []
    for strategy in strategies:
        records += strategy.run(ctx, seed)
    if cfg.mode == "compare" and cfg.budget_singles:
        records += budget_singles(ctx, seed, records)
    return records


def sampler_settings(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Every option of every sampler the run trains (defaults included), as used."""
    from autosample_ext.samplers.registry import resolved_options

    return {name: resolved_options(name, cfg.sampler_kwargs(name))
            for name in cfg.trained_samplers()}


def data_facts(data: InteractionData) -> dict[str, Any]:
    """What the loader did that changes the experiment (rating filter, split, rounding)."""
    keys = ("split", "split_rounding", "loo_by", "num_negatives", "min_rating_applied",
            "dropped_below_min_rating")
    return {k: data.info[k] for k in keys if k in data.info}


def popularity_metrics(data: InteractionData, cfg: RunConfig) -> dict[str, dict[str, float]]:
    """The popularity ranking (training interactions per item) on the reported split, by the
    run's evaluation protocol: a floor every trained model should clear."""
    from autosample_ext.eval import evaluate_full_ranking, evaluate_sampled, popularity_tables

    split = "test"
    if cfg.eval_protocol == "sampled":
        metrics = evaluate_sampled(*popularity_tables(data), data, cfg.ks, split=split)
    else:
        metrics = evaluate_full_ranking(*popularity_tables(data), data, split, cfg.ks)
    return {split: metrics.to_dict()}


def table_columns(cfg: RunConfig) -> list[str]:
    """The metric columns of the run's table: the protocol's, else R/N/P/H@K (full ranking)
    or N/R@K (sampled) at the first cut-off."""
    spec = protocol_spec(cfg.protocol)
    if spec.table is not None:
        return list(spec.table)
    k = cfg.ks[0]
    if cfg.eval_protocol == "sampled":
        return [f"ndcg@{k}", f"recall@{k}"]
    return [f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hit")]


def _write_outputs(cfg: RunConfig, data: InteractionData, out: RunDir,
                   records: list[PhaseRecord], seconds: float) -> RunSummary:
    split = "valid" if cfg.best_test else "test"  # DENS: the best test value
    k = cfg.ks[0]
    columns = table_columns(cfg)
    # t-tests: every cut-off's R/N/P/H by default, the table's columns for protocol tables
    custom = protocol_spec(cfg.protocol).table is not None or cfg.eval_protocol == "sampled"
    tested = columns if custom else None
    frame = metrics_frame(records, split)
    several = frame["method"].nunique() > 1
    ttests = paired_ttests(frame, cfg.ks, columns=tested) if several else {}
    sh_ttests = paired_ttests(frame, cfg.ks, SH, columns=tested) if several else {}
    per_run = []
    for rec in records:
        entry = {"seed": rec.seed, "method": rec.method, "sampler": rec.sampler,
                 "best_epoch": rec.result.best_epoch, "epochs_run": rec.result.epochs_run,
                 "stopped_early": rec.result.stopped_early, "seconds": rec.result.seconds,
                 "cpu_seconds": rec.result.cpu_seconds, "engine": rec.result.engine}
        if cfg.best_test:
            entry["best_test"] = rec.result.valid
        else:
            entry["valid"] = rec.result.valid
            entry["test"] = rec.result.test
        entry.update({k: v for k, v in rec.extra.items() if k not in ("runs", "decisions")})
        per_run.append(entry)
    metrics: dict[str, Any] = {
        "protocol": cfg.protocol, "mode": cfg.mode, "reported_split":
            "best test epoch (DENS protocol)" if cfg.best_test
            else "test at the best validation epoch",
        "evaluation": "sampled: the held-out item among its 100 fixed negatives"
            if cfg.eval_protocol == "sampled" else "full ranking over all items",
        "table_columns": columns,
        "runs": per_run, "aggregate": aggregate(records, split)}
    if ttests:
        metrics["ttest_vs_best_single"] = ttests
    if sh_ttests:
        metrics["ttest_sh_vs_best_single"] = sh_ttests
    grids = [r for r in records if r.method == GRID]
    if grids:
        metrics["grid"] = {
            str(r.seed): {"best": r.sampler, "chosen": r.sampler,
                          "valid": r.extra["valid_by_candidate"], "seconds": r.extra["wall_seconds"],
                          "cpu_seconds": r.extra["cpu_seconds"]}
            for r in grids}
    for method in dict.fromkeys(r.method for r in records if is_autosample(r.method)):
        metrics[method] = {
            str(r.seed): {"chosen": r.sampler, "alpha_star": r.extra["alpha_star"],
                          "alpha_objective": r.extra["alpha_objective"],
                          "search_seconds": r.extra["search_seconds"],
                          "retrain_seconds": r.extra["retrain_seconds"],
                          "total_seconds": r.extra["search_seconds"] + r.extra["retrain_seconds"],
                          "cpu_seconds": r.extra["search_cpu_seconds"]
                          + r.extra["retrain_cpu_seconds"],
                          "epochs": r.extra["search_epochs"] + r.extra["retrain_epochs"],
                          **({"probes": r.extra["probes"]} if "probes" in r.extra else {})}
            for r in records if r.method == method}
    races = [r for r in records if r.method == SH]
    if races:
        metrics["sh"] = {
            str(r.seed): {"chosen": r.sampler, "runs": r.extra["runs"], "rungs": r.extra["rungs"],
                          "decisions": r.extra["decisions"], "cpu_seconds": r.extra["cpu_seconds"],
                          "wall_seconds": r.extra["wall_seconds"],
                          **{k: r.extra[k] for k in ("space", "added", "bracket_rungs",
                                                      "curriculum") if k in r.extra}}
            for r in races}
    costs = cost_summary(records)
    if costs:
        metrics["costs"] = costs
    metrics["table_k"] = k
    metrics["validation_metric"] = cfg.metric
    metrics["popularity"] = popularity_metrics(data, cfg)
    flag_below_popularity(metrics, cfg.metric)
    metrics["seconds"] = seconds
    out.write_json("metrics.json", metrics)
    alpha = alpha_frame(records)
    if not alpha.empty:
        alpha.to_csv(out.path / "alpha.csv", index=False)
        write_alpha_plot(alpha, out.path / "alpha.png",
                         title=setting_title(data.name, cfg.model), best_epochs={
                             r.seed: r.result.best_epoch for r in records if r.method == "search"})
    table = render_table(records, split, k, ttests, sh_ttests, columns)
    cost_table = render_cost_table(costs) if costs else ""
    if frame["method"].nunique() > 1 or len(cfg.seeds) > 1 or races:
        note = ("Best test value over epochs (DENS protocol)." if cfg.best_test
                else "Test metrics at the best validation epoch.")
        if cfg.eval_protocol == "sampled":
            note += " Sampled protocol: each user's held-out item ranked among its 100 fixed negatives."
        if len(cfg.seeds) > 1:
            note += f" Mean ± std over seeds {list(cfg.seeds)}."
        if ttests or sh_ttests:
            note += (" AutoSample and SH vs the best single sampler (paired t-test over seeds, "
                     "p < 0.05): * better, † worse.")
        if several:
            note += " (rank) per metric, 1 = best."
        text = table + "\n" + note + "\n" + legend_line(metrics) + "\n"
        if cost_table:
            text += "\n" + cost_table
        if races:
            text += "\nThe race's candidates:\n\n" + race_table(metrics["sh"], cfg.metric)
        out.write_text("table.md", text)
    return RunSummary(out.path, records, metrics, table, seconds)
