"""The samplers by name: the one place that knows them. :func:`check_sampler_name` is the one
"unknown sampler" check (every parser of sampler names, schedules and candidates calls it);
:func:`parse_schedule` reads a schedule's text; :func:`build_sampler` is the one build-by-name
(``build_sampler("dns", data, seed=0, num_candidates=64)``, ``build_sampler("aobpr@5+dns",
data)``); and the sampler options given as text (``--sampler-opt dns.num_candidates=8``)."""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.aobpr import AOBPRSampler
from autosample_ext.samplers.base import Sampler, UserShard, mix_seed
from autosample_ext.samplers.dns import DNSSampler
from autosample_ext.samplers.gdns import GDNSSampler
from autosample_ext.samplers.mixgcf import MixGCFSampler
from autosample_ext.samplers.pns import PNSSampler
from autosample_ext.samplers.rns import RNSSampler
from autosample_ext.samplers.schedule import Schedule, ScheduleSampler, is_schedule
from autosample_ext.samplers.srns import SRNSSampler

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (RNSSampler, PNSSampler, DNSSampler, AOBPRSampler, SRNSSampler, MixGCFSampler, GDNSSampler)
}


class SegmentSpec(Protocol):
    """One segment of a parsed candidate: its sampler, options and length (None: the last)."""

    sampler: str
    options: Iterable[tuple[str, Any]]
    epochs: int | None


class SamplerSpec(Protocol):
    """A parsed sampler or schedule with options on its segments
    (:class:`autosample_ext.samplers.candidate.Candidate`)."""

    @property
    def name(self) -> str: ...

    segments: Sequence[SegmentSpec]


def sampler_names() -> list[str]:
    """Registered sampler names, in the order of the sampler table of docs/search.md."""
    return list(SAMPLERS)


def check_sampler_name(name: str) -> str:
    """``name`` in lower case when it names a registered sampler; else ValueError with the
    message every command prints for an unknown sampler (callers prefix where it was written)."""
    key = name.lower()
    if key not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return key


def sampler_class(name: str) -> type[Sampler]:
    return SAMPLERS[check_sampler_name(name)]


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


def parse_schedule(text: str) -> Schedule:
    """Parse ``s1@n1+...+sK``; ValueError naming the part that is wrong."""
    where = f"schedule {text!r}"
    parts = [p.strip().lower() for p in text.split("+")]
    if any(not p for p in parts):
        raise ValueError(f"{where}: empty segment (write e.g. aobpr@5+dns)")
    segments: list[tuple[str, int]] = []
    for i, part in enumerate(parts):
        name, at, count = part.partition("@")
        name = name.strip()
        try:
            check_sampler_name(name)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if i == len(parts) - 1:
            if at:
                raise ValueError(f"{where}: the last segment {part!r} runs to the end of training "
                                 f"and takes no @epochs (write e.g. aobpr@5+dns)")
            last = name
        else:
            if not at:
                raise ValueError(f"{where}: segment {part!r} needs @epochs (write e.g. aobpr@5+dns)")
            if not count.strip().isdigit() or int(count) < 1:
                raise ValueError(f"{where}: segment {part!r}: epochs must be an integer >= 1")
            segments.append((name, int(count)))
    if not segments:
        raise ValueError(f"{where}: a schedule needs at least two segments (write e.g. aobpr@5+dns)")
    return Schedule(tuple(segments), last)


def build_sampler(name: str | SamplerSpec, data: InteractionData, seed: int = 0,
                  device: torch.device | str = "cpu", num_negatives: int = 1,
                  options: Mapping[str, Mapping[str, Any]] | None = None, *,
                  shard: UserShard | None = None, segment_seeds: Sequence[int] | None = None,
                  **fields: Any) -> Sampler:
    """Build what ``name`` names for ``data``: a sampler (``"dns"``), a schedule
    (``"aobpr@5+dns"``, a :class:`~autosample_ext.samplers.schedule.ScheduleSampler`), or a
    parsed candidate whose segments carry options (a :class:`SamplerSpec`, such as
    ``autosample_ext.search.space.parse_candidate("rns@3+dns(num_candidates=8)")``: the option
    text is the search space's grammar, parsed there).

    ``options``: per sampler name, its options (the run's ``--sampler-opt``), applied to that
    sampler wherever it trains (alone or as a schedule's segment); ``fields``: options of a
    plain sampler (fields of its options dataclass); a candidate's own options win over both.
    ``shard``: the users of this process in a distributed run (:class:`UserShard`);
    ``segment_seeds``: a schedule's per-segment seeds (default ``mix_seed(seed, i)``). A
    candidate's learning rate is the run's business, not the sampler's.
    """
    per_name = dict(options or {})
    if isinstance(name, str):
        text = name.strip()
        if text.lower() in SAMPLERS:
            cls = sampler_class(text)
            given = {**per_name.get(cls.name, {}), **fields}
            return cls(data, seed=seed, num_negatives=num_negatives, device=device,
                       options=sampler_options(cls.name, **given), shard=shard)
        if "(" in text:
            raise ValueError(f"build_sampler: {name!r} writes options in the name; pass "
                             f"autosample_ext.search.space.parse_candidate({name!r}) instead")
        if not is_schedule(text):
            check_sampler_name(text)
        schedule = parse_schedule(text)
        own, label = [{} for _ in schedule.samplers], str(schedule)
    else:
        segments = tuple(name.segments)
        if len(segments) == 1:
            return build_sampler(segments[0].sampler, data, seed, device, num_negatives, per_name,
                                 shard=shard, **{**fields, **dict(segments[0].options)})
        schedule = Schedule(tuple((s.sampler, int(s.epochs)) for s in segments[:-1]),
                            segments[-1].sampler)
        own, label = [dict(s.options) for s in segments], name.name
    names = schedule.samplers
    seeds = list(segment_seeds) if segment_seeds is not None else [mix_seed(seed, i)
                                                                    for i in range(len(names))]
    if len(seeds) != len(names):
        raise ValueError(f"schedule {label!r}: {len(names)} segments, "
                         f"{len(seeds)} seeds")
    per_segment = [{**per_name.get(n, {}), **o} for n, o in zip(names, own)]

    def make_part(i: int) -> Sampler:
        return build_sampler(names[i], data, seeds[i], device, num_negatives, shard=shard,
                             **per_segment[i])

    return ScheduleSampler(schedule, data, make_part=make_part, seed=seed,
                           num_negatives=num_negatives, device=device, shard=shard, name=label)


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
