"""CUDA operators never synchronise the host (docs/design.md).

Every op runs under ``torch.cuda.set_sync_debug_mode("error")`` and is captured in a CUDA graph
whose replay gives the eager result. Value errors found by a kernel are reported
asynchronously: not raised by the call, but by ``ops.check_errors()`` or by the next call once
the kernel has finished, with the CPU kernels' message; sync mode raises in the call.
Skipped when no GPU is visible or the build has no CUDA kernels.
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch

import autosample_ext
from autosample_ext import ops

DEV = "cuda"
pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _clean_errors():
    yield
    if torch.cuda.is_available() and autosample_ext.cuda_compiled():
        torch.cuda.set_sync_debug_mode("default")
        ops.check_errors()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _csr(rows: int, n: int, deg: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    lists = [torch.sort(torch.randperm(n, generator=g)[: int(torch.randint(0, deg + 1, (1,), generator=g))]).values
             for _ in range(rows)]
    indptr = torch.tensor([0] + [len(r) for r in lists]).cumsum(0)
    return indptr.to(DEV), torch.cat(lists).to(DEV)


def op_cases() -> dict[str, Callable[[], Callable[[], object]]]:
    """name -> builder of a closure calling the op on fixed, valid CUDA inputs."""

    def scoring(k: int, d: int = 64, dtype=torch.float32):
        def build():
            g = _gen(k + d)
            user = torch.randn(40, d, generator=g, dtype=dtype).to(DEV)
            items = torch.randn(300, d, generator=g, dtype=dtype).to(DEV)
            cand = torch.randint(0, 300, (40, 200), generator=g).to(DEV)
            return lambda: ops.score_topk(user, items, cand, k)
        return build

    def score_candidates():
        g = _gen(1)
        user, items = torch.randn(40, 12, generator=g).to(DEV), torch.randn(300, 12, generator=g).to(DEV)
        cand = torch.randint(0, 300, (40, 33), generator=g).to(DEV)
        return lambda: ops.score_candidates(user, items, cand)

    def select(k: int):
        def build():
            keys = torch.randn(50, 300, generator=_gen(k)).to(DEV)
            return lambda: ops.select_topk(keys, k)
        return build

    def sample(alias: bool):
        def build():
            indptr, indices = _csr(30, 500, 100, 3)
            users = torch.randint(0, 30, (64,), generator=_gen(4)).to(DEV)
            table = ops.build_alias_table(torch.rand(500, generator=_gen(5))) if alias else (None, None)
            prob, idx = (t.to(DEV) if t is not None else None for t in table)
            return lambda: ops.sample_negatives(indptr, indices, users, 500, 16, 7, 9, prob, idx)
        return build

    def rank(k: int):
        def build():
            g = _gen(k)
            user, items = torch.randn(70, 32, generator=g).to(DEV), torch.randn(3000, 32, generator=g).to(DEV)
            indptr, excl = _csr(70, 3000, 200, 6)
            return lambda: ops.rank_topk(user, items, indptr, excl, k)
        return build

    def lookup():
        keys = torch.randint(-1, 50, (20, 8), generator=_gen(7)).to(DEV)
        g = torch.rand(20, 8, generator=_gen(8)).to(DEV)
        users = torch.randint(0, 20, (30,), generator=_gen(9)).to(DEV)
        items = torch.randint(0, 50, (30, 16), generator=_gen(10)).to(DEV)
        return lambda: ops.gdns_lookup(keys, g, users, items)

    return {
        "score_candidates": score_candidates,
        "score_topk-k1": scoring(1), "score_topk-k8": scoring(8), "score_topk-k0": scoring(0),
        "score_topk-k150-sort": scoring(150), "score_topk-d12": scoring(4, d=12),
        "score_topk-f64": scoring(4, d=10, dtype=torch.float64),
        "select_topk-k5": select(5), "select_topk-k129-sort": select(129),
        "sample_negatives-uniform": sample(False), "sample_negatives-alias": sample(True),
        "rank_topk-k20": rank(20), "rank_topk-k100": rank(100), "rank_topk-k200-sort": rank(200),
        "gdns_lookup": lookup,
    }


CASES = op_cases()


def _flat(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("name", list(CASES))
def test_op_is_sync_free(name: str) -> None:
    call = CASES[name]()
    want = _flat(call())  # warm-up: module load, first-call set-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    got = _flat(call())
    torch.cuda.set_sync_debug_mode("default")
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_op_captured_in_cuda_graph(name: str) -> None:
    call = CASES[name]()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        want = [t.clone() for t in _flat(call())]  # warm-up off the capture stream, as torch asks
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = _flat(call())
    for t in static:
        t.fill_(-7) if t.dtype == torch.int64 else t.fill_(float("nan"))  # poison: replay must write
    graph.replay()
    torch.cuda.synchronize()
    for a, b in zip(static, want):
        assert torch.equal(a, b), name


def test_gdns_update_captured_and_sync_free() -> None:
    U, S = 12, 8
    g = _gen(11)
    users = torch.randint(0, U, (40,), generator=g).to(DEV)
    items = torch.randint(0, 30, (40, 5), generator=g).to(DEV)
    pos, neg = torch.randn(40, 3, generator=g).to(DEV), torch.randn(40, 5, generator=g).to(DEV)
    fresh = (torch.full((U, S), -1, dtype=torch.int64, device=DEV), torch.ones(U, S, device=DEV),
             torch.ones(U, S, device=DEV))
    eager = tuple(t.clone() for t in fresh)
    ops.gdns_update(*eager, users, items, pos, neg, 0.5, 1e-3)
    torch.cuda.synchronize()
    debug = tuple(t.clone() for t in fresh)
    torch.cuda.set_sync_debug_mode("error")
    ops.gdns_update(*debug, users, items, pos, neg, 0.5, 1e-3)
    torch.cuda.set_sync_debug_mode("default")
    static = tuple(t.clone() for t in fresh)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        ops.gdns_update(*static, users, items, pos, neg, 0.5, 1e-3)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.gdns_update(*static, users, items, pos, neg, 0.5, 1e-3)
    for t, f in zip(static, fresh):
        t.copy_(f)
    graph.replay()
    torch.cuda.synchronize()
    for a, b, c in zip(static, eager, debug):
        assert torch.equal(a, b) and torch.equal(c, b)


def _bad_scoring():
    user = torch.randn(4, 8, device=DEV)
    items = torch.randn(10, 8, device=DEV)
    cand = torch.randint(0, 10, (4, 6), device=DEV)
    cand[2, 3] = 10
    return user, items, cand


def test_value_error_is_not_raised_by_the_call_but_by_check_errors() -> None:
    user, items, cand = _bad_scoring()
    ops.score_candidates(user, items, cand[:, :1].clone())  # set-up outside sync debug mode
    torch.cuda.set_sync_debug_mode("error")
    out = ops.score_candidates(user, items, cand)  # no sync: no error yet
    torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (4, 6)
    with pytest.raises(RuntimeError, match=r"autosample::score_candidates: argument 'cand' holds item id 10 "
                                           r"at position \(2, 3\), outside \[0, 10\).*asynchronously"):
        ops.check_errors()
    ops.check_errors()  # reported once, then cleared


def test_next_call_raises_an_earlier_error() -> None:
    user, items, cand = _bad_scoring()
    ops.score_topk(user, items, cand, 2)
    torch.cuda.synchronize()  # the kernel has finished: its flag is visible to the host
    keys = torch.randn(3, 5, device=DEV)
    with pytest.raises(RuntimeError, match=r"score_topk: argument 'cand' holds item id 10"):
        ops.select_topk(keys, 2)
    ops.select_topk(keys, 2)  # cleared


def test_earliest_call_wins() -> None:
    user, items, cand = _bad_scoring()
    ops.score_candidates(user, items, cand)
    keys_ = torch.full((2, 3), -1, dtype=torch.int64, device=DEV)
    ops.gdns_lookup(keys_, torch.ones(2, 3, device=DEV), torch.tensor([5], device=DEV),
                    torch.zeros(1, 2, dtype=torch.int64, device=DEV))
    with pytest.raises(RuntimeError, match=r"score_candidates: argument 'cand'"):
        ops.check_errors()


def test_sync_mode_raises_in_the_failing_call() -> None:
    user, items, cand = _bad_scoring()
    previous = ops.set_sync_errors(True)
    try:
        with pytest.raises(RuntimeError, match=r"score_candidates: argument 'cand' holds item id 10"):
            ops.score_candidates(user, items, cand)
    finally:
        assert ops.set_sync_errors(previous) is True


def test_outputs_of_a_bad_call_are_safe_to_use() -> None:
    """Until the error is raised, outputs hold in-range ids, so later kernels cannot fault."""
    user, items, cand = _bad_scoring()
    _, ids = ops.score_topk(user, items, cand, 6)
    assert int(ids.min()) >= 0 and int(ids.max()) < 10
    with pytest.raises(RuntimeError, match="score_topk"):
        ops.check_errors()
    indptr = torch.tensor([0, 9, 9], device=DEV)
    excl = torch.arange(9, device=DEV)
    _, top = ops.rank_topk(user[:2], items, indptr, excl, 3)  # row 0 keeps 1 item < k
    assert int(top.min()) >= 0 and int(top.max()) < 10
    with pytest.raises(RuntimeError, match=r"rank_topk: argument 'k' = 3 exceeds the 1 non-excluded items of row 0"):
        ops.check_errors()
    draws = ops.sample_negatives(indptr, excl, torch.tensor([0, 7], device=DEV), 10, 4, 0, 0)
    assert int(draws.min()) >= 0 and int(draws.max()) < 10
    with pytest.raises(RuntimeError, match=r"sample_negatives: argument 'users' holds user 7 at position 1"):
        ops.check_errors()


def test_error_found_in_a_graph_replay() -> None:
    user, items, cand = _bad_scoring()
    good = cand.clamp(0, 9)
    static = good.clone()
    ops.score_candidates(user, items, static)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = ops.score_candidates(user, items, static)
    graph.replay()
    ops.check_errors()
    static.copy_(cand)
    graph.replay()
    with pytest.raises(RuntimeError, match=r"score_candidates: argument 'cand' holds item id 10"):
        ops.check_errors()
    assert out.shape == (4, 6)
