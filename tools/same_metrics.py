"""Whether two runs wrote the same ``metrics.json``, timings aside: a restructuring must not
change a result.

    python tools/same_metrics.py RUN_A/metrics.json RUN_B/metrics.json

Compares every leaf of the two JSON documents except wall-clock and CPU times and what is
computed from them alone (:func:`is_timing`). Prints the differing leaves and exits 1 if there is any, else 0.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def leaves(doc: Any, path: str = "") -> dict[str, Any]:
    """``{"/a/b[0]/c": value}`` for every scalar of ``doc``."""
    if isinstance(doc, dict):
        return {k: v for key, sub in doc.items() for k, v in leaves(sub, f"{path}/{key}").items()}
    if isinstance(doc, list):
        return {k: v for i, sub in enumerate(doc) for k, v in leaves(sub, f"{path}[{i}]").items()}
    return {path: doc}


def is_timing(path: str) -> bool:
    """A measured time or a number derived from times alone: ``*seconds``, the spread of the
    CPU / wall time over seeds (``cpu_std``, ``wall_std``) and the CPU ratios to the grid."""
    key = path.rsplit("/", 1)[-1]
    return (key.endswith("seconds") or key in ("cpu_std", "wall_std")
            or "/cpu_ratio_to_grid" in path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args(argv)
    a, b = (leaves(json.loads(f.read_text())) for f in (args.a, args.b))
    keys = sorted(k for k in a.keys() | b.keys() if not is_timing(k))
    differ = [k for k in keys if a.get(k, "<missing>") != b.get(k, "<missing>")]
    for k in differ:
        print(f"{k}: {a.get(k, '<missing>')!r} != {b.get(k, '<missing>')!r}")
    print(f"{len(keys)} values compared (timings aside), {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
