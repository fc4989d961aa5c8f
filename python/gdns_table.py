"""The GDNS-protocol table (NDCG@1 / NDCG@3 / Recall@3) from run directories, beside the GDNS
paper's published MovieLens-1M numbers. Reads each run's checkpoints (``checkpoints/seed<S>-<sampler>.pt``:
a finished phase holds its test metrics at the best validation epoch; an unfinished one its best
validation value so far, reported as such); trains nothing.

    python python/gdns_table.py runs/gdns-ml1m-gdns runs/gdns-ml1m-base > table.md
"""
from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path
from typing import Any

import torch

#: GDNS paper, Table 2 (MovieLens-1M, ratings >= 4, the SRNS test set): NDCG@1, NDCG@3, Recall@3
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "gdns": (0.1936, 0.3101, 0.4007),
    "srns": (0.1911, 0.3056, 0.3907),
    "rns": (0.1744, 0.2846, 0.3663),
}
METRICS = ("ndcg@1", "ndcg@3", "recall@3")


def phases(run_dir: Path) -> list[dict[str, Any]]:
    """One record per ``checkpoints/seed<S>-<name>.pt`` of ``run_dir``."""
    out = []
    for path in sorted((run_dir / "checkpoints").glob("seed*-*.pt")):
        m = re.fullmatch(r"seed(\d+)-(.+)\.pt", path.name)
        if m is None:
            continue
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        result = ckpt.get("result") or {}
        out.append({"seed": int(m.group(1)), "sampler": m.group(2), "done": bool(ckpt.get("done")),
                    "epochs": int(ckpt.get("epoch", 0)), "best_epoch": ckpt.get("best_epoch"),
                    "best_valid": ckpt.get("best_value"), "test": result.get("test"),
                    "valid": result.get("valid")})
    return out


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}"


def table(records: list[dict[str, Any]]) -> str:
    order = ["gdns", "srns", "dns", "rns"]
    names = sorted({r["sampler"] for r in records}, key=lambda n: (order.index(n) if n in order
                                                                 else len(order), n))
    lines = ["| sampler | seeds finished | NDCG@1 | NDCG@3 | Recall@3 | published NDCG@1 / NDCG@3 / "
             "Recall@3 | best epoch (seeds) | epochs run | unfinished seeds: best valid NDCG@3 "
             "(epochs run) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        done = [r for r in records if r["sampler"] == name and r["done"]]
        partial = [r for r in records if r["sampler"] == name and not r["done"]]
        cols = [_fmt([r["test"][m] for r in done]) for m in METRICS]
        pub = PUBLISHED.get(name)
        pub_text = " / ".join(f"{v:.4f}" for v in pub) if pub else "not published"
        part = ", ".join(f"seed {r['seed']}: {r['best_valid']:.4f} ({r['epochs']})"
                         for r in partial) or "–"
        lines.append(f"| {name.upper()} | {', '.join(str(r['seed']) for r in done) or 'none'} | "
                     + " | ".join(cols) + f" | {pub_text} | "
                     + (", ".join(str(r["best_epoch"]) for r in done) or "–") + " | "
                     + (", ".join(str(r["epochs"]) for r in done) or "–") + f" | {part} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories (--protocol gdns)")
    args = p.parse_args(argv)
    records = [r for run in args.runs for r in phases(run)]
    finished = {(r["sampler"], r["seed"]) for r in records if r["done"]}
    # a (sampler, seed) finished in one directory and partial in another: the finished one
    records = [r for r in records if r["done"] or (r["sampler"], r["seed"]) not in finished]
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
