"""Bad inputs to the operators: every case a clear error naming the op, the argument
and the value, never a crash, uninitialised memory or a silent wrong result.

One table, run on every device present (CPU; CUDA when a GPU and a CUDA build are there). The
same message is expected on both: the value rules and messages are shared
(csrc/include/autosample/validate.h, errors.h). CUDA kernels report value errors
asynchronously, so a case passes there when the call or the following ``ops.check_errors()``
raises. ``CASES`` is importable (the before/after table of the issue was produced from it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch

import autosample_ext
from autosample_ext import ops

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and autosample_ext.cuda_compiled() else [])
_op = torch.ops.autosample


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[str], Callable[[], object]]  # device -> the bad call
    match: str  # regex the error message must match


def t(data, dev: str, dtype=torch.int64) -> torch.Tensor:
    return torch.tensor(data, dtype=dtype, device=dev)


# --- inputs -------------------------------------------------------------------------------------


def scoring(dev: str, N: int = 10, d: int = 8, B: int = 4, M: int = 6):
    g = torch.Generator().manual_seed(0)
    user = torch.randn(B, d, generator=g).to(dev)
    items = torch.randn(N, d, generator=g).to(dev)
    cand = torch.randint(0, N, (B, M), generator=g).to(dev)
    return user, items, cand


def with_cand(dev: str, value: int, k: int | None = None, where=(2, 3)):
    user, items, cand = scoring(dev)
    cand[where] = value
    if k is None:
        return lambda: _op.score_candidates(user, items, cand)
    return lambda: _op.score_topk(user, items, cand, k)


def sampling(dev: str, rows=((1, 3, 5), (0, 2)), num_items: int = 8, users=(0, 1), S: int = 4,
             alias=None, indptr=None):
    flat = [i for r in rows for i in r]
    ptr = indptr if indptr is not None else [0] + list(torch.tensor([len(r) for r in rows]).cumsum(0).tolist())
    args = [t(ptr, dev), t(flat, dev), t(list(users), dev), num_items, S, 1, 2]
    if alias is not None:
        prob, idx = alias
        args += [t(prob, dev, torch.float32), t(idx, dev)]
    return lambda: _op.sample_negatives(*args)


def alias_table(n: int = 8, bad_prob=None, bad_idx=None):
    prob = [0.5] * n
    idx = list(range(n))[::-1]
    if bad_prob is not None:
        prob[3] = bad_prob
    if bad_idx is not None:
        idx[5] = bad_idx
    return prob, idx


def ranking(dev: str, rows=((1, 3), (0,)), k: int = 2, N: int = 6, indptr=None):
    g = torch.Generator().manual_seed(1)
    user = torch.randn(len(rows), 4, generator=g).to(dev)
    items = torch.randn(N, 4, generator=g).to(dev)
    flat = [i for r in rows for i in r]
    ptr = indptr if indptr is not None else [0] + list(torch.tensor([len(r) for r in rows]).cumsum(0).tolist())
    return lambda: _op.rank_topk(user, items, t(ptr, dev), t(flat, dev), k)


def gdns(dev: str, users=(0, 1), items=((1, 2), (3, 4)), U: int = 3, S: int = 4, update=False,
         alpha=0.5, eps=1e-3, P: int = 2):
    keys = torch.full((U, S), -1, dtype=torch.int64, device=dev)
    h, g = torch.ones(U, S, device=dev), torch.ones(U, S, device=dev)
    u = t(list(users), dev)
    it = t([list(r) for r in items], dev) if items else torch.zeros(len(users), 0, dtype=torch.int64, device=dev)
    if not update:
        return lambda: _op.gdns_lookup(keys, g, u, it)
    pos = torch.zeros(len(users), P, device=dev)
    neg = torch.zeros(len(users), it.shape[1], device=dev)
    return lambda: _op.gdns_update(keys, h, g, u, it, pos, neg, alpha, eps)


def gdns_dense(dev: str, users=(0, 1), items=((1, 2), (3, 4)), U: int = 3, I: int = 5,
               update=False):
    h, g = torch.ones(U, I, device=dev), torch.ones(U, I, device=dev)
    u, it = t(list(users), dev), t([list(r) for r in items], dev)
    if not update:
        return lambda: _op.gdns_dense_lookup(g, u, it)
    pos, neg = torch.zeros(len(users), 2, device=dev), torch.zeros(len(users), it.shape[1], device=dev)
    return lambda: _op.gdns_dense_update(h, g, u, it, pos, neg, 0.5, 1e-3)


def meta_item_emb(op: str):
    def call(dev: str):
        user, items, cand = scoring(dev)
        meta = items.to("meta")
        if op == "score_topk":
            return lambda: _op.score_topk(user, meta, cand, 2)
        if op == "rank_topk":
            return lambda: _op.rank_topk(user, meta, t([0, 0, 0, 0, 0], dev), t([], dev), 2)
        return lambda: _op.score_candidates(user, meta, cand)
    return call


def product(dev: str, op: str = "spmm", indices=(0, 2, 1, 0, 2), indptr=(0, 2, 3, 5), meta: str = "",
            values_dtype=torch.float32, layers: int = 2):
    """A 3 x 3 CSR matrix times x [3, 4] (spmm) or its propagation (graph_propagate); ``meta``
    names the argument put on the meta device."""
    args = {"indptr": t(list(indptr), dev), "indices": t(list(indices), dev),
            "values": torch.ones(len(indices), dtype=values_dtype, device=dev), "x": torch.ones(3, 4, device=dev)}
    if meta:
        args[meta] = args[meta].to("meta")
    a = (args["indptr"], args["indices"], args["values"], args["x"])
    if op == "spmm":
        return lambda: _op.spmm(*a)
    return lambda: _op.graph_propagate(*a, layers)


# --- the table ----------------------------------------------------------------------------------

CASES: list[Case] = [
    # score_candidates / score_topk
    Case("score_candidates item_emb on meta, rest on device", meta_item_emb("score_candidates"),
         r"score_candidates: argument 'item_emb' is on meta"),
    Case("score_topk item_emb on meta, rest on device", meta_item_emb("score_topk"),
         r"score_topk: argument 'item_emb' is on meta"),
    Case("score_candidates cand id = N", lambda d: with_cand(d, 10),
         r"score_candidates: argument 'cand' holds item id 10 at position \(2, 3\), outside \[0, 10\)"),
    Case("score_candidates cand id negative", lambda d: with_cand(d, -1),
         r"score_candidates: argument 'cand' holds item id -1 at position \(2, 3\)"),
    Case("score_topk cand id = N", lambda d: with_cand(d, 10, k=2),
         r"score_topk: argument 'cand' holds item id 10 at position \(2, 3\)"),
    Case("score_topk cand id bad with k = 0", lambda d: with_cand(d, 11, k=0),
         r"score_topk: argument 'cand' holds item id 11"),
    Case("score_topk cand id bad with k > 128 (sort path)",
         lambda d: (lambda u, i: (lambda c: lambda: _op.score_topk(u, i, c, 130))(
             torch.cat([torch.zeros(4, 200, dtype=torch.int64, device=d),
                        torch.full((4, 1), 12, dtype=torch.int64, device=d)], 1)))(
             torch.randn(4, 8, device=d), torch.randn(10, 8, device=d)),
         r"score_topk: argument 'cand' holds item id 12 at position \(0, 200\)"),
    Case("score_topk k > M", lambda d: (lambda u, i, c: lambda: _op.score_topk(u, i, c, 7))(*scoring(d)),
         r"score_topk: argument 'k' must satisfy 0 <= k <= M.*got k = 7"),
    Case("score_topk k < 0", lambda d: (lambda u, i, c: lambda: _op.score_topk(u, i, c, -1))(*scoring(d)),
         r"score_topk: argument 'k' must satisfy.*got k = -1"),
    Case("score_candidates cand float", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u, i, c.double()))(
        *scoring(d)), r"score_candidates: argument 'cand' must be int64, got Double"),
    Case("score_candidates user_emb int", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u.long(), i, c))(
        *scoring(d)), r"score_candidates: argument 'user_emb' must be float32 or float64, got Long"),
    Case("score_candidates float32 / float64 mix",
         lambda d: (lambda u, i, c: lambda: _op.score_candidates(u, i.double(), c))(*scoring(d)),
         r"score_candidates: argument 'item_emb' has dtype Double but expected Float"),
    Case("score_candidates d mismatch", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u, i[:, :5], c))(
        *scoring(d)), r"score_candidates: argument 'item_emb' must have the embedding size d"),
    Case("score_candidates B mismatch", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u, i, c[:3]))(
        *scoring(d)), r"score_candidates: argument 'cand' must have the batch size B"),
    Case("score_candidates 1-D user_emb", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u[0], i, c))(
        *scoring(d)), r"score_candidates: argument 'user_emb' must be 2-D"),
    Case("score_candidates empty item table", lambda d: (lambda u, i, c: lambda: _op.score_candidates(u, i[:0], c))(
        *scoring(d)), r"score_candidates: argument 'item_emb' has no rows but 'cand' holds 24 item ids"),
    Case("score_topk cand on another device", lambda d: (lambda u, i, c: lambda: _op.score_topk(u, i, c.to("meta"), 2))(
        *scoring(d)), r"score_topk: argument 'cand' is on meta"),
    # select_topk
    Case("select_topk k > M", lambda d: lambda: _op.select_topk(torch.randn(3, 5, device=d), 6),
         r"select_topk: argument 'k' must satisfy 0 <= k <= M.*got k = 6"),
    Case("select_topk int keys", lambda d: lambda: _op.select_topk(torch.ones(3, 5, dtype=torch.int64, device=d), 2),
         r"select_topk: argument 'keys' must be float32 or float64"),
    Case("select_topk 3-D keys", lambda d: lambda: _op.select_topk(torch.randn(2, 3, 5, device=d), 2),
         r"select_topk: argument 'keys' must be 2-D"),
    # rank_topk
    Case("rank_topk item_emb on meta, rest on device", meta_item_emb("rank_topk"),
         r"rank_topk: argument 'item_emb' is on meta"),
    Case("rank_topk unsorted exclusion row", lambda d: ranking(d, rows=((3, 1), (0,))),
         r"rank_topk: argument 'excl_indices': row 0 must be sorted ascending without duplicates, got 3 then 1"),
    Case("rank_topk duplicate exclusion", lambda d: ranking(d, rows=((1, 1), (0,))),
         r"rank_topk: argument 'excl_indices': row 0 must be sorted.*got 1 then 1"),
    Case("rank_topk out-of-range id inside a row", lambda d: ranking(d, rows=((1, 99, 100), (0,)), N=6),
         r"rank_topk: argument 'excl_indices' holds item id 99 in row 0 \(at excl_indices\[1\]\), outside \[0, 6\)"),
    Case("rank_topk negative exclusion", lambda d: ranking(d, rows=((-1, 2), (0,))),
         r"rank_topk: argument 'excl_indices' holds item id -1 in row 0"),
    Case("rank_topk decreasing excl_indptr", lambda d: ranking(d, indptr=[0, 2, 1]),
         r"rank_topk: argument 'excl_indptr' gives row 1 the span \[2, 1\)"),
    Case("rank_topk excl_indptr past the end", lambda d: ranking(d, indptr=[0, 2, 9]),
         r"rank_topk: argument 'excl_indptr' gives row 1 the span \[2, 9\).*len\(excl_indices\) = 3"),
    Case("rank_topk k > non-excluded items of a row", lambda d: ranking(d, rows=((0, 1, 2, 3, 4), (0,)), k=2),
         r"rank_topk: argument 'k' = 2 exceeds the 1 non-excluded items of row 0"),
    Case("rank_topk k > N", lambda d: ranking(d, k=7), r"rank_topk: argument 'k' must satisfy.*got k = 7"),
    Case("rank_topk excl_indptr of the wrong length", lambda d: ranking(d, indptr=[0, 3]),
         r"rank_topk: argument 'excl_indptr' must have B \+ 1 = 3"),
    # sample_negatives
    Case("sample_negatives users on meta, rest on device",
         lambda d: lambda: _op.sample_negatives(t([0, 1], d), t([3], d), t([0], "meta"), 8, 2, 0, 0),
         r"sample_negatives: argument 'users' is on meta"),
    Case("sample_negatives unsorted CSR row", lambda d: sampling(d, rows=((5, 1, 3), (0, 2))),
         r"sample_negatives: argument 'indices': row 0 must be sorted ascending without duplicates, got 5 then 1 "
         r"at indices\[1\]"),
    Case("sample_negatives duplicate id in a row", lambda d: sampling(d, rows=((1, 3, 3), (0, 2))),
         r"sample_negatives: argument 'indices': row 0 must be sorted.*got 3 then 3 at indices\[2\]"),
    Case("sample_negatives out-of-range id inside a row (not at its ends)",
         lambda d: sampling(d, rows=((1, 9, 5), (0, 2))),
         r"sample_negatives: argument 'indices' holds item id 9 in row 0 \(at indices\[1\]\), outside \[0, 8\)"),
    Case("sample_negatives negative id in a row", lambda d: sampling(d, rows=((-2, 1), (0, 2))),
         r"sample_negatives: argument 'indices' holds item id -2 in row 0 \(at indices\[0\]\)"),
    Case("sample_negatives user out of range", lambda d: sampling(d, users=(0, 7)),
         r"sample_negatives: argument 'users' holds user 7 at position 1, outside \[0, 2\)"),
    Case("sample_negatives negative user", lambda d: sampling(d, users=(-1,)),
         r"sample_negatives: argument 'users' holds user -1 at position 0"),
    Case("sample_negatives user with every item positive", lambda d: sampling(d, rows=((0, 1, 2), (1,)), num_items=3),
         r"sample_negatives: user 0 \(argument 'users' position 0\) has no non-positive item: 3 positives of "
         r"num_items = 3"),
    Case("sample_negatives user with no negative, S = 0",
         lambda d: sampling(d, rows=((0, 1, 2), (1,)), num_items=3, S=0),
         r"sample_negatives: user 0 .*no non-positive item"),
    Case("sample_negatives decreasing indptr", lambda d: sampling(d, indptr=[0, 3, 2]),
         r"sample_negatives: argument 'indptr' gives row 1 the span \[3, 2\)"),
    Case("sample_negatives indptr past the end", lambda d: sampling(d, indptr=[0, 3, 9]),
         r"sample_negatives: argument 'indptr' gives row 1 the span \[3, 9\).*len\(indices\) = 5"),
    Case("sample_negatives alias prob NaN", lambda d: sampling(d, alias=alias_table(bad_prob=float("nan"))),
         r"sample_negatives: argument 'alias_prob' holds nan at position 3"),
    Case("sample_negatives alias prob negative", lambda d: sampling(d, alias=alias_table(bad_prob=-0.5)),
         r"sample_negatives: argument 'alias_prob' holds -0.5\d* at position 3"),
    Case("sample_negatives alias prob > 1", lambda d: sampling(d, alias=alias_table(bad_prob=1.5)),
         r"sample_negatives: argument 'alias_prob' holds 1.5\d* at position 3"),
    Case("sample_negatives alias id out of range", lambda d: sampling(d, alias=alias_table(bad_idx=8)),
         r"sample_negatives: argument 'alias_idx' holds 8 at position 5, outside \[0, num_items = 8\)"),
    Case("sample_negatives alias_prob without alias_idx",
         lambda d: lambda: _op.sample_negatives(t([0, 1], d), t([3], d), t([0], d), 8, 2, 0, 0,
                                                torch.ones(8, device=d), None),
         r"sample_negatives: arguments 'alias_prob' and 'alias_idx' must be given together"),
    Case("sample_negatives alias_prob float64",
         lambda d: lambda: _op.sample_negatives(t([0, 1], d), t([3], d), t([0], d), 8, 2, 0, 0,
                                                torch.ones(8, dtype=torch.float64, device=d), t(list(range(8)), d)),
         r"sample_negatives: argument 'alias_prob' must be a 1-D float32 tensor"),
    Case("sample_negatives alias table of the wrong length", lambda d: sampling(d, alias=([0.5] * 7, list(range(7)))),
         r"sample_negatives: argument 'alias_prob' must have num_items = 8"),
    Case("sample_negatives num_items = 0", lambda d: sampling(d, num_items=0),
         r"sample_negatives: argument 'num_items' must be positive, got 0"),
    Case("sample_negatives num_items < 0", lambda d: sampling(d, num_items=-3),
         r"sample_negatives: argument 'num_items' must be positive, got -3"),
    Case("sample_negatives num_items >= 2^31", lambda d: sampling(d, num_items=2**31),
         r"sample_negatives: argument 'num_items' must be < 2\^31"),
    Case("sample_negatives num_samples < 0", lambda d: sampling(d, S=-1),
         r"sample_negatives: argument 'num_samples' must be non-negative, got -1"),
    Case("sample_negatives float users",
         lambda d: lambda: _op.sample_negatives(t([0, 1], d), t([3], d), t([0.0], d, torch.float32), 8, 2, 0, 0),
         r"sample_negatives: argument 'users' must be int64, got Float"),
    Case("sample_negatives 2-D indices",
         lambda d: lambda: _op.sample_negatives(t([0, 1], d), t([[3]], d), t([0], d), 8, 2, 0, 0),
         r"sample_negatives: argument 'indices' must be 1-D"),
    # gdns
    Case("gdns_lookup user out of range", lambda d: gdns(d, users=(0, 3)),
         r"gdns_lookup: argument 'users' holds user 3 at position 1, outside \[0, 3\)"),
    Case("gdns_lookup user out of range, rows without items", lambda d: gdns(d, users=(0, -4), items=()),
         r"gdns_lookup: argument 'users' holds user -4 at position 1"),
    Case("gdns_lookup negative item", lambda d: gdns(d, items=((1, 2), (3, -5))),
         r"gdns_lookup: argument 'items' holds item id -5 at position \(1, 1\); item ids must be >= 0"),
    Case("gdns_update user out of range", lambda d: gdns(d, users=(5, 0), update=True),
         r"gdns_update: argument 'users' holds user 5 at position 0"),
    Case("gdns_update alpha > 1", lambda d: gdns(d, update=True, alpha=1.5),
         r"gdns_update: argument 'alpha' must be in \[0, 1\], got 1.5"),
    Case("gdns_update eps < 0", lambda d: gdns(d, update=True, eps=-1.0),
         r"gdns_update: argument 'eps' must be >= 0, got -1"),
    Case("gdns_update no positives", lambda d: gdns(d, update=True, P=0),
         r"gdns_update: argument 'pos_scores' must have at least one positive per row"),
    Case("gdns_lookup slot_g on meta",
         lambda d: lambda: _op.gdns_lookup(torch.full((3, 4), -1, device=d), torch.ones(3, 4, device="meta"),
                                           t([0], d), t([[1]], d)),
         r"gdns_lookup: argument 'slot_g' is on meta"),
    Case("gdns_update slot dtypes differ",
         lambda d: lambda: _op.gdns_update(torch.full((3, 4), -1, device=d), torch.ones(3, 4, device=d),
                                           torch.ones(3, 4, dtype=torch.float64, device=d), t([0], d), t([[1]], d),
                                           torch.zeros(1, 1, device=d), torch.zeros(1, 1, device=d), 0.5, 0.1),
         r"gdns_update: argument 'slot_g' has dtype Double but expected Float"),
    Case("gdns_dense_lookup item id = I", lambda d: gdns_dense(d, items=((1, 2), (5, 0))),
         r"gdns_dense_lookup: argument 'items' holds item id 5 at position \(1, 0\), outside \[0, 5\)"),
    Case("gdns_dense_update negative item", lambda d: gdns_dense(d, items=((1, -2), (3, 4)), update=True),
         r"gdns_dense_update: argument 'items' holds item id -2 at position \(0, 1\), outside \[0, 5\)"),
    Case("gdns_dense_update user out of range", lambda d: gdns_dense(d, users=(0, 3), update=True),
         r"gdns_dense_update: argument 'users' holds user 3 at position 1, outside \[0, 3\)"),
    Case("gdns_contains negative item",
         lambda d: lambda: _op.gdns_contains(torch.full((3, 4), -1, device=d), t([0], d), t([[-1]], d)),
         r"gdns_contains: argument 'items' holds item id -1 at position \(0, 0\); item ids must be >= 0"),
    # spmm / graph_propagate
    Case("spmm x on meta, rest on device", lambda d: product(d, meta="x"),
         r"spmm: argument 'indptr' is on \w+ but the other arguments are on meta"),
    Case("spmm values on meta, rest on device", lambda d: product(d, meta="values"),
         r"spmm: argument 'values' is on meta"),
    Case("graph_propagate values on meta, rest on device", lambda d: product(d, "graph_propagate", meta="values"),
         r"graph_propagate: argument 'values' is on meta"),
    Case("spmm column id = C", lambda d: product(d, indices=(0, 2, 1, 3, 2)),
         r"spmm: argument 'indices' holds column id 3 in row 2 \(at indices\[3\]\), outside \[0, 3\)"),
    Case("graph_propagate negative column id", lambda d: product(d, "graph_propagate", indices=(0, -1, 1, 0, 2)),
         r"graph_propagate: argument 'indices' holds column id -1 in row 0 \(at indices\[1\]\)"),
    Case("spmm indptr not starting at 0", lambda d: product(d, indptr=(1, 2, 3, 5)),
         r"spmm: argument 'indptr' must start at 0, got indptr\[0\] = 1"),
    Case("spmm decreasing indptr", lambda d: product(d, indptr=(0, 4, 3, 5)),
         r"spmm: argument 'indptr' gives row 1 the span \[4, 3\)"),
    Case("spmm values float64, x float32", lambda d: product(d, values_dtype=torch.float64),
         r"spmm: argument 'values' has dtype Double but expected Float"),
    Case("graph_propagate num_layers < 0", lambda d: product(d, "graph_propagate", layers=-1),
         r"graph_propagate: argument 'num_layers' must be >= 0, got -1"),
]


def _run(case: Case, dev: str) -> None:
    call = case.call(dev)
    with pytest.raises(RuntimeError, match=case.match):
        call()
        ops.check_errors()  # CUDA: value errors are reported asynchronously


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_raises_a_clear_error(case: Case, dev: str) -> None:
    _run(case, dev)
    ops.check_errors()  # nothing left behind


@pytest.mark.parametrize("dev", DEVICES)
def test_bad_gdns_update_leaves_the_table_untouched(dev: str) -> None:
    keys = torch.full((3, 4), -1, dtype=torch.int64, device=dev)
    h, g = torch.ones(3, 4, device=dev), torch.ones(3, 4, device=dev)
    with pytest.raises(RuntimeError, match=r"gdns_update: argument 'items' holds item id -1 at position \(1, 0\)"):
        _op.gdns_update(keys, h, g, t([0, 1], dev), t([[1], [-1]], dev), torch.zeros(2, 1, device=dev),
                        torch.zeros(2, 1, device=dev), 0.5, 0.1)
        ops.check_errors()
    assert (keys == -1).all() and (h == 1).all() and (g == 1).all()


@pytest.mark.parametrize("dev", DEVICES)
def test_validate_false_is_the_documented_opt_out(dev: str) -> None:
    """Unsorted rows pass unchecked with validate=False (the caller vouched for them): no error."""
    indptr, indices = t([0, 3, 5], dev), t([5, 1, 3, 0, 2], dev)
    out = ops.sample_negatives(indptr, indices, t([0, 1], dev), 8, 4, 1, 2, validate=False)
    assert out.shape == (2, 4) and int(out.min()) >= 0 and int(out.max()) < 8
    user, items = torch.randn(2, 4, device=dev), torch.randn(6, 4, device=dev)
    _, top = ops.rank_topk(user, items, t([0, 2, 3], dev), t([3, 1, 0], dev), 2, validate=False)
    assert top.shape == (2, 2)
    ops.check_errors()
    with pytest.raises(ValueError, match=r"rows must be sorted ascending.*indices\[0\] = 5 is followed by 1"):
        ops.check_csr(indptr, indices, 8)
    ops.check_csr(t([0, 3, 5], dev), t([1, 3, 5, 0, 2], dev), 8)


@pytest.mark.parametrize("dev", DEVICES)
def test_rank_topk_accepts_an_indptr_slice(dev: str) -> None:
    """excl_indptr need not start at 0 (a slice of a larger CSR), on every device alike."""
    g = torch.Generator().manual_seed(3)
    user, items = torch.randn(3, 4, generator=g).to(dev), torch.randn(9, 4, generator=g).to(dev)
    indices = t([7, 0, 2, 5, 1, 3, 8], dev)
    sliced = ops.rank_topk(user, items, t([2, 4, 5, 7], dev), indices, 3)
    rebased = ops.rank_topk(user, items, t([0, 2, 3, 5], dev), indices[2:], 3)
    assert torch.equal(sliced[1], rebased[1]) and torch.equal(sliced[0], rebased[0])
