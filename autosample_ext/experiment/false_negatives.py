"""The GDNS paper's false-negative analysis (§4.6, Figure 5) as a command.

    python -m autosample_ext.experiment.false_negatives --data ../shared/data/ml-1m \\
        --out runs/fn-ml1m --epochs 20 --samplers gdns,rns,dns --threads 1

What it does (the GDNS protocol's data, model and optimiser: leave-one-out with 100 fixed
negatives, ratings >= 4 where the data has ratings, GMF dim 32, AdaGrad lr 0.09, batch 1024):

1. **Plant** one false negative per user: for every user with at least two training positives,
   one of them, drawn at random (``--plant-seed``), is removed from the training set. The
   samplers then see it as a non-positive item, although the user did interact with it.
2. **Train** each sampler for ``--epochs`` epochs (no early stopping; the sampled validation
   metrics are logged). Every step, the negatives each sampler selects are compared with the
   planted items: the **selection rate** of planted items (planted selections per selected
   negative) and its **lift over uniform** (observed planted selections / the number a uniform
   draw over each row's non-positive items would give in expectation, sum_rows 1 / F_u).
3. For GDNS, the **densities of H and G**: (a) of the selected negatives, from the sampler's own
   update each step (H of the new state, G after the update), planted vs ordinary, as
   histograms per epoch; (b) at the end of chosen epochs, a population snapshot: H of every
   planted pair and of one fixed random ordinary non-positive pair per user, computed with the
   current model over all the user's training positives
   (``H_uj = mean_i sigmoid(r_uj - r_ui)``), and G from the sampler's state (1.0 for a pair
   never selected).

Outputs in ``--out``: ``false_negatives.json`` (rates and lifts per epoch and sampler, histogram
counts, the snapshot statistics, the settings), ``densities.png`` (H and G, planted vs
ordinary, over training), ``selection.png`` (planted selection lift per epoch per sampler),
``report.md`` (the table of rates and the reading).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.experiment.false_negatives_report import (BINS, render_report,
                                                              write_density_plot,
                                                              write_selection_plot)
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler
from autosample_ext.training.launch import single_process_error

log = logging.getLogger(__name__)


# -- planting ----------------------------------------------------------------------------------

def plant_false_negatives(data: InteractionData, seed: int) -> tuple[InteractionData, torch.Tensor]:
    """Remove one random training positive from every user with >= 2 of them.

    Returns the dataset without those pairs in ``train`` (valid, test and the evaluation
    negatives unchanged) and ``planted [num_users]`` int64: the planted item, -1 for users
    without one."""
    indptr = data.train.indptr.numpy()
    deg = np.diff(indptr)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA15E]))
    users = np.flatnonzero(deg >= 2)
    pick = indptr[users] + (rng.random(users.size) * deg[users]).astype(np.int64)
    planted = np.full(data.num_users, -1, dtype=np.int64)
    planted[users] = data.train.indices.numpy()[pick]
    keep = np.ones(data.train.nnz, dtype=bool)
    keep[pick] = False
    u, i = (t.numpy() for t in data.train.pairs())
    train = CSR.from_pairs(u[keep], i[keep], data.num_users, data.num_items)
    info = dict(data.info, planted_false_negatives=int(users.size))
    planted_data = dataclasses.replace(data, train=train, info=info)
    return planted_data, torch.from_numpy(planted)


def ordinary_negatives(data: InteractionData, planted: torch.Tensor, seed: int) -> torch.Tensor:
    """One random item per user with a planted item that is neither a positive of the user
    (train, valid, test) nor its planted item; -1 elsewhere."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0D1]))
    out = np.full(data.num_users, -1, dtype=np.int64)
    seen = [data.train, data.valid, data.test]
    for u in np.flatnonzero(planted.numpy() >= 0):
        taken = {int(planted[u])}
        for csr in seen:
            taken.update(csr.row(int(u)).tolist())
        while True:
            item = int(rng.integers(0, data.num_items))
            if item not in taken:
                out[u] = item
                break
    return torch.from_numpy(out)


