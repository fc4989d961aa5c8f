"""autosample::mf_bpr_train on CUDA: against the CPU kernel and the oracle, its draws against
sample_negatives and the DNS selection, determinism, no host synchronisation, opcheck, and the
fused engine on a GPU against the CPU. Skipped without a GPU and a CUDA build (bench/gpu_check.sh
runs it)."""
from __future__ import annotations

import pytest
import torch
from cudakit import (
    DEV,
    _no_pending_device_error,  # noqa: F401 (autouse: no asynchronous error left behind)
)
from mfkit import SAMPLER_CASES, make_problem, run_op, run_reference

from autosample_ext import ops

pytestmark = pytest.mark.cuda
OPTIMIZERS = ["sgd", "adagrad", "adam"]


def close(a, b, dtype) -> None:
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    for x, y in zip(a.tables(), b.tables(), strict=True):
        torch.testing.assert_close(x.cpu(), y.cpu(), **tol)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("sampler,opts", SAMPLER_CASES)
@pytest.mark.parametrize("gmf", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_equals_cpu_and_reference(optimizer, sampler, opts, gmf, dtype) -> None:
    """The same draws (sample_negatives' streams), the same DNS picks (dot.h's bits on both
    devices), the same updates up to float rounding (exp / log1p of the two libraries)."""
    p = make_problem(optimizer=optimizer, sampler=sampler, gmf=gmf, dtype=dtype, **opts)
    cpu, ref, dev = p.copy(), p.copy(), p.copy(DEV)
    lc = run_op(cpu, optimizer)
    lr = run_reference(ref, optimizer)
    ld = run_op(dev, optimizer)
    assert ld.device.type == "cuda"
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-11, "atol": 1e-12}
    torch.testing.assert_close(ld.cpu(), lc, **tol)
    torch.testing.assert_close(ld.cpu(), lr, **tol)
    close(dev, cpu, dtype)
    close(dev, ref, dtype)


@pytest.mark.parametrize("sampler", ["rns", "pns"])
def test_cuda_draws_are_sample_negatives(sampler) -> None:
    p = make_problem(sampler=sampler, n=3, optimizer="adagrad").copy(DEV)
    q = p.copy()
    B = 16
    run_op(p, "adagrad", batch_size=B)
    alias = () if sampler == "rns" else (q.extra["alias_prob"], q.extra["alias_idx"])
    negs = torch.cat([ops.sample_negatives(q.indptr, q.indices, q.users[r:r + B], q.Q.shape[0], 3,
                                           1234, 7 + s * 16, *alias)
                      for s, r in enumerate(range(0, q.users.shape[0], B))])
    run_op(q, "adagrad", batch_size=B, sampler="given", negatives=negs, alias_prob=None,
           alias_idx=None)
    for x, y in zip(p.tables(), q.tables()):
        assert torch.equal(x, y)


@pytest.mark.parametrize("k", [1, 3])
def test_cuda_dns_picks_the_cpu_kernels_negatives(k) -> None:
    """One DNS step on each device, then the CPU's picks given explicitly on CUDA: identical
    tables (the candidates' scores have the same bits on both devices)."""
    p = make_problem(sampler="dns", M=20, k=k, n=2, gmf=True, optimizer="sgd", rows=64)
    B = 64
    dev, given = p.copy(DEV), p.copy(DEV)
    run_op(dev, "sgd", batch_size=B)
    from autosample_ext.samplers.dns import draw_from_cdf

    cand = ops.sample_negatives(p.indptr, p.indices, p.users, p.Q.shape[0], 40, 1234, 7)
    _, top = ops.score_topk((p.P * p.w)[p.users].repeat_interleave(2, 0), p.Q, cand.view(-1, 20), k)
    if k > 1:
        top = top.gather(1, draw_from_cdf(p.extra["cdf"], p.extra["uniforms"].reshape(-1, 1)))
    negs = top[:, :1].reshape(B, 2).to(DEV)
    run_op(given, "sgd", batch_size=B, sampler="given", negatives=negs, num_candidates=1, top_k=1,
           cdf=None, uniforms=None)
    for x, y in zip(dev.tables(), given.tables()):
        assert torch.equal(x, y)


def test_cuda_is_deterministic_and_sync_free() -> None:
    p = make_problem(sampler="dns", M=8, optimizer="adam", users=60, items=90, rows=500,
                     dtype=torch.float32, gmf=True).copy(DEV)
    q = p.copy()
    torch.cuda.set_sync_debug_mode("error")
    try:
        a = run_op(p, "adam", batch_size=64)
        b = run_op(q, "adam", batch_size=64)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(a, b)
    for x, y in zip(p.tables(), q.tables()):
        assert torch.equal(x, y)


@pytest.mark.parametrize("sampler,opts", [("rns", {}), ("dns", {"M": 3, "k": 2}), ("given", {})])
def test_opcheck_cuda(sampler, opts) -> None:
    p = make_problem(sampler=sampler, optimizer="adam", gmf=True, rows=20, **opts).copy(DEV)
    kw = {"negatives": None, "num_candidates": 1, "top_k": 1, "alias_prob": None,
          "alias_idx": None, "cdf": None, "uniforms": None, **p.extra}
    args = (p.P, p.Q, p.w, p.state, p.indptr, p.indices, p.users, p.pos, kw["negatives"], 8,
            kw["num_negatives"], sampler, kw["num_candidates"], kw["top_k"], kw["alias_prob"],
            kw["alias_idx"], kw["cdf"], kw["uniforms"], 1, 2, 16, 0.01, 0.001, "adam", 0.9,
            0.999, 1e-8, 0, True)
    torch.library.opcheck(torch.ops.autosample.mf_bpr_train.default, args)


def test_bad_row_trains_nothing_and_is_reported() -> None:
    p = make_problem(optimizer="adam", rows=16).copy(DEV)
    before = p.copy()
    p.users[3] = 99
    with pytest.raises(RuntimeError, match="mf_bpr_train: argument 'users' holds user 99 at position 3"):
        run_op(p, "adam", batch_size=16)
        ops.check_errors()
    assert not torch.equal(p.P, before.P)  # the valid rows trained, without a fault


def test_fused_engine_on_cuda_equals_cpu() -> None:
    from autosample_ext.data import SyntheticConfig, default_dataset
    from autosample_ext.models import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, TrainConfig, Trainer

    data = default_dataset(seed=3, config=SyntheticConfig(num_users=200, num_items=150,
                                                          mean_interactions=12.0))
    out = {}
    for device in ("cpu", DEV):
        model = build_model("mf", data, 8, seed=0, device=device).double()
        trainer = Trainer(data, model, SamplerObjective(build_sampler("dns", data, seed=5, device=device),
                                                        l2=1e-3),
                          TrainConfig(epochs=2, batch_size=128, progress=False, optimizer="adam",
                                      lr=0.01, eval_every=10))
        assert trainer.engine == "fused"
        trainer.train_until(2)
        out[device] = {k: v.cpu() for k, v in model.state_dict().items()}
    for key in out["cpu"]:
        torch.testing.assert_close(out[DEV][key], out["cpu"][key], rtol=1e-9, atol=1e-11)
