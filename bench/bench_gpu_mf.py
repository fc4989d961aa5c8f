"""GPU benchmarks of the fused MF training step (mf_bpr_train) against the autograd step a user
would write (embedding gathers, BPR + L2, backward, dense Adam over the tables) and, when the
installed implicit has CUDA, implicit's GPU BPR: groups for bench/gpu_check.sh, run by
bench/gpu_groups.py (one JSON per group as it finishes).

Data: synthetic on the device from a seed (no files): ML-1M's shape (6,040 users, 3,706 items,
800 k pairs) and a 1 M x 500 k table pair with 20 M pairs; d = 64, float32, batch 2048, lazy
Adam (the fused engine's default). One timed call = 32 training steps (65,536 samples); the
samples/s are in each case's ``extra``. Correctness before timing: one fused step against the
CPU kernel on the same inputs.

    python -u bench/bench_gpu_mf.py --out-dir DIR [--groups ...] [--list]
    AUTOSAMPLE_BENCH_DEVICE=cpu AUTOSAMPLE_BENCH_SMALL=1 python -u bench/bench_gpu_mf.py \
        --out-dir /tmp/x      # dry run of the same groups on the CPU, small shapes
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops.fused import new_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_groups import Case, run_main  # noqa: E402  (after the sys.path insert)

log = logging.getLogger("bench_gpu_mf")

HAVE_GPU = torch.cuda.is_available() and autosample_ext.cuda_compiled()
DEVICE = os.environ.get("AUTOSAMPLE_BENCH_DEVICE", "cuda")  # cpu: dry run of the groups
SMALL = os.environ.get("AUTOSAMPLE_BENCH_SMALL", "0") == "1"
D, BATCH, STEPS = 64, 2048, 32
SHAPES = {"ml1m": (6040, 3706, 800_000), "1Mx500k": (1_000_000, 500_000, 20_000_000)}
SMALL_SHAPES = {"ml1m": (604, 371, 20_000), "1Mx500k": (3000, 1500, 40_000)}


@functools.cache
def problem(name: str, device: str, small: bool):
    """Training CSR (sorted unique rows), pairs in training order, tables."""
    users, items, pairs = (SMALL_SHAPES if small else SHAPES)[name]
    g = torch.Generator().manual_seed(len(name))
    u = torch.randint(0, users, (pairs,), generator=g)
    i = (items * torch.rand(pairs, generator=g).pow(3)).long().clamp_max(items - 1)  # power law
    key = torch.unique(u * items + i)
    u, i = key // items, key % items
    indptr = torch.zeros(users + 1, dtype=torch.int64)
    indptr[1:] = torch.bincount(u, minlength=users).cumsum(0)
    order = torch.randperm(u.shape[0], generator=g)
    P = torch.randn(users, D, generator=g) * 0.1
    Q = torch.randn(items, D, generator=g) * 0.1
    rows = BATCH * STEPS
    return {k: v.to(device) for k, v in {"indptr": indptr, "indices": i, "users": u[order][:rows].contiguous(),
                                              "pos": i[order][:rows].contiguous(), "P": P, "Q": Q}.items()}


def fused_call(pb: dict, sampler: str) -> Callable[[], object]:
    P, Q = pb["P"].clone(), pb["Q"].clone()
    state = new_state("adam", P, Q)
    extra = {"num_candidates": 32} if sampler == "dns" else {}
    step = {"n": 0}

    def run():
        step["n"] += STEPS
        return ops.mf_bpr_train(P, Q, state, pb["indptr"], pb["indices"], pb["users"], pb["pos"],
                                batch_size=BATCH, sampler=sampler, seed=1, offset=step["n"] * 16,
                                offset_stride=16, lr=1e-3, l2=1e-4, optimizer="adam",
                                opt_step=step["n"], validate=False, **extra)

    return run


def autograd_call(pb: dict, sampler: str) -> Callable[[], object]:
    """The autograd path's step: the same negatives (sample_negatives / score_topk), BPR + L2,
    backward into the whole tables, dense Adam (torch's fused kernel)."""
    P = pb["P"].clone().requires_grad_(True)
    Q = pb["Q"].clone().requires_grad_(True)
    opt = torch.optim.Adam([P, Q], lr=1e-3, fused=P.device.type in ("cpu", "cuda"))
    N = Q.shape[0]

    def run():
        for s in range(STEPS):
            u, p = pb["users"][s * BATCH:(s + 1) * BATCH], pb["pos"][s * BATCH:(s + 1) * BATCH]
            if sampler == "dns":
                cand = ops.sample_negatives(pb["indptr"], pb["indices"], u, N, 32, 1, s * 16,
                                            validate=False)
                _, neg = ops.score_topk(P.detach()[u], Q.detach(), cand, 1)
            else:
                neg = ops.sample_negatives(pb["indptr"], pb["indices"], u, N, 1, 1, s * 16,
                                           validate=False)
            ue = P[u]
            rows = Q[torch.cat([p.unsqueeze(1), neg], 1)]
            scores = (rows * ue.unsqueeze(1)).sum(-1)
            loss = torch.nn.functional.softplus(scores[:, 1:] - scores[:, :1]).mean()
            loss = loss + 1e-4 * (ue.pow(2).sum() + rows.pow(2).sum()) / u.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def implicit_call(pb: dict) -> Callable[[], object] | None:
    """implicit's GPU BPR, one iteration over STEPS * BATCH samples, when it has CUDA."""
    try:
        import implicit.gpu
        from implicit.gpu.bpr import BayesianPersonalizedRanking
    except ImportError:
        return None
    if not implicit.gpu.HAS_CUDA or pb["P"].device.type != "cuda":
        return None
    import numpy as np
    import scipy.sparse as sp

    u, i = pb["users"].cpu().numpy(), pb["pos"].cpu().numpy()
    m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)),
                      shape=(pb["P"].shape[0], pb["Q"].shape[0]))
    model = BayesianPersonalizedRanking(factors=D, iterations=1)
    return lambda: model.fit(m, show_progress=False)


