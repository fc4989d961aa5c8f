"""One GDNS run under the GDNS protocol WITHOUT early stopping, to see what the gain does once it
is live: the exact gain decides nothing until a user's never-selected negatives run short among
the candidates (about negatives-per-user / N epochs: ~110 on ml-1m), later than the protocol's
early stopping (patience 10) usually fires.

    python -m autosample_ext.studies.gdns_long_run --data ../shared/data/ml-1m --out runs/gdns-long --epochs 300

Writes ``OUT/log.jsonl`` (every epoch: loss, validation NDCG@1/NDCG@3/Recall@3, the gain
diagnostics) and ``OUT/checkpoint.pt`` (every 10 epochs; the command continues from it when run
again with the same arguments), and at the end ``OUT/result.json`` (the best validation epoch and
the test metrics there).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import torch

from autosample_ext import data as D
from autosample_ext.run.config import RunConfig
from autosample_ext.run.phases import build_model
from autosample_ext.search.records import name_stream, seed_for
from autosample_ext.samplers.registry import build_sampler
from autosample_ext.training import SamplerObjective, Trainer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.09)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler-opt", action="append", default=[], help="gdns.FIELD=VALUE")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    from autosample_ext.samplers.registry import parse_sampler_opt

    options: dict = {}
    for text in ns.sampler_opt:
        _, field, value = parse_sampler_opt(text)
        options[field] = value
    cfg = RunConfig(protocol="gdns", sampler=("gdns",), progress=False,
                    sampler_options={"gdns": options}).resolved()
    cfg = dataclasses.replace(cfg, epochs=ns.epochs, patience=0, lr=ns.lr, checkpoint_every=10)
    data = D.load(ns.data, split="loo", seed=cfg.split_seed, min_rating=4.0, min_rating_optional=True)
    model = build_model(cfg, data, ns.seed)
    sampler = build_sampler("gdns", data, seed_for(ns.seed, 100, name_stream("gdns")), cfg.device,
                            options=cfg.sampler_options)
    ns.out.mkdir(parents=True, exist_ok=True)
    log_path = ns.out / "log.jsonl"

    def on_epoch(entry: dict) -> None:
        with open(log_path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")

    trainer = Trainer(data, model, SamplerObjective(sampler, l2=cfg.l2), cfg.train_config(ns.seed),
                      checkpoint_path=ns.out / "checkpoint.pt", on_epoch=on_epoch, tag="gdns-long")
    if trainer.resume():  # log.jsonl again from the checkpoint's log (later epochs are re-run)
        log_path.write_text("".join(json.dumps(e) + "\n" for e in trainer.log))
    else:
        log_path.write_text("")
    result = trainer.fit()
    (ns.out / "result.json").write_text(json.dumps(
        {"best_epoch": result.best_epoch, "valid": result.valid, "test": result.test,
         "epochs_run": result.epochs_run, "lr": ns.lr, "seed": ns.seed,
         "sampler_options": cfg.sampler_options}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
