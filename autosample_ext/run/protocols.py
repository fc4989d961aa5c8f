"""Protocols: the settings that reproduce a peer's experiments exactly (docs/protocols.md).

A protocol FIXES some :class:`~autosample_ext.run.config.RunConfig` fields (an explicit
value that differs is an error listing each one, never silently replaced), gives DEFAULT sampler
options (a ``--sampler-opt`` overrides them: the candidate pools are meant to be set), names the
samplers run when none is given, and says how results are reported.

* ``autosample`` (default): fixes nothing; the epoch is chosen on validation, test reported.
* ``dens``: the DENS code (Riwei-HEU/DENS ``main.py``, ``modules/LightGCN.py``,
  ``utils/helper.py`` @ 4c32d72) exactly: see :data:`DENS`.
* ``gdns``: the GDNS paper's setting (Zhu et al., WWW 2022, §4.1-4.3): see :data:`GDNS`.
* ``recbole``: RecBole 1.2.1's defaults for general recommenders with its BPR (MF) model:
  see :data:`RECBOLE`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from autosample_ext.search.strategies import STRATEGIES


@dataclass(frozen=True)
class Protocol:
    """name: ``--protocol`` value. fixed: RunConfig field -> the protocol's value.
    defaults: RunConfig field -> the protocol's value unless the run gives another (the GDNS
    paper tuned each sampler's learning rate, so ``--lr`` is a default there, not fixed).
    sampler_defaults: sampler -> option -> value, applied to the samplers a run trains unless the
    user sets that option. default_samplers: trained when neither ``--sampler`` nor a search /
    grid is asked for (None: the AutoSample pipeline). best_test: no validation split, the best
    test value over evaluations is reported (DENS). modes: the run modes it allows.
    table: the metric columns of ``table.md`` (None: R/N/P/H@K at the first cut-off).
    notes: what the protocol does beyond its fixed fields, and where it knowingly differs from
    the peer (docs/protocols.md, ``--help``)."""

    name: str
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sampler_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_samplers: tuple[str, ...] | None = None
    best_test: bool = False
    modes: tuple[str, ...] = (*STRATEGIES, "single", "compare")
    table: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()


AUTOSAMPLE = Protocol(
    "autosample",
    "the AutoSample paper's setting and this tool's defaults: nothing fixed; random 3:1:1 split "
    "per user, the epoch chosen on validation, test metrics at that epoch")

# DENS code: parser.py defaults (epoch 1000, batch 2048, dim 64, l2 1e-4, lr 1e-3, n_negs 6,
# context_hops 3, pool mean, Ks [20]); main.py (train on all of train.txt, `while s + B <= n`
# drops the last partial batch, test when the 0-based epoch % 5 == 0, early_stopping(recall@20,
# flag_step=10) with `>=` counting as improvement, best recall reported); LightGCN.py (Xavier-
# uniform init, L2 = l2 * (|u0|^2 + |i0|^2 + |j0|^2) / 2 / B: its 1e-4 is our 5e-5).
DENS = Protocol(
    "dens",
    "the DENS code exactly: LightGCN 3 layers, dim 64, Xavier init, Adam 1e-3, batch 2048 "
    "(last partial batch dropped), DENS's L2 1e-4 (= our 5e-5), given train/test files, up to "
    "1000 epochs, test after epochs 1, 6, 11, ..., stop after 10 tests without improvement (a "
    "tie counts as one), best test Recall@20 reported; DNS/MixGCF pool 6 (DENS's default "
    "n_negs) unless --sampler-opt sets it",
    fixed=dict(model="lightgcn", layers=3, dim=64, init="xavier", optimizer="adam", lr=1e-3,
               batch_size=2048, drop_last=True, l2=5e-5, split="given", epochs=1000,
               eval_every=5, eval_start=1, patience=10, ties_improve=True, metric="recall@20",
               ks=(20,), eval_protocol="full", min_rating=None, valid_fraction=None,
               num_negatives=1),
    sampler_defaults={"dns": {"num_candidates": 6, "top_k": 1},
                      "mixgcf": {"num_candidates": 6, "hop_score": "pooled",
                                 "l2_target": "mixed"}},
    default_samplers=("rns", "dns", "mixgcf"),
    best_test=True,
    modes=("single", "grid"),
    notes=(
        "no validation split: the reported metrics are those of the test evaluation with the "
        "best Recall@20 (the later one on a tie), as DENS prints them",
        "the per-epoch loss in log.jsonl is the mean over the epoch's steps; DENS prints the sum "
        "(multiply by the steps per epoch, floor(train pairs / 2048), to compare)",
        "MixGCF's L2 term covers the layer-0 slice of the synthesised negative, as DENS's "
        "code (mixgcf.l2_target=mixed; the library default regularises the chosen candidate)",
    ))

# GDNS paper §4.1-4.3: positives = ratings >= 4; leave-one-out with 100 sampled negatives per
# test (and validation) positive; GMF, d = 32; AdaGrad; N = 32, margin 1, alpha 0.2; batch 1024;
# model selection on NDCG@3 with early stopping; NDCG@1 / NDCG@3 / Recall@3 reported; every
# method's learning rate tuned on validation over {0.01, 0.03, 0.09, 0.3, 1.0}
# (autosample_ext/studies/gdns_lr_sweep.py), 0.09 for GDNS.
GDNS = Protocol(
    "gdns",
    "the GDNS paper's setting: ratings >= 4 as positives (where the data has ratings), "
    "leave-one-out test and validation with 100 fixed sampled negatives, GMF dim 32, AdaGrad "
    "(lr 0.09 unless --lr: the paper tunes it per method), batch 1024, no L2, GDNS N = 32, "
    "margin 1, alpha 0.2, each user once per epoch in batches of 1024 users, model selection on "
    "validation NDCG@3 (every epoch, patience 10, at most 1000 epochs), test NDCG@1 / NDCG@3 / "
    "Recall@3 reported",
    fixed=dict(model="gmf", dim=32, init=None, batch_size=1024,
               drop_last=False, split="loo", min_rating=4.0,
               eval_every=1, eval_start=None, patience=10, ties_improve=False,
               metric="ndcg@3", ks=(1, 3), eval_protocol="sampled", num_negatives=1),
    defaults=dict(optimizer="adagrad", lr=0.09, l2=0.0, epochs=1000),
    sampler_defaults={"gdns": {"group_size": 32, "margin": 1.0, "alpha": 0.2,
                               "num_candidates": 64}},
    default_samplers=("gdns", "rns", "dns", "srns"),
    table=("ndcg@1", "ndcg@3", "recall@3"),
    notes=(
        "ratings >= 4: applied when the data has a rating column; otherwise every interaction is "
        "a positive and the run says so (a warning, and config.json's data.min_rating_applied)",
        "the held-out items are the latest by timestamp when the data has timestamps, else "
        "random; validation and test share each user's 100 negatives, drawn once (seeded by "
        "--split-seed) from the items the user never interacted with",
        "GDNS trains the paper's loop: an epoch gives every user one group of N positives (all "
        "of them plus draws with replacement when it has fewer) and N negatives (the top N by "
        "gain of M = 64 uniform candidates), batches of 1024 users, the group-wise hinge loss, "
        "the exact gain (a dense users x items table) when it fits gdns.max_table_bytes; the "
        "other samplers train with BPR on batches of 1024 (user, positive) pairs, one negative "
        "per pair",
        "the optimiser, learning rate, L2 and epoch cap are defaults, not fixed: the paper tuned "
        "each method's learning rate on validation (autosample_ext/studies/gdns_lr_sweep.py does), and SRNS's "
        "own setting is --optimizer adam --lr 0.001 --l2 0.01",
        "not stated in the settings cited, chosen here: no L2 term, the model's default init "
        "(N(0, 0.1^2)), GDNS's M = 64 candidates, patience 10, at most 1000 epochs (GDNS's "
        "epoch is 6 steps of 1024 users on ml-1m: it needs hundreds)",
    ))

# RecBole 1.2.1: properties/overall.yaml (epochs 300, train_batch_size 2048, adam, lr 0.001,
# uniform 1 negative, eval_step 1, stopping_step 10, weight_decay 0, split RS [0.8, 0.1, 0.1]
# grouped by user with random order, full ranking, metrics Recall/MRR/NDCG/Hit/Precision @10,
# valid_metric MRR@10), model/BPR.yaml (embedding_size 64), model/general_recommender/bpr.py
# (xavier_normal init, BPRLoss, no reg), utils/utils.py early_stopping (`>=` resets, stop when
# more than stopping_step evaluations did not improve), data/dataset.py _calcu_split_ids.
RECBOLE = Protocol(
    "recbole",
    "RecBole's defaults with its BPR model: MF dim 64, Xavier-normal init, Adam 1e-3, batch "
    "2048, no L2, per-user random 8:1:1 split with RecBole's rounding (valid and test floored), "
    "validation every epoch on MRR@10, stop when it has not improved for more than 10 "
    "evaluations (a tie counts as an improvement), at most 300 epochs, test Recall / MRR / "
    "NDCG / Hit / Precision @10 at the best validation epoch",
    fixed=dict(model="mf", dim=64, init="xavier_normal", optimizer="adam", lr=1e-3,
               batch_size=2048, drop_last=False, l2=0.0, split="8:1:1", split_rounding="floor",
               min_rating=None, epochs=300, eval_every=1, eval_start=None, patience=11,
               ties_improve=True, metric="mrr@10", ks=(10,), eval_protocol="full",
               num_negatives=1),
    default_samplers=("rns",),
    table=("recall@10", "mrr@10", "ndcg@10", "hit@10", "precision@10"),
    notes=(
        "patience 11 in this tool's terms (stop at the 11th evaluation without improvement) is "
        "RecBole's stopping_step 10 (stop when cur_step > 10)",
        "validation ranks exclude the user's train items, test ranks exclude train and "
        "validation items, users without an item in the split are skipped (as RecBole's "
        "full-sort evaluation)",
        "RecBole's BPRLoss is -log(1e-10 + sigmoid(x)); ours is softplus(-x) (the same up to "
        "1e-10); the split's random subsets come from this tool's seeded stream, not RecBole's",
    ))

PROTOCOL_SPECS: dict[str, Protocol] = {p.name: p for p in (AUTOSAMPLE, DENS, GDNS, RECBOLE)}
PROTOCOLS: tuple[str, ...] = tuple(PROTOCOL_SPECS)


def protocol_spec(name: str) -> Protocol:
    try:
        return PROTOCOL_SPECS[name]
    except KeyError:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {name!r}") from None


def flag(field_name: str) -> str:
    """The CLI option of a RunConfig field."""
    return "--" + field_name.replace("_", "-")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class ProtocolConflict(ValueError):
    """Explicit settings that the chosen protocol fixes to other values."""

    def __init__(self, protocol: str, conflicts: list[tuple[str, Any, Any]]) -> None:
        self.protocol = protocol
        self.conflicts = conflicts
        listed = "; ".join(f"{flag(name)} {_plain(given)} (the protocol fixes {_plain(fixed)})"
                           for name, given, fixed in conflicts)
        super().__init__(f"--protocol {protocol} fixes settings you gave other values: {listed}. "
                         f"Remove them, or use --protocol autosample to choose every setting")


def find_conflicts(protocol: Protocol, values: Mapping[str, Any],
                   explicit: set[str]) -> list[tuple[str, Any, Any]]:
    """``(field, given, fixed)`` for every explicit field whose value differs from the
    protocol's (tuples and lists compare by content, numbers by value)."""
    out = []
    for name, fixed in protocol.fixed.items():
        if name not in explicit:
            continue
        given = values[name]
        same = (tuple(given) == tuple(fixed)) if isinstance(fixed, tuple) else given == fixed
        if not same:
            out.append((name, given, fixed))
    return out


