"""Small, fixed workloads for the tools of bench/gpu_check.sh.

  --sanitize     every op once on small inputs, every code path (warp and sort top-k, vector and
                 scalar gathers, float32 and float64, alias and uniform draws, multi-split
                 rank_topk, k = 0) and calls with bad values, whose kernels must stay in bounds;
                 run under ``compute-sanitizer --tool memcheck``.
  --op rank_topk the ML-1M-shaped rank_topk call (twice: warm-up, then the profiled launch);
                 run under ``ncu``.
Exits non-zero when a result is wrong.
"""
from __future__ import annotations

import argparse

import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

DEV = "cuda"


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sanitize() -> None:
    for dtype, d in ((torch.float32, 64), (torch.float32, 13), (torch.float64, 10)):
        user, items = torch.randn(37, d, generator=_g(1), dtype=dtype), torch.randn(500, d, generator=_g(2), dtype=dtype)
        cand = torch.randint(0, 500, (37, 150), generator=_g(3))
        du, di, dc = user.to(DEV), items.to(DEV), cand.to(DEV)
        torch.testing.assert_close(ops.score_candidates(du, di, dc).cpu(), ops.score_candidates(user, items, cand))
        for k in (0, 1, 40, 140):
            v, i = ops.score_topk(du, di, dc, k)
            assert torch.equal(i.cpu(), ops.score_topk(user, items, cand, k)[1]), (dtype, d, k)
            v, p = ops.select_topk(ops.score_candidates(du, di, dc), k)
        indptr = torch.tensor([0, 5, 5, 255, 265] + [265] * 33)
        excl = torch.cat([torch.arange(5), torch.arange(0, 500, 2), torch.arange(490, 500)])
        for k in (0, 7, 100, 130):
            _, i = ops.rank_topk(du, di, indptr.to(DEV), excl.to(DEV), k)
            assert torch.equal(i.cpu(), ref.rank_topk(user, items, indptr, excl, k)[1]), (dtype, k)
    wide = torch.randn(6, 16, dtype=torch.float32)
    big = torch.randn(20000, 16)
    _, i = ops.rank_topk(wide.to(DEV), big.to(DEV), torch.zeros(7, dtype=torch.int64, device=DEV),
                         torch.zeros(0, dtype=torch.int64, device=DEV), 20)  # several splits + merge
    assert torch.equal(i.cpu(), ref.rank_topk(wide, big, torch.zeros(7, dtype=torch.int64),
                                              torch.zeros(0, dtype=torch.int64), 20)[1])
    indptr = torch.tensor([0, 3, 3, 8])
    indices = torch.tensor([1, 4, 6, 0, 2, 3, 5, 7])
    users = torch.tensor([0, 1, 2, 2, 1])
    table = ops.build_alias_table(torch.rand(9, generator=_g(4)))
    for alias in ((None, None), table):
        dev_alias = tuple(t.to(DEV) if t is not None else None for t in alias)
        out = ops.sample_negatives(indptr.to(DEV), indices.to(DEV), users.to(DEV), 9, 33, 5, 6, *dev_alias)
        assert torch.equal(out.cpu(), ref.sample_negatives(indptr, indices, users, 9, 33, 5, 6, *alias))
    keys = torch.full((4, 5), -1, dtype=torch.int64, device=DEV)
    h, g = torch.ones(4, 5, device=DEV), torch.ones(4, 5, device=DEV)
    for step in range(3):
        u = torch.randint(0, 4, (9,), generator=_g(step)).to(DEV)
        it = torch.randint(0, 12, (9, 6), generator=_g(10 + step)).to(DEV)
        ops.gdns_update(keys, h, g, u, it, torch.randn(9, 2, device=DEV), torch.randn(9, 6, device=DEV), 0.5, 1e-3)
        ops.gdns_lookup(keys, g, u, it)
    # spmm / graph_propagate: empty rows, a heavy row (warp-wide loads), d on the float4 and
    # scalar paths, float32 and float64, forward and backward.
    gi = _g(20)
    for dtype, d in ((torch.float32, 64), (torch.float32, 13), (torch.float64, 8)):
        deg = torch.randint(0, 6, (120,), generator=gi)
        deg[3], deg[7] = 0, 150
        a_ptr = torch.cat([torch.zeros(1, dtype=torch.int64), deg.cumsum(0)])
        a_idx = torch.randint(0, 120, (int(a_ptr[-1]),), generator=gi)
        a_val = torch.randn(int(a_ptr[-1]), generator=gi, dtype=dtype)
        x = torch.randn(120, d, generator=gi, dtype=dtype)
        a_dev = (a_ptr.to(DEV), a_idx.to(DEV), a_val.to(DEV))
        assert torch.equal(ops.spmm(*a_dev, x.to(DEV)).cpu(), ops.spmm(a_ptr, a_idx, a_val, x)), (dtype, d)
        xg = x.to(DEV).requires_grad_(True)
        out = ops.graph_propagate(*a_dev, xg, 3)
        out.sum().backward()
        assert torch.equal(out.detach().cpu(), ops.graph_propagate(a_ptr, a_idx, a_val, x, 3)), (dtype, d)
    ops.check_errors()
    # Bad values: reported asynchronously, and the kernels must not read or write out of bounds.
    # One call at a time: a pending error is raised by the next autosample call on the device
    # once the faulty kernel has finished, so each bad call gets its own check_errors().
    bad_cand = cand.clone()
    bad_cand[3, 7] = 10**9
    bad_calls = {
        "score_topk id out of range": lambda: ops.score_topk(user.to(DEV), items.to(DEV), bad_cand.to(DEV), 3),
        "sample_negatives indptr past the end": lambda: ops.sample_negatives(
            torch.tensor([0, 2, 99], device=DEV), torch.tensor([5, 1], device=DEV),
            torch.tensor([0, 1, 7], device=DEV), 9, 4, 0, 0),
        "rank_topk indptr past the end": lambda: ops.rank_topk(
            user.to(DEV), items.to(DEV), torch.full((38,), 10**6, device=DEV), torch.tensor([3, 1], device=DEV), 2),
        "gdns_lookup bad user and item": lambda: ops.gdns_lookup(
            keys, g, torch.tensor([9, -3], device=DEV), torch.tensor([[1], [-2]], device=DEV)),
        "spmm column id out of range": lambda: ops.spmm(
            torch.tensor([0, 2, 3], device=DEV), torch.tensor([1, 10**9, 0], device=DEV),
            torch.ones(3, device=DEV), torch.randn(2, 64, device=DEV)),
    }
    for name, call in bad_calls.items():
        try:
            call()
            ops.check_errors()
        except RuntimeError as exc:
            print(f"{name}: expected error:", str(exc).splitlines()[0])
        else:
            raise SystemExit(f"{name}: no error reported")
    ops.check_errors()  # nothing left pending
    print("sanitize workload done")


def rank_topk_ml1m() -> None:
    B, N, d, k = 6040, 3706, 64, 20
    g = torch.Generator(device=DEV).manual_seed(0)
    user, items = torch.randn(B, d, device=DEV, generator=g), torch.randn(N, d, device=DEV, generator=g)
    deg = torch.full((B,), 165, device=DEV)
    indptr = torch.zeros(B + 1, dtype=torch.int64, device=DEV)
    indptr[1:] = deg.cumsum(0)
    excl = (torch.arange(165, device=DEV) * 22).repeat(B)
    for _ in range(2):
        ops.rank_topk(user, items, indptr, excl, k)
    torch.cuda.synchronize()
    ops.check_errors()
    print("rank_topk ml1m done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sanitize", action="store_true")
    parser.add_argument("--op", choices=["rank_topk"])
    args = parser.parse_args()
    if args.sanitize:
        sanitize()
    if args.op == "rank_topk":
        rank_topk_ml1m()


if __name__ == "__main__":
    main()
