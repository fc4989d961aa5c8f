"""The search strategies' table: the names a run and the CLI accept come from it, and the driver
runs a strategy by looking it up there (a strategy is one row, no branch of the driver)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import SEARCHES, RunConfig, run
from autosample_ext.run.driver import run_seed
from autosample_ext.run.protocols import PROTOCOL_SPECS, Protocol
from autosample_ext.search import strategies
from autosample_ext.search.strategies import STRATEGIES


@pytest.fixture(scope="module")
def tiny():
    return default_dataset(seed=3, config=SyntheticConfig(num_users=300, num_items=200,
                                                          mean_interactions=15.0))


def test_search_names_are_the_tables():
    from autosample_ext.train_parser import build_parser

    assert SEARCHES == tuple(STRATEGIES) == ("autosample", "sh", "grid")
    assert all(s.name == name for name, s in STRATEGIES.items())
    search = next(a for a in build_parser()._actions if a.dest == "search")
    assert tuple(search.choices) == SEARCHES
    # a protocol that does not restrict the modes allows every strategy
    default = Protocol.__dataclass_fields__["modes"].default
    assert set(STRATEGIES) <= set(default)
    assert set(STRATEGIES) <= set(PROTOCOL_SPECS["autosample"].modes)


def _spies(monkeypatch, calls):
    for name, strategy in list(STRATEGIES.items()):
        def spy(ctx, seed, name=name):
            calls.append((name, seed))
            return [name]
        monkeypatch.setitem(strategies.STRATEGIES, name, dataclasses.replace(strategy, run=spy))


@pytest.mark.parametrize("mode", ["autosample", "sh", "grid"])
def test_a_search_runs_its_strategy_alone(monkeypatch, mode):
    calls: list[tuple[str, int]] = []
    _spies(monkeypatch, calls)
    ctx = SimpleNamespace(cfg=SimpleNamespace(mode=mode, budget_singles=True))
    assert run_seed(ctx, 4) == [mode]
    assert calls == [(mode, 4)]


def test_compare_runs_every_strategy_in_the_tables_order(monkeypatch):
    calls: list[tuple[str, int]] = []
    _spies(monkeypatch, calls)
    ctx = SimpleNamespace(cfg=SimpleNamespace(mode="compare", budget_singles=False))
    assert run_seed(ctx, 1) == list(STRATEGIES)
    assert calls == [(name, 1) for name in STRATEGIES]


def test_run_writes_what_the_tables_strategy_returns(tiny, tmp_path, monkeypatch):
    """Through run(): the grid row is called once per seed and its records are the run's."""
    calls: list[int] = []
    real = STRATEGIES["grid"]

    def spy(ctx, seed):
        calls.append(seed)
        return real.run(ctx, seed)

    monkeypatch.setitem(strategies.STRATEGIES, "grid", dataclasses.replace(real, run=spy))
    cfg = RunConfig(out=str(tmp_path / "g"), search="grid", search_space=("rns", "dns"),
                    seeds=(0, 1), epochs=1, dim=8, batch_size=512, progress=False)
    summary = run(cfg, data=tiny)
    assert calls == [0, 1]
    assert [(r.seed, r.method) for r in summary.records] == [
        (0, "rns"), (0, "dns"), (0, "grid"), (1, "rns"), (1, "dns"), (1, "grid")]
    assert set(summary.metrics["grid"]) == {"0", "1"}
