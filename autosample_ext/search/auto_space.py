"""``--search-space auto``: the candidates the successive-halving race builds from the data.

The static part (:func:`auto_space`), known before training:

* the four default samplers, RNS, PNS, DNS and AOBPR, with the run's options;
* DNS with two more pool sizes: a quarter of the run's pool (8 for the default 32) and twice it,
  capped at the largest power of two not above 2% of the items (64 on lastfm's 4,165 items, 16 on
  the embedded data's 1,500): the pool sets how hard a DNS negative is (the best of M uniform
  draws sits near the top ``1/(M+1)`` of a user's ranking), so the cap keeps the hardest pool
  within the same share of any catalogue.

The schedules (:func:`first_rung_schedules`), added after the race's first rung: the leaders at
that rung, i.e. the best candidate of each sampler family, the top :data:`LEADERS` of them; every
ordered pair (A, B) of leaders gives ``A@r+B`` (A for the first ``r`` epochs, the first rung's,
then B): both the easy->hard curricula (RNS then DNS) and the fast-start ones (AOBPR then DNS).
Each branches from A's run at epoch ``r``, which it equals, so it costs nothing until it trains
on; the race then treats it as any other candidate.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from autosample_ext.samplers.candidate import Candidate
from autosample_ext.search.space import parse_candidate, with_options

#: sampler family -> hardness rank (the negatives it draws: uniform ... the top of the ranking)
HARDNESS: dict[str, int] = {"rns": 0, "pns": 1, "dns": 2, "srns": 2, "gdns": 2, "mixgcf": 3,
                            "aobpr": 4}

if TYPE_CHECKING:
    from autosample_ext.data.interactions import InteractionData
    from autosample_ext.search.halving import SuccessiveHalving
    from autosample_ext.search.rungs import RungDecision

AUTO_SAMPLERS: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
#: the leaders at the first rung that the schedules are built from
LEADERS = 3
#: the largest DNS pool: at most this share of the items
MAX_POOL_SHARE = 0.02


def dns_pools(num_items: int, pool: int) -> tuple[int, ...]:
    """The DNS pool sizes of the auto space besides ``pool``: ``pool // 4`` and ``2 * pool``
    capped at the largest power of two <= 2% of the items (ascending, without ``pool``)."""
    cap = 2 ** int(math.log2(max(2.0, MAX_POOL_SHARE * num_items)))
    sizes = {max(2, pool // 4), min(2 * pool, cap)}
    return tuple(sorted(s for s in sizes if s != pool))


def auto_space(data: InteractionData, options: dict[str, dict[str, Any]] | None = None
               ) -> tuple[str, ...]:
    """The static candidates of ``--search-space auto`` for ``data`` (module docstring);
    ``options``: the run's sampler options (``--sampler-opt``), which set DNS's own pool."""
    from autosample_ext.samplers.registry import resolved_options

    pool = int(resolved_options("dns", (options or {}).get("dns"))["num_candidates"])
    dns = parse_candidate("dns")
    extra = [with_options(dns, num_candidates=m).name for m in dns_pools(data.num_items, pool)]
    return AUTO_SAMPLERS + tuple(extra) + (with_options(dns, top_k=2).name,)


def first_rung_schedules(race: SuccessiveHalving, decision: RungDecision
                         ) -> list[tuple[str, str, int]]:
    """The schedules added after the first rung (module docstring): ``(name, parent, epoch)``
    for :meth:`SuccessiveHalving.add_branch`. Candidates that cannot be branched are skipped:
    schedules, candidates with their own learning rate, runs that already stopped."""
    epoch = decision.epochs
    plain: list[Candidate] = []
    for name in decision.values:       # best first
        cand = parse_candidate(name)
        trainer = race.trainer(name)
        if not (cand.is_schedule or cand.lr is not None or trainer.stopped_early
                or trainer.epoch != epoch):
            plain.append(cand)
    best_of: dict[str, Candidate] = {}
    for cand in plain:
        best_of.setdefault(cand.samplers[0], cand)
    leaders = list(best_of.values())[:LEADERS]
    kept = [c for c in plain if c.name in decision.kept]
    pairs = [(a, b) for a in leaders[:2] for b in kept if b.samplers[0] != a.samplers[0]]
    easy = [c for c in leaders if HARDNESS.get(c.samplers[0], 2) < HARDNESS["dns"]]
    hard = [c for c in leaders if HARDNESS.get(c.samplers[0], 2) >= HARDNESS["dns"]]
    if easy and hard:
        pairs.append((easy[0], hard[0]))
    out: list[tuple[str, str, int]] = []
    for a, b in pairs:
        name = parse_candidate(f"{a.segments[0].text}@{epoch}+{b.name}").name
        if name not in race.candidates and all(name != n for n, _, _ in out):
            out.append((name, a.name, epoch))
    return out
