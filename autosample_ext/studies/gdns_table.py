"""The GDNS-protocol comparison (NDCG@1 / NDCG@3 / Recall@3) from the runs of
``autosample_ext/studies/gdns_lr_sweep.py``, beside the GDNS paper's MovieLens-1M numbers; trains nothing.

    python -m autosample_ext.studies.gdns_table --root runs/gdns-ml1m --json bench/results/gdns_ml1m.json

Reads ``ROOT/chosen_lr.json`` and the runs' checkpoints (``checkpoints/seed<S>-<sampler>.pt``: a
finished run holds its test metrics at the best validation epoch): seed 0 of a method is its
sweep run at the chosen lr, the other seeds its ``final`` runs; SRNS with its own paper's
setting is ``own/srns-adam``. Prints markdown: the table, the lr sweep, GDNS's live-gain
fraction by epoch.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from autosample_ext.studies.gdns_lr_sweep import PAPER_LRS, final_dir, own_dir, seed_records, sweep_dir

#: GDNS paper (Zhu et al., WWW 2022), Table 3, MovieLens-1M (ratings >= 4, SRNS's test set):
#: NDCG@1, NDCG@3, Recall@3. Its uniform row equals SRNS's released model (SRNS's README).
PAPER: dict[str, tuple[float, float, float]] = {
    "gdns": (0.1936, 0.3101, 0.4007),
    "srns": (0.1933, 0.3070, 0.3912),
    "rns": (0.1744, 0.2846, 0.3663),
}
METRICS = ("ndcg@1", "ndcg@3", "recall@3")
LABELS = {"gdns": "GDNS", "uniform-group": "uniform group (control)", "rns": "RNS", "dns": "DNS",
          "srns": "SRNS", "srns-adam": "SRNS, its own setting (Adam 1e-3, L2 0.01)"}
ORDER = ("gdns", "uniform-group", "rns", "dns", "srns", "srns-adam")
LIVE_EPOCHS = (1, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500)


def method_seeds(root: Path, method: str, lr: float | None) -> list[dict[str, Any]]:
    """Every seed record of a method (seed 0 from the sweep at ``lr``, the rest from final:
    ``final/<method>``, and ``final/<method>-seed<S>`` for a seed run in a process of its own)."""
    if method == "srns-adam":
        return seed_records(own_dir(root)) if own_dir(root).is_dir() else []
    out = []
    if lr is not None and sweep_dir(root, method, lr).is_dir():
        out += [r for r in seed_records(sweep_dir(root, method, lr)) if r["seed"] == 0]
    final = final_dir(root, method)
    for run in [final, *sorted(final.parent.glob(f"{method}-seed*"))]:
        if run.is_dir():
            out += [r for r in seed_records(run) if r["seed"] != 0]
    return sorted(out, key=lambda r: r["seed"])


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def _fmt(s: dict[str, float] | None) -> str:
    if not s:
        return "–"
    return f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["n"] > 1 else "")


def leading_lr(choice: dict[str, Any]) -> float | None:
    """The chosen lr; while the sweep is pending, the lr whose run leads so far (or None)."""
    if choice["lr"] is not None:
        return choice["lr"]
    ok = {lr: v["valid_ndcg@3"] for lr, v in choice["by_lr"].items() if "valid_ndcg@3" in v}
    return float(max(ok, key=lambda lr: (ok[lr], -float(lr)))) if ok else None


def test_at_best_so_far(rec: dict[str, Any], data: Any) -> dict[str, float]:
    """Test metrics of an unfinished run at its best validation epoch so far (the checkpoint's
    best weights), under the gdns protocol's evaluation: what the run would report if it stopped
    now. Only for runs cut for time; they are flagged wherever they appear."""
    from autosample_ext.run.config import RunConfig
    from autosample_ext.run.phases import build_model
    from autosample_ext.training.evaluate import evaluate_model

    ckpt = torch.load(rec["path"], map_location="cpu", weights_only=True)
    cfg = RunConfig(protocol="gdns", sampler=(rec["sampler"],), progress=False).resolved()
    model = build_model(cfg, data, rec["seed"])
    model.load_state_dict(ckpt["best_model"])
    return evaluate_model(model, data, "test", cfg.ks, protocol=cfg.eval_protocol)


def summarise(root: Path, data: Any = None) -> dict[str, Any]:
    """The table's numbers. ``data`` (the ml-1m split): runs cut for time count too, with their
    test metrics at the best validation epoch so far (flagged ``unfinished``)."""
    chosen = json.loads((root / "chosen_lr.json").read_text())
    methods = [m for m in ORDER if m in chosen or m == "srns-adam"]
    out: dict[str, Any] = {"chosen_lr": chosen, "methods": {}}
    for method in methods:
        lr = 0.001 if method == "srns-adam" else leading_lr(chosen[method])
        recs = method_seeds(root, method, lr)
        if data is not None:
            for r in recs:
                if not r["done"] and r["best_epoch"] is not None:
                    r["test"] = test_at_best_so_far(r, data)
        done = [r for r in recs if r["done"] or (data is not None and r["test"])]
        entry: dict[str, Any] = {
            "lr": lr, "lr_pending": method != "srns-adam" and chosen[method]["lr"] is None,
            "lrs_swept": None if method == "srns-adam" else len(chosen[method]["by_lr"]),
            "lrs_ended": None if method == "srns-adam" else sum(
                bool(v.get("finished", True)) for v in chosen[method]["by_lr"].values()),
            "sweep_complete": method == "srns-adam" or chosen[method]["complete"],
            "seeds_finished": [r["seed"] for r in done if r["done"]],
            "seeds_unfinished": {str(r["seed"]): {"epochs": r["epochs"], "best_valid": r["best_valid"]}
                                 for r in recs if not r["done"]},
            "seeds_cut": [r["seed"] for r in done if not r["done"]],
            "best_epochs": [r["best_epoch"] for r in done], "epochs_run": [r["epochs"] for r in done],
            "w_norm_last_epoch": [r["w_norm"] for r in done],
            "test": {m: _stats([r["test"][m] for r in done]) for m in METRICS} if done else {},
            "test_by_seed": {str(r["seed"]): r["test"] for r in done}}
        live = [{"seed": r["seed"], "by_epoch": {str(e["epoch"]): e["gdns_live_fraction"]
                                                 for e in r["log"] if "gdns_live_fraction" in e},
                 "mean_g_selected": {str(e["epoch"]): e["gdns_mean_g_selected"]
                                     for e in r["log"] if "gdns_mean_g_selected" in e}}
                for r in recs]
        if any(x["by_epoch"] for x in live):
            entry["live_fraction"] = live
        out["methods"][method] = entry
    rns = out["methods"].get("rns", {}).get("test")
    for entry in out["methods"].values():
        if rns and entry["test"]:
            entry["vs_rns_percent"] = {m: 100.0 * (entry["test"][m]["mean"] / rns[m]["mean"] - 1.0)
                                       for m in METRICS}
    return out


def render(summary: dict[str, Any]) -> str:
    lines = [("| method | lr (chosen on validation) | seeds | NDCG@1 | NDCG@3 | Recall@3 | "
             "vs RNS: NDCG@1 / NDCG@3 | best epoch (seeds) | epochs run | paper (Table 3) |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, e in summary["methods"].items():
        vs = e.get("vs_rns_percent")
        vs_text = f"{vs['ndcg@1']:+.1f}% / {vs['ndcg@3']:+.1f}%" if vs and method != "rns" else "–"
        paper = PAPER.get(method)
        cut = e.get("seeds_cut", [])
        unfinished = "".join(f"; seed {s} unfinished ({u['epochs']} epochs, best valid "
                             f"{u['best_valid']:.4f})" for s, u in e["seeds_unfinished"].items()
                             if int(s) not in cut)
        unfinished += "".join(f"; seed {s} CUT at epoch {e['seeds_unfinished'][str(s)]['epochs']}"
                              " (test at its best epoch so far)" for s in cut)
        lr_text = "not run" if e["lr"] is None else f"{e['lr']:g}" + (
            " (leading so far, its run unfinished)" if e.get("lr_pending") else "") + (
            "" if e.get("sweep_complete", True)
            else f"; sweep cut: {e['lrs_swept']} of {len(PAPER_LRS)} rates run, "
            f"{e['lrs_ended']} to their end")
        lines.append(
            f"| {LABELS[method]} | {lr_text} | {','.join(map(str, e['seeds_finished'])) or 'none'}"
            f"{unfinished} | " + " | ".join(_fmt(e["test"].get(m)) for m in METRICS)
            + f" | {vs_text} | {', '.join(map(str, e['best_epochs'])) or '–'} | "
            f"{', '.join(map(str, e['epochs_run'])) or '–'} | "
            + (" / ".join(f"{v:.4f}" for v in paper) if paper else "–") + " |")
    lines += ["", ("Validation NDCG@3 of seed 0 at each learning rate (best epoch / epochs run; "
              "the chosen lr in bold):"), "",
              "| method | " + " | ".join(f"lr {lr:g}" for lr in PAPER_LRS) + " |",
              "|---|" + "---|" * len(PAPER_LRS)]
    for method, c in summary["chosen_lr"].items():
        cells = []
        for lr in PAPER_LRS:
            v = c["by_lr"].get(f"{lr:g}")
            if v is None:
                cells.append("not run")
            elif v.get("diverged"):
                cells.append("diverged")
            elif v.get("collapsed"):
                cells.append(f"collapsed (loss ln 2 from epoch {v['epochs'][0]}; best "
                             f"{v['best_valid_ndcg@3']:.4f})")
            else:
                text = f"{v['valid_ndcg@3']:.4f} ({v['best_epoch']}/{v['epochs']}" \
                    + ("" if v.get("finished", True) else ", unfinished") + ")"
                cells.append(f"**{text}**" if c["lr"] == lr else text)
        lines.append(f"| {LABELS[method]} | " + " | ".join(cells) + " |")
    gd = summary["methods"].get("gdns", {}).get("live_fraction")
    if gd:
        lines += ["", ("GDNS: fraction of the selected negatives whose gain was measured (G < 1), "
                  "by epoch (`gdns_live_fraction` in log.jsonl):"), "",
                  "| seed | " + " | ".join(f"epoch {e}" for e in LIVE_EPOCHS) + " | last epoch |",
                  "|---|" + "---|" * (len(LIVE_EPOCHS) + 1)]
        for x in gd:
            by = x["by_epoch"]
            last = max(map(int, by)) if by else 0
            cells = [f"{by[str(e)]:.3f}" if str(e) in by else "" for e in LIVE_EPOCHS]
            lines.append(f"| {x['seed']} | " + " | ".join(cells)
                         + (f" | {by[str(last)]:.3f} (epoch {last}) |" if by else " | |"))
    return "\n".join(lines) + "\n"


def long_runs(dirs: list[Path]) -> tuple[str, list[dict[str, Any]]]:
    """The runs of ``autosample_ext/studies/gdns_long_run.py`` (no early stopping): best validation epoch, test
    there, and the live-gain fraction and validation NDCG@3 by epoch."""
    rows = []
    for d in dirs:
        log = [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines() if x.strip()]
        result = json.loads((d / "result.json").read_text()) if (d / "result.json").is_file() else {}
        rows.append({"run": d.name, "epochs": len(log), **result,
                     "valid_by_epoch": {str(e["epoch"]): e["valid"]["ndcg@3"] for e in log},
                     "live_by_epoch": {str(e["epoch"]): e["gdns_live_fraction"] for e in log
                                       if "gdns_live_fraction" in e}})
    marks = (50, 100, 150, 200, 250, 300)
    lines = ["| run | epochs | best valid epoch | test NDCG@1 / NDCG@3 / Recall@3 there | "
             + " | ".join(f"epoch {m}: valid NDCG@3 (live)" for m in marks) + " |",
             "|---|---|---|---|" + "---|" * len(marks)]
    for r in rows:
        test = r.get("test") or {}
        cells = []
        for m in marks:
            v, live = r["valid_by_epoch"].get(str(m)), r["live_by_epoch"].get(str(m))
            cells.append("" if v is None else f"{v:.4f}" + (f" ({live:.2f})" if live is not None else ""))
        lines.append(f"| {r['run']} | {r['epochs']} | {r.get('best_epoch', '–')} | "
                     + (" / ".join(f"{test[m]:.4f}" for m in METRICS) if test else "unfinished")
                     + " | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="ROOT of autosample_ext/studies/gdns_lr_sweep.py")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    p.add_argument("--long", type=Path, nargs="*", default=[],
                   help="run folders of autosample_ext/studies/gdns_long_run.py (no early stopping)")
    p.add_argument("--unfinished-test", metavar="DATA", default=None,
                   help="count runs cut for time: test metrics at their best validation epoch so "
                        "far (the checkpoint's best weights) on DATA, flagged CUT in the table")
    args = p.parse_args(argv)
    data = None
    if args.unfinished_test is not None:
        from autosample_ext import data as D
        from autosample_ext.run.config import RunConfig
        data = D.load(args.unfinished_test, split="loo", seed=RunConfig(protocol="gdns").resolved()
                      .split_seed, min_rating=4.0, min_rating_optional=True)
    summary = summarise(args.root, data)
    text = render(summary)
    if args.long:
        long_text, summary["long_runs"] = long_runs(args.long)
        text += "\nWithout early stopping (autosample_ext/studies/gdns_long_run.py, lr 0.09):\n\n" + long_text
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
