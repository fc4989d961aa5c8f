"""``python -m autosample_ext.data info PATH [--format F] [--min-rating R] [--kcore K] ...``

Prints the dataset summary as JSON on stdout; bad input exits with status 2 and a message on
stderr naming the file and line.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.loader import load


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autosample_ext.data",
                                     description="Inspect implicit-feedback datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print a JSON summary of a dataset")
    info.add_argument("path", help="file or folder, or 'default' for the embedded dataset")
    info.add_argument("--format", default=None, help="force a reader (default: detect)")
    info.add_argument("--min-rating", type=float, default=None)
    info.add_argument("--kcore", type=int, default=0)
    info.add_argument("--split", default=None, help="given | 3:1:1 | 8:1:1 | a:b:c | loo")
    info.add_argument("--seed", type=int, default=0)
    info.add_argument("--valid-fraction", type=float, default=None)
    info.add_argument("--remap", choices=("auto", "yes", "no"), default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    remap = {"auto": None, "yes": True, "no": False}[args.remap]
    try:
        data = load(args.path, args.format, min_rating=args.min_rating, kcore=args.kcore,
                    split=args.split, seed=args.seed, valid_fraction=args.valid_fraction,
                    remap=remap)
    except (DataFormatError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_jsonable(data.info), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
