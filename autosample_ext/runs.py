"""The main job: configuration, phases (search, retrain, single samplers, grid) and the run
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
import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from autosample_ext.checkpoint import load_checkpoint
from autosample_ext.data.interactions import InteractionData
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.search.grid import pick_best
from autosample_ext.models._init import INIT_SCHEMES
from autosample_ext.search.retrain import RETRAIN_INITS, chosen_sampler, init_retrain_model
from autosample_ext.search.trainer import (
    SamplerObjective,
    StopFlag,
    TrainConfig,
    Trainer,
    TrainResult,
)

log = logging.getLogger(__name__)

DEFAULT_SEARCH_SPACE: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
TABLE_METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit")
TABLE_ABBREV = {"recall": "R", "ndcg": "N", "precision": "P", "hit": "H"}
PROTOCOLS: tuple[str, ...] = ("autosample", "dens")
MODELS: tuple[str, ...] = ("mf", "lightgcn", "ngcf")
AUTOSAMPLE = "autosample"

# The DENS protocol (DENS repository; ../shared/data/README.md): LightGCN, 3 layers, dim 64,
# Adam 1e-3, batch 2048, L2 1e-4, train on all of train.txt, test every 5 epochs with train
# masked, best test value reported.
# The DENS code's L2 term is 0.5 * ||e||^2 / batch and ours is ||e||^2 / batch: its 1e-4 is our
# 5e-5. It initialises the embeddings Xavier-uniform (LightGCN's reference code: N(0, 0.1^2)).
DENS_SETTINGS: dict[str, Any] = dict(model="lightgcn", layers=3, dim=64, lr=1e-3, batch_size=2048,
                                     l2=5e-5, init="xavier", split="given", eval_every=5,
                                     ks=(20,))
DENS_DEFAULT_SAMPLERS: tuple[str, ...] = ("rns", "dns", "mixgcf")


@dataclass
class RunConfig:
    """Everything that defines a run (``config.json`` holds the resolved values).

    Modes: ``sampler`` set -> those samplers alone ("single"); ``grid`` -> every candidate of
    ``search_space`` alone, best by validation; ``compare`` -> AutoSample and every candidate
    alone (the paper's comparison table, t-test); otherwise AutoSample search + retrain.
    ``protocol="dens"`` replaces the split, model and schedule by :data:`DENS_SETTINGS`
    (evaluation on test, best test value; single / grid modes only, the samplers
    :data:`DENS_DEFAULT_SAMPLERS` when none is named).
    """

    data: str | None = None
    format: str | None = None
    split: str = "3:1:1"
    split_seed: int = 0
    model: str = "mf"
    dim: int = 64
    layers: int = 3
    init: str | None = None
    search_space: tuple[str, ...] = DEFAULT_SEARCH_SPACE
    sampler: tuple[str, ...] = ()
    grid: bool = False
    compare: bool = False
    retrain_init: str = "searched"
    epochs: int = 20
    retrain_epochs: int | None = None
    patience: int = 5
    eval_every: int = 1
    lr: float = 5e-3
    alpha_lr: float = 0.01
    tau: float = 1.0
    batch_size: int = 2048
    l2: float = 1e-4
    metric: str = "recall@20"
    ks: tuple[int, ...] = (20,)
    seeds: tuple[int, ...] = (0,)
    device: str = "cpu"
    out: str | None = None
    protocol: str = "autosample"
    progress: bool = True

    def __post_init__(self) -> None:
        self.search_space = tuple(self.search_space)
        self.sampler = tuple(self.sampler)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.ks = tuple(int(k) for k in self.ks)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.init is not None and self.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES} or None, got {self.init!r}")
        if self.retrain_init not in RETRAIN_INITS:
            raise ValueError(f"retrain_init must be one of {RETRAIN_INITS}, got {self.retrain_init!r}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {list(self.seeds)}")
        if sum([bool(self.sampler), self.grid, self.compare]) > 1:
            raise ValueError("choose one of --sampler, --grid, --compare")
        if self.protocol == "dens" and self.compare:
            raise ValueError("the DENS protocol has no validation split to search on; "
                             "use --sampler (default rns,dns,mixgcf) or --grid with it")
        for name in ("epochs", "dim", "layers", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retrain_epochs is not None and self.retrain_epochs < 1:
            raise ValueError(f"retrain_epochs must be >= 1, got {self.retrain_epochs}")

    @property
    def mode(self) -> str:
        if self.sampler:
            return "single"
        if self.grid:
            return "grid"
        if self.compare:
            return "compare"
        return "autosample"

    def resolved(self) -> "RunConfig":
        """The config with the protocol's fixed settings applied."""
        if self.protocol != "dens":
            return self
        changes = dict(DENS_SETTINGS)
        if not self.sampler and not self.grid:
            changes["sampler"] = DENS_DEFAULT_SAMPLERS
        return dataclasses.replace(self, **changes)

    def train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr,
                           l2=self.l2, eval_every=self.eval_every, patience=self.patience,
                           metric=self.metric, ks=self.ks,
                           eval_split="test" if self.protocol == "dens" else "valid",
                           seed=seed, progress=self.progress)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ValueError(f"config.json has unknown keys {unknown}")
        return cls(**obj)


