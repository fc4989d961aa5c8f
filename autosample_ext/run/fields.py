"""The spellings a ``RunConfig`` field accepts, turned into its stored form: sampler names and
candidates as a tuple (one string ``"rns,dns"`` as on the command line, or a sequence), integers
as a tuple (``"0,1,2"``, one int, or a sequence). A value of the wrong type raises ``TypeError``
naming the field; a bad candidate ``ValueError``."""
from __future__ import annotations

from typing import Any


def as_names(value: Any, field: str) -> tuple[str, ...]:
    """Sampler names: a tuple/list of str, or one str (``"dns"``; ``"rns,dns"`` as on the CLI;
    commas inside a candidate's parentheses, ``dns(num_candidates=4|8),rns``, do not split)."""
    from autosample_ext.search.space import split_space

    if isinstance(value, str):
        return tuple(p for p in split_space(value) if p)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{field}: expected a sampler name or a sequence of names, got "
                        f"{value!r}") from None
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"{field}: expected sampler names (str), got {bad[0]!r} in {value!r}")
    return names


def as_candidates(names: tuple[str, ...], field: str) -> tuple[str, ...]:
    """Every candidate of ``names`` in canonical spelling, alternatives (``a|b``) expanded
    (:func:`autosample_ext.search.space.expand_space`); ``auto`` kept as it is."""
    from autosample_ext.search.space import expand_space

    try:
        return expand_space(names)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def as_ints(value: Any, field: str) -> tuple[int, ...]:
    """Integers: one int, a sequence of ints, or a comma-separated str (``"0,1,2"``)."""
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, (int, float)):
        value = [value]
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{field}: expected an int or a sequence of ints, got {value!r}") from None
