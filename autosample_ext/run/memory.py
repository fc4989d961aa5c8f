"""Refusing sizes that cannot fit before anything is allocated.

A run's largest allocations are known from its settings and the dataset's sizes: the model's
embedding tables (``--dim``), each sampler's per-step pool (``dns.num_candidates`` ids per
negative of every batch row) or per-user state (GDNS's slot table, SRNS's memory), AOBPR's
ranking of the batch's users. :func:`run_needs` estimates them, :func:`check_memory` compares
the largest with the memory the device has available and raises :class:`MemoryLimitError`
naming the options that set it. Called twice: before the data is read with the smallest sizes
any dataset can have (one user, one item, one training pair: only values that cannot fit for
any data are refused, exit status 2), and once the data is read with its real sizes (exit 1).

The estimates count the tensors the code allocates (ids 8 bytes, float32 values 4 bytes); they
are lower bounds of the peak (temporaries of the ops are not counted), so a refused setting
could never have run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autosample_ext.run.config import RunConfig


class MemoryLimitError(ValueError):
    """A setting whose allocation cannot fit in the available memory; names the options."""


@dataclass(frozen=True)
class Shape:
    """The sizes the estimates depend on: batch rows per step (``--batch-size`` capped at the
    training pairs), negatives per row, embedding width, users, items."""

    rows: int
    batch_size: int
    negatives: int
    dim: int
    users: int
    items: int


@dataclass(frozen=True)
class Need:
    """One allocation: what it is, its bytes, the formula, and the options that set it as
    ``(option, value, default)`` (the one furthest above its default is named first)."""

    what: str
    bytes: int
    formula: str
    options: tuple[tuple[str, float, float], ...] = ()

    @property
    def culprit(self) -> tuple[str, str]:
        """The option furthest above its default and how it was given:
        ``("dns.num_candidates", "--sampler-opt dns.num_candidates=1000000000")``."""
        if not self.options:
            return "", ""
        name, value, _ = max(self.options, key=lambda o: o[1] / max(o[2], 1))
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        if name.startswith("--sampler-opt "):
            return name.removeprefix("--sampler-opt "), f"{name}={shown}"
        return name, f"{name} {shown}"


def format_bytes(n: float) -> str:
    """``16.4 TB`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def available_bytes(device: str = "cpu") -> tuple[int | None, str]:
    """Memory available to new allocations on ``device`` and where the number comes from:
    ``torch.cuda.mem_get_info`` on a GPU, ``MemAvailable`` of ``/proc/meminfo`` on Linux,
    ``os.sysconf`` elsewhere; ``(None, reason)`` when it cannot be read (nothing is refused)."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None, "no CUDA device"
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free memory of {device}"
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return (os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"),
                "available physical pages (sysconf)")
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def _n(value: int) -> str:
    return f"{value:,}"


def _rows(s: Shape) -> str:
    return f"{_n(s.rows)} rows (--batch-size) x {_n(s.negatives)} negative(s) (--num-negatives)"


def _row_options(s: Shape) -> tuple[tuple[str, float, float], ...]:
    return (("--batch-size", s.batch_size, 2048), ("--num-negatives", s.negatives, 1))


def _pool(name: str, per_id: int, what: str) -> Callable[[dict[str, Any], Shape], list[Need]]:
    def needs(opts: dict[str, Any], s: Shape) -> list[Need]:
        m = int(opts["num_candidates"])
        return [Need(f"{name.upper()}'s {what}", s.rows * s.negatives * m * per_id,
                     f"{_rows(s)} x {_n(m)} candidates (--sampler-opt {name}.num_candidates) x "
                     f"{per_id} bytes",
                     _row_options(s) + ((f"--sampler-opt {name}.num_candidates", m,
                                         _default(name, "num_candidates")),))]
    return needs


def _default(name: str, field: str) -> float:
    from autosample_ext.samplers.registry import resolved_options

    value = resolved_options(name).get(field)
    return float(value) if isinstance(value, (int, float)) else 1.0


def _negatives(name: str) -> Callable[[dict[str, Any], Shape], list[Need]]:
    def needs(opts: dict[str, Any], s: Shape) -> list[Need]:
        return [Need(f"{name.upper()}'s negatives", s.rows * s.negatives * 8,
                     f"{_rows(s)} x 8 bytes", _row_options(s))]
    return needs


def _aobpr(opts: dict[str, Any], s: Shape) -> list[Need]:
    from autosample_ext.samplers.aobpr import AOBPROptions

    ranks = AOBPROptions(**opts).resolved_top_ranks
    k = min(ranks, s.items)
    option = (("--sampler-opt aobpr.top_ranks", ranks, 50) if opts.get("top_ranks") is not None
              else ("--sampler-opt aobpr.rank_lambda", float(opts["rank_lambda"]), 10.0))
    return [Need("AOBPR's ranking of the batch's users", s.rows * k * 32,
                 f"{_n(s.rows)} rows (--batch-size) x {_n(k)} ranks (--sampler-opt "
                 f"aobpr.top_ranks, default ceil(5 x aobpr.rank_lambda), at most the items) x "
                 f"32 bytes (ids and scores of the top ranks, their copy per row, the sorted "
                 f"exclusion keys)", (("--batch-size", s.batch_size, 2048), option))]


def _srns(opts: dict[str, Any], s: Shape) -> list[Need]:
    size, hist, fresh = int(opts["memory_size"]), int(opts["history_length"]), int(opts["num_fresh"])
    per = 16 + 4 * hist
    history = ("--sampler-opt srns.history_length", hist, 5)
    return [Need("SRNS's per-user memory", s.users * size * per,
                 f"{_n(s.users)} users x {_n(size)} slots (--sampler-opt srns.memory_size) x "
                 f"(16 + 4 x {_n(hist)} (--sampler-opt srns.history_length)) bytes",
                 (("--sampler-opt srns.memory_size", size, 20), history)),
            Need("SRNS's fresh candidates", s.rows * fresh * per,
                 f"{_n(s.rows)} rows (--batch-size) x {_n(fresh)} (--sampler-opt srns.num_fresh) x "
                 f"(16 + 4 x {_n(hist)}) bytes",
                 (("--batch-size", s.batch_size, 2048), ("--sampler-opt srns.num_fresh", fresh, 20),
                  history))]


def _gdns(opts: dict[str, Any], s: Shape) -> list[Need]:
    from autosample_ext.samplers.base import SamplerOptionError
    from autosample_ext.samplers.gdns_state import plan_table

    m = int(opts["num_candidates"])
    needs = [Need("GDNS's candidates", s.rows * m * 12,
                  f"{_n(s.rows)} rows (--batch-size) x {_n(m)} candidates (--sampler-opt "
                  f"gdns.num_candidates) x 12 bytes (id and gain)",
                  (("--batch-size", s.batch_size, 2048), ("--sampler-opt gdns.num_candidates", m, 64)))]
    try:  # the layout the sampler will choose (its own budget check names a table that cannot fit)
        plan = plan_table(opts["table"], int(opts["max_table_bytes"]), opts["num_slots"], s.users,
                          s.items, quiet=True)
    except SamplerOptionError:
        return needs
    if plan.layout == "dense":
        table = Need("GDNS's gain table", plan.nbytes,
                     f"{_n(s.users)} users x {_n(s.items)} items x 8 bytes (H, G: the dense "
                     f"table, --sampler-opt gdns.table)",
                     (("--sampler-opt gdns.max_table_bytes", opts["max_table_bytes"], 1 << 30),))
    else:
        table = Need("GDNS's gain table", plan.nbytes,
                     f"{_n(s.users)} users x {_n(plan.num_slots)} slots (--sampler-opt "
                     f"gdns.num_slots) x 16 bytes (item id, H, G)",
                     (("--sampler-opt gdns.num_slots", plan.num_slots, 128),))
    return [table] + needs


#: per sampler: its allocations for given options (all fields resolved) and sizes
SAMPLER_NEEDS: dict[str, Callable[[dict[str, Any], Shape], list[Need]]] = {
    "rns": _negatives("rns"),
    "pns": _negatives("pns"),
    "dns": _pool("dns", 8, "candidate pool"),
    "mixgcf": _pool("mixgcf", 16, "candidate pool (ids, scores, mixed scores)"),
    "aobpr": _aobpr,
    "srns": _srns,
    "gdns": _gdns,
}


def model_need(cfg: RunConfig, s: Shape) -> Need:
    """The embedding tables with their gradients and the optimiser's state (Adam: two
    moments; graph models: the propagated tables and their gradients too)."""
    copies = 4 if cfg.optimizer == "adam" else 3
    if cfg.model in ("lightgcn", "ngcf"):
        copies += 2 * (cfg.layers + 1 if cfg.model == "ngcf" else 1)
    return Need("the model's embedding tables", (s.users + s.items) * cfg.dim * 4 * copies,
                f"({_n(s.users)} users + {_n(s.items)} items) x {_n(cfg.dim)} (--dim) x 4 bytes x "
                f"{copies} (weights, gradients, optimiser state"
                + (", propagated layers" if cfg.model in ("lightgcn", "ngcf") else "") + ")",
                (("--dim", cfg.dim, 64),))


def run_needs(cfg: RunConfig, *, users: int = 1, items: int = 1, pairs: int = 1) -> list[Need]:
    """The largest allocations of ``cfg`` on a dataset of these sizes (defaults: the smallest
    any dataset has)."""
    from autosample_ext.samplers.registry import resolved_options

    shape = Shape(rows=max(1, min(cfg.batch_size, pairs)), batch_size=cfg.batch_size,
                  negatives=max(1, cfg.num_negatives),
                  dim=cfg.dim, users=max(1, users), items=max(1, items))
    needs = [model_need(cfg, shape)]
    for name in cfg.trained_samplers():
        estimate = SAMPLER_NEEDS.get(name)
        if estimate is not None:
            needs += estimate(resolved_options(name, cfg.sampler_kwargs(name)), shape)
    return needs


def check_memory(cfg: RunConfig, *, users: int = 1, items: int = 1, pairs: int = 1,
                 available: tuple[int | None, str] | None = None) -> None:
    """Raise :class:`MemoryLimitError` when one allocation of ``cfg`` (:func:`run_needs`), or
    the model's tables with it, needs more than the memory available on ``cfg.device``."""
    free, source = available if available is not None else available_bytes(cfg.device)
    if free is None:
        return
    needs = run_needs(cfg, users=users, items=items, pairs=pairs)
    model = needs[0]
    for need in sorted(needs, key=lambda n: n.bytes, reverse=True):
        total = need.bytes + (model.bytes if need is not model else 0)
        if total > free:
            name, given = need.culprit
            raise MemoryLimitError(
                f"{given}: {need.what} would need about {format_bytes(need.bytes)} "
                f"({need.formula}), more than the {format_bytes(free)} available on "
                f"{cfg.device} ({source}); lower {name}")
