"""The configuration of a run (``config.json``): data, model, what to run, training settings,
and the protocols' fixed settings."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any

from autosample_ext.models._init import INIT_SCHEMES
from autosample_ext.models.lightgcn import PROPAGATIONS
from autosample_ext.search.retrain import RETRAIN_INITS
from autosample_ext.training.config import TrainConfig

DEFAULT_SEARCH_SPACE: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
PROTOCOLS: tuple[str, ...] = ("autosample", "dens")
#: search strategies: the paper's AutoSample (default), successive halving, grid search
SEARCHES: tuple[str, ...] = ("autosample", "sh", "grid")
MODELS: tuple[str, ...] = ("mf", "lightgcn", "ngcf")

# The DENS protocol (DENS repository; ../shared/data/README.md): LightGCN, 3 layers, dim 64,
# Adam 1e-3, batch 2048, L2 1e-4, train on all of train.txt, test every 5 epochs with train
# masked, best test value reported.
# The DENS code's L2 term is 0.5 * ||e||^2 / batch and ours is ||e||^2 / batch: its 1e-4 is our
# 5e-5. It initialises the embeddings Xavier-uniform (LightGCN's reference code: N(0, 0.1^2)).
DENS_SETTINGS: dict[str, Any] = dict(model="lightgcn", layers=3, dim=64, lr=1e-3, batch_size=2048,
                                     l2=5e-5, init="xavier", split="given", eval_every=5,
                                     ks=(20,))
DENS_DEFAULT_SAMPLERS: tuple[str, ...] = ("rns", "dns", "mixgcf")


def _names(value: Any, field: str) -> tuple[str, ...]:
    """Sampler names: a tuple/list of str, or one str (``"dns"``; ``"rns,dns"`` as on the CLI)."""
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{field}: expected a sampler name or a sequence of names, got "
                        f"{value!r}") from None
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"{field}: expected sampler names (str), got {bad[0]!r} in {value!r}")
    return names


def _ints(value: Any, field: str) -> tuple[int, ...]:
    """Integers: one int, a sequence of ints, or a comma-separated str (``"0,1,2"``)."""
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, (int, float)):
        value = [value]
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{field}: expected an int or a sequence of ints, got {value!r}") from None


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
    ``protocol="dens"`` replaces the split, model and schedule by :data:`DENS_SETTINGS`
    (evaluation on test, best test value; single / grid modes only, the samplers
    :data:`DENS_DEFAULT_SAMPLERS` when none is named).
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
    sh_first_rung: int = 3
    sh_eta: int = 2
    sh_tie_se: float = 2.0
    sh_tie_anchor: str = "last"
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
    propagation: str = "ops"
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        self.search_space = _names(self.search_space, "search_space")
        self.sampler = _names(self.sampler, "sampler")
        self.seeds = _ints(self.seeds, "seeds")
        self.ks = _ints(self.ks, "ks")
        if self.valid_fraction is not None and not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {self.propagation!r}")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
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
        if self.protocol == "dens" and self.search == "sh":
            raise ValueError("the DENS protocol has no validation split to race on; "
                             "use --sampler or --grid with it")
        if self.sh_first_rung < 1:
            raise ValueError(f"sh_first_rung must be >= 1, got {self.sh_first_rung}")
        if self.sh_eta < 2:
            raise ValueError(f"sh_eta must be >= 2, got {self.sh_eta}")
        if self.sh_tie_se < 0:
            raise ValueError(f"sh_tie_se must be >= 0, got {self.sh_tie_se}")
        if self.sh_tie_anchor not in ("last", "best"):
            raise ValueError(f"sh_tie_anchor must be 'last' or 'best', got {self.sh_tie_anchor!r}")
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {self.num_negatives}")
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
        if self.compare:
            return "compare"
        return self.search

    def resolved(self) -> "RunConfig":
        """The config with the protocol's fixed settings applied."""
        if self.protocol != "dens":
            return self
        changes = dict(DENS_SETTINGS)
        if not self.sampler and self.search != "grid":
            changes["sampler"] = DENS_DEFAULT_SAMPLERS
        return dataclasses.replace(self, **changes)

    def train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr,
                           l2=self.l2, eval_every=self.eval_every, patience=self.patience,
                           metric=self.metric, ks=self.ks,
                           eval_split="test" if self.protocol == "dens" else "valid",
                           seed=seed, progress=self.progress,
                           checkpoint_every=self.checkpoint_every)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ValueError(f"config.json has unknown keys {unknown}")
        return cls(**obj)
