"""The samplers by name: ``build_sampler("dns", data, seed=0, num_candidates=64)``, and the
sampler options given as text (``--sampler-opt dns.num_candidates=8``)."""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

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
    """Registered sampler names, in the order of the sampler table of docs/search.md."""
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
    _check_finite(cls, options)
    return cls.Options(**options)


def _check_finite(cls: type[Sampler], options: Mapping[str, Any]) -> None:
    """NaN and infinity are refused in every float option of every sampler (none of them has a
    meaning for them: ``pns.beta=inf`` would reach the alias table as NaN weights)."""
    for field, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{cls.name}.{field}={value}: expected a finite number")


def build_sampler(name: str, data: InteractionData, *, seed: int = 0, num_negatives: int = 1,
                  device: torch.device | str = "cpu", shard: UserShard | None = None,
                  **options: Any) -> Sampler:
    """Build sampler ``name`` for ``data``; ``options`` are fields of its options dataclass;
    ``shard``: the users of this process in a distributed run (:class:`UserShard`)."""
    cls = sampler_class(name)
    return cls(data, seed=seed, num_negatives=num_negatives, device=device,
               options=sampler_options(name, **options), shard=shard)


def check_sampler_data(name: str, options: Mapping[str, Any] | None, num_users: int,
                       num_items: int) -> None:
    """Raise :class:`~autosample_ext.samplers.base.SamplerOptionError` when sampler ``name`` with
    ``options`` cannot serve data of ``num_users`` users (this process's) and ``num_items`` items
    (the GDNS gain table over its memory budget), before anything is allocated."""
    cls = sampler_class(name)
    check = getattr(cls, "check_data", None)
    if callable(check):
        check(sampler_options(name, **dict(options or {})), num_users, num_items)


# -- options given as text (the CLI's ``--sampler-opt NAME.FIELD=VALUE``) ----------------------

def option_types(name: str) -> dict[str, Any]:
    """The fields of sampler ``name``'s options dataclass and their (resolved) type hints."""
    cls = sampler_class(name)
    hints = typing.get_type_hints(cls.Options)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls.Options)}


def _unknown_field(cls: type[Sampler], field: str, fields: Iterable[str]) -> str:
    fields = sorted(fields)
    if not fields:
        return f"sampler {cls.name!r} has no options"
    close = difflib.get_close_matches(field, fields, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"sampler {cls.name!r} has no option {field!r}{hint}; its options are {', '.join(fields)}"


def _parse_scalar(text: str, kind: Any) -> Any:
    """``text`` as a value of type ``kind`` (int, float, bool, str, None, a Literal or a union
    of these); raises ValueError saying what was expected."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(kind)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_scalar(text, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(" or ".join(errors) + (" or none" if type(None) in args else ""))
    if origin is Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(map(str, choices))}")
        return text
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError("expected true or false")
    if kind is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("expected an integer") from None
    if kind is float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, not {value}")
        return value
    if kind is str:
        return text
    raise ValueError(f"options of type {kind} cannot be given as text")


def parse_sampler_opt(text: str) -> tuple[str, str, Any]:
    """``"dns.num_candidates=8"`` -> ``("dns", "num_candidates", 8)``, the value converted to the
    field's type. Raises ValueError naming the sampler, the field and the value."""
    head, eq, value = text.partition("=")
    name, dot, field = head.strip().partition(".")
    name, field = name.strip().lower(), field.strip()
    if not eq or not dot or not name or not field or not value.strip():
        raise ValueError(f"expected SAMPLER.FIELD=VALUE such as dns.num_candidates=8, got {text!r}")
    cls = sampler_class(name)
    types_ = option_types(name)
    if field not in types_:
        raise ValueError(_unknown_field(cls, field, types_))
    try:
        parsed = _parse_scalar(value.strip(), types_[field])
    except ValueError as exc:
        raise ValueError(f"{name}.{field}={value.strip()}: {exc}") from None
    return name, field, parsed


def check_sampler_options(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate ``{sampler: {field: value}}`` by building each options dataclass (its own range
    checks run); returns a plain copy with lower-case sampler names. Raises ValueError naming
    the sampler, the field and the value."""
    out: dict[str, dict[str, Any]] = {}
    for name, fields in options.items():
        cls = sampler_class(str(name))
        if not isinstance(fields, Mapping):
            raise ValueError(f"sampler options of {cls.name!r} must be a mapping field -> value, "
                             f"got {fields!r}")
        types_ = option_types(cls.name)
        for field in fields:
            if field not in types_:
                raise ValueError(_unknown_field(cls, field, types_))
        _check_finite(cls, fields)
        try:
            cls.Options(**fields)
        except (TypeError, ValueError) as exc:
            given = ", ".join(f"{cls.name}.{k}={v}" for k, v in fields.items())
            raise ValueError(f"{given}: {exc}") from None
        out.setdefault(cls.name, {}).update(dict(fields))
    return out


def resolved_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every field of sampler ``name``'s options with ``options`` applied (plain values)."""
    return dataclasses.asdict(sampler_options(name, **dict(options or {})))
