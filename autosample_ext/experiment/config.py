"""The configuration of a run (``config.json``): data, model, what to run, training settings,
and the protocols' fixed settings."""
from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from autosample_ext.data.splits import SPLIT_ROUNDINGS
from autosample_ext.experiment.protocols import (
    DENS,
    PROTOCOLS,
    ProtocolConflict,
    find_conflicts,
    protocol_spec,
)
from autosample_ext.models._init import INIT_SCHEMES
from autosample_ext.search.retrain import RETRAIN_INITS
from autosample_ext.training.config import EVAL_PROTOCOLS, OPTIMIZERS, TrainConfig

log = logging.getLogger(__name__)

DEFAULT_SEARCH_SPACE: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
MODELS: tuple[str, ...] = ("mf", "gmf", "lightgcn", "ngcf")

# Kept for callers of the earlier API: the DENS protocol's fixed settings and samplers
# (autosample_ext.experiment.protocols.DENS holds the whole protocol).
DENS_SETTINGS: dict[str, Any] = dict(DENS.fixed)
DENS_DEFAULT_SAMPLERS: tuple[str, ...] = tuple(DENS.default_samplers or ())


@dataclass
class RunConfig:
    """Everything that defines a run (``config.json`` holds the resolved values).

    Modes: ``sampler`` set -> those samplers alone ("single"); ``grid`` -> every candidate of
    ``search_space`` alone, best by validation; ``compare`` -> AutoSample and every candidate
    alone (the paper's comparison table, t-test); otherwise AutoSample search + retrain.
    ``protocol``: ``autosample`` (default, fixes nothing), ``dens``, ``gdns`` or ``recbole``
    (:mod:`autosample_ext.experiment.protocols`): :meth:`resolved` applies the protocol's fixed
    settings, and raises :class:`ProtocolConflict` for explicit values that differ from them.

    ``sampler_options``: ``{sampler: {option field: value}}`` (``--sampler-opt dns.num_candidates=8``),
    validated against each sampler's options dataclass; they apply wherever that sampler is
    trained (alone, as a search candidate, in the grid). ``resolved()`` adds the protocol's
    defaults for the samplers of the run, so ``config.json`` holds the values used.
    Training-loop fields (see :class:`~autosample_ext.training.TrainConfig`): ``optimizer``,
    ``eval_start``, ``drop_last``, ``ties_improve``, ``eval_protocol`` (``"sampled"`` needs the
    leave-one-out split); data fields: ``split_rounding`` (``"floor"``: RecBole's sizes),
    ``min_rating``.
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
    sampler_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer: str = "adam"
    eval_start: int | None = None
    drop_last: bool = False
    ties_improve: bool = False
    eval_protocol: str = "full"
    split_rounding: str = "half_up"
    min_rating: float | None = None

    def __post_init__(self) -> None:
        for name in ("search_space", "sampler", "seeds", "ks"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a sequence, got the string {getattr(self, name)!r}")
        self.search_space = tuple(self.search_space)
        self.sampler = tuple(self.sampler)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.ks = tuple(int(k) for k in self.ks)
        from autosample_ext.samplers.registry import check_sampler_options

        self.sampler_options = check_sampler_options(self.sampler_options)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.eval_protocol not in EVAL_PROTOCOLS:
            raise ValueError(f"eval_protocol must be one of {EVAL_PROTOCOLS}, got {self.eval_protocol!r}")
        if self.split_rounding not in SPLIT_ROUNDINGS:
            raise ValueError(f"split_rounding must be one of {SPLIT_ROUNDINGS}, got {self.split_rounding!r}")
        if self.eval_start is not None and self.eval_start < 1:
            raise ValueError(f"eval_start must be None or >= 1, got {self.eval_start}")
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

    def explicit_fields(self) -> set[str]:
        """The fields whose value differs from the dataclass default (what a library caller
        evidently chose; the CLI passes the options actually given instead)."""
        default = RunConfig()
        return {f.name for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def trained_samplers(self) -> tuple[str, ...]:
        """Every sampler this run trains, in order (alone, as candidates, in the grid)."""
        names = self.sampler if self.mode == "single" else self.search_space
        return tuple(dict.fromkeys(names))

    def resolved(self, explicit: Iterable[str] | None = None) -> "RunConfig":
        """The config with the protocol applied: its fixed settings, its default samplers (when
        no sampler, search space, grid or comparison is asked for), its sampler option defaults
        for the samplers of the run (explicit ``sampler_options`` win).

        ``explicit``: the fields the user set (the CLI's given options); default
        :meth:`explicit_fields` (a library caller who sets a fixed field to the dataclass
        default cannot be told from one who left it: that value is replaced, and logged).
        An explicit value that differs from a fixed one raises :class:`ProtocolConflict`
        listing each. Idempotent. Also checks what only the resolved
        config can tell: the mode is allowed, every ``sampler_options`` entry names a sampler of
        the run, the sampled evaluation has the leave-one-out split it needs.
        """
        spec = protocol_spec(self.protocol)
        given = set(self.explicit_fields() if explicit is None else explicit)
        conflicts = find_conflicts(spec, {f.name: getattr(self, f.name)
                                          for f in dataclasses.fields(self)}, given)
        if conflicts:
            raise ProtocolConflict(self.protocol, conflicts)
        changes: dict[str, Any] = dict(spec.fixed)
        if spec.default_samplers and not (self.sampler or self.grid or self.compare
                                          or "search_space" in given):
            changes["sampler"] = spec.default_samplers
        replaced = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if replaced:
            log.info("--protocol %s sets %s", self.protocol,
                     ", ".join(f"{k}={v!r}" for k, v in replaced.items()))
        out = dataclasses.replace(self, **changes)
        if out.mode not in spec.modes:
            raise ValueError(f"--protocol {self.protocol} does not allow the {out.mode} mode "
                             f"(allowed: {', '.join(spec.modes)})"
                             + ("; it has no validation split to search on" if spec.best_test
                                else ""))
        trained = out.trained_samplers()
        unused = [n for n in out.sampler_options if n not in trained]
        if unused:
            opts = ", ".join(f"{n}.{k}" for n in unused for k in out.sampler_options[n])
            raise ValueError(f"--sampler-opt {opts}: sampler {', '.join(map(repr, unused))} is not "
                             f"trained in this run (samplers: {', '.join(trained)})")
        options = {n: dict(d) for n, d in spec.sampler_defaults.items() if n in trained}
        for n, d in out.sampler_options.items():
            options.setdefault(n, {}).update(d)
        out.sampler_options = options
        from autosample_ext.samplers.registry import check_sampler_options

        check_sampler_options(out.sampler_options)
        if out.eval_protocol == "sampled" and out.split != "loo":
            raise ValueError(f"--eval-protocol sampled needs the leave-one-out split with its fixed "
                             f"negatives (--split loo), got --split {out.split}")
        if out.eval_start is not None and out.eval_start > out.epochs:
            raise ValueError(f"--eval-start {out.eval_start} is after the last epoch "
                             f"(--epochs {out.epochs}): nothing would be evaluated")
        return out

    @property
    def best_test(self) -> bool:
        """The protocol has no validation split: the best test value is reported (DENS)."""
        return protocol_spec(self.protocol).best_test

    def sampler_kwargs(self, name: str) -> dict[str, Any]:
        """The options of sampler ``name`` in this run (keyword arguments of ``build_sampler``)."""
        return dict(self.sampler_options.get(name, {}))

    def train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr,
                           l2=self.l2, eval_every=self.eval_every, patience=self.patience,
                           metric=self.metric, ks=self.ks,
                           eval_split="test" if self.best_test else "valid",
                           seed=seed, progress=self.progress, optimizer=self.optimizer,
                           eval_start=self.eval_start, drop_last=self.drop_last,
                           ties_improve=self.ties_improve, eval_protocol=self.eval_protocol)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ValueError(f"config.json has unknown keys {unknown}")
        return cls(**obj)
