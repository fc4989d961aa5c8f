"""``python -m autosample_ext.data info PATH [--format F] [--min-rating R] [--kcore K] ...``

Prints the dataset summary as JSON on stdout. Exit statuses as for ``train`` (docs/cli.md,
"Errors and exit statuses"): 2 for a bad argument, found before the data is read (the option and its
value named; ``--format``, ``--split``, ``--valid-fraction`` and ``--min-rating`` are checked
with ``train``'s rules), 1 for data that cannot be read (the file and line named).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from autosample_ext.cli_common import fail, finite_floats, train_checked, usage_error
from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.loader import load
from autosample_ext.data.splits import NotEnoughNegatives
from autosample_ext.train_parser import CLIError, check_seed


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autosample_ext.data",
                                     description="Inspect implicit-feedback datasets.",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print a JSON summary of a dataset", allow_abbrev=False)
    info.add_argument("path", help="file or folder, or 'default' for the embedded dataset")
    info.add_argument("--format", default=None, help="force a reader (default: detect)")
    info.add_argument("--min-rating", type=float, default=None)
    info.add_argument("--kcore", type=int, default=0, help="k-core filter, >= 0 (0: none)")
    info.add_argument("--split", default=None, help="given | 3:1:1 | 8:1:1 | a:b:c | loo")
    info.add_argument("--seed", type=int, default=0, help="split seed, >= 0")
    info.add_argument("--valid-fraction", type=float, default=None)
    info.add_argument("--remap", choices=("auto", "yes", "no"), default="auto")
    return finite_floats(parser)


def check_args(args: argparse.Namespace) -> None:
    """``train``'s rules for the options it shares; raises CLIError (exit 2)."""
    given = {key: getattr(args, key) for key in ("format", "split", "valid_fraction", "min_rating")
             if getattr(args, key) is not None}
    train_checked(**given)
    if args.path != "default" and not Path(args.path).exists():
        raise CLIError(f"PATH: {args.path} does not exist")
    if args.kcore < 0:
        raise CLIError(f"--kcore: must be >= 0, got {args.kcore}")
    check_seed(args.seed, "--seed")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    remap = {"auto": None, "yes": True, "no": False}[args.remap]
    try:
        check_args(args)
    except CLIError as exc:
        return usage_error(parser, exc)
    path = None if args.path == "default" else args.path
    try:
        data = load(path, args.format, min_rating=args.min_rating, kcore=args.kcore,
                    split=args.split, seed=args.seed, valid_fraction=args.valid_fraction,
                    remap=remap)
    except NotEnoughNegatives as exc:
        return fail(parser, f"{args.path}: {exc}; use a ratio split instead (e.g. --split 8:1:1)")
    except (DataFormatError, ValueError, OSError) as exc:
        return fail(parser, exc)
    print(json.dumps(_jsonable(data.info), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
