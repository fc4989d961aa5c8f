"""A configured sampler, parsed: a sampler (or a schedule of samplers, one :class:`Segment` each)
with option values and, optionally, its own learning rate, and its canonical text
(``dns(num_candidates=8,lr=0.001)``, ``aobpr@5+dns``). The grammar that parses the text and
expands alternatives (``dns(num_candidates=4|8)``) is :mod:`autosample_ext.search.space`;
:func:`autosample_ext.samplers.registry.build_sampler` builds a sampler from a :class:`Candidate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the option that sets a candidate's learning rate (on its last segment)
LR = "lr"


@dataclass(frozen=True)
class Segment:
    """One sampler of a candidate: its options (field, value) in the order given, and its
    length in epochs (None: the last segment, to the end of training)."""

    sampler: str
    options: tuple[tuple[str, Any], ...] = ()
    epochs: int | None = None

    @property
    def text(self) -> str:
        return self.sampler + (f"({_options_text(self.options)})" if self.options else "")


@dataclass(frozen=True)
class Candidate:
    """A sampler or schedule with option values and an optional learning rate."""

    segments: tuple[Segment, ...]
    lr: float | None = None

    @property
    def name(self) -> str:
        parts = []
        for i, seg in enumerate(self.segments):
            opts = list(seg.options)
            if i == len(self.segments) - 1 and self.lr is not None:
                opts.append((LR, self.lr))
            text = seg.sampler + (f"({_options_text(tuple(opts))})" if opts else "")
            parts.append(text + (f"@{seg.epochs}" if seg.epochs is not None else ""))
        return "+".join(parts)

    def __str__(self) -> str:
        return self.name

    @property
    def is_schedule(self) -> bool:
        return len(self.segments) > 1

    @property
    def samplers(self) -> tuple[str, ...]:
        return tuple(s.sampler for s in self.segments)

    @property
    def plain(self) -> bool:
        """A sampler or schedule written without options or learning rate (``aobpr@5+dns``)."""
        return self.lr is None and not any(s.options for s in self.segments)

    def options(self, index: int = -1) -> dict[str, Any]:
        """The options of segment ``index`` (default: the last) as keyword arguments."""
        return dict(self.segments[index].options)

    @property
    def schedule_text(self) -> str:
        """The schedule without options (``aobpr@5+dns``): what :mod:`.schedule` parses."""
        return "+".join(s.sampler + (f"@{s.epochs}" if s.epochs is not None else "")
                        for s in self.segments)


def value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _options_text(options: tuple[tuple[str, Any], ...]) -> str:
    return ",".join(f"{k}={value_text(v)}" for k, v in options)
