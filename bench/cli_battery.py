"""A battery of bad and edge inputs for every command line of the package, run as a user would
(``python -m ...`` in a fresh folder, stderr not a terminal), each outcome classified:

* CLEAR: the expected non-zero exit status, a message that names the option and the value (or
  the file), no traceback;
* CORRECT: exit 0 (or the documented status) and the result checked (files, printed lines);
* failures: TRACEBACK, SILENT (exit 0 where an error was due), UNCLEAR (another status, or a
  message that does not name what it must), WRONG (ran, but the result or the printout is
  not what it should be: escape codes, a buried table, an empty line), TIMEOUT.

    python bench/cli_battery.py --tree . --out bench/results/cli_battery_after.json
    python bench/cli_battery.py --tree ../other-checkout --out /tmp/before.json  # another checkout
    python bench/cli_battery.py --table bench/results/cli_battery.md \\
        --before /tmp/before.json --after bench/results/cli_battery_after.json

``--tree`` is put first on PYTHONPATH (its compiled extension must be built). Cases that train
use tiny data (tens of users, one or two epochs). ``--only ID_PREFIX`` runs a subset;
``--issue`` the cases the issue lists. Cases live in :mod:`cli_battery_cases`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_battery_cases import CASES, MODULES, Case

PASSING = ("CLEAR", "CORRECT")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def error_message(err: str) -> str:
    """The error itself: from the last line that says ``error`` to the end (not the usage text
    before it, which names every option)."""
    lines = err.splitlines()
    at = max((i for i, line in enumerate(lines) if "error" in line.lower()), default=0)
    return "\n".join(lines[at:])


def classify(case: Case, rc: int | None, out: str, err: str, tmp: Path) -> tuple[str, str]:
    """The outcome's class and, for a failure, why."""
    if rc is None:
        return "TIMEOUT", "no exit within the time limit"
    if "Traceback (most recent call last)" in err or "Traceback (most recent call last)" in out:
        return "TRACEBACK", last_line(err)
    fill = lambda s: s.replace("{tmp}", str(tmp))
    if "\x1b[" in err or "\r" in err:
        return "WRONG", "escape codes / carriage returns in the captured stderr"
    if case.expect != 0:
        if rc == 0:
            return "SILENT", "exit 0 where an error was due"
        message = error_message(err)
        missing = [n for n in case.needles if fill(n) not in message]
        if rc != case.expect:
            return "UNCLEAR", f"exit {rc}, expected {case.expect}"
        if missing:
            return "UNCLEAR", f"the message lacks {missing[0]!r}"
        if "error" not in last_line(err).lower():
            return "UNCLEAR", "the last line is not the error"
        return "CLEAR", ""
    if rc != 0:
        return "WRONG", f"exit {rc} for a valid input"
    missing = [n for n in case.needles if fill(n) not in out + err]
    if missing:
        return "WRONG", f"the output lacks {missing[0]!r}"
    if case.check is not None:
        problem = case.check(tmp, out, err)
        if problem:
            return "WRONG", problem
    return "CORRECT", ""


def run_case(case: Case, tree: Path, data_dir: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"battery-{case.id}-") as name:
        tmp = Path(name)
        if case.setup is not None:
            case.setup(tmp)
        args = [a.replace("{tmp}", str(tmp)).replace("{data}", str(data_dir))
                .replace("{tree}", str(tree)) for a in case.args]
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("WORLD_SIZE", None)
        cmd = [sys.executable, "-m", MODULES[case.cmd], *args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = None
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        kind, why = classify(case, rc, out, err, tmp)
        shown = last_line(err) if case.expect != 0 or rc != 0 or kind != "CORRECT" else \
            last_line(out)
        def scrub(text: str) -> str:  # no machine paths in the saved results
            return (text.replace(str(tmp), "{tmp}").replace(str(tree), "{tree}")
                    .replace(sys.prefix, "{python}"))

        return {"id": case.id, "command": case.cmd, "args": case.args, "expect": case.expect,
                "rc": rc, "class": kind, "why": why, "last_line": scrub(shown),
                "issue": case.issue, "group": case.group, "seconds": round(time.perf_counter() - t0, 1),
                "stderr_tail": scrub(err[-2000:]),
                "stdout_tail": scrub(out[-2000:])}


def run_battery(cases: list[Case], tree: Path, data_dir: Path, jobs: int, timeout: float) -> list[dict]:
    results: list[dict] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_case, c, tree, data_dir, timeout) for c in cases]
        for i, f in enumerate(futures, 1):
            r = f.result()
            results.append(r)
            mark = "ok " if r["class"] in PASSING else "BAD"
            print(f"[{i:3d}/{len(cases)}] {mark} {r['class']:9s} rc={r['rc']} {r['id']}: "
                  f"{r['last_line'][:110]}", flush=True)
    return results


def _cell(text: str, width: int = 150) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def _args_cell(args: list[str], width: int) -> str:
    """The arguments' end (the shared short settings come first; what a case varies is last)."""
    text = " ".join(args)
    return _cell(text if len(text) <= width else "…" + text[-(width - 1):], width + 1)


