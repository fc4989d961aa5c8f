"""Search spaces of sampler configurations: a candidate is a sampler (or a schedule of samplers)
with option values and, optionally, its own learning rate.

Syntax (``--search-space``; candidates separated by commas outside parentheses)::

    rns                              a sampler with the run's options
    dns(num_candidates=8)            a sampler with options (any field of its options dataclass)
    dns(num_candidates=4|8|32)       alternatives: one candidate per value
    dns(num_candidates=8|32,top_k=1|2)  several fields: every combination, in order
    dns(lr=1e-3|5e-3)                the learning rate of the candidate's run (``--lr`` otherwise)
    aobpr@5+dns(num_candidates=8)    a schedule; each segment may carry options, and ``lr`` (the
                                     whole run's) goes on the last segment

A candidate's canonical name writes its options in the order given, values as Python writes them
(``dns(num_candidates=8,lr=0.001)``); it names the candidate in ``config.json``, the race state,
the checkpoints and the tables. Option values are converted to the field's type and checked by
the sampler's own options dataclass, the learning rate by :class:`~autosample_ext.training.TrainConfig`;
a bad candidate raises :class:`CandidateError` naming the candidate and the field.

``auto`` (:data:`AUTO`) is the space the successive-halving race builds from the data:
:func:`auto_space` (the static part) and :func:`curriculum_schedules` (the schedules added at the
first rung).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

from autosample_ext.samplers.candidate import LR, Candidate, Segment, value_text
from autosample_ext.samplers.registry import check_sampler_name

#: the search-space value that asks the race to build its space from the data
AUTO = "auto"


class CandidateError(ValueError):
    """A candidate of a search space that cannot be built: names the candidate and the field."""


# -- splitting -----------------------------------------------------------------------------------

def split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside parentheses (``"a(x=1,y=2),b"`` -> ``["a(x=1,y=2)", "b"]``);
    raises CandidateError for unbalanced parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise CandidateError(f"candidate {text.strip()!r}: ')' without '('")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise CandidateError(f"candidate {text.strip()!r}: '(' without ')'")
    parts.append(text[start:])
    return parts


def split_space(text: str) -> list[str]:
    """The candidates of a ``--search-space`` text (commas outside parentheses), stripped."""
    return [p.strip() for p in split_top(text, ",")]


# -- parsing -------------------------------------------------------------------------------------

def _segment_alternatives(text: str, where: str
                          ) -> tuple[str, list[tuple[str, list[str]]], int | None]:
    """``dns(num_candidates=4|8)@5`` -> ("dns", [("num_candidates", ["4", "8"])], 5)."""
    body, at, count = text.rpartition("@") if "@" in text.rsplit(")", 1)[-1] else (text, "", "")
    epochs = None
    if at:
        count = count.strip()
        if not count.isdigit() or int(count) < 1:
            raise CandidateError(f"{where}: segment {text.strip()!r}: epochs after '@' must be an "
                                 f"integer >= 1, got {count!r}")
        epochs = int(count)
    body = body.strip()
    name, paren, rest = body.partition("(")
    name = name.strip().lower()
    if not name:
        raise CandidateError(f"{where}: empty segment (write e.g. aobpr@5+dns)")
    try:
        check_sampler_name(name)
    except ValueError as exc:
        raise CandidateError(f"{where}: {exc}") from None
    fields: list[tuple[str, list[str]]] = []
    if paren:
        if not rest.endswith(")"):
            raise CandidateError(f"{where}: text after ')' in {body!r}")
        inner = rest[:-1]
        if not inner.strip():
            raise CandidateError(f"{where}: empty '()' after {name!r} (write e.g. "
                                 f"dns(num_candidates=8))")
        for item in split_top(inner, ","):
            field, eq, values = item.partition("=")
            field = field.strip()
            if not eq or not field:
                raise CandidateError(f"{where}: expected FIELD=VALUE inside the parentheses, got "
                                     f"{item.strip()!r}")
            if any(f == field for f, _ in fields):
                raise CandidateError(f"{where}: field {field!r} is given twice")
            alternatives = [v.strip() for v in values.split("|")]
            if any(not v for v in alternatives):
                raise CandidateError(f"{where}: {field}: empty value in {values.strip()!r}")
            fields.append((field, alternatives))
    return name, fields, epochs


def _convert(name: str, field: str, text: str, where: str) -> Any:
    """A value as text -> the field's type (``lr``: a finite float), or CandidateError."""
    from autosample_ext.samplers.registry import (
        _parse_scalar,
        _unknown_field,
        option_types,
        sampler_class,
    )

    if field == LR:
        try:
            value = _parse_scalar(text, float)
        except ValueError as exc:
            raise CandidateError(f"{where}: lr={text}: {exc}") from None
        if not math.isfinite(value):
            raise CandidateError(f"{where}: lr={text}: expected a finite number")
        return value
    types_ = option_types(name)
    if field not in types_:
        raise CandidateError(f"{where}: {_unknown_field(sampler_class(name), field, types_)}")
    try:
        return _parse_scalar(text, types_[field])
    except ValueError as exc:
        raise CandidateError(f"{where}: {name}.{field}={text}: {exc}") from None


