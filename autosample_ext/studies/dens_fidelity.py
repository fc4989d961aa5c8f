"""DENS fidelity: recover the candidate pools from DENS's loss curves, and tabulate CLI runs
against the published numbers (bench/results/fidelity_dens.md). Reads run directories written
by ``python -m autosample_ext.train --protocol dens ...``; trains nothing.

    # which pool reproduces DENS's per-step training loss (runs of one sampler, several pools)
    python -m autosample_ext.studies.dens_fidelity losses --dataset beauty --sampler dns runs/pool-beauty-dns-M*
    # the table: one run directory per cell (a --seeds 0,1 CLI call)
    python -m autosample_ext.studies.dens_fidelity table runs/fidelity-*

Loss matching: DENS prints, per epoch, the SUM of the per-batch mean losses (BPR + its L2 term)
over the epoch's full batches (``dens_log_*.csv``: lastfm 6 batches, beauty 31); this tool logs
the mean per step and the number of steps (``log.jsonl``: ``loss``, ``steps``). The curves are
compared per step, ``DENS loss / steps`` against ours, over the epochs both have (at most
``--epochs``, default 25): RMSE and mean signed gap. A larger pool gives harder negatives and a
higher BPR loss at the same epoch, so the gap's sign says in which direction to look.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data"))
PUBLISHED = {  # (dataset, sampler) -> (Recall@20, NDCG@20), ../shared/data/README.md
    ("lastfm", "rns"): (0.0921, 0.0864), ("lastfm", "dns"): (0.1084, 0.1026),
    ("lastfm", "mixgcf"): (0.1077, 0.1015), ("beauty", "rns"): (0.0385, 0.0205),
    ("beauty", "dns"): (0.0418, 0.0226), ("beauty", "mixgcf"): (0.0420, 0.0228),
}


def read_run(path: Path) -> dict:
    config = json.loads((path / "config.json").read_text())
    log = [json.loads(x) for x in (path / "log.jsonl").read_text().splitlines() if x.strip()]
    metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").is_file() else None
    return {"path": path, "config": config, "log": log, "metrics": metrics}


def dataset_name(config: dict) -> str:
    return Path(config["config"]["data"]).name


def dens_curve(dataset: str, sampler: str) -> pd.DataFrame:
    frame = pd.read_csv(DATA / dataset / f"dens_log_{sampler}.csv")
    return frame


def loss_gap(run: dict, sampler: str, dens: pd.DataFrame, epochs: int, seed: int = 0) -> dict:
    tag = f"seed{seed}/{sampler}"
    ours = [e for e in run["log"] if e["run"] == tag]
    n = min(len(ours), len(dens), epochs)
    if n == 0:
        return {"epochs": 0}
    steps = ours[0]["steps"]
    mine = np.array([e["loss"] for e in ours[:n]])
    theirs = dens["loss"].to_numpy()[:n] / steps
    diff = mine - theirs
    return {"epochs": n, "steps": steps, "rmse": float(np.sqrt(np.mean(diff ** 2))),
            "mean_gap": float(diff.mean()), "ours_last": float(mine[-1]),
            "dens_last": float(theirs[-1])}


def cmd_losses(ns: argparse.Namespace) -> int:
    dens = dens_curve(ns.dataset, ns.sampler)
    rows = []
    for path in ns.runs:
        run = read_run(Path(path))
        opts = run["config"]["samplers"].get(ns.sampler, {})
        gap = loss_gap(run, ns.sampler, dens, ns.epochs)
        rows.append({"run": str(path), "pool": opts.get("num_candidates"), **gap})
    rows.sort(key=lambda r: (r.get("rmse", np.inf)))
    print(f"per-step training loss vs DENS ({ns.dataset}, {ns.sampler}), first <= {ns.epochs} epochs")
    print("| pool | epochs | RMSE | mean gap (ours - DENS) | ours / DENS at the last common epoch |")
    print("|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["pool"] or 0):
        if r["epochs"]:
            print(f"| {r['pool']} | {r['epochs']} | {r['rmse']:.4f} | {r['mean_gap']:+.4f} | "
                  f"{r['ours_last']:.4f} / {r['dens_last']:.4f} |")
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


def agreement(run: dict, sampler: str, seed: int, dataset: str) -> dict:
    """Loss RMSE over every epoch both runs have, and the mean |Recall@20 gap| over the tests
    both made (DENS's 0-based test epoch e is our epoch e + 1)."""
    dens = dens_curve(dataset, sampler)
    gap = loss_gap(run, sampler, dens, epochs=10 ** 6, seed=seed)
    ours = {e["epoch"] - 1: e["test"]["recall@20"] for e in run["log"]
            if e["run"] == f"seed{seed}/{sampler}" and "test" in e}
    tested = dens[dens["recall20"].notna()]
    common = [(ours[e], r) for e, r in zip(tested["epoch"], tested["recall20"]) if e in ours]
    gap["tests"] = len(common)
    gap["recall_gap"] = float(np.mean([abs(a - b) for a, b in common])) if common else float("nan")
    return gap


def command_of(config: dict) -> str:
    """The CLI call that produced a run directory (its data path as given to the CLI)."""
    c = config["config"]
    args = ["python", "-m", "autosample_ext.train", "--protocol", c["protocol"],
            "--data", "../shared/data/" + Path(c["data"]).name,
            "--sampler", ",".join(c["sampler"])]
    for name, fields in c["sampler_options"].items():
        defaults = {"dns": {"top_k": 1}, "mixgcf": {"hop_score": "pooled", "l2_target": "mixed"}}
        for key, value in fields.items():
            if defaults.get(name, {}).get(key) != value:
                args += ["--sampler-opt", f"{name}.{key}={value}"]
    args += ["--seeds", ",".join(map(str, c["seeds"])), "--threads", "1"]
    return " ".join(shlex.quote(a) for a in args)


def cmd_table(ns: argparse.Namespace) -> int:
    rows = []
    for path in ns.runs:
        run = read_run(Path(path))
        if run["metrics"] is None:
            print(f"skipping {path}: not finished", file=sys.stderr)
            continue
        ds = dataset_name(run["config"])
        for sampler in run["config"]["config"]["sampler"]:
            entries = [r for r in run["metrics"]["runs"] if r["sampler"] == sampler]
            rec = np.array([r["best_test"]["recall@20"] for r in entries])
            ndcg = np.array([r["best_test"]["ndcg@20"] for r in entries])
            pub = PUBLISHED.get((ds, sampler))
            pool = run["config"]["samplers"].get(sampler, {}).get("num_candidates")
            rows.append({
                "dataset": ds, "sampler": sampler, "pool": pool, "seeds": len(entries),
                "recall": rec.tolist(), "ndcg": ndcg.tolist(),
                "recall_mean": float(rec.mean()), "ndcg_mean": float(ndcg.mean()),
                "published": pub, "recall_ratio": float(rec.mean() / pub[0]) if pub else None,
                "ndcg_ratio": float(ndcg.mean() / pub[1]) if pub else None,
                "best_epochs": [r["best_epoch"] for r in entries],
                "epochs_run": [r["epochs_run"] for r in entries],
                "command": command_of(run["config"]), "run": str(path),
                "agreement": {str(e["seed"]): agreement(run, sampler, e["seed"], ds)
                              for e in entries}})
    order = {("lastfm", "rns"): 0, ("lastfm", "dns"): 1, ("lastfm", "mixgcf"): 2,
             ("beauty", "rns"): 3, ("beauty", "dns"): 4, ("beauty", "mixgcf"): 5}
    rows.sort(key=lambda r: order.get((r["dataset"], r["sampler"]), 99))
    print("| dataset | sampler | pool | R@20 ours (seeds) | R@20 published | ratio | N@20 ours | "
          "N@20 published | ratio | best epoch | epochs run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pub = r["published"] or (float("nan"), float("nan"))
        seeds = ", ".join(f"{v:.4f}" for v in r["recall"])
        print(f"| {r['dataset']} | {r['sampler'].upper()} | {r['pool'] or '–'} | "
              f"{r['recall_mean']:.4f} ({seeds}) | {pub[0]:.4f} | {r['recall_ratio']:.3f} | "
              f"{r['ndcg_mean']:.4f} | {pub[1]:.4f} | {r['ndcg_ratio']:.3f} | "
              f"{', '.join(map(str, r['best_epochs']))} | {', '.join(map(str, r['epochs_run']))} |")
    print()
    print("Agreement with DENS's own curves, per seed: per-step training loss (RMSE over the "
          "epochs both ran) and test Recall@20 (mean |ours - DENS| over the tests both ran)")
    print()
    print("| dataset | sampler | seed | epochs compared | loss RMSE | loss ours / DENS, last common epoch "
          "| tests compared | mean abs Recall@20 gap |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for seed, gap in r["agreement"].items():
            print(f"| {r['dataset']} | {r['sampler'].upper()} | {seed} | {gap['epochs']} | "
                  f"{gap['rmse']:.4f} | {gap['ours_last']:.4f} / {gap['dens_last']:.4f} | "
                  f"{gap['tests']} | {gap['recall_gap']:.4f} |")
    print()
    for r in rows:
        print(f"- {r['dataset']} {r['sampler'].upper()}: `{r['command']}`")
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("losses", help="per-step loss of runs (one per pool) vs DENS's log")
    a.add_argument("--dataset", required=True)
    a.add_argument("--sampler", required=True)
    a.add_argument("--epochs", type=int, default=25)
    a.add_argument("--json", default=None)
    a.add_argument("runs", nargs="+")
    b = sub.add_parser("table", help="the fidelity table from finished run directories")
    b.add_argument("--json", default=None)
    b.add_argument("runs", nargs="+")
    ns = p.parse_args(argv)
    return cmd_losses(ns) if ns.cmd == "losses" else cmd_table(ns)


if __name__ == "__main__":
    sys.exit(main())
