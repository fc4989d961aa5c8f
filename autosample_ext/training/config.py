"""Settings and outcome of one training run, and the stop request of an interrupted one."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


OPTIMIZERS: tuple[str, ...] = ("adam", "adagrad", "sgd", "lazy_adam")
ENGINES: tuple[str, ...] = ("fused", "autograd")
EVAL_PROTOCOLS: tuple[str, ...] = ("full", "sampled")
FULL_METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit", "mrr")
SAMPLED_METRICS: tuple[str, ...] = ("ndcg", "recall")


@dataclass
class TrainConfig:
    """Settings of one training run (one model, one objective). The defaults equal
    ``RunConfig``'s, the command line's (a test keeps them equal), so a Trainer built by hand
    trains as ``python -m autosample_ext.train`` does.

    epochs: maximum number of epochs.
    batch_size: (user, positive) rows per step.
    lr: Adam learning rate of the model.
    l2: weight of the L2 term on the embeddings used in the batch (``Recommender.l2_regulariser``).
    divergence_factor: stop with :class:`~autosample_ext.training.guard.TrainingDiverged` when
        an epoch's mean loss is non-finite or above this factor times the first step's loss
        (at least 1); 0 keeps only the non-finite test (see :mod:`autosample_ext.training.guard`).
    eval_every: validate every E epochs (and after the last epoch).
    patience: stop after this many evaluations without improvement of ``metric``; 0 = never.
    metric: validation criterion, ``"<name>@<k>"`` with name in recall/ndcg/precision/hit.
    ks: cut-offs of the reported metrics (``metric``'s k must be among them).
    eval_split: ``"valid"`` (default: pick the epoch on validation, then test once) or
        ``"test"`` (DENS protocol: evaluate test with train masked, report the best test value).
    seed: data order, sampler streams and Gumbel noise derive from it.
    optimizer: ``"adam"`` (PyTorch defaults), ``"adagrad"`` (the GDNS paper's), ``"sgd"``, at
        ``lr``, on either engine with the same results; ``"lazy_adam"`` (lazy / sparse Adam:
        only the batch's rows are updated; docs/performance.md) needs the fused
        engine.
    engine: ``"fused"`` (default): MF / GMF with RNS, PNS, DNS or AOBPR train with the
        ``mf_bpr_train`` operator (training/fused.py); everything else, and ``"autograd"``,
        with autograd and a torch optimiser.
    eval_start: None = evaluate after epochs E, 2E, ... (E = ``eval_every``) and after the last
        epoch; N = evaluate after epochs N, N+E, N+2E, ... only (DENS: 1, 6, 11, ...: it tests
        when its 0-based epoch % 5 == 0), no extra evaluation after the last epoch.
    drop_last: drop the last partial batch of each epoch (DENS's ``while s + B <= n`` loop:
        ``floor(n / B)`` steps) instead of training on it (``ceil(n / B)`` steps).
    ties_improve: an evaluation equal to the best so far counts as an improvement (patience
        reset, the later epoch becomes the best), as DENS's and RecBole's early stopping do;
        default: only a strictly better value does.
    eval_protocol: ``"full"`` (full ranking over all items) or ``"sampled"`` (the test / valid
        item ranked among the dataset's fixed ``eval_negatives``: NDCG@K, Recall@K; GDNS/SRNS).
    checkpoint_every: epoch-end checkpoint cadence. None (default): after every epoch that
        evaluates; N >= 1: after every N-th epoch; 0: none at epoch ends. Whatever the cadence,
        a checkpoint is also written at the step boundary after a stop request and when the run
        ends; a run killed between checkpoints resumes from the last one and repeats the epochs
        since (the data order and the samplers' draws are functions of the seed and the step, so
        it still ends with the metrics of an uninterrupted run).
    """

    epochs: int = 300
    batch_size: int = 2048
    lr: float = 5e-3
    l2: float = 1e-4
    divergence_factor: float = 1e3
    eval_every: int = 1
    patience: int = 10
    metric: str = "recall@20"
    ks: tuple[int, ...] = (20,)
    eval_split: str = "valid"
    eval_batch_size: int = 1024
    seed: int = 0
    progress: bool = True
    optimizer: str = "adam"
    eval_start: int | None = None
    drop_last: bool = False
    ties_improve: bool = False
    eval_protocol: str = "full"
    checkpoint_every: int | None = None
    engine: str = "fused"

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        if self.engine not in ENGINES:
            raise ValueError(f"train: engine must be one of {ENGINES}, got {self.engine!r}")
        if self.epochs < 1:
            raise ValueError(f"train: epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"train: batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"train: lr must be > 0, got {self.lr}")
        if self.l2 < 0:
            raise ValueError(f"train: l2 must be >= 0, got {self.l2}")
        if not self.divergence_factor >= 0:
            raise ValueError(f"train: divergence_factor must be >= 0, got {self.divergence_factor}")
        if self.eval_every < 1:
            raise ValueError(f"train: eval_every must be >= 1, got {self.eval_every}")
        if self.patience < 0:
            raise ValueError(f"train: patience must be >= 0, got {self.patience}")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise ValueError(f"train: checkpoint_every must be >= 0 or None, got {self.checkpoint_every}")
        if self.eval_split not in ("valid", "test"):
            raise ValueError(f"train: eval_split must be 'valid' or 'test', got {self.eval_split!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.eval_start is not None and self.eval_start < 1:
            raise ValueError(f"train: eval_start must be None or >= 1, got {self.eval_start}")
        if self.eval_start is not None and self.eval_start > self.epochs:
            raise ValueError(f"train: eval_start {self.eval_start} is after the last epoch "
                             f"(epochs {self.epochs}): nothing would be evaluated")
        if self.eval_protocol not in EVAL_PROTOCOLS:
            raise ValueError(f"train: eval_protocol must be one of {EVAL_PROTOCOLS}, got {self.eval_protocol!r}")
        if any(k < 1 for k in self.ks):
            raise ValueError(f"train: ks: cut-offs must be >= 1, got {list(self.ks)}")
        name, _, k = self.metric.partition("@")
        allowed = SAMPLED_METRICS if self.eval_protocol == "sampled" else FULL_METRICS
        if name not in allowed or not k.isdigit() or int(k) < 1:
            raise ValueError(f"train: metric must look like {allowed[0]}@20 ({'/'.join(allowed)} "
                             f"with eval_protocol={self.eval_protocol!r}), got {self.metric!r}")
        if int(k) not in self.ks:
            self.ks = tuple(sorted(set(self.ks) | {int(k)}))


@dataclass
class TrainResult:
    """Outcome of a run. ``valid``/``test`` map metric names (``recall@20``) to floats; ``test``
    is empty when ``eval_split == "test"`` (then ``valid`` holds the best test values)."""

    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]
    epochs_run: int
    stopped_early: bool
    seconds: float
    log: list[dict[str, Any]] = field(default_factory=list)
    best_fields: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0     # process CPU time of the epochs (``seconds`` is wall time),
    #                              summed over the processes of a distributed run
    engine: str = "autograd"     # the engine that trained the run ("fused" or "autograd")

    def to_plain(self) -> dict[str, Any]:
        out = asdict(self)
        out["best_fields"] = {k: (v.tolist() if isinstance(v, torch.Tensor) else v)
                              for k, v in self.best_fields.items()}
        return out


class StopFlag:
    """Set from a signal handler; the trainer checkpoints at the next step boundary and raises
    :class:`TrainingInterrupted`."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""

    def request(self, reason: str = "stop requested") -> None:
        self.requested = True
        self.reason = reason


class TrainingInterrupted(RuntimeError):
    """Raised after a stop request, once the checkpoint for ``--resume`` is written."""