def check_candidate(candidate: Candidate, where: str | None = None) -> Candidate:
    """Run each segment's options through its sampler's options dataclass and the learning rate
    through :class:`TrainConfig` (their own range checks); CandidateError naming the field."""
    from autosample_ext.samplers.registry import check_sampler_options
    from autosample_ext.training.config import TrainConfig

    where = where or f"candidate {candidate.name!r}"
    for seg in candidate.segments:
        if seg.options:
            try:
                check_sampler_options({seg.sampler: dict(seg.options)})
            except ValueError as exc:
                raise CandidateError(f"{where}: {exc}") from None
    if candidate.lr is not None:
        try:
            TrainConfig(lr=candidate.lr)
        except ValueError as exc:
            raise CandidateError(f"{where}: lr={value_text(candidate.lr)}: "
                                 f"{str(exc).removeprefix('train: ')}") from None
    return candidate


def expand_candidate(text: str) -> list[Candidate]:
    """Every candidate a text stands for (alternatives ``a|b`` expanded, every combination in the
    order written: the first field varies slowest). Raises CandidateError naming the text and
    the field."""
    where = f"candidate {text.strip()!r}"
    if not text.strip():
        raise CandidateError("empty candidate (write e.g. rns,dns(num_candidates=8))")
    parts = split_top(text, "+")
    per_segment = []
    for i, part in enumerate(parts):
        name, fields, epochs = _segment_alternatives(part, where)
        last = i == len(parts) - 1
        if last and epochs is not None:
            raise CandidateError(f"{where}: the last segment {part.strip()!r} runs to the end of "
                                 f"training and takes no @epochs (write e.g. aobpr@5+dns)")
        if not last and epochs is None:
            raise CandidateError(f"{where}: segment {part.strip()!r} needs @epochs (write e.g. "
                                 f"aobpr@5+dns)")
        if not last and any(f == LR for f, _ in fields):
            raise CandidateError(f"{where}: lr is the learning rate of the whole run; give it on "
                                 f"the last segment")
        choices = [[(f, _convert(name, f, v, where)) for v in values] for f, values in fields]
        per_segment.append([(name, combo, epochs) for combo in itertools.product(*choices)])
    out: list[Candidate] = []
    for combo in itertools.product(*per_segment):
        segments, lr = [], None
        for name, opts, epochs in combo:
            own = tuple((f, v) for f, v in opts if f != LR)
            lr = next((v for f, v in opts if f == LR), lr)
            segments.append(Segment(name, own, epochs))
        out.append(check_candidate(Candidate(tuple(segments), lr), where))
    return out


def parse_candidate(text: str) -> Candidate:
    """Exactly one candidate (no alternatives)."""
    found = expand_candidate(text)
    if len(found) != 1:
        raise CandidateError(f"candidate {text.strip()!r} stands for {len(found)} candidates; "
                             f"name one")
    return found[0]


def expand_space(names: Sequence[str] | str) -> tuple[str, ...]:
    """Canonical names of every candidate of a space (a text or a sequence of texts); ``auto``
    stays as it is (the race expands it). Raises CandidateError for a bad candidate or one that
    appears twice."""
    texts = split_space(names) if isinstance(names, str) else [str(n) for n in names]
    out: list[str] = []
    for text in texts:
        if text.strip().lower() == AUTO:
            out.append(AUTO)
            continue
        for cand in expand_candidate(text):
            if cand.name in out:
                raise CandidateError(f"candidate {cand.name!r} appears twice in the search space")
            out.append(cand.name)
    return tuple(out)


def canonical_name(name: str) -> str:
    """A sampler name, schedule or configured candidate (``dns(num_candidates=8)``) in canonical
    spelling (lower case, no spaces); validated (:func:`parse_candidate`)."""
    return parse_candidate(name).name


def base_samplers(name: str) -> tuple[str, ...]:
    """The sampler names a candidate trains (``rns@3+dns(num_candidates=8)`` -> rns, dns)."""
    return parse_candidate(name).samplers


def with_options(candidate: Candidate, **changes: Any) -> Candidate:
    """The candidate with its last segment's options updated (a new candidate)."""
    last = candidate.segments[-1]
    opts = dict(last.options)
    opts.update(changes)
    segs = candidate.segments[:-1] + (dataclasses.replace(last, options=tuple(opts.items())),)
    return check_candidate(Candidate(segs, candidate.lr))
