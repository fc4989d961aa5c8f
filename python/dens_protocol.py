"""Reproduce the DENS protocol on the shared datasets and compare with the published numbers.

Protocol (DENS repository, ../shared/data/README.md): LightGCN 3 layers, dim 64, Adam lr 1e-3,
batch 2048, L2 1e-4, BPR with one negative, train on all of train.txt, test every 5 epochs with
train items masked, the best test Recall/NDCG@20 over epochs reported.

    PYTHONPATH=. python python/dens_protocol.py --datasets lastfm,beauty --samplers rns,dns,mixgcf \
        --epochs 400 --out runs/dens

The same protocol is available from the main CLI as ``python -m autosample_ext.train
--protocol dens --data ../shared/data/lastfm --sampler rns,dns,mixgcf``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from autosample_ext.data import load
from autosample_ext.experiment import RunConfig, run

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {  # (dataset, sampler) -> (Recall@20, NDCG@20), ../shared/data/README.md
    ("lastfm", "rns"): (0.0921, 0.0864), ("lastfm", "dns"): (0.1084, 0.1026),
    ("lastfm", "mixgcf"): (0.1077, 0.1015), ("beauty", "rns"): (0.0385, 0.0205),
    ("beauty", "dns"): (0.0418, 0.0226), ("beauty", "mixgcf"): (0.0420, 0.0228),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("AUTOSAMPLE_DATA_DIR",
                                                        str(ROOT.parent / "shared" / "data")))
    p.add_argument("--datasets", default="lastfm,beauty")
    p.add_argument("--samplers", default="rns,dns,mixgcf")
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--patience", type=int, default=10,
                   help="test evaluations (every 5 epochs) without improvement before stopping")
    p.add_argument("--seeds", default="0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/dens")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    rows = []
    for name in args.datasets.split(","):
        folder = Path(args.data_dir) / name
        if not (folder / "train.txt").is_file():
            print(f"error: {folder}/train.txt not found", file=sys.stderr)
            return 1
        cfg = RunConfig(data=str(folder), protocol="dens", sampler=tuple(args.samplers.split(",")),
                        epochs=args.epochs, patience=args.patience,
                        seeds=tuple(int(s) for s in args.seeds.split(",")), device=args.device,
                        out=str(Path(args.out) / name), progress=False)
        data = load(folder, **{"split": "given", "seed": 0})
        summary = run(cfg, data=data, resume=args.resume)
        for rec in summary.records:
            pub = PUBLISHED.get((name, rec.sampler))
            r, n = rec.result.valid["recall@20"], rec.result.valid["ndcg@20"]
            rows.append({"dataset": name, "sampler": rec.sampler, "seed": rec.seed,
                         "recall@20": r, "ndcg@20": n, "best_epoch": rec.result.best_epoch,
                         "published_recall@20": pub[0] if pub else None,
                         "published_ndcg@20": pub[1] if pub else None,
                         "recall_ratio": r / pub[0] if pub else None})
    print("| dataset | sampler | seed | R@20 | published | ratio | N@20 | published | best epoch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pub_r = f"{r['published_recall@20']:.4f}" if r["published_recall@20"] else "-"
        pub_n = f"{r['published_ndcg@20']:.4f}" if r["published_ndcg@20"] else "-"
        ratio = f"{r['recall_ratio']:.3f}" if r["recall_ratio"] else "-"
        print(f"| {r['dataset']} | {r['sampler']} | {r['seed']} | {r['recall@20']:.4f} | {pub_r} "
              f"| {ratio} | {r['ndcg@20']:.4f} | {pub_n} | {r['best_epoch']} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "dens_table.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
