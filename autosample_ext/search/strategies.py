"""The search strategies a run can use, by ``--search`` name (``RunConfig.search``; the CLI's
choices and ``SEARCHES`` are this table's keys, in its order).

A strategy is one entry point, ``run(ctx, seed) -> records``: it trains the phases of one seed
through the run's context (:class:`autosample_ext.run.phases.RunContext`: configuration, data,
run directory, stop flag, resume, distributed context), each phase checkpointed under
``checkpoints/seed<S>-<phase>.pt`` and resumed from there, and returns the seed's
:class:`~autosample_ext.run.phases.PhaseRecord` list in the order they ran. ``--compare`` runs
every strategy of the table, in its order.

Adding a strategy: its engine and its ``run`` in ``search/``, and one row here; ``--search``,
``--compare`` and every protocol that does not restrict the run modes then include it. Its
records are reported like any method (``metrics.json`` ``runs`` and ``aggregate``,
``table.md``); a section of its own in ``metrics.json`` is written by
:mod:`autosample_ext.run.driver`, its table label by :mod:`autosample_ext.report.tables`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autosample_ext.search import autosample_phases, grid, halving_phases
from autosample_ext.search.records import PhaseContext, PhaseRecord

if TYPE_CHECKING:
    from autosample_ext.search.records import PhaseContext, PhaseRecord


@dataclass(frozen=True)
class Strategy:
    """A search strategy: its ``--search`` name and its entry point."""

    name: str
    run: Callable[[PhaseContext, int], list[PhaseRecord]]


#: name -> strategy: the paper's AutoSample (default), successive halving, grid search
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("autosample", autosample_phases.run),
    Strategy("sh", halving_phases.run),
    Strategy("grid", grid.run),
)}