# -- the probe ---------------------------------------------------------------------------------

@dataclass
class EpochCounts:
    """Per epoch: selected negatives, planted among them, and the uniform expectation."""

    selected: int = 0
    planted: int = 0
    expected_uniform: float = 0.0
    h_planted: np.ndarray = field(default_factory=lambda: np.zeros(len(BINS) - 1, np.int64))
    h_ordinary: np.ndarray = field(default_factory=lambda: np.zeros(len(BINS) - 1, np.int64))
    g_planted: np.ndarray = field(default_factory=lambda: np.zeros(len(BINS) - 1, np.int64))
    g_ordinary: np.ndarray = field(default_factory=lambda: np.zeros(len(BINS) - 1, np.int64))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"selected": self.selected, "planted": self.planted,
                               "expected_uniform": self.expected_uniform,
                               "rate": self.planted / max(self.selected, 1),
                               "lift": self.planted / self.expected_uniform
                               if self.expected_uniform else None}
        for key in ("h_planted", "h_ordinary", "g_planted", "g_ordinary"):
            counts = getattr(self, key)
            if counts.sum():
                out[key] = counts.tolist()
        return out


class SelectionProbe:
    """Wraps a sampler: forwards everything, counts planted items among the negatives it
    returns, and (group mode) histograms H and G of the updated pairs."""

    def __init__(self, inner: Sampler, planted: torch.Tensor, non_positive: torch.Tensor) -> None:
        self._inner = inner
        self._planted = planted.to(inner.device)
        self._inv_free = 1.0 / non_positive.to(torch.float64).clamp_min(1).to(inner.device)
        self.epochs: dict[int, EpochCounts] = {}
        self.epoch = 0
        if callable(getattr(inner, "sample_groups", None)):
            self.sample_groups = self._sample_groups
            self.observe_groups = self._observe_groups

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def active(self, ctx: SampleContext) -> "SelectionProbe":
        """The sampler that serves the step: the probe itself (it wraps a plain sampler)."""
        return self

    def _counts(self) -> EpochCounts:
        return self.epochs.setdefault(self.epoch, EpochCounts())

    def _count(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        hit = items == self._planted[users].unsqueeze(1)
        c = self._counts()
        c.selected += int(items.numel())
        c.planted += int(hit.sum())
        c.expected_uniform += float(self._inv_free[users].sum()) * items.shape[1]
        return hit

    def sample(self, ctx: SampleContext) -> Negatives:
        negatives = self._inner.sample(ctx)
        self._count(ctx.users, negatives.items)
        return negatives

    def observe(self, ctx, negatives, pos_scores, neg_scores) -> None:
        self._inner.observe(ctx, negatives, pos_scores, neg_scores)

    def _sample_groups(self, users: torch.Tensor, step: int):
        groups = self._inner.sample_groups(users, step)
        self._count(groups.users, groups.negatives)
        return groups

    def _observe_groups(self, groups, pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> None:
        self._inner.observe_groups(groups, pos_scores, neg_scores)
        inner = self._inner
        h = torch.sigmoid(neg_scores.unsqueeze(1) - pos_scores.unsqueeze(2)).mean(1)  # [U_b, N]
        g = inner.gain(groups.users, groups.negatives)   # after the update, either layout
        hit = (groups.negatives == self._planted[groups.users].unsqueeze(1)).cpu().numpy()
        h, g = h.detach().cpu().numpy(), g.detach().cpu().numpy()
        c = self._counts()
        c.h_planted += np.histogram(np.clip(h[hit], 0, 1), BINS)[0]
        c.h_ordinary += np.histogram(np.clip(h[~hit], 0, 1), BINS)[0]
        c.g_planted += np.histogram(np.clip(g[hit], 0, 1), BINS)[0]
        c.g_ordinary += np.histogram(np.clip(g[~hit], 0, 1), BINS)[0]


def snapshot(model, sampler: Sampler, data: InteractionData, users: torch.Tensor,
             items: torch.Tensor) -> dict[str, np.ndarray]:
    """H over all training positives and G from the GDNS state of ``(users, items)`` pairs."""
    with torch.no_grad():
        ut, it = model.propagate()
        ut, it = ut.detach(), it.detach()
        target = (ut[users] * it[items]).sum(1)                                  # [P]
        pu, pi = data.train.pairs()
        pos = (ut[pu] * it[pi]).sum(1)                                           # [nnz]
        # H_uj = mean over the user's positives i of sigmoid(r_uj - r_ui)
        owner = torch.full((data.num_users,), -1, dtype=torch.int64)
        owner[users] = torch.arange(users.numel())
        row = owner[pu]
        keep = row >= 0
        contrib = torch.sigmoid(target[row[keep]] - pos[keep])
        sums = torch.zeros(users.numel(), dtype=contrib.dtype).index_add_(0, row[keep], contrib)
        counts = torch.bincount(row[keep], minlength=users.numel()).clamp_min(1)
        h = (sums / counts).numpy()
        g = None
        if getattr(sampler, "table", None) is not None:
            g = sampler.gain(users.to(sampler.device),
                             items.to(sampler.device).unsqueeze(1)).squeeze(1).cpu().numpy()
    return {"h": h, "g": g}


# -- the command -------------------------------------------------------------------------------

def _describe(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "p10": float(np.quantile(values, 0.1)), "p90": float(np.quantile(values, 0.9))}


def run_analysis(data: InteractionData, out: Path, *, samplers: Sequence[str], epochs: int,
                 seed: int, plant_seed: int, snapshot_epochs: Sequence[int],
                 progress: bool = False) -> dict[str, Any]:
    """Plant, train every sampler, write the outputs; returns the JSON written."""
    from autosample_ext.experiment.config import RunConfig
    from autosample_ext.experiment.phases import build_model, build_sampler, name_stream, seed_for
    from autosample_ext.training import SamplerObjective, Trainer

    out.mkdir(parents=True, exist_ok=True)
    planted_data, planted = plant_false_negatives(data, plant_seed)
    ordinary = ordinary_negatives(data, planted, plant_seed)
    users = torch.nonzero(planted >= 0).flatten()
    non_positive = data.num_items - planted_data.train.degrees()
    cfg = RunConfig(protocol="gdns", sampler=tuple(samplers), seeds=(seed,), progress=progress)
    cfg = dataclasses.replace(cfg.resolved(), epochs=epochs, patience=0)
    result: dict[str, Any] = {
        "data": data.name, "users_with_planted": int(users.numel()), "epochs": epochs,
        "seed": seed, "plant_seed": plant_seed, "settings": {
            k: getattr(cfg, k) for k in ("model", "dim", "optimizer", "lr", "batch_size", "l2",
                                         "split", "eval_protocol", "metric")},
        "sampler_options": cfg.sampler_options, "bins": BINS.tolist(), "samplers": {}}
    for name in samplers:
        model = build_model(cfg, planted_data, seed)
        inner = build_sampler(name, planted_data, seed_for(seed, 100, name_stream(name)),
                              cfg.device, options=cfg.sampler_options)
        probe = SelectionProbe(inner, planted, non_positive)
        snaps: dict[int, dict[str, Any]] = {}

        def on_epoch(entry: dict[str, Any], probe=probe, inner=inner, model=model,
                     snaps=snaps) -> None:
            epoch = int(entry["epoch"])
            c = probe.epochs.get(epoch - 1, EpochCounts())
            log.info("%s epoch %d: planted selection rate %.2e (lift %.2f), valid %s",
                     entry["run"], epoch, c.planted / max(c.selected, 1),
                     c.planted / max(c.expected_uniform, 1e-12),
                     {k: round(v, 4) for k, v in entry.get("valid", {}).items()})
            if getattr(inner, "table", None) is not None and epoch in snapshot_epochs:
                p = snapshot(model, inner, planted_data, users, planted[users])
                o = snapshot(model, inner, planted_data, users, ordinary[users])
                snaps[epoch] = {"h_planted": p["h"], "h_ordinary": o["h"],
                                "g_planted": p["g"], "g_ordinary": o["g"]}
            probe.epoch = epoch

        trainer = Trainer(planted_data, model, SamplerObjective(probe, l2=cfg.l2),
                          cfg.train_config(seed), on_epoch=on_epoch, tag=f"fn/{name}")
        fit = trainer.fit()
        entry = {"epochs": {str(e + 1): c.to_json() for e, c in sorted(probe.epochs.items())},
                 "valid_best": fit.valid, "test_at_best": fit.test, "best_epoch": fit.best_epoch,
                 "valid_curve": [x.get("valid", {}).get(cfg.metric) for x in fit.log],
                 "gain": [{k: v for k, v in x.items() if k.startswith("gdns_")} for x in fit.log]}
        if snaps:
            # the statistics and the histograms (counts over "bins"): the figures can be drawn
            # again from this JSON without training
            entry["snapshots"] = {
                str(e): {k: {**_describe(v), "counts": np.histogram(np.clip(v, 0, 1), BINS)[0].tolist()}
                         for k, v in s.items() if v is not None}
                for e, s in sorted(snaps.items())}
            np.savez_compressed(out / f"snapshots_{name}.npz",
                                **{f"e{e}_{k}": v for e, s in snaps.items()
                                   for k, v in s.items() if v is not None})
            write_density_plot(snaps, probe.epochs, out / "densities.png")
        result["samplers"][name] = entry
    write_selection_plot(result, out / "selection.png")
    (out / "false_negatives.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(render_report(result))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autosample_ext.experiment.false_negatives",
                                description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--data", required=True, help="dataset (GDNS protocol: re-split leave-one-out)")
    p.add_argument("--format", default=None)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samplers", default="gdns,rns,dns",
                   help="samplers to compare (gdns gives the H / G densities) [default: gdns,rns,dns]")
    p.add_argument("--epochs", type=int, default=20, help="epochs per sampler [default: 20]")
    p.add_argument("--seed", type=int, default=0, help="training seed [default: 0]")
    p.add_argument("--split-seed", type=int, default=0, help="leave-one-out split seed [default: 0]")
    p.add_argument("--plant-seed", type=int, default=0, help="which positives are planted [default: 0]")
    p.add_argument("--snapshot-epochs", default=None,
                   help="epochs of the H/G population snapshots [default: 1, 25%%, 50%%, last]")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--no-progress", action="store_true")
    ns = p.parse_args(argv)
    refused = single_process_error(p.prog, "start it with python, not torchrun")
    if refused:
        print(refused, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if ns.epochs < 1:
        p.error(f"--epochs: must be >= 1, got {ns.epochs}")
    from autosample_ext.samplers.registry import sampler_names

    names = [s.strip().lower() for s in ns.samplers.split(",") if s.strip()]
    bad = [s for s in names if s not in sampler_names()]
    if not names or bad:
        p.error(f"--samplers: unknown sampler(s) {bad}; known: {', '.join(sampler_names())}")
    if ns.snapshot_epochs:
        try:
            snaps = sorted({int(x) for x in ns.snapshot_epochs.split(",")})
        except ValueError:
            p.error(f"--snapshot-epochs: expected comma-separated integers, got {ns.snapshot_epochs!r}")
        if snaps[0] < 1 or snaps[-1] > ns.epochs:
            p.error(f"--snapshot-epochs: values must be in [1, {ns.epochs}]")
    else:
        snaps = sorted({1, max(1, ns.epochs // 4), max(1, ns.epochs // 2), ns.epochs})
    if ns.threads:
        torch.set_num_threads(ns.threads)
    from autosample_ext import data as D

    try:
        data = D.load(ns.data, ns.format, split="loo", seed=ns.split_seed, min_rating=4.0,
                      min_rating_optional=True)
        run_analysis(data, Path(ns.out), samplers=names, epochs=ns.epochs, seed=ns.seed,
                     plant_seed=ns.plant_seed, snapshot_epochs=snaps, progress=not ns.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    print((Path(ns.out) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
