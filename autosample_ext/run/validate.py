"""Checks that run before any training, so that a run that cannot work fails up front with a
message naming the option, the dataset file or the user, and writes nothing.

:func:`check_config`: the configuration alone (no data read): samplers the model cannot serve,
sizes that cannot fit in memory whatever the data (:mod:`autosample_ext.run.memory`).
:func:`check_data`: the loaded dataset against the configuration: every training user has at
least one non-positive item (a negative to draw), the split leaves validation and test pairs
where the protocol needs them, the metric cut-offs fit the number of items, the model's tables
and the samplers' pools and states fit in memory at the dataset's sizes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from autosample_ext.data.interactions import InteractionData
from autosample_ext.run.protocols import protocol_spec

if TYPE_CHECKING:
    from autosample_ext.run.config import RunConfig


class DataValidationError(ValueError):
    """The dataset cannot serve the run: names the dataset (file) and what to change."""


def trained_samplers(cfg: "RunConfig") -> tuple[str, ...]:
    """Every sampler name the run will train with, in mode order (schedules expanded)."""
    return cfg.trained_samplers()


def check_config(cfg: "RunConfig") -> None:
    """Raise ValueError (naming the options) for a configuration that cannot run whatever the
    data: a sampler that needs a graph model (MixGCF) with MF/GMF; a size that cannot fit in
    memory even for the smallest dataset (one user, one item, one training pair)."""
    from autosample_ext.run.memory import check_memory
    from autosample_ext.models import MODELS
    from autosample_ext.models.lightgcn import GraphRecommender
    from autosample_ext.samplers.registry import sampler_class

    check_memory(cfg)
    model_cls = MODELS.get(cfg.model)
    if model_cls is None or issubclass(model_cls, GraphRecommender):
        return
    option = "--sampler" if cfg.mode == "single" else "--search-space"
    for name in trained_samplers(cfg):
        if sampler_class(name).needs_graph_model:
            raise ValueError(f"{option} {name}: {name} needs a graph model with per-layer "
                             f"embeddings; --model {cfg.model} has none (use --model lightgcn or "
                             f"--model ngcf, or drop {name})")


def data_files(data: InteractionData, *splits: str) -> str:
    """The file(s) the dataset was read from (for messages): the given split's files when they
    exist, else the single input file, else the dataset's name."""
    files = data.info.get("files") or {}
    named = [files[s] for s in splits if s in files]
    if not named and "all" in files:
        named = [files["all"]]
    return ", ".join(named) if named else f"dataset {data.name!r}"


def raw_user(data: InteractionData, user: int) -> str:
    """A user as written in the input file (the raw id when ids were remapped)."""
    if data.raw_user_ids is not None:
        return f"{data.raw_user_ids[user]} (internal id {user})"
    return str(user)


def _split_text(cfg: "RunConfig") -> str:
    return f"--split {cfg.split}" if cfg.split else "the split"


def check_data(cfg: "RunConfig", data: InteractionData) -> None:
    """Raise :class:`DataValidationError` when ``data`` cannot serve ``cfg``; see the module."""
    train_deg = data.train.degrees().numpy()
    users_with_train = int((train_deg > 0).sum())
    if data.train.nnz == 0:
        raise DataValidationError(f"{data_files(data, 'train')}: no training pairs after "
                                  f"{_split_text(cfg)}")
    # A negative is an item the user never had in train: a user owning every item has none.
    full = np.flatnonzero(train_deg >= data.num_items)
    if full.size:
        u = int(full[0])
        raise DataValidationError(
            f"{data_files(data, 'train')}: user {raw_user(data, u)} has every one of the "
            f"{data.num_items} items as a training positive, so no negative item can be drawn "
            f"for it ({full.size} such user(s)); remove such users or add items")
    needs_valid = not cfg.best_test
    all_deg = (train_deg + data.valid.degrees().numpy() + data.test.degrees().numpy())
    if needs_valid and data.valid.nnz == 0:
        max_deg = int(all_deg.max(initial=0))
        if data.info.get("valid_fraction") is not None:
            how = (f"--valid-fraction {data.info['valid_fraction']} moved no training item to "
                   f"validation: a user needs at least 2 training items to give one "
                   f"(most has {int(train_deg.max(initial=0))})")
        elif cfg.split in (None, "given") and "all" not in (data.info.get("files") or {}):
            how = ("the folder has no validation file; add --valid-fraction F (e.g. 0.1) to draw "
                   "validation from train, or use a ratio such as --split 3:1:1")
        else:
            how = (f"a user needs at least 3 interactions to give one to validation, and "
                   f"{int((all_deg >= 3).sum())} of the {int((all_deg > 0).sum())} users with "
                   f"interactions have that many (most has {max_deg})")
        raise DataValidationError(
            f"{data_files(data, 'train', 'valid')}: {_split_text(cfg)} leaves no validation pairs "
            f"for {data.num_users} user(s), {data.num_items} item(s): {how}")
    if data.test.nnz == 0:
        raise DataValidationError(
            f"{data_files(data, 'test')}: {_split_text(cfg)} leaves no test pairs: a user needs "
            f"at least 2 interactions to give one to test, and "
            f"{int((all_deg >= 2).sum())} of the {users_with_train} users have that many")
    metric_k = cfg.metric.partition("@")[2]
    cutoffs = list(cfg.ks) + ([int(metric_k)] if metric_k.isdigit() else [])
    too_big = [k for k in cutoffs if k > data.num_items]
    if too_big:
        k = max(too_big)
        fixed = [o for o in ("ks", "metric") if o in protocol_spec(cfg.protocol).fixed]
        if fixed:  # advice the protocol would refuse is no advice
            how = (f"--protocol {cfg.protocol} fixes "
                   + " and ".join(f"--{o} {_cli_value(getattr(cfg, o))}" for o in fixed)
                   + f"; use a dataset with at least {k} items, or leave --protocol out and set "
                   f"the cut-offs yourself")
        else:
            small = min(data.num_items, 10)
            how = (f"use cut-offs of at most {data.num_items} (e.g. --ks {small} --metric "
                   f"{cfg.metric.partition('@')[0]}@{small})")
        raise DataValidationError(
            f"--ks / --metric cut-off {k}: {data_files(data)} has only {data.num_items} item(s); "
            + how)
    from autosample_ext.run.memory import check_memory

    check_memory(cfg, users=data.num_users, items=data.num_items, pairs=data.train.nnz)


def _cli_value(value: object) -> str:
    """A setting as typed on the command line: ``(1, 3)`` -> ``1,3``."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)
