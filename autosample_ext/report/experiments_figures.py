"""The experiments report's figures (Figure 3: search cost; Figure 4: alpha trajectories),
drawn from the runs' saved numbers: the run folders under ``--runs``, or the ``report.json``
a report wrote (``python -m autosample_ext.experiments --report-only --from-json
report.json``), which holds every run's ``metrics.json`` and the compare runs' alpha
trajectories (``alpha``, the rows of ``alpha.csv``)."""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from autosample_ext.report.figures import (
    setting_title,
    split_setting,
    write_alpha_plot,
    write_cost_plot,
)

log = logging.getLogger(__name__)

Runs = dict[str, dict[str, dict[str, Any]]]


def paper_method(m: dict[str, Any]) -> str:
    """The method name of the paper's AutoSample in a compare run: ``autosample-train`` beside
    the validation-driven one, ``autosample`` in runs made before the alpha objectives."""
    return "autosample-train" if "autosample-train" in m else "autosample"


def cost_series(named: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """CPU seconds per seed of each strategy of a setting: AutoSample (both alpha objectives
    where run), SH, SH without the tie rule and SH with ties judged against the leader (when
    run), the grid."""
    m = named["compare"]
    per = m["costs"]["per_seed"]
    paper = paper_method(m)
    methods = [(paper, "AutoSample (paper)"), ("sh", "SH")]
    if paper != "autosample":
        methods.insert(0, ("autosample", "AutoSample (validation alpha)"))
    out = {label: [per[s][method]["cpu_seconds"] for s in per if method in per[s]]
           for method, label in methods}
    for name, label in (("sh-tie0", "SH, no tie rule"), ("sh-tiebest", "SH, ties vs leader")):
        if name in named:
            out[label] = [r["cpu_seconds"] for r in named[name]["sh"].values()]
    out["grid"] = [per[s]["grid"]["cpu_seconds"] for s in per if "grid" in per[s]]
    return out


def _seeds_text(runs: Runs) -> str:
    seeds = sorted({int(s) for named in runs.values() if "compare" in named
                    for s in named["compare"].get("costs", {}).get("per_seed", {})})
    if not seeds:
        return ""
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def figure3(runs: Runs, path: Path) -> bool:
    """Search cost: one panel per setting, the CPU seconds of each strategy (mean over seeds,
    ± std) with its ratio to the grid's."""
    settings = [s for s, named in runs.items() if "compare" in named and "costs" in named["compare"]]
    if not settings:
        return False
    write_cost_plot({s: cost_series(runs[s]) for s in settings}, path, seeds=_seeds_text(runs))
    return True


def alpha_rows(m: dict[str, Any]) -> list[dict[str, float]] | None:
    """The alpha trajectories of a compare run: its ``alpha`` (from a report.json) or the rows
    of its folder's ``alpha.csv``; None when neither exists."""
    if m.get("alpha"):
        return m["alpha"]
    path = Path(m.get("_path", "")) / "alpha.csv"
    if "_path" not in m or not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: (int(v) if k in ("seed", "epoch") else float(v)) for k, v in row.items()}
                for row in csv.DictReader(fh)]


def search_best_epochs(m: dict[str, Any]) -> dict[int, int]:
    """Per seed, the search's best validation epoch (where alpha* is read)."""
    return {int(r["seed"]): int(r["best_epoch"]) for r in m.get("runs", [])
            if r.get("method") == "search"}


def figure4(setting: str, named: dict[str, dict[str, Any]], path: Path) -> bool:
    """The compare run's alpha per search epoch, per seed, alpha* marked."""
    import pandas as pd

    m = named.get("compare")
    rows = alpha_rows(m) if m is not None else None
    if not rows:
        return False
    write_alpha_plot(pd.DataFrame(rows), path, title=setting_title(*split_setting(setting)),
                     best_epochs=search_best_epochs(m))
    return True


def replot_from_json(runs: Runs, out: str | Path, *, source: str = "report.json") -> Path:
    """Redraw the report's figures into ``out`` from a saved report.json (``runs``: its
    content); returns ``out``. A figure whose numbers the file lacks is named in the log and
    skipped; a file with none of them is an error."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(runs, dict) or not all(isinstance(v, dict) for v in runs.values()):
        raise ValueError(f"{source}: not a report.json (expected {{setting: {{run: metrics}}}})")
    try:
        drawn = ["fig3_search_cost.png"] if figure3(runs, out / "fig3_search_cost.png") else []
        for setting, named in runs.items():
            name = f"fig4_alpha_{setting}.png"
            if figure4(setting, named, out / name):
                drawn.append(name)
            elif "compare" in named:
                log.warning("%s: %s has no alpha trajectories for %s; %s not redrawn", source,
                            setting, "compare", name)
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"{source}: not a report.json as the experiments write it (no "
                         f"{exc} where a figure needs it)") from None
    if not drawn:
        raise ValueError(f"{source}: no figure can be drawn from it (no compare run with costs "
                         f"or alpha trajectories)")
    log.info("redrew %s in %s", ", ".join(drawn), out)
    return out
