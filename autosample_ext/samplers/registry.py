"""The samplers by name: ``build_sampler("dns", data, seed=0, num_candidates=64)``."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.aobpr import AOBPRSampler
from autosample_ext.samplers.base import Sampler, UserShard
from autosample_ext.samplers.dns import DNSSampler
from autosample_ext.samplers.gdns import GDNSSampler
from autosample_ext.samplers.mixgcf import MixGCFSampler
from autosample_ext.samplers.pns import PNSSampler
from autosample_ext.samplers.rns import RNSSampler
from autosample_ext.samplers.srns import SRNSSampler

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (RNSSampler, PNSSampler, DNSSampler, AOBPRSampler, SRNSSampler, MixGCFSampler, GDNSSampler)
}


def sampler_names() -> list[str]:
    """Registered sampler names, in the order of DESIGN.md §1."""
    return list(SAMPLERS)


def sampler_class(name: str) -> type[Sampler]:
    try:
        return SAMPLERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose from {sampler_names()}") from None


def sampler_options(name: str, **options: Any) -> Any:
    """The options dataclass of sampler ``name`` built from keyword options (validated)."""
    cls = sampler_class(name)
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"sampler {cls.name!r} has no option(s) {unknown}; its options are {sorted(fields)}")
    return cls.Options(**options)


def build_sampler(name: str, data: InteractionData, *, seed: int = 0, num_negatives: int = 1,
                  device: torch.device | str = "cpu", shard: UserShard | None = None,
                  **options: Any) -> Sampler:
    """Build sampler ``name`` for ``data``; ``options`` are fields of its options dataclass;
    ``shard``: the users of this process in a distributed run (:class:`UserShard`)."""
    cls = sampler_class(name)
    return cls(data, seed=seed, num_negatives=num_negatives, device=device,
               options=sampler_options(name, **options), shard=shard)
