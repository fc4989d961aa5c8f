"""The main job: run the phases a :class:`RunConfig` asks for, seed by seed, and write the run
directory (DESIGN.md §6).

Run directory ``out/``:

* ``config.json``   the resolved :class:`RunConfig` plus dataset facts;
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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autosample_ext.data.interactions import InteractionData
from autosample_ext.experiment.config import RunConfig
from autosample_ext.experiment.protocols import protocol_spec
from autosample_ext.experiment.phases import (
    AUTOSAMPLE,
    PhaseRecord,
    RunContext,
    load_data,
    run_autosample,
    run_single,
)
from autosample_ext.experiment.reporting import (
    aggregate,
    alpha_frame,
    metrics_frame,
    paired_ttests,
    render_table,
    write_alpha_plot,
)
from autosample_ext.experiment.rundir import RunDir, default_out_dir
from autosample_ext.search.grid import pick_best
from autosample_ext.training.config import StopFlag


@dataclass
class RunSummary:
    path: Path
    records: list[PhaseRecord]
    metrics: dict[str, Any]
    table: str
    seconds: float


def run(cfg: RunConfig, *, resume: bool = False, data: InteractionData | None = None,
        stop: StopFlag | None = None, on_step: Callable[[str, int], None] | None = None
        ) -> RunSummary:
    """Run the job described by ``cfg`` and write its run directory.

    ``data``: an already loaded dataset to use instead of ``cfg.data`` (library use, tests).
    ``stop``: set by signal handlers: checkpoint at the next step and raise TrainingInterrupted.
    ``on_step(tag, step)``: called after every optimiser step (fault injection in tests).
    """
    cfg = cfg.resolved()
    t0 = time.perf_counter()
    out_path = Path(cfg.out) if cfg.out else default_out_dir(cfg)
    if not resume and (out_path / "config.json").exists():
        raise FileExistsError(f"{out_path} already holds a run; use --resume to continue it "
                              "or choose another --out")
    if data is None:
        data = load_data(cfg)
    cfg = dataclasses.replace(cfg, out=str(out_path))
    out = RunDir(out_path)
    try:
        out.write_json("config.json", {"config": cfg.to_json(), "mode": cfg.mode,
                                       "samplers": sampler_settings(cfg),
                                       "data": {"name": data.name, "users": data.num_users,
                                                "items": data.num_items,
                                                "train": data.train.nnz,
                                                "valid": data.valid.nnz,
                                                "test": data.test.nnz,
                                                **data_facts(data)}})
        ctx = RunContext(cfg, data, out, stop or StopFlag(), resume, on_step)
        records: list[PhaseRecord] = []
        for seed in cfg.seeds:
            if cfg.mode in ("autosample", "compare"):
                records += run_autosample(ctx, seed)
            if cfg.mode in ("grid", "compare"):
                for name in cfg.search_space:
                    records.append(run_single(ctx, seed, name))
            if cfg.mode == "single":
                for name in cfg.sampler:
                    records.append(run_single(ctx, seed, name))
        return _write_outputs(cfg, data, out, records, time.perf_counter() - t0)
    finally:
        out.close()


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
    frame = metrics_frame(records, split)
    # t-tests: every cut-off's R/N/P/H by default, the table's columns for protocol tables
    custom = protocol_spec(cfg.protocol).table is not None or cfg.eval_protocol == "sampled"
    ttests = (paired_ttests(frame, cfg.ks, columns if custom else None)
              if frame["method"].nunique() > 1 else {})
    per_run = []
    for rec in records:
        entry = {"seed": rec.seed, "method": rec.method, "sampler": rec.sampler,
                 "best_epoch": rec.result.best_epoch, "epochs_run": rec.result.epochs_run,
                 "stopped_early": rec.result.stopped_early, "seconds": rec.result.seconds}
        if cfg.best_test:
            entry["best_test"] = rec.result.valid
        else:
            entry["valid"] = rec.result.valid
            entry["test"] = rec.result.test
        entry.update(rec.extra)
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
    if cfg.mode in ("grid", "compare"):
        grids = {}
        for seed in cfg.seeds:
            singles = {r.method: r.result for r in records
                       if r.seed == seed and r.method in cfg.search_space}
            g = pick_best(singles, cfg.metric)
            grids[str(seed)] = {"best": g.best, "valid": g.valid, "seconds": g.seconds}
        metrics["grid"] = grids
    autos = [r for r in records if r.method == AUTOSAMPLE]
    if autos:
        metrics["autosample"] = {
            str(r.seed): {"chosen": r.sampler, "alpha_star": r.extra["alpha_star"],
                          "search_seconds": r.extra["search_seconds"],
                          "retrain_seconds": r.extra["retrain_seconds"],
                          "total_seconds": r.extra["search_seconds"] + r.extra["retrain_seconds"]}
            for r in autos}
    metrics["table_k"] = k
    metrics["popularity"] = popularity_metrics(data, cfg)
    metrics["seconds"] = seconds
    out.write_json("metrics.json", metrics)
    alpha = alpha_frame(records)
    if not alpha.empty:
        alpha.to_csv(out.path / "alpha.csv", index=False)
        write_alpha_plot(alpha, out.path / "alpha.png")
    table = render_table(records, split, k, ttests, columns)
    if frame["method"].nunique() > 1 or len(cfg.seeds) > 1:
        note = ("Best test value over epochs (DENS protocol)." if cfg.best_test
                else "Test metrics at the best validation epoch.")
        if cfg.eval_protocol == "sampled":
            note += " Sampled protocol: each user's held-out item ranked among its 100 fixed negatives."
        if len(cfg.seeds) > 1:
            note += f" Mean ± std over seeds {list(cfg.seeds)}."
        if ttests:
            note += (" AutoSample vs the best single sampler (paired t-test over seeds, "
                     "p < 0.05): * better, † worse.")
        out.write_text("table.md", table + "\n" + note + " (rank) per metric, 1 = best.\n")
    return RunSummary(out.path, records, metrics, table, seconds)