@dataclass
class PhaseRecord:
    """One finished phase of one seed."""

    seed: int
    method: str                    # "autosample", "search", or a sampler name
    sampler: str                   # the sampler trained (the chosen one for autosample)
    result: TrainResult
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------


def seed_for(seed: int, *stream: int) -> int:
    """A 63-bit seed derived from the run seed and a stream id (phase, candidate)."""
    return int(np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def load_data(cfg: RunConfig) -> InteractionData:
    """The dataset of ``cfg`` (embedded default data when ``cfg.data`` is None)."""
    from autosample_ext import data as D

    opts: dict[str, Any] = {"split": cfg.split, "seed": cfg.split_seed}
    if cfg.data is None:
        return D.load(None, **opts)
    path = Path(cfg.data)
    if not path.exists():
        raise FileNotFoundError(f"--data: {path} does not exist")
    return D.load(path, cfg.format, **opts)


def build_model(cfg: RunConfig, data: InteractionData, seed: int):
    from autosample_ext.models import build_model as _build

    kwargs: dict[str, Any] = {"dim": cfg.dim, "seed": seed, "device": cfg.device}
    if cfg.model in ("lightgcn", "ngcf"):
        kwargs["num_layers"] = cfg.layers
    if cfg.init is not None:
        kwargs["init"] = cfg.init
    return _build(cfg.model, data, **kwargs)


def build_sampler(name: str, data: InteractionData, seed: int, device: str):
    from autosample_ext.samplers import build_sampler as _build

    return _build(name, data, seed=seed, device=device)


# ---------------------------------------------------------------------------------------------
# Run directory
# ---------------------------------------------------------------------------------------------


class RunDir:
    """Writes the files of a run directory; log.jsonl is rewritten from checkpoints on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.path / "checkpoints"
        self.checkpoints.mkdir(exist_ok=True)
        self._log = open(self.path / "log.jsonl", "w", encoding="utf-8")

    def close(self) -> None:
        self._log.close()

    def checkpoint(self, seed: int, phase: str) -> Path:
        return self.checkpoints / f"seed{seed}-{phase}.pt"

    def append_log(self, entry: dict[str, Any]) -> None:
        self._log.write(json.dumps(entry, sort_keys=False) + "\n")
        self._log.flush()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        return target


def alpha_frame(records: Sequence[PhaseRecord]) -> pd.DataFrame:
    """Alpha per candidate per search epoch: columns seed, epoch, <candidate>..."""
    rows = []
    for rec in records:
        if rec.method != "search":
            continue
        for entry in rec.result.log:
            rows.append({"seed": rec.seed, "epoch": entry["epoch"], **entry["alpha"]})
    return pd.DataFrame(rows)


def write_alpha_plot(frame: pd.DataFrame, path: Path) -> None:
    """alpha.png: one panel per seed, one line per candidate (the paper's Figure 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(frame["seed"].unique())
    candidates = [c for c in frame.columns if c not in ("seed", "epoch")]
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.5 * len(seeds), 3.4), squeeze=False,
                             sharey=True)
    for ax, seed in zip(axes[0], seeds):
        sub = frame[frame["seed"] == seed]
        for cand in candidates:
            ax.plot(sub["epoch"], sub[cand], marker="o", markersize=2.5, label=cand.upper())
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("search epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("alpha")
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def method_label(method: str) -> str:
    return "AutoSample" if method == AUTOSAMPLE else method.upper()


def aggregate(records: Sequence[PhaseRecord], split: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {metric: {mean, std, n}}}`` over seeds (std with ddof=1, 0 for one seed)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    frame = metrics_frame(records, split)
    for method, sub in frame.groupby("method", sort=False):
        out[str(method)] = {}
        for metric in sub.columns.drop(["method", "seed"]):
            values = sub[metric].to_numpy(dtype=float)
            out[str(method)][metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                "n": int(values.size)}
    return out


def metrics_frame(records: Sequence[PhaseRecord], split: str) -> pd.DataFrame:
    """One row per (method, seed) of the reported methods with the ``split`` metrics."""
    rows = []
    for rec in records:
        if rec.method == "search":
            continue
        metrics = rec.result.test if split == "test" else rec.result.valid
        rows.append({"method": rec.method, "seed": rec.seed, **metrics})
    return pd.DataFrame(rows)


def paired_ttests(frame: pd.DataFrame, ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    """AutoSample vs the best single sampler (by mean, per metric), paired over seeds."""
    from scipy import stats

    out: dict[str, dict[str, Any]] = {}
    if AUTOSAMPLE not in set(frame["method"]):
        return out
    singles = [m for m in frame["method"].unique() if m != AUTOSAMPLE]
    if not singles:
        return out
    auto = frame[frame["method"] == AUTOSAMPLE].set_index("seed")
    for k in ks:
        for name in TABLE_METRICS:
            metric = f"{name}@{k}"
            means = {m: frame.loc[frame["method"] == m, metric].mean() for m in singles}
            best = max(means, key=lambda m: means[m])
            base = frame[frame["method"] == best].set_index("seed")
            seeds = sorted(set(auto.index) & set(base.index))
            entry: dict[str, Any] = {"baseline": best, "n": len(seeds),
                                     "mean_diff": float(auto.loc[seeds, metric].mean()
                                                        - base.loc[seeds, metric].mean())}
            if len(seeds) >= 2:
                diff = auto.loc[seeds, metric].to_numpy() - base.loc[seeds, metric].to_numpy()
                if np.allclose(diff, diff[0]):
                    entry["p_value"] = 0.0 if diff[0] != 0 else 1.0
                else:
                    res = stats.ttest_rel(auto.loc[seeds, metric].to_numpy(),
                                          base.loc[seeds, metric].to_numpy())
                    entry["t"] = float(res.statistic)
                    entry["p_value"] = float(res.pvalue)
                entry["significant"] = bool(entry["p_value"] < 0.05)
            out[metric] = entry
    return out


def render_table(records: Sequence[PhaseRecord], split: str, k: int,
                 ttests: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown table in the layout of the paper's Table 3.

    Rows: methods; columns: R/N/P/H@k as mean (± std over seeds) with the rank of the row in
    that metric (1 = best), then the average rank. AutoSample vs the best single sampler of the
    metric, paired t-test over seeds, p < 0.05: ``*`` significantly better, ``†`` significantly
    worse.
    """
    frame = metrics_frame(records, split)
    cols = [f"{m}@{k}" for m in TABLE_METRICS]
    grouped = frame.groupby("method", sort=False)[cols]
    mean, std, count = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.count()
    ranks = mean.rank(ascending=False, method="min")
    header = ["Sampler"] + [f"{TABLE_ABBREV[m]}@{k}" for m in TABLE_METRICS] + ["Avg rank"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    several = int(count.max().max()) > 1
    for method in mean.index:
        cells = [method_label(method)]
        for col in cols:
            text = f"{mean.loc[method, col]:.4f}"
            if several:
                text += f" ± {std.loc[method, col]:.4f}"
            test = (ttests or {}).get(col, {})
            if method == AUTOSAMPLE and test.get("significant"):
                text += "*" if test["mean_diff"] > 0 else "†"
            text += f" ({int(ranks.loc[method, col])})"
            cells.append(text)
        cells.append(f"{ranks.loc[method].mean():.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    cfg: RunConfig
    data: InteractionData
    out: RunDir
    stop: StopFlag
    resume: bool
    on_step: Callable[[str, int], None] | None = None


def _run_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
                 train_cfg: TrainConfig) -> TrainResult:
    tag = f"seed{seed}/{phase}"
    trainer = Trainer(ctx.data, model, objective, train_cfg,
                      checkpoint_path=ctx.out.checkpoint(seed, phase), stop=ctx.stop,
                      on_epoch=ctx.out.append_log, tag=tag,
                      on_step=(lambda step: ctx.on_step(tag, step)) if ctx.on_step else None)
    if ctx.resume and trainer.resume():
        for entry in trainer.log:
            ctx.out.append_log(entry)
    return trainer.fit()


def name_stream(name: str) -> int:
    """A stream id of a sampler name, so a sampler draws the same negatives whatever its place
    in ``--sampler`` / ``--search-space``."""
    return zlib.crc32(name.encode())


def run_single(ctx: RunContext, seed: int, name: str) -> PhaseRecord:
    cfg = ctx.cfg
    model = build_model(cfg, ctx.data, seed)
    sampler = build_sampler(name, ctx.data, seed_for(seed, 100, name_stream(name)), cfg.device)
    result = _run_trainer(ctx, seed, name, model, SamplerObjective(sampler, l2=cfg.l2),
                          cfg.train_config(seed))
    return PhaseRecord(seed, name, name, result)


def run_autosample(ctx: RunContext, seed: int) -> list[PhaseRecord]:
    """Search (Algorithm 1) then retrain (Algorithm 2) for one seed."""
    cfg = ctx.cfg
    model = build_model(cfg, ctx.data, seed)
    samplers = [build_sampler(name, ctx.data, seed_for(seed, 1000, name_stream(name)), cfg.device)
                for name in cfg.search_space]
    objective = AutoSampleObjective(samplers, cfg.search_space, tau=cfg.tau,
                                    alpha_lr=cfg.alpha_lr, l2=cfg.l2, seed=seed,
                                    device=cfg.device)
    search = _run_trainer(ctx, seed, "search", model, objective, cfg.train_config(seed))
    alpha_logits = search.best_fields["alpha_logits"]
    chosen = chosen_sampler(alpha_logits, cfg.search_space)
    alpha_star = torch.softmax(torch.as_tensor(alpha_logits, dtype=torch.float64), 0).tolist()
    log.info("seed %d: search picked %s (alpha* %s)", seed, chosen,
             ", ".join(f"{n}={a:.3f}" for n, a in zip(cfg.search_space, alpha_star)))
    searched_state = load_checkpoint(ctx.out.checkpoint(seed, "search"))["best_model"]
    retrain_model = init_retrain_model(build_model(cfg, ctx.data, seed_for(seed, 2000)),
                                       searched_state, cfg.retrain_init)
    sampler = build_sampler(chosen, ctx.data, seed_for(seed, 3000), cfg.device)
    retrain = _run_trainer(ctx, seed, "retrain", retrain_model,
                           SamplerObjective(sampler, l2=cfg.l2),
                           cfg.train_config(seed, cfg.retrain_epochs or cfg.epochs))
    extra = {"alpha_star": dict(zip(cfg.search_space, alpha_star)),
             "search_seconds": search.seconds, "retrain_seconds": retrain.seconds,
             "search_best_epoch": search.best_epoch, "search_valid": search.valid,
             "retrain_init": cfg.retrain_init}
    return [PhaseRecord(seed, "search", chosen, search),
            PhaseRecord(seed, AUTOSAMPLE, chosen, retrain, extra)]


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    path: Path
    records: list[PhaseRecord]
    metrics: dict[str, Any]
    table: str
    seconds: float


def default_out_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.mode}-{time.strftime('%Y%m%d-%H%M%S')}"


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
                                       "data": {"name": data.name, "users": data.num_users,
                                                "items": data.num_items,
                                                "train": data.train.nnz,
                                                "valid": data.valid.nnz,
                                                "test": data.test.nnz}})
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


def popularity_metrics(data: InteractionData, cfg: RunConfig) -> dict[str, dict[str, float]]:
    """The popularity ranking (training interactions per item) on the reported split: a floor
    every trained model should clear."""
    from autosample_ext.eval import evaluate_full_ranking, popularity_tables

    split = "test"
    metrics = evaluate_full_ranking(*popularity_tables(data), data, split, cfg.ks)
    return {split: metrics.to_dict()}


def _write_outputs(cfg: RunConfig, data: InteractionData, out: RunDir,
                   records: list[PhaseRecord], seconds: float) -> RunSummary:
    split = "valid" if cfg.protocol == "dens" else "test"  # DENS: the best test value
    k = cfg.ks[0]
    frame = metrics_frame(records, split)
    ttests = paired_ttests(frame, cfg.ks) if frame["method"].nunique() > 1 else {}
    per_run = []
    for rec in records:
        entry = {"seed": rec.seed, "method": rec.method, "sampler": rec.sampler,
                 "best_epoch": rec.result.best_epoch, "epochs_run": rec.result.epochs_run,
                 "stopped_early": rec.result.stopped_early, "seconds": rec.result.seconds}
        if cfg.protocol == "dens":
            entry["best_test"] = rec.result.valid
        else:
            entry["valid"] = rec.result.valid
            entry["test"] = rec.result.test
        entry.update(rec.extra)
        per_run.append(entry)
    metrics: dict[str, Any] = {
        "protocol": cfg.protocol, "mode": cfg.mode, "reported_split":
            "best test epoch (DENS protocol)" if cfg.protocol == "dens"
            else "test at the best validation epoch",
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
    table = render_table(records, split, k, ttests)
    if frame["method"].nunique() > 1 or len(cfg.seeds) > 1:
        note = ("Best test value over epochs (DENS protocol)." if cfg.protocol == "dens"
                else "Test metrics at the best validation epoch.")
        if len(cfg.seeds) > 1:
            note += f" Mean ± std over seeds {list(cfg.seeds)}."
        if ttests:
            note += (" AutoSample vs the best single sampler (paired t-test over seeds, "
                     "p < 0.05): * better, † worse.")
        out.write_text("table.md", table + "\n" + note + " (rank) per metric, 1 = best.\n")
    return RunSummary(out.path, records, metrics, table, seconds)


def summary_text(summary: RunSummary) -> str:
    """The readable final report printed by the CLI."""
    m = summary.metrics
    lines = [summary.table.rstrip()]
    for seed, a in m.get("autosample", {}).items():
        alpha = ", ".join(f"{n.upper()} {v:.3f}" for n, v in a["alpha_star"].items())
        lines.append(f"seed {seed}: AutoSample chose {a['chosen'].upper()} (alpha*: {alpha}); "
                     f"search {a['search_seconds']:.1f}s + retrain {a['retrain_seconds']:.1f}s")
    for seed, g in m.get("grid", {}).items():
        lines.append(f"seed {seed}: grid search best {g['best'].upper()} by validation; "
                     f"total {g['seconds']:.1f}s")
    pop = m["popularity"]["test"]
    k = m["table_k"]
    lines.append(f"popularity ranking (reference floor), test: R@{k} {pop[f'recall@{k}']:.4f}, "
                 f"N@{k} {pop[f'ndcg@{k}']:.4f}")
    lines.append(f"{m['reported_split']}; outputs in {summary.path} ({summary.seconds:.1f}s)")
    return "\n".join(lines)
