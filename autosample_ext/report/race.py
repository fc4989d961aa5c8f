"""The race's own table in ``table.md`` and the search-space listing in ``config.json``: every
candidate of a successive-halving race (the expansion of ``dns(num_candidates=4|8)`` and of
``auto``, the schedules added at the first rung), how far it trained, where it was dropped and
why the others stayed. Reads results; runs nothing."""
from __future__ import annotations

from typing import Any

from autosample_ext.report.tables import column_label


def race_table(races: dict[str, dict[str, Any]], metric: str) -> str:
    """Markdown: per seed, one row per candidate (in race order): epochs trained, the rung
    epoch it was dropped at, its best validation ``metric``, where it came from (a schedule
    branched at the first rung), and the reason it stayed at its last rung."""
    lines = [(f"| seed | candidate | epochs trained | dropped at epoch | best valid {column_label(metric)} "
             f"| kept at its last rung as | origin |"), "|---|---|---|---|---|---|---|"]
    for seed, race in races.items():
        why: dict[str, str] = {}
        for d in race["decisions"]:
            why.update(d.get("reasons", {}))
        for run in race["runs"]:
            name = run["sampler"]
            origin = (f"branched from {run['branched_from']} at epoch {run['branch_epoch']}"
                      if run.get("branched_from") else "")
            chosen = " **(chosen)**" if name == race["chosen"].split(">>")[0] else ""
            dropped = run["eliminated_at_epoch"]
            lines.append(f"| {seed} | {name}{chosen} | {run['epochs_run']} | "
                         f"{'' if dropped is None else dropped} | "
                         f"{run['valid'].get(metric, float('nan')):.4f} | "
                         f"{'' if dropped is not None else why.get(name, '')} | {origin} |")
        stage = race.get("curriculum")
        if stage and stage.get("harder"):
            lines.append(f"| {seed} | {stage['name']} | {stage['epochs_run']} | | "
                         f"{stage['valid'].get(metric, float('nan')):.4f} | "
                         f"{'kept' if stage['kept'] else 'not kept (validation not better)'} | "
                         f"the winner's best state trained on with {stage['harder']} |")
    return "\n".join(lines) + "\n"


def space_record(cfg_space: tuple[str, ...], races: dict[str, dict[str, Any]] | None = None,
                 static: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``config.json``'s ``search_space_expansion``: the candidates as given (expanded), the
    race's starting candidates (``auto`` replaced by its static part), and per seed the
    schedules added at the first rung."""
    out: dict[str, Any] = {"given": list(cfg_space)}
    if static is not None:
        out["raced"] = list(static)
    if races:
        out["added"] = {seed: [a["name"] for a in race.get("added", [])]
                        for seed, race in races.items()}
    return out