_NONE = {"init": "the model's, N(0, 0.1²)", "min_rating": "all positives",
         "eval_start": "E, 2E, …, last", "valid_fraction": "none drawn"}


def _cell(value: Any, name: str = "") -> str:
    if value is None:
        return _NONE.get(name, "–")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def settings_table(names: tuple[str, ...] = ("dens", "gdns", "recbole")) -> str:
    """The markdown table of every setting the protocols fix (docs/protocols.md; a test keeps
    the two equal). Rows: the RunConfig fields (as CLI options; "(default)": the protocol's
    value unless the run gives one), the sampler option defaults, the default samplers, what is
    reported."""
    specs = [PROTOCOL_SPECS[n] for n in names]
    fields: list[str] = []
    for spec in specs:
        fields += [f for f in [*spec.fixed, *spec.defaults] if f not in fields]

    def cell(spec: Protocol, name: str) -> str:
        if name in spec.fixed:
            return _cell(spec.fixed[name], name)
        if name in spec.defaults:
            return _cell(spec.defaults[name], name) + " (default)"
        return "n/a"

    lines = ["| setting | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for name in fields:
        lines.append(f"| `{flag(name)}` | " + " | ".join(cell(spec, name) for spec in specs) + " |")
    samplers = sorted({s for spec in specs for s in spec.sampler_defaults})
    for sampler in samplers:
        keys = sorted({k for spec in specs for k in spec.sampler_defaults.get(sampler, {})})
        for key in keys:
            cells = [_cell(spec.sampler_defaults.get(sampler, {}).get(key, None))
                     if key in spec.sampler_defaults.get(sampler, {}) else "(library default)"
                     for spec in specs]
            lines.append(f"| `--sampler-opt {sampler}.{key}` (default) | " + " | ".join(cells) + " |")
    lines.append("| samplers when none is named | "
                 + " | ".join(_cell(spec.default_samplers) for spec in specs) + " |")
    lines.append("| reported | " + " | ".join(
        "best test value over evaluations" if spec.best_test
        else "test at the best validation epoch" for spec in specs) + " |")
    return "\n".join(lines) + "\n"
