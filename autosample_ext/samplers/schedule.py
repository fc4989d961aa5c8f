"""Sampler schedules: a sequence of samplers by epoch, usable wherever a sampler name is.

A schedule is written ``aobpr@5+dns``: AOBPR for epochs 1-5, then DNS until the end. In
general ``s1@n1+s2@n2+...+sK``: each ``@n`` is the LENGTH (epochs) of its segment, the last
segment has no ``@`` and runs to the end of training. ``rns@3+dns@10+aobpr`` = RNS for epochs
1-3, DNS for 4-13, AOBPR from 14 on. A name without ``+`` is a plain sampler. The text is read
by :func:`autosample_ext.samplers.registry.parse_schedule` and a schedule is built by name with
:func:`autosample_ext.samplers.registry.build_sampler`.

:class:`ScheduleSampler` is a :class:`~autosample_ext.samplers.Sampler` that holds one sampler
per segment and hands each step to the segment of ``ctx.epoch`` (0-based, set by the trainer).
The switch is a function of the epoch only, and every segment's state (SRNS memory, GDNS gains)
is in the checkpoint, so an interrupted run resumes on the right segment with the right state.
Each segment's sampler has its own random stream: by default the schedule's seed mixed with the
segment index; a run passes ``segment_seeds`` (to ``build_sampler``) instead, the stream of each segment's sampler when
trained alone, so that ``rns@3+dns`` trains exactly as RNS alone for its first 3 epochs (same
initial weights, data order and draws) and a race can branch it from RNS's run
(:mod:`autosample_ext.search.space` writes options on a segment: ``rns@3+dns(num_candidates=8)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler, UserShard


def is_schedule(name: str) -> bool:
    """True when ``name`` is written as a schedule (``+`` or ``@`` outside parentheses)."""
    depth = 0
    for ch in name:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch in "+@":
            return True
    return False


@dataclass(frozen=True)
class Schedule:
    """Parsed schedule: ``segments`` = ((sampler, epochs), ...) then ``last`` to the end."""

    segments: tuple[tuple[str, int], ...]
    last: str

    @property
    def samplers(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.segments) + (self.last,)

    @property
    def ends(self) -> tuple[int, ...]:
        """0-based epoch at which each fixed segment ends (exclusive), cumulative."""
        out, total = [], 0
        for _, n in self.segments:
            total += n
            out.append(total)
        return tuple(out)

    def segment_at(self, epoch: int) -> int:
        """Index of the segment that trains 0-based ``epoch``."""
        for i, end in enumerate(self.ends):
            if epoch < end:
                return i
        return len(self.segments)

    def __str__(self) -> str:
        return "+".join([f"{n}@{e}" for n, e in self.segments] + [self.last])


class ScheduleSampler(Sampler):
    """Draws with the segment of ``ctx.epoch``; see the module docstring. Built by name with
    :func:`autosample_ext.samplers.registry.build_sampler` (``build_sampler("aobpr@5+dns", data)``).

    Args:
        schedule: the parsed :class:`Schedule`.
        data, seed, num_negatives, device, shard: as every sampler.
        make_part: builds the sampler of segment ``i`` (the registry's build-by-name, with that
            segment's seed and options).
        name: the schedule's name (default: its text; a candidate with options passes its own).
    """

    def __init__(self, schedule: Schedule, data: InteractionData, *,
                 make_part: Callable[[int], Sampler], seed: int = 0, num_negatives: int = 1,
                 device: torch.device | str = "cpu", shard: UserShard | None = None,
                 name: str | None = None) -> None:
        super().__init__(data, seed=seed, num_negatives=num_negatives, device=device, shard=shard)
        self.schedule = schedule
        self.name = name or str(self.schedule)  # instance attribute: the class has no single name
        self.parts: list[Sampler] = [make_part(i) for i in range(len(schedule.samplers))]
        self.needs_graph_model = any(p.needs_graph_model for p in self.parts)

    def active(self, ctx: SampleContext) -> Sampler:
        if ctx.epoch is None:
            raise ValueError(f"schedule {self.name!r}: the step's epoch is unknown "
                             "(SampleContext.epoch is None; the Trainer sets it)")
        return self.parts[self.schedule.segment_at(int(ctx.epoch))]

    def check_model(self, model) -> None:
        for part in self.parts:
            part.check_model(model)

    def sample(self, ctx: SampleContext) -> Negatives:
        return self.active(ctx).sample(ctx)

    def observe(self, ctx: SampleContext, negatives: Negatives, pos_scores: torch.Tensor,
                neg_scores: torch.Tensor) -> None:
        self.active(ctx).observe(ctx, negatives, pos_scores, neg_scores)

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.name, "parts": [p.state_dict() for p in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("schedule") != self.name:
            raise ValueError(f"schedule {self.name!r}: checkpoint holds schedule "
                             f"{state.get('schedule')!r}")
        for part, s in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(s)

