"""The GDNS paper's false-negative analysis (§4.6, Figure 5) as a command.

    python -m autosample_ext.studies.false_negatives --data ../shared/data/ml-1m \\
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
counts, the snapshot statistics and histograms, the settings), ``densities.png`` (H and G,
planted vs ordinary, over training), ``selection.png`` (planted selection lift per epoch per
sampler), ``report.md`` (the table of rates and the reading). The figures and the report are
drawn from the JSON alone: ``--report-only --out DIR`` (or ``--from-json FILE``) redraws them
for an earlier analysis. The command line's checks: :mod:`.false_negatives_cli`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.report.false_negatives import BINS, histogram, write_outputs
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler

if TYPE_CHECKING:
    from autosample_ext.run.config import RunConfig

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

    def active(self, ctx: SampleContext) -> SelectionProbe:
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


def analysis_config(samplers: Sequence[str], seed: int, epochs: int,
                    progress: bool = False) -> RunConfig:
    """The settings every sampler of the analysis trains with: the GDNS protocol's, for
    ``epochs`` epochs without early stopping."""
    from autosample_ext.run.config import RunConfig

    cfg = RunConfig(protocol="gdns", sampler=tuple(samplers), seeds=(seed,), progress=progress)
    return dataclasses.replace(cfg.resolved(), epochs=epochs, patience=0)


def run_analysis(data: InteractionData, out: Path, *, samplers: Sequence[str], epochs: int,
                 seed: int, plant_seed: int, snapshot_epochs: Sequence[int],
                 progress: bool = False) -> dict[str, Any]:
    """Plant, train every sampler, write the outputs; returns the JSON written."""
    from autosample_ext.run.phases import build_model
    from autosample_ext.search.records import name_stream, seed_for
    from autosample_ext.samplers.registry import build_sampler
    from autosample_ext.search.space import parse_candidate
    from autosample_ext.training import SamplerObjective, Trainer

    out.mkdir(parents=True, exist_ok=True)
    planted_data, planted = plant_false_negatives(data, plant_seed)
    ordinary = ordinary_negatives(data, planted, plant_seed)
    users = torch.nonzero(planted >= 0).flatten()
    non_positive = data.num_items - planted_data.train.degrees()
    cfg = analysis_config(samplers, seed, epochs, progress)
    result: dict[str, Any] = {
        "data": data.name, "users_with_planted": int(users.numel()), "epochs": epochs,
        "seed": seed, "plant_seed": plant_seed, "settings": {
            k: getattr(cfg, k) for k in ("model", "dim", "optimizer", "lr", "batch_size", "l2",
                                         "split", "eval_protocol", "metric")},
        "sampler_options": cfg.sampler_options, "bins": BINS.tolist(), "samplers": {}}
    for name in samplers:
        model = build_model(cfg, planted_data, seed)
        inner = build_sampler(parse_candidate(name), planted_data,
                              seed_for(seed, 100, name_stream(name)), cfg.device,
                              options=cfg.sampler_options)
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
        if snaps:  # quantiles and the histogram (BINS), so the figures redraw from the JSON
            entry["snapshots"] = {
                str(e): {k: {**_describe(v), "hist": histogram(v)} for k, v in s.items()
                         if v is not None}
                for e, s in sorted(snaps.items())}
            np.savez_compressed(out / f"snapshots_{name}.npz",
                                **{f"e{e}_{k}": v for e, s in snaps.items()
                                   for k, v in s.items() if v is not None})
        result["samplers"][name] = entry
    result["bins"] = BINS.tolist()
    (out / "false_negatives.json").write_text(json.dumps(result, indent=2) + "\n")
    write_outputs(result, out)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (:mod:`autosample_ext.studies.false_negatives_cli`)."""
    from autosample_ext.studies.false_negatives_cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