def cases(name: str, sampler: str, device: str, small: bool) -> list[Case]:
    pb = problem(name, device, small)
    if device != "cpu":  # one step on both devices: the same losses
        cpu = {k: v.cpu() for k, v in pb.items()}
        one = {**pb, "users": pb["users"][:BATCH], "pos": pb["pos"][:BATCH]}
        one_cpu = {**cpu, "users": cpu["users"][:BATCH], "pos": cpu["pos"][:BATCH]}
        a, b = fused_call(one, sampler)(), fused_call(one_cpu, sampler)()
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)
    samples = STEPS * BATCH
    per = D * 4 * 3 * (2 + 2 * 2)  # three rows per sample, read + written with two moments
    cost = {"bytes": float(samples * per), "flops": float(samples * D * 16),
            "extra": {"samples_per_call": samples, "d": D, "batch": BATCH, "sampler": sampler}}
    group = f"mf_step-{sampler}-{name}"
    out = [Case(group, "autosample_fused", fused_call(pb, sampler), **cost),
           Case(group, "autograd_dense_adam", autograd_call(pb, sampler), **cost)]
    if sampler == "rns":
        impl = implicit_call(pb)
        if impl is not None:
            out.append(Case(group, "implicit_gpu_bpr", impl, **cost))
    return out


def builders(device: str = DEVICE, small: bool = SMALL) -> dict[str, Callable[[], list[Case]]]:
    return {f"mf_step-{s}-{name}": functools.partial(cases, name, s, device, small)
            for name in SHAPES for s in ("rns", "dns")}


GROUPS = builders()


if __name__ == "__main__":
    if DEVICE == "cuda" and not HAVE_GPU and "--list" not in sys.argv:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        log.error("bench_gpu_mf: needs a CUDA device and a CUDA build of autosample_ext "
                  "(AUTOSAMPLE_BENCH_DEVICE=cpu for a dry run)")
        raise SystemExit(2)
    raise SystemExit(run_main(GROUPS))
