"""What a person reads: the printed summary's lines (one below-floor warning, one legend, no
empty lines, no ranks for one row, no progress-bar escape codes in captured output) and the
figures' titles, ticks, markers and scales (drawn from saved numbers only)."""
from __future__ import annotations

import json

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

from autosample_ext.report.printout import below_floor_line, legend_line
from autosample_ext.report.tables import render_table, summary_text


def _floor(run: str, value: float) -> dict:
    return {"run": run, "metric": "recall@20", "value": value, "popularity": 0.3}


def test_below_floor_is_one_line_for_many_runs():
    assert below_floor_line([]) is None
    one = below_floor_line([_floor("seed0/rns", 0.1)])
    assert one.startswith("WARNING: seed0/rns is below the popularity floor: recall@20 0.1000 < 0.3000")
    many = below_floor_line([_floor(f"seed{s}/{m}", 0.01 * (s + 1) + (m == "dns") * 0.1)
                             for s in (0, 1) for m in ("rns", "dns", "autosample")])
    assert "\n" not in many and many.startswith("WARNING: 6 runs are below the popularity floor")
    assert "rns (seeds 0,1), dns (seeds 0,1), autosample (seeds 0,1)" in many
    assert "lowest seed0/rns 0.0100" in many


def test_legend_spells_out_metrics_alpha_and_samplers():
    metrics = {"table_columns": ["recall@20", "ndcg@20", "precision@20", "hit@20"],
               "runs": [{"sampler": "aobpr@5+dns"}],
               "autosample": {"0": {"alpha_star": {"rns": 0.5, "pns": 0.5}}}}
    line = legend_line(metrics)
    assert line.startswith("Legend: R/N/P/H@20 = Recall, NDCG, Precision, Hit rate in the top 20")
    assert "alpha* = AutoSample's learned sampler weights" in line
    for name in ("RNS uniform", "PNS popularity", "DNS dynamic", "AOBPR adaptive"):
        assert name in line
    sampled = legend_line({"table_columns": ["ndcg@1", "ndcg@3", "recall@3"], "runs": []})
    assert "N@1 = NDCG in the top 1; N/R@3 = NDCG, Recall in the top 3" in sampled


class _Summary:
    def __init__(self, metrics):
        self.metrics, self.table, self.path, self.seconds = metrics, "| Sampler |", "out", 1.0


def test_grid_summary_has_no_empty_cost_line():
    metrics = {"grid": {"0": {"best": "dns", "cpu_seconds": 2.0, "seconds": 3.0}},
               "costs": {"cpu_ratio_to_grid": {"grid": 1.0, "rns": 0.4, "dns": 0.6}},
               "popularity": {"test": {"recall@20": 0.1, "ndcg@20": 0.1}}, "table_k": 20,
               "reported_split": "test", "table_columns": ["recall@20"], "runs": []}
    text = summary_text(_Summary(metrics))
    assert "CPU seconds / grid's" not in text
    metrics["costs"]["cpu_ratio_to_grid"]["sh"] = 0.5
    assert "CPU seconds / grid's: SH 0.50" in summary_text(_Summary(metrics))
    assert sum(line.startswith("Legend:") for line in text.splitlines()) == 1


def test_one_row_table_has_no_ranks():
    from autosample_ext.search.records import PhaseRecord
    from autosample_ext.training.config import TrainResult

    def rec(seed, method, value):
        m = {"recall@20": value, "ndcg@20": value, "precision@20": value, "hit@20": value}
        return PhaseRecord(seed, method, method, TrainResult(1, dict(m), dict(m), 1, False, 0.0))

    one = render_table([rec(0, "rns", 0.1), rec(1, "rns", 0.2)], "test", 20)
    assert one.splitlines()[0] == "| Sampler | R@20 | N@20 | P@20 | H@20 |" and "(1)" not in one
    two = render_table([rec(0, "rns", 0.1), rec(0, "dns", 0.2)], "test", 20)
    assert two.splitlines()[0].endswith("| Avg rank |") and "(1)" in two


def test_progress_bars_stay_off_when_stderr_is_captured(capsys, tmp_path):
    """tqdm draws only on a terminal: captured output holds no escape codes or carriage returns."""
    from autosample_ext import data as D
    from autosample_ext.run import RunConfig, run

    data = D.load(None, split="3:1:1", seed=0)
    run(RunConfig(sampler=("rns",), epochs=2, dim=8, batch_size=8192, progress=True,
                  out=str(tmp_path / "r")), data=data)
    err = capsys.readouterr().err
    assert "\x1b[" not in err and "\r" not in err


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn (captured at savefig)."""
    figures: list[matplotlib.figure.Figure] = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, *a, **k: figures.append(self))
    return figures


def test_alpha_plot_title_ticks_markers_and_alpha_star(drawn, tmp_path):
    from autosample_ext.report.figures import write_alpha_plot

    frame = pd.DataFrame([{"seed": s, "epoch": e, "rns": 0.25 + 0.01 * e, "dns": 0.25 - 0.01 * e,
                           "aobpr": 0.25 - 0.01 * e} for s in (0, 1) for e in range(1, 8)])
    write_alpha_plot(frame, tmp_path / "a.png", title="lastfm, MF", best_epochs={0: 5, 1: 3})
    (fig,) = drawn
    assert "lastfm, MF" in fig._suptitle.get_text() and "AutoSample" in fig._suptitle.get_text()
    ax = fig.axes[0]
    assert "epoch 5" in ax.get_title()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    lines = ax.get_lines()[:3]
    assert len({(ln.get_marker(), ln.get_linestyle()) for ln in lines}) == 3  # told apart
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(stars) == 3 and all(list(ln.get_xdata()) == [5] for ln in stars)


def test_cost_plot_labels_are_horizontal_rows(drawn, tmp_path):
    from autosample_ext.report.figures import write_cost_plot

    series = {"lastfm-mf": {"AutoSample (paper)": [5.0, 6.0], "SH": [2.0, 3.0],
                            "SH, ties vs leader": [2.5], "grid": [6.0, 7.0]}}
    write_cost_plot(series, tmp_path / "c.png", seeds="0, 1")
    (fig,) = drawn
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(series["lastfm-mf"])
    assert ax.get_title() == "lastfm, MF"
    assert any("x grid" in t.get_text() for t in ax.texts)


def test_density_plot_from_json_labels_and_log_scale(drawn, tmp_path):
    from autosample_ext.report.false_negatives import (
        BINS,
        write_density_plot,
    )

    hist = np.histogram(np.r_[np.full(90, 1.0), np.linspace(0.5, 0.9, 10)], BINS)[0].tolist()
    snap = {k: {"mean": 0.5, "median": 0.5, "p10": 0.1, "p90": 0.9, "hist": hist}
            for k in ("h_planted", "h_ordinary", "g_planted", "g_ordinary")}
    result = {"data": "ml-1m", "settings": {"model": "gmf"}, "samplers": {"gdns": {
        "snapshots": {"2": snap}, "epochs": {"2": {"g_planted": hist, "g_ordinary": hist}}}}}
    assert write_density_plot(json.loads(json.dumps(result)), tmp_path / "d.png")
    (fig,) = drawn
    assert fig._suptitle.get_text().startswith("ml-1m, GMF, GDNS protocol")
    g_all, g_selected = fig.axes[1], fig.axes[3]
    for ax in fig.axes:
        assert ax.get_xlabel()
    assert g_all.get_yscale() == "log" and g_selected.get_yscale() == "log"
    assert fig.axes[0].get_yscale() == "linear"