def summary(results: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["class"]] = counts.get(r["class"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def write_table(path: Path, before: dict | None, after: dict) -> None:
    """Markdown: the counts, the issue's cases before and after, every case after."""
    res_a = after["results"]
    lines = ["# Command-line battery: bad and edge inputs of every command", "",
             (f"Generated by `python bench/cli_battery.py` ({after['date']}, load average "
             f"{after['load']}); {len(res_a)} cases, every one run as `python -m ...` in a fresh "
             f"folder with stderr captured (not a terminal). Classes: CLEAR (the expected "
             f"non-zero status, a message naming the option and value or the file, no traceback), "
             f"CORRECT (ran; result and printout checked), and the failures TRACEBACK, SILENT, "
             f"UNCLEAR, WRONG, TIMEOUT."), ""]
    groups = sorted({r["group"] for r in res_a})
    lines += ["| | cases | " + " | ".join(groups) + " | all passing |", "|---|---|" + "---|" * (len(groups) + 1)]
    for label, data in (("before", before), ("after", after)):
        if data is None:
            continue
        res = data["results"]
        per = []
        for g in groups:
            sub = [r for r in res if r["group"] == g]
            per.append(f"{sum(r['class'] in PASSING for r in sub)}/{len(sub)}")
        lines.append(f"| {label} ({data['tree']}) | {len(res)} | " + " | ".join(per)
                     + f" | {sum(r['class'] in PASSING for r in res)}/{len(res)} |")
    lines.append("")
    for label, data in (("Before", before), ("After", after)):
        if data is not None:
            lines.append(f"{label}: {summary(data['results'])}.")
    lines.append("")
    if before is not None:
        by_id = {r["id"]: r for r in before["results"]}
        lines += ["## The issue's cases, before and after", "",
                  "| case | command | before: rc, class, last line | after: rc, class, last line |",
                  "|---|---|---|---|"]
        for r in res_a:
            if not r["issue"]:
                continue
            b = by_id.get(r["id"])
            bwhy = f" ({b['why']})" if b and b["why"] and b["why"] != b["last_line"] else ""
            btxt = (f"{b['rc']}, {b['class']}{_cell(bwhy, 80)}: {_cell(b['last_line'], 120)}"
                    if b else "not run")
            lines.append(f"| {r['id']} | `{_args_cell(r['args'], 80)}` | {btxt} | "
                         f"{r['rc']}, {r['class']}: {_cell(r['last_line'], 120)} |")
        lines.append("")
    lines += ["## Every case (after)", "", "| case | group | arguments | expected | rc | class | last line |",
              "|---|---|---|---|---|---|---|"]
    for r in res_a:
        why = f" ({r['why']})" if r["why"] else ""
        lines.append(f"| {r['id']} | {r['group']} | `{_cell(' '.join(r['args']), 70)}` | {r['expect']} | "
                     f"{r['rc']} | {r['class']}{_cell(why, 80)} | {_cell(r['last_line'])} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                   help="checkout to test (first on PYTHONPATH)")
    p.add_argument("--data-dir", default=os.environ.get(
        "AUTOSAMPLE_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    p.add_argument("--out", help="JSON of the results")
    p.add_argument("--merge-into", help="replace these cases' results in this JSON (a rerun of "
                                        "cases whose definition changed)")
    p.add_argument("--only", default="", help="run the cases whose id starts with this")
    p.add_argument("--issue", action="store_true", help="only the cases the issue lists")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--table", help="write this markdown table from --after (and --before)")
    p.add_argument("--before")
    p.add_argument("--after")
    ns = p.parse_args(argv)
    if ns.table:
        before = json.loads(Path(ns.before).read_text()) if ns.before else None
        write_table(Path(ns.table), before, json.loads(Path(ns.after).read_text()))
        return 0
    cases = [c for c in CASES if c.id.startswith(ns.only) and (c.issue or not ns.issue)]
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), "duplicate case ids"
    t0 = time.time()
    results = run_battery(cases, Path(ns.tree).resolve(), Path(ns.data_dir), ns.jobs, ns.timeout)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(results)} cases in {time.time() - t0:.0f}s (load average {load}): {summary(results)}")
    if ns.merge_into:  # rerun cases replace their earlier results
        saved = json.loads(Path(ns.merge_into).read_text())
        new = {r["id"]: r for r in results}
        ids = [c.id for c in CASES]
        old = {r["id"]: r for r in saved["results"]}
        saved["results"] = [new.get(i, old.get(i)) for i in ids if i in new or i in old]
        saved["merged"] = sorted(new)
        Path(ns.merge_into).write_text(json.dumps(saved, indent=1) + "\n")
    if ns.out:
        Path(ns.out).write_text(json.dumps(
            {"tree": Path(ns.tree).resolve().name, "date": time.strftime("%Y-%m-%d %H:%M"),
             "load": load, "results": results}, indent=1) + "\n")
    return 0 if all(r["class"] in PASSING for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
