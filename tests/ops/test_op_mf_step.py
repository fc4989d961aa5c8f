"""autosample::mf_bpr_train (the fused MF / GMF training step) on the CPU against its oracle
(autosample_ext/ops/reference_mf.py), its negatives against sample_negatives / the DNS sampler,
its determinism, lazy Adam against dense and sparse Adam, opcheck and bad inputs. The CUDA
kernel's tests are in test_cuda_mf_step.py."""
from __future__ import annotations

import pytest
import torch
from mfkit import SAMPLER_CASES, make_problem, run_op, run_reference

from autosample_ext import ops
from autosample_ext.ops import reference_mf
from autosample_ext.ops.reference_mf import lazy_adam_rows

OPTIMIZERS = ["sgd", "adagrad", "adam", "lazy_adam"]


def assert_same_tables(a, b, **tol) -> None:
    for x, y in zip(a.tables(), b.tables(), strict=True):
        torch.testing.assert_close(x, y, **tol)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("sampler,opts", SAMPLER_CASES)
@pytest.mark.parametrize("gmf", [False, True])
def test_equals_reference_float64(optimizer: str, sampler: str, opts: dict, gmf: bool) -> None:
    p = make_problem(optimizer=optimizer, sampler=sampler, gmf=gmf, **opts)
    q = p.copy()
    got = run_op(p, optimizer, batch_size=16)
    want = run_reference(q, optimizer, batch_size=16)
    assert got.shape == (5,) and got.dtype == torch.float64  # 70 rows, batches of 16
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert_same_tables(p, q, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("sampler,opts", [("rns", {}), ("dns", {"M": 8, "k": 1})])
def test_equals_reference_float32(optimizer: str, sampler: str, opts: dict) -> None:
    p = make_problem(optimizer=optimizer, sampler=sampler, dtype=torch.float32, gmf=True, **opts)
    q = p.copy()
    torch.testing.assert_close(run_op(p, optimizer), run_reference(q, optimizer), rtol=1e-5, atol=1e-6)
    assert_same_tables(p, q, rtol=1e-4, atol=1e-5)


def test_lazy_adam_moves_the_batch_rows_only_and_dense_adam_every_row() -> None:
    p = make_problem(optimizer="lazy_adam", users=30, rows=10)
    before = p.copy()
    run_op(p, "lazy_adam", batch_size=10, lr=0.1)
    moved = (p.P != before.P).any(1)
    assert torch.equal(moved, torch.isin(torch.arange(30), p.users))
    for s, s0 in zip(p.state[:2], before.state[:2]):  # untouched rows keep their moments
        assert torch.equal(s[~moved], s0[~moved])
    q = before.copy()  # the same state under dense Adam: every row moves, every moment decays
    run_op(q, "adam", batch_size=10, lr=0.1)
    assert bool((q.P != before.P).any(1).all()) and bool((q.state[0] != before.state[0]).all())


@pytest.mark.parametrize("sampler", ["rns", "pns"])
def test_negatives_are_sample_negatives_draws(sampler: str) -> None:
    """The op's draws are sample_negatives' for the step's users, (seed, offset + s * stride),
    row = position in the step: training on those negatives given explicitly is bit-identical."""
    p = make_problem(sampler=sampler, n=3, optimizer="adagrad")
    q = p.copy()
    seed, offset, stride, B = 99, 5, 16, 16
    run_op(p, "adagrad", batch_size=B, seed=seed, offset=offset, offset_stride=stride)
    alias = () if sampler == "rns" else (p.extra["alias_prob"], p.extra["alias_idx"])
    negs = torch.cat([ops.sample_negatives(q.indptr, q.indices, q.users[r:r + B], q.Q.shape[0], 3,
                                           seed, offset + s * stride, *alias)
                      for s, r in enumerate(range(0, q.users.shape[0], B))])
    run_op(q, "adagrad", batch_size=B, sampler="given", negatives=negs, alias_prob=None,
           alias_idx=None)
    assert_same_tables(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("k", [1, 3])
def test_dns_selection_is_the_dns_samplers(k: int) -> None:
    """One step of DNS: the negatives the DNS sampler picks from the same tables (its own
    candidates, score_topk, draw_from_cdf) give bit-identical tables when given explicitly."""
    from autosample_ext.samplers.dns import draw_from_cdf

    p = make_problem(sampler="dns", M=7, k=k, n=2, gmf=True, optimizer="sgd")
    q = p.copy()
    B = p.users.shape[0]
    run_op(p, "sgd", batch_size=B)
    seed, offset = 1234, 7
    cand = ops.sample_negatives(q.indptr, q.indices, q.users, q.Q.shape[0], 14, seed, offset)
    user_table = q.P * q.w  # GMF's final user table, as the autograd path scores
    _, top = ops.score_topk(user_table[q.users].repeat_interleave(2, 0), q.Q, cand.view(-1, 7), k)
    if k > 1:
        top = top.gather(1, draw_from_cdf(q.extra["cdf"], q.extra["uniforms"].reshape(-1, 1)))
    negs = top[:, :1].reshape(B, 2)
    run_op(q, "sgd", batch_size=B, sampler="given", negatives=negs, num_candidates=1, top_k=1,
           cdf=None, uniforms=None)
    assert_same_tables(p, q, rtol=0, atol=0)


def test_steps_in_one_call_equal_one_call_per_step() -> None:
    p = make_problem(sampler="dns", M=4, optimizer="adam")
    q = p.copy()
    B = 16
    whole = run_op(p, "adam", batch_size=B)
    parts = []
    for s, r in enumerate(range(0, q.users.shape[0], B)):
        step = q.copy()
        step.users, step.pos = q.users[r:r + B], q.pos[r:r + B]
        parts.append(run_op(step, "adam", batch_size=B, offset=7 + 16 * s, opt_step=s))
        q.P, q.Q, q.state = step.P, step.Q, step.state
    assert torch.equal(whole, torch.cat(parts))
    assert_same_tables(p, q, rtol=0, atol=0)


def test_same_result_on_any_number_of_threads() -> None:
    p = make_problem(sampler="dns", M=6, optimizer="adam", users=50, items=80, rows=300, gmf=True)
    q = p.copy()
    old = torch.get_num_threads()
    try:  # dense Adam: the idle rows' pass is parallel too
        torch.set_num_threads(1)
        a = run_op(p, "adam", batch_size=128)
        torch.set_num_threads(2)
        b = run_op(q, "adam", batch_size=128)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a, b)
    assert_same_tables(p, q, rtol=0, atol=0)


def test_lazy_adam_is_dense_adam_on_rows_touched_every_step() -> None:
    """Every row touched at every step: lazy Adam (the reference's rows update) follows
    torch.optim.Adam; rows skipped by a step keep their moments (dense Adam decays them)."""
    g = torch.Generator().manual_seed(0)
    param = torch.randn(6, 4, generator=g, dtype=torch.float64)
    dense = param.clone().requires_grad_(True)
    adam = torch.optim.Adam([dense], lr=0.01)
    m, v = torch.zeros_like(param), torch.zeros_like(param)
    rows = torch.arange(6)
    for step in range(1, 6):
        grad = torch.randn(6, 4, generator=g, dtype=torch.float64)
        dense.grad = grad.clone()
        adam.step()
        lazy_adam_rows(param, m, v, rows, grad, 0.01, 0.9, 0.999, 1e-8, step)
    torch.testing.assert_close(param, dense.detach(), rtol=1e-13, atol=1e-15)


def test_lazy_adam_agrees_with_torch_sparse_adam() -> None:
    """torch.optim.SparseAdam is lazy Adam too; it adds eps before the bias correction of the
    second moment (eps * sqrt(1 - beta2^t) in this formula), hence the tolerance."""
    g = torch.Generator().manual_seed(1)
    param = torch.randn(10, 3, dtype=torch.float64, generator=g)
    sparse_param = param.clone().requires_grad_(True)
    opt = torch.optim.SparseAdam([sparse_param], lr=0.01)
    m, v = torch.zeros_like(param), torch.zeros_like(param)
    for step in range(1, 8):
        rows = torch.unique(torch.randint(0, 10, (4,), generator=g))
        grad = torch.randn(rows.shape[0], 3, dtype=torch.float64, generator=g)
        sparse_param.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), grad, param.shape,
                                                    check_invariants=True)
        opt.step()
        lazy_adam_rows(param, m, v, rows, grad, 0.01, 0.9, 0.999, 1e-8, step)
    torch.testing.assert_close(param, sparse_param.detach(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam"])
def test_kernel_adam_matches_reference_over_many_steps(optimizer) -> None:
    p = make_problem(optimizer=optimizer, sampler="rns", users=20, items=30, rows=400, n=1)
    q = p.copy()
    run_op(p, optimizer, batch_size=20, opt_step=3)
    run_reference(q, optimizer, batch_size=20, opt_step=3)
    assert_same_tables(p, q, rtol=1e-10, atol=1e-12)


def test_empty_rows_and_validate_false() -> None:
    p = make_problem()
    p.users, p.pos = p.users[:0], p.pos[:0]
    before = p.copy()
    assert run_op(p, "adam").shape == (0,)
    assert_same_tables(p, before, rtol=0, atol=0)
    q, r = make_problem(), make_problem()
    run_op(q, "adam", validate=False)
    run_op(r, "adam")
    assert_same_tables(q, r, rtol=0, atol=0)


@pytest.mark.parametrize("sampler,opts", [("rns", {}), ("pns", {}), ("dns", {"M": 3, "k": 2}),
                                          ("given", {})])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lazy_adam"])
def test_opcheck(sampler: str, opts: dict, optimizer: str) -> None:
    p = make_problem(sampler=sampler, optimizer=optimizer, gmf=True, rows=20, **opts)
    kw = {"negatives": None, "num_candidates": 1, "top_k": 1, "alias_prob": None,
          "alias_idx": None, "cdf": None, "uniforms": None, **p.extra}
    args = (p.P, p.Q, p.w, p.state, p.indptr, p.indices, p.users, p.pos, kw["negatives"], 8,
            kw["num_negatives"], sampler, kw["num_candidates"], kw["top_k"], kw["alias_prob"],
            kw["alias_idx"], kw["cdf"], kw["uniforms"], 1, 2, 16, 0.01, 0.001, optimizer, 0.9,
            0.999, 1e-8, 0, True)
    torch.library.opcheck(torch.ops.autosample.mf_bpr_train.default, args)


def test_reference_is_exported() -> None:
    assert reference_mf.mf_bpr_train is not None


_ISA_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from mfkit import make_problem, run_op
out = {{}}
for sampler, opts, opt in [("rns", {{}}, "adam"), ("pns", {{}}, "lazy_adam"), ("dns", {{"M": 6, "k": 2}}, "adam")]:
    p = make_problem(sampler=sampler, optimizer=opt, dtype=torch.float32, gmf=True, rows=200, **opts)
    out[sampler] = [run_op(p, opt, batch_size=32)] + p.tables()
torch.save(out, {path!r})
"""


def test_avx2_and_baseline_kernels_give_the_same_bits(tmp_path) -> None:
    """The kernel built for AVX2 (chosen at run time) and the baseline build agree bit for bit
    (AUTOSAMPLE_CPU_ISA=baseline forces the latter); on a CPU without AVX2 both runs use the
    baseline."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    results = {}
    for isa in ("auto", "baseline"):
        path = tmp_path / f"{isa}.pt"
        code = _ISA_SCRIPT.format(tests=str(Path(__file__).resolve().parents[1]), path=str(path))
        env = {**os.environ, "AUTOSAMPLE_CPU_ISA": isa}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
        results[isa] = torch.load(path)
    for sampler, tensors in results["auto"].items():
        for a, b in zip(tensors, results["baseline"][sampler], strict=True):
            assert torch.equal(a, b), sampler
