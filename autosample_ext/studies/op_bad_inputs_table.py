"""The operators' bad-input table, before -> after.

Runs every case of ``tests/ops/test_op_bad_inputs.py::CASES`` against whichever build of
``autosample_ext`` is first on ``sys.path`` (each case in a forked child, so a crash is recorded
as a crash) and writes what happened: the error's first line, or what the call returned without
an error (shape, dtype, device, range of the values: the silent wrong results). Then ``--merge``
puts two such runs side by side as a markdown table.

    # before: a build without the operator validation (e.g. main before the i11 merge)
    PYTHONPATH=/path/to/old/checkout python -m autosample_ext.studies.op_bad_inputs_table --label before --out before.json
    python -m autosample_ext.studies.op_bad_inputs_table --label after --out after.json
    python -m autosample_ext.studies.op_bad_inputs_table --merge before.json after.json --md bench/results/op_bad_inputs.md

CPU only (the machine has no GPU); the CUDA side of the same table runs in the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def describe(value: object) -> str:
    """What a call returned, in a table cell."""
    import torch

    if value is None:
        return "returned None (in-place op ran)"
    if isinstance(value, tuple):
        return "; ".join(describe(v) for v in value)
    if isinstance(value, torch.Tensor):
        text = f"{value.dtype} {tuple(value.shape)} on {value.device}"
        if value.device.type != "meta" and value.numel():
            lo, hi = value.min().item(), value.max().item()
            text += f", values in [{lo:.6g}, {hi:.6g}]"
        return text
    return repr(value)[:80]


def run_case(case) -> dict[str, str]:
    """The outcome of one case, computed in a forked child (a segfault becomes 'crash')."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            from autosample_ext import ops

            try:
                out = case.call("cpu")()
                ops.check_errors()
                doc = {"status": "no error", "text": describe(out)}
            except Exception as exc:  # the outcome we tabulate, whatever its type
                doc = {"status": "error", "text": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        except BaseException as exc:  # pragma: no cover - reported, not raised
            doc = {"status": "harness", "text": repr(exc)[:200]}
        os.write(write, json.dumps(doc).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"status": "crash", "text": f"process died (wait status {status})"}
    return json.loads(b"".join(chunks))


def collect(label: str) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "tests"))
    import autosample_ext
    import torch
    from test_op_bad_inputs import CASES  # noqa: E402

    torch.set_num_threads(1)
    rows = []
    for case in CASES:
        outcome = run_case(case)
        import re

        outcome["matches_test"] = bool(outcome["status"] == "error" and re.search(case.match, outcome["text"]))
        rows.append({"case": case.name, **outcome})
    return {"label": label, "build": autosample_ext.build_info(), "module": autosample_ext.__file__,
            "torch": torch.__version__, "rows": rows}


def cell(row: dict[str, object]) -> str:
    text = str(row["text"]).replace("|", "\\|")
    if row["status"] == "error":
        return text
    return f"**{str(row['status']).upper()}**: {text}"


def merge(before: dict, after: dict) -> str:
    b = {r["case"]: r for r in before["rows"]}
    lines = [
        f"# Operator bad inputs, before -> after ({len(after['rows'])} cases, CPU)",
        "",
        "Produced by `autosample_ext/studies/op_bad_inputs_table.py` from `tests/ops/test_op_bad_inputs.py::CASES`.",
        f"Before: `{before['module']}` ({before['label']}); after: `{after['module']}` ({after['label']}).",
        "NO ERROR = the call returned (shape, dtype, device, value range shown): a silent wrong",
        "result or uninitialised memory. 'test' = the after message matches the test's regex.",
        "",
        "| case | before | after | test |",
        "|---|---|---|---|",
    ]
    counts = {"before_error": 0, "before_silent": 0, "after_error": 0, "after_match": 0}
    for r in after["rows"]:
        old = b.get(r["case"], {"status": "n/a", "text": "case not run"})
        counts["before_error"] += old["status"] == "error"
        counts["before_silent"] += old["status"] != "error"
        counts["after_error"] += r["status"] == "error"
        counts["after_match"] += bool(r.get("matches_test"))
        lines.append(f"| {r['case']} | {cell(old)} | {cell(r)} | {'ok' if r.get('matches_test') else 'NO'} |")
    lines += ["", f"Before: {counts['before_error']} errors, {counts['before_silent']} calls that returned "
              f"or crashed. After: {counts['after_error']} errors, {counts['after_match']} matching the "
              f"test's expected message."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, help="JSON of this build's outcomes")
    parser.add_argument("--merge", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--md", type=Path, help="markdown table (with --merge)")
    args = parser.parse_args()
    if args.merge:
        before, after = (json.loads(p.read_text()) for p in args.merge)
        text = merge(before, after)
        if args.md:
            args.md.write_text(text)
        print(text)
        return
    doc = collect(args.label)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1))
    for r in doc["rows"]:
        print(f"{r['status']:>9}  {r['case']}: {r['text']}")


if __name__ == "__main__":
    main()
