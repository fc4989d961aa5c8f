"""Bad inputs to autosample::mf_bpr_train: a clear error naming the op, the argument and the
value, the same message on every device present (CPU; CUDA with a GPU and a CUDA build; value
errors come from the call or the next ops.check_errors() there). On the CPU a bad input leaves
the tables and the optimiser state untouched (the checks run before any update)."""
from __future__ import annotations

from typing import Any

import pytest
import torch
from mfkit import make_problem, run_op

import autosample_ext
from autosample_ext import ops

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and autosample_ext.cuda_compiled() else [])


def call(dev: str, optimizer: str = "adam", sampler: str = "rns", mutate=None,
         op_args: dict[str, Any] | None = None, **over: Any):
    p = make_problem(optimizer=optimizer, sampler=sampler, gmf=True, M=4, k=2 if sampler == "dns" else 1,
                     rows=20).copy(dev)
    if mutate is not None:
        mutate(p)
    over = {"batch_size": 8, **over, **(op_args or {})}
    return lambda: run_op(p, over.pop("optimizer", optimizer), **over)


def set_(name: str, index, value):
    def mutate(p):
        getattr(p, name)[index] = value
    return mutate


def extra(name: str, index, value):
    def mutate(p):
        p.extra[name][index] = value
    return mutate


CASES = [
    ("user out of range", lambda d: call(d, mutate=set_("users", 3, 12)),
     r"mf_bpr_train: argument 'users' holds user 12 at position 3, outside \[0, 12\)"),
    ("negative user, given sampler", lambda d: call(d, sampler="given", mutate=set_("users", 5, -1)),
     r"mf_bpr_train: argument 'users' holds user -1 at position 5, outside \[0, 12\)"),
    ("positive out of range", lambda d: call(d, mutate=set_("pos", 7, 40)),
     r"mf_bpr_train: argument 'pos_items' holds item id 40 at position 7, outside \[0, 40\)"),
    ("given negative out of range", lambda d: call(d, sampler="given", mutate=extra("negatives", (4, 1), -3)),
     r"mf_bpr_train: argument 'negatives' holds item id -3 at position \(4, 1\), outside \[0, 40\)"),
    ("unsorted CSR row", lambda d: call(d, mutate=set_("indices", slice(0, 2), torch.tensor([9, 2]))),
     (r"mf_bpr_train: argument 'indices': row 0 must be sorted ascending without duplicates, got 9 "
     r"then 2")),
    ("alias probability > 1", lambda d: call(d, sampler="pns", mutate=extra("alias_prob", 5, 1.5)),
     r"mf_bpr_train: argument 'alias_prob' holds 1.500000 at position 5"),
    ("unknown sampler", lambda d: call(d, op_args={"sampler": "aobpr"}),
     r"mf_bpr_train: argument 'sampler' must be one of rns, pns, dns, given, got 'aobpr'"),
    ("unknown optimizer", lambda d: call(d, op_args={"optimizer": "rmsprop"}),
     r"mf_bpr_train: argument 'optimizer' must be one of sgd, adagrad, adam, lazy_adam, got 'rmsprop'"),
    ("state of another optimiser", lambda d: call(d, op_args={"optimizer": "adagrad"}),
     (r"mf_bpr_train: argument 'state' must hold 1 tensor\(s\) per table for optimizer 'adagrad' "
     r"\(3 tables\), got 6")),
    ("top_k > num_candidates", lambda d: call(d, sampler="dns", top_k=5),
     (r"mf_bpr_train: argument 'top_k' must satisfy 1 <= top_k <= num_candidates \(= 4\), got "
     r"top_k = 5")),
    ("dns top_k > 1 without uniforms", lambda d: call(d, sampler="dns", uniforms=None),
     (r"mf_bpr_train: arguments 'cdf' and 'uniforms' must be given exactly when sampler is 'dns' "
     r"with top_k > 1")),
    ("lr <= 0", lambda d: call(d, lr=0.0), r"mf_bpr_train: argument 'lr' must be > 0, got 0"),
    ("beta1 = 1", lambda d: call(d, beta1=1.0),
     r"mf_bpr_train: arguments 'beta1' and 'beta2' must lie in \[0, 1\), got 1 and 0.999"),
    ("batch_size 0", lambda d: call(d, batch_size=0),
     r"mf_bpr_train: argument 'batch_size' must be >= 1, got 0"),
]


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("name,make,match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(name: str, make, match: str, dev: str) -> None:
    bad = make(dev)
    with pytest.raises(RuntimeError, match=match):
        bad()
        ops.check_errors()
    ops.check_errors()  # nothing left behind


def test_user_without_negative_item() -> None:
    p = make_problem(rows=10)
    p.indptr = torch.tensor([0] + [40] * 12)  # user 0 owns all 40 items
    p.indices = torch.arange(40)
    p.users[2] = 0
    with pytest.raises(RuntimeError, match=r"mf_bpr_train: user 0 \(argument 'users' position 2\) has "
                                           r"no non-positive item: 40 positives of num_items = 40"):
        run_op(p, "adam")


def test_bad_input_leaves_everything_untouched() -> None:
    p = make_problem(optimizer="adam", gmf=True, rows=40)
    before = p.copy()
    p.pos[33] = -1  # in the last step: the first steps must not have run either
    with pytest.raises(RuntimeError, match="argument 'pos_items' holds item id -1 at position 33"):
        run_op(p, "adam", batch_size=8)
    for x, y in zip(p.tables(), before.tables()):
        assert torch.equal(x, y)


def test_non_contiguous_table_is_refused() -> None:
    p = make_problem(optimizer="sgd")
    p.Q = torch.cat([p.Q, p.Q], 1)[:, ::2]
    with pytest.raises(RuntimeError, match="mf_bpr_train: argument 'item_emb' is updated in place and must be contiguous"):
        run_op(p, "sgd")
