"""Lines of the printed summary (and of ``table.md``) that a reader needs to make sense of the
numbers: one legend line that spells out the abbreviations, and one line for every run below
the popularity floor (not one line per run and seed, which would bury the table)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

METRIC_WORDS = {"recall": "Recall", "ndcg": "NDCG", "precision": "Precision", "hit": "Hit rate",
                "mrr": "MRR (mean reciprocal rank)"}
SAMPLER_WORDS = {
    "rns": "uniform random",
    "pns": "popularity-weighted",
    "dns": "dynamic: the best-scored of M uniform candidates",
    "aobpr": "adaptive rank-based (exp(-rank/lambda) over the ranking)",
    "srns": "SRNS: score + variance from a per-user memory",
    "mixgcf": "MixGCF: negatives synthesised by hop and positive mixing",
    "gdns": "GDNS: gain-tuned dynamic",
}


def _metric_legend(columns: Iterable[str]) -> str:
    """``R/N/P/H@20 = Recall, NDCG, Precision, Hit rate in the top 20``."""
    from autosample_ext.report.tables import TABLE_ABBREV

    by_k: dict[str, list[str]] = {}
    for column in columns:
        name, _, k = column.partition("@")
        by_k.setdefault(k, []).append(name)
    parts = []
    for k, names in by_k.items():
        short = "/".join(TABLE_ABBREV.get(n, n) for n in names)
        parts.append(f"{short}@{k} = {', '.join(METRIC_WORDS.get(n, n) for n in names)} "
                     f"in the top {k}")
    return "; ".join(parts)


def _sampler_names(metrics: dict[str, Any]) -> list[str]:
    """Every sampler the printout names: the rows', AutoSample's candidates (alpha*), the
    race's and the grid's candidates; schedules by their parts."""
    from autosample_ext.search.space import base_samplers

    given = [str(r.get("sampler", "")) for r in metrics.get("runs", ())]
    for block in metrics.get("autosample", {}).values():
        given += list(block.get("alpha_star", {}))
    for block in metrics.get("sh", {}).values():
        given += [str(c.get("sampler", "")) for c in block.get("runs", ())]
    for block in metrics.get("grid", {}).values():
        given += list(block.get("valid", {}))
    names: list[str] = []
    for name in given:
        try:  # a candidate with options or a schedule: its samplers
            names += list(base_samplers(name))
        except ValueError:  # not a candidate (e.g. a curriculum's "a>>b"): as written
            names.append(name)
    return [n for n in SAMPLER_WORDS if n in names]


def legend_line(metrics: dict[str, Any]) -> str:
    """One line: the table's metric abbreviations, alpha* (when AutoSample ran) and the
    samplers that appear, spelled out."""
    parts = ["Legend: " + _metric_legend(metrics.get("table_columns", ()))]
    if metrics.get("autosample"):
        parts.append("alpha* = AutoSample's learned sampler weights at the search's best "
                     "validation epoch (the retrain trains their argmax)")
    if metrics.get("sh"):
        parts.append("SH = successive halving on the validation metric")
    names = _sampler_names(metrics)
    if names:
        parts.append("samplers: " + ", ".join(f"{n.upper()} {SAMPLER_WORDS[n]}" for n in names))
    return "; ".join(parts) + "."


def below_floor_line(flagged: list[dict[str, Any]]) -> str | None:
    """One warning for every run whose metric is below the popularity ranking's, grouped by
    method (``metrics.json``'s ``below_popularity`` lists each); None when there is none."""
    if not flagged:
        return None
    if len(flagged) == 1:
        f = flagged[0]
        return (f"WARNING: {f['run']} is below the popularity floor: {f['metric']} "
                f"{f['value']:.4f} < {f['popularity']:.4f} (diverged or not trained enough: "
                f"check --lr and --epochs)")
    seeds: dict[str, list[str]] = {}
    for f in flagged:
        seed, _, method = f["run"].partition("/")
        seeds.setdefault(method, []).append(seed.removeprefix("seed"))
    lowest = min(flagged, key=lambda f: f["value"])
    groups = ", ".join(f"{m} (seed{'s' if len(s) > 1 else ''} {','.join(s)})"
                       for m, s in seeds.items())
    return (f"WARNING: {len(flagged)} runs are below the popularity floor "
            f"({flagged[0]['metric']} {flagged[0]['popularity']:.4f}): {groups}; lowest "
            f"{lowest['run']} {lowest['value']:.4f} (diverged or not trained enough: check --lr "
            f"and --epochs; each is listed in metrics.json, below_popularity)")
