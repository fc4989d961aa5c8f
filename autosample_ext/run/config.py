"""The configuration of a run (``config.json``): data, model, what to run, training settings,
and the protocols' fixed settings."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from autosample_ext.run.fields import as_candidates, as_ints, as_names
from autosample_ext.run.protocols import (
    PROTOCOLS,
    ProtocolConflict,
    find_conflicts,
    protocol_spec,
)
from autosample_ext.models import MODEL_NAMES
from autosample_ext.models._init import INIT_SCHEMES
from autosample_ext.models.lightgcn import PROPAGATIONS
from autosample_ext.search.autosample import SearchConfig
from autosample_ext.search.halving import HalvingConfig
from autosample_ext.search.probes import ProbeConfig
from autosample_ext.search.retrain import RETRAIN_INITS
from autosample_ext.search.records import ALPHA_OBJECTIVES
from autosample_ext.search.strategies import STRATEGIES
from autosample_ext.training.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_SEARCH_SPACE: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
#: search strategies (the names of :data:`~autosample_ext.search.strategies.STRATEGIES`): the
#: paper's AutoSample (default), successive halving, grid search
SEARCHES: tuple[str, ...] = tuple(STRATEGIES)
#: after a race: off, or the winner's best state trained on with a harder candidate
SH_CURRICULA: tuple[str, ...] = ("off", "harder")
#: the race settings of a run saved before they existed (config.json without them): that run
#: raced with the classic rule, so it resumes with it
SH_LEGACY: dict[str, Any] = {"sh_rule": "halving", "sh_catch_up_se": 0.0, "sh_brackets": 1,
                             "sh_bootstrap_users": 0, "sh_curriculum": "off"}



@dataclass
class RunConfig:
    """Everything that defines a run (``config.json`` holds the resolved values).

    Modes: ``sampler`` set -> those samplers alone ("single"); ``search="grid"`` (or
    ``grid=True``, its synonym) -> every candidate of ``search_space`` alone, best by
    validation; ``search="sh"`` -> successive halving over the candidates; ``compare`` ->
    AutoSample, successive halving, every candidate alone and every candidate continued to
    AutoSample's total epochs (``budget_singles``), with the paired t-tests; otherwise
    (``search="autosample"``) AutoSample search + retrain. Sampler names may be schedules
    (``aobpr@5+dns``). ``num_negatives`` is the negatives per positive of single-sampler runs
    (singles, grid, successive halving; the paper's Table 4 baselines); the AutoSample search
    and its retraining use one per candidate.
    ``protocol``: ``autosample`` (default, fixes nothing), ``dens``, ``gdns`` or ``recbole``
    (:mod:`autosample_ext.run.protocols`): :meth:`resolved` applies the protocol's fixed
    settings, and raises :class:`ProtocolConflict` for explicit values that differ from them.

    ``sampler_options``: ``{sampler: {option field: value}}`` (``--sampler-opt dns.num_candidates=8``),
    validated against each sampler's options dataclass; they apply wherever that sampler is
    trained (alone, inside a schedule, as a search or racing candidate, in the grid, in the
    retrain). ``resolved()`` adds the protocol's defaults for the samplers of the run, so
    ``config.json`` holds the values used.
    Training-loop fields (see :class:`~autosample_ext.training.TrainConfig`): ``optimizer``,
    ``eval_start``, ``drop_last``, ``ties_improve``, ``eval_protocol`` (``"sampled"`` needs the
    leave-one-out split), ``engine`` (``"fused"``: MF / GMF with RNS, PNS, DNS or AOBPR train
    with the fused operator, everything else with autograd; ``"autograd"``: all with autograd);
    data fields: ``split_rounding`` (``"floor"``: RecBole's sizes), ``min_rating``.
    """

    data: str | None = None
    format: str | None = None
    split: str = "3:1:1"
    split_seed: int = 0
    valid_fraction: float | None = None   # None: 0.1 when the split has no validation pairs
    remap: bool | None = None             # None: the format's default (see data.LoadOptions)
    user_col: str | None = None           # CSV/TSV/.inter column names (None: detected)
    item_col: str | None = None
    model: str = "mf"
    dim: int = 64
    layers: int = 3
    init: str | None = None
    search_space: tuple[str, ...] = DEFAULT_SEARCH_SPACE
    sampler: tuple[str, ...] = ()
    grid: bool = False
    compare: bool = False
    search: str = "autosample"
    sh_first_rung: int = 4
    sh_eta: int = 2
    sh_tie_se: float = 2.0
    sh_tie_anchor: str = "best"
    sh_rule: str = "race"
    sh_catch_up_se: float = 2.0
    sh_brackets: int = 1
    sh_bootstrap_users: int = 2000
    sh_curriculum: str = "off"
    num_negatives: int = 1
    budget_singles: bool = True
    retrain_init: str = "searched"
    epochs: int = 300
    retrain_epochs: int | None = None
    patience: int = 10
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
    propagation: str = "ops"
    checkpoint_every: int | None = None
    engine: str = "fused"
    # AutoSample's alpha objective and the validation-driven search's probes (probe_config())
    alpha_objective: str = "valid"
    alpha_step: float = 0.2
    probe_every: int | None = None
    probe_steps: int = 4
    probe_users: int = 2048
    # Set by resolved(): the protocol's defaults (Protocol.defaults) were applied once; a later
    # resolve (a resumed run's saved config) keeps the values then chosen.
    protocol_defaults_applied: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # every float setting, present and future
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        self.search_space = as_candidates(as_names(self.search_space, "search_space"), "search_space")
        self.sampler = as_candidates(as_names(self.sampler, "sampler"), "sampler")
        self.seeds = as_ints(self.seeds, "seeds")
        self.ks = as_ints(self.ks, "ks")
        from autosample_ext.samplers.registry import check_sampler_options

        try:  # each sampler's options dataclass checks its own fields
            self.sampler_options = check_sampler_options(self.sampler_options)
        except ValueError as exc:
            raise ValueError(f"sampler_options: {exc}") from None
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        self._check_data_fields()
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {self.propagation!r}")
        if self.init is not None and self.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES} or None, got {self.init!r}")
        if self.retrain_init not in RETRAIN_INITS:
            raise ValueError(f"retrain_init must be one of {RETRAIN_INITS}, got {self.retrain_init!r}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {list(self.seeds)}")
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {self.search!r}")
        if self.grid:
            if self.search not in ("autosample", "grid"):
                raise ValueError(f"--grid is --search grid; it contradicts --search {self.search}")
            self.search = "grid"
        if sum([bool(self.sampler), self.search != "autosample", self.compare]) > 1:
            raise ValueError("choose one of --sampler, --grid, --compare, --search sh|grid")
        try:  # the race's own rules; its fields are these without the sh_ prefix
            self.halving_config()
        except ValueError as exc:
            raise ValueError("sh_" + str(exc).removeprefix("successive halving: ")) from None
        self._check_space()
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {self.num_negatives}")
        for name in ("dim", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retrain_epochs is not None and self.retrain_epochs < 1:
            raise ValueError(f"retrain_epochs must be >= 1, got {self.retrain_epochs}")
        try:  # the training loop's own rules: epochs, batch_size, checkpoint_every, lr, metric, ...
            self.train_config(self.seeds[0])
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("train: ")) from None
        from autosample_ext.search.space import AUTO

        try:  # the AutoSample search's own rules: alpha_lr, tau, at least two candidates
            SearchConfig(candidates=(DEFAULT_SEARCH_SPACE if AUTO in self.search_space
                                     else self.search_space), alpha_lr=self.alpha_lr, tau=self.tau)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("search: ")
                             .replace("the search space needs", "search_space: needs")) from None
        if self.alpha_objective not in ALPHA_OBJECTIVES:
            raise ValueError(f"alpha_objective must be one of {', '.join(ALPHA_OBJECTIVES)}, "
                             f"got {self.alpha_objective!r}")
        try:  # the probes' own rules; their fields are these without the probe_/alpha_ prefix
            self.probe_config()
        except ValueError as exc:
            raise ValueError(str(exc).replace("probes: step_size", "alpha_step")
                             .replace("probes: ", "probe_")) from None

    def _check_data_fields(self) -> None:
        """``format``, ``split``, ``valid_fraction``, ``split_rounding`` by the data layer's own
        rules (the readers' names, the loader's options)."""
        from autosample_ext.data.loader import LoadOptions
        from autosample_ext.data.readers import canonical_format

        if self.format is not None:
            try:
                canonical_format(self.format)
            except ValueError as exc:
                raise ValueError(f"format: {exc}") from None
        try:
            LoadOptions(split=self.split, valid_fraction=self.valid_fraction,
                        split_rounding=self.split_rounding)
        except ValueError as exc:
            if not str(exc).startswith("split ratio"):
                raise
            raise ValueError(f"split: expected 'given', 'loo' or a ratio train:valid:test "
                             f"(e.g. 3:1:1) or train:test (e.g. 8:2) with train > 0 and "
                             f"test > 0, got {self.split!r}") from None

    def _check_space(self) -> None:
        """What only the mode can tell about the candidates: ``auto`` builds its schedules from
        a race's first rung (successive halving only), and AutoSample trains one model, so its
        candidates cannot have their own learning rate."""
        from autosample_ext.search.space import AUTO, parse_candidate

        if self.sh_curriculum not in SH_CURRICULA:
            raise ValueError(f"sh_curriculum must be one of {SH_CURRICULA}, "
                             f"got {self.sh_curriculum!r}")
        if AUTO in self.sampler:
            raise ValueError("sampler: 'auto' is a search space (--search sh --search-space auto)")
        if AUTO in self.search_space and self.mode != "sh":
            raise ValueError(f"search_space: 'auto' builds its schedules from the race's first "
                             f"rung; use it with --search sh (this run's mode is {self.mode})")
        if self.mode in ("autosample", "compare"):
            own = [n for n in self.search_space if n != AUTO and parse_candidate(n).lr is not None]
            if own:
                raise ValueError(f"search_space: candidate {own[0]!r} has its own learning rate; "
                                 f"the AutoSample search trains one model with --lr (use "
                                 f"--search sh or --search grid)")

    @property
    def mode(self) -> str:
        if self.sampler:
            return "single"
        if self.compare:
            return "compare"
        return self.search

    def explicit_fields(self) -> set[str]:
        """The fields whose value differs from the dataclass default (what a library caller
        evidently chose; the CLI passes the options actually given instead)."""
        default = RunConfig()
        return {f.name for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def trained_samplers(self) -> tuple[str, ...]:
        """Every sampler this run trains, in order (alone, as candidates, in the grid, inside a
        schedule such as ``aobpr@5+dns``)."""
        from autosample_ext.search.auto_space import AUTO_SAMPLERS
        from autosample_ext.search.space import AUTO, base_samplers

        names: list[str] = []
        for name in (self.sampler if self.mode == "single" else self.search_space):
            names += list(AUTO_SAMPLERS) if name == AUTO else list(base_samplers(name))
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
        the run, the sampled evaluation has the leave-one-out split it needs, an explicit
        ``valid_fraction`` has a split without validation pairs to serve, and
        :func:`~autosample_ext.run.validate.check_config` (the model serves every sampler, the
        sizes fit in memory): a config ``resolved()`` returns can run, data permitting.
        """
        spec = protocol_spec(self.protocol)
        given = set(self.explicit_fields() if explicit is None else explicit)
        if "valid_fraction" in given and spec.best_test:
            raise ValueError(f"--valid-fraction: the {self.protocol.upper()} protocol evaluates "
                             f"on test and has no validation split")
        conflicts = find_conflicts(spec, {f.name: getattr(self, f.name)
                                          for f in dataclasses.fields(self)}, given)
        if conflicts:
            raise ProtocolConflict(self.protocol, conflicts)
        changes: dict[str, Any] = dict(spec.fixed)
        if not self.protocol_defaults_applied:
            changes.update({k: v for k, v in spec.defaults.items() if k not in given})
            changes["protocol_defaults_applied"] = True
        if spec.default_samplers and not (self.sampler or self.search != "autosample"
                                          or self.compare or "search_space" in given):
            changes["sampler"] = spec.default_samplers
        replaced = {k: v for k, v in changes.items()
                    if getattr(self, k) != v and k != "protocol_defaults_applied"}
        if replaced:
            log.info("--protocol %s sets %s", self.protocol,
                     ", ".join(f"{k}={v!r}" for k, v in replaced.items()))
        out = dataclasses.replace(self, **changes)
        if spec.best_test and "alpha_objective" in given and out.alpha_objective == "valid":
            raise ValueError(f"--alpha-objective valid needs validation pairs to measure; "
                             f"--protocol {self.protocol} has no validation split (it evaluates "
                             f"on test)")
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
        out = dataclasses.replace(out, sampler_options=options)  # checked with the defaults
        if out.eval_protocol == "sampled" and out.split != "loo":
            raise ValueError(f"--eval-protocol sampled needs the leave-one-out split with its fixed "
                             f"negatives (--split loo), got --split {out.split}")
        if out.optimizer == "lazy_adam":
            from autosample_ext.run.engine import engine_plan

            plan = engine_plan(out)
            slow = [n for n, e in plan["samplers"].items() if e == "autograd"]
            slow += ["the AutoSample search"] if plan.get("search") == "autograd" else []
            if slow:
                raise ValueError(f"--optimizer lazy_adam: lazy Adam needs the fused engine, and "
                                 f"{', '.join(slow)} train(s) with autograd here "
                                 f"({plan['notice'] or '--engine autograd'}); use --optimizer adam")
        from autosample_ext.data.splits import has_valid_share

        if "valid_fraction" in given and (out.split == "loo" or has_valid_share(out.split)):
            raise ValueError(f"--valid-fraction {out.valid_fraction}: --split {out.split} already "
                             f"gives validation pairs; use a train:test ratio (e.g. 8:2) or "
                             f"--split given with it")
        from autosample_ext.run.validate import check_config

        check_config(out)  # what the model and the memory allow, whatever the data
        return out

    @property
    def best_test(self) -> bool:
        """The protocol has no validation split: the best test value is reported (DENS)."""
        return protocol_spec(self.protocol).best_test

    def sampler_kwargs(self, name: str) -> dict[str, Any]:
        """The options of sampler ``name`` in this run (keyword arguments of ``build_sampler``)."""
        return dict(self.sampler_options.get(name, {}))

    def probe_config(self) -> ProbeConfig:
        """The validation-driven search's probes and alpha step (``--alpha-objective valid``)."""
        return ProbeConfig(every=self.probe_every, steps=self.probe_steps, users=self.probe_users,
                           step_size=self.alpha_step)

    def halving_config(self) -> HalvingConfig:
        """The successive-halving race's settings (``--search sh``)."""
        return HalvingConfig(first_rung=self.sh_first_rung, eta=self.sh_eta, tie_se=self.sh_tie_se,
                             tie_anchor=self.sh_tie_anchor, rule=self.sh_rule,
                             catch_up_se=self.sh_catch_up_se, brackets=self.sh_brackets,
                             bootstrap_users=self.sh_bootstrap_users)

    def train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr,
                           l2=self.l2, eval_every=self.eval_every, patience=self.patience,
                           metric=self.metric, ks=self.ks,
                           eval_split="test" if self.best_test else "valid",
                           seed=seed, progress=self.progress, optimizer=self.optimizer,
                           eval_start=self.eval_start, drop_last=self.drop_last,
                           ties_improve=self.ties_improve, eval_protocol=self.eval_protocol,
                           checkpoint_every=self.checkpoint_every, engine=self.engine)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        obj = {"engine": "autograd", **obj}  # runs saved before the fused engine trained with autograd
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ValueError(f"config.json has unknown keys {unknown}")
        if "alpha_objective" not in obj:  # written before the option existed: the paper's alpha
            obj = {**obj, "alpha_objective": "train"}
        # a run saved before a setting existed ran without it
        return cls(**{**{k: v for k, v in SH_LEGACY.items() if k in names}, **obj})
