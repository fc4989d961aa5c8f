"""CPU seconds per training epoch and per validation, by model, dataset and sampler: the numbers
that plan the experiments' compute (1 thread; run under ``nice``).

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m autosample_ext.studies.epoch_costs --datasets lastfm,beauty \
        --models mf,lightgcn --samplers rns,pns,dns,aobpr --epochs 2 --out bench/results/epoch_costs.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from autosample_ext.data import load
from autosample_ext.run import RunConfig
from autosample_ext.run.phases import build_model
from autosample_ext.samplers.registry import build_sampler
from autosample_ext.search import AutoSampleObjective
from autosample_ext.training import SamplerObjective, TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]


def measure(trainer: Trainer, epochs: int) -> tuple[float, float]:
    """(CPU seconds per epoch of training steps, CPU seconds of one validation)."""
    c0 = time.process_time()
    for e in range(epochs):
        trainer.batch = 0
        trainer.train_batches(e)
    train = (time.process_time() - c0) / epochs
    c0 = time.process_time()
    trainer._evaluate("valid")
    return train, time.process_time() - c0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("AUTOSAMPLE_DATA_DIR",
                                                        str(ROOT.parent / "shared" / "data")))
    p.add_argument("--datasets", default="lastfm,beauty")
    p.add_argument("--models", default="mf,lightgcn")
    p.add_argument("--samplers", default="rns,pns,dns,aobpr")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for ds in args.datasets.split(","):
        data = load(None if ds == "default" else Path(args.data_dir) / ds, split="3:1:1", seed=0)
        for model_name in args.models.split(","):
            cfg = RunConfig(model=model_name, progress=False)
            tc = TrainConfig(epochs=10, batch_size=cfg.batch_size, progress=False)
            names = args.samplers.split(",")
            for name in names + ["autosample"]:
                model = build_model(cfg, data, 0)
                if name == "autosample":
                    obj = AutoSampleObjective([build_sampler(n, data, 0, "cpu") for n in names],
                                              names, tau=1.0, alpha_lr=0.01, l2=cfg.l2, seed=0)
                else:
                    obj = SamplerObjective(build_sampler(name, data, 0, "cpu"), l2=cfg.l2)
                train, valid = measure(Trainer(data, model, obj, tc), args.epochs)
                row = {"dataset": ds, "model": model_name, "sampler": name,
                       "train_cpu_s_per_epoch": round(train, 3), "valid_cpu_s": round(valid, 3),
                       "steps_per_epoch": -(-data.train.nnz // cfg.batch_size)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps({"load": os.getloadavg(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
