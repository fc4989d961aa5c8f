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
    propagation: str = "ops"
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        self.search_space = tuple(self.search_space)
        self.sampler = tuple(self.sampler)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.ks = tuple(int(k) for k in self.ks)
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
