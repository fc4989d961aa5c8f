"""Summary of one bench/gpu_check.sh run: ``python bench/gpu_summary.py RESULTS_DIR OUT_BASE``.

Reads the run's folder (status.tsv, env.txt, tests.xml, one JSON per benchmark group, roofs) and
writes OUT_BASE.md (tables: steps, tests, roofs, every case's times and fractions of both roofs)
and OUT_BASE.json (all of it). Never fails on a missing or broken piece: it says what is missing.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def read_status(res: Path) -> list[dict[str, str]]:
    rows = []
    path = res / "status.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                rows.append({"step": parts[0], "status": parts[1], "seconds": parts[2],
                             "note": parts[3] if len(parts) > 3 else ""})
    return rows


def read_tests(res: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for xml in sorted(res.glob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            out[xml.stem] = {"error": f"unreadable: {exc}"}
            continue
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        if suite is None:
            continue
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        counts["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                            if c.find("failure") is not None or c.find("error") is not None]
        out[xml.stem] = counts
    return out


def read_groups(res: Path) -> tuple[list[dict], list[dict]]:
    done, failed = [], []
    for path in sorted(res.glob("bench/*.json")):
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            failed.append({"group": path.stem, "status": "unreadable", "error": str(exc)})
            continue
        (failed if path.name.endswith(".failed.json") else done).append(doc)
    return done, failed


def fmt(x: object, scale: float = 1.0, digits: int = 1) -> str:
    return "" if x is None else f"{float(x) * scale:.{digits}f}"


def main() -> None:
    res, base = Path(sys.argv[1]), Path(sys.argv[2])
    status, tests = read_status(res), read_tests(res)
    groups, failed = read_groups(res)
    env = (res / "env.txt").read_text() if (res / "env.txt").exists() else "(no env.txt)"
    doc = {"status": status, "tests": tests, "groups": groups, "failed_groups": failed, "env": env}
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2))
    lines = ["# GPU check", "", "```", env.strip(), "```", "", "## Steps", "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']} | {r['note']} |" for r in status]
    lines += ["", "## Tests", ""]
    for name, c in tests.items():
        if "error" in c:
            lines.append(f"- {name}: {c['error']}")
        else:
            lines.append(f"- {name}: {c['passed']} passed, {c['failures']} failed, {c['errors']} errors, "
                         f"{c['skipped']} skipped" + (f"; failing: {', '.join(c['failed'][:20])}" if c['failed'] else ""))
    lines += ["", "## Benchmarks", "",
              "Fractions: achieved bytes/s over the measured D2D copy rate (HBM) and FLOP/s over the measured "
              "FP32 FMA rate, from CUDA-event medians and (kernel) from profiler kernel-only times.", "",
              "| group | impl | events us | kernels us | GB/s | frac HBM | frac HBM (kernel) | TFLOP/s | "
              "frac FMA | frac FMA (kernel) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        for r in g.get("results", []):
            k = r.get("kernel") or {}
            lines.append(f"| {r['group']} | {r['name']} | {fmt(r['median_s'], 1e6)} | {fmt(r.get('kernel_s'), 1e6)} | "
                         f"{r.get('GBps', '')} | {r.get('fraction_of_d2d_copy', '')} | "
                         f"{k.get('fraction_of_d2d_copy', '')} | {r.get('TFLOPs', '')} | "
                         f"{r.get('fraction_of_fp32_fma', '')} | {k.get('fraction_of_fp32_fma', '')} |")
    lines += ["", "Speedup of autosample (baseline time / autosample time):", ""]
    lines += [f"- {g['group']}: " + ", ".join(f"{n} {v}x" for n, v in g.get("speedup_of_autosample_over", {}).items())
              for g in groups if g.get("speedup_of_autosample_over")]
    if failed:
        lines += ["", "## Failed groups", ""]
        lines += [f"- {f.get('group')}: {f.get('status')}: {f.get('error')}" for f in failed]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
