"""Sampler schedules: a sequence of samplers by epoch, usable wherever a sampler name is.

A schedule is written ``aobpr@5+dns``: AOBPR for epochs 1-5, then DNS until the end. In
general ``s1@n1+s2@n2+...+sK``: each ``@n`` is the LENGTH (epochs) of its segment, the last
segment has no ``@`` and runs to the end of training. ``rns@3+dns@10+aobpr`` = RNS for epochs
1-3, DNS for 4-13, AOBPR from 14 on. A name without ``+`` is a plain sampler.

:class:`ScheduleSampler` is a :class:`~autosample_ext.samplers.Sampler` that holds one sampler
per segment and hands each step to the segment of ``ctx.epoch`` (0-based, set by the trainer).
The switch is a function of the epoch only, and every segment's state (SRNS memory, GDNS gains)
is in the checkpoint, so an interrupted run resumes on the right segment with the right state.
Each segment's sampler has its own random stream: by default the schedule's seed mixed with the
segment index; a run passes ``segment_seeds`` instead, the stream of each segment's sampler when
trained alone, so that ``rns@3+dns`` trains exactly as RNS alone for its first 3 epochs (same
initial weights, data order and draws) and a race can branch it from RNS's run
(:mod:`autosample_ext.search.space` writes options on a segment: ``rns@3+dns(num_candidates=8)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler, UserShard, mix_seed
from autosample_ext.samplers.registry import build_sampler, check_sampler_name


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


class ScheduleSampler(Sampler):
    """Draws with the segment of ``ctx.epoch``; see the module docstring.

    Args:
        schedule: a :class:`Schedule` or its text.
        data, seed, num_negatives, device, shard: as every sampler; segment ``i`` is built
            with seed ``mix_seed(seed, i)``.
        options: per sampler name, keyword options of that sampler (``{"dns": {"num_candidates":
            64}}``).
        segment_options: per segment, its options (instead of ``options``; a candidate whose
            segments carry their own, ``rns@3+dns(num_candidates=8)``).
        segment_seeds: per segment, its sampler's seed (default ``mix_seed(seed, i)``).
        name: the schedule's name (default: its text; a candidate with options passes its own).
    """

    def __init__(self, schedule: Schedule | str, data: InteractionData, *, seed: int = 0,
                 num_negatives: int = 1, device: torch.device | str = "cpu",
                 options: dict[str, dict[str, Any]] | None = None,
                 shard: UserShard | None = None,
                 segment_options: Sequence[dict[str, Any]] | None = None,
                 segment_seeds: Sequence[int] | None = None, name: str | None = None) -> None:
        super().__init__(data, seed=seed, num_negatives=num_negatives, device=device, shard=shard)
        self.schedule = parse_schedule(schedule) if isinstance(schedule, str) else schedule
        self.name = name or str(self.schedule)  # instance attribute: the class has no single name
        names = self.schedule.samplers
        if segment_options is None:
            segment_options = [(options or {}).get(n, {}) for n in names]
        if segment_seeds is None:
            segment_seeds = [mix_seed(seed, i) for i in range(len(names))]
        if not len(segment_options) == len(segment_seeds) == len(names):
            raise ValueError(f"schedule {self.name!r}: {len(names)} segments, "
                             f"{len(segment_options)} option sets, {len(segment_seeds)} seeds")
        self.parts: list[Sampler] = [
            build_sampler(n, data, seed=s, num_negatives=num_negatives, device=device, shard=shard,
                          **opts)
            for n, opts, s in zip(names, segment_options, segment_seeds)]
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

