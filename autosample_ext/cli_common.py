"""What the package's command lines share (``train``, ``experiments``, the false-negative
analysis, ``data info``): the finite-number argument type, the output-folder check and the
error path (``prog: error: ...`` on stderr, exit status 2 for a bad argument and 1 for data or
files that cannot be used; docs/cli.md, "Errors and exit statuses").

The argument *rules* (what ``--epochs`` or ``--seeds`` accept) are ``train``'s
(:mod:`autosample_ext.train_parser`, :func:`autosample_ext.train.config_from_args`); the other
commands call them rather than restating them.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autosample_ext.run.config import RunConfig

EXIT_ERROR, EXIT_USAGE = 1, 2


class OutputDirError(OSError):
    """An output folder that cannot be written: a file in its path, a read-only file system,
    no permission. Exit status 1, naming the option and the folder."""


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite (``--l2 nan`` is an argument
    error, not a run that diverges or records NaN)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_floats(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make every ``type=float`` option of ``parser`` (and of its sub-commands) refuse NaN and
    infinity, naming the option: ``error: argument --l2: expected a finite number, got 'nan'``.
    Options added later with ``type=float`` are covered as long as this runs after them."""
    for action in parser._actions:  # argparse keeps no public list of the actions
        if action.type is float:
            action.type = finite_float
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                finite_floats(sub)
    return parser


def check_output_dir(path: str | Path, option: str) -> Path:
    """Raise :class:`OutputDirError` when folder ``path`` (given with ``option``) cannot be
    created or written: an existing file at or above it, a read-only file system, no
    permission. Writes nothing: the first folder of the path that is missing (or a hidden one in
    the existing folder) is created and removed at once. Returns the resolved path."""
    target = Path(path).expanduser()
    resolved = target.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise OutputDirError(f"{option} {path}: {resolved} is a file, not a folder; choose "
                             f"another {option}")
    ancestor, first_missing = resolved, None
    while not ancestor.exists():
        ancestor, first_missing = ancestor.parent, ancestor
    if not ancestor.is_dir():
        raise OutputDirError(f"{option} {path}: {ancestor} is a file, so the folder {resolved} "
                             f"cannot be created; choose another {option}")
    # the folder the command would create first (or a hidden one inside an existing target)
    probe = first_missing or resolved / f".autosample-write-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise OutputDirError(f"{option} {path}: cannot write in {ancestor} "
                             f"({exc.strerror or exc}); choose another {option}") from None
    return resolved


def train_checked(**options: Any) -> RunConfig:
    """``train``'s checks of these options and the :class:`RunConfig` they give. Keys and
    values are those of ``train``'s parsed arguments (``epochs=3``, ``seeds="0,1"``,
    ``search_space="rns,dns"``, ``data=path``, ``split="3:1:1"``, ``threads=1``, ...). Raises
    :class:`~autosample_ext.train_parser.CLIError` with ``train``'s message, which names the
    option as ``train`` spells it."""
    from autosample_ext.train import config_from_args

    return config_from_args(argparse.Namespace(**options))[0]


def parse_one_process(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      advice: str) -> argparse.Namespace | int:
    """Parse ``argv`` for a command that runs in one process and set up its INFO logging; the
    exit status 2 instead when torchrun started it (``advice``: what to do instead)."""
    from autosample_ext.distributed.launch import single_process_error

    ns = parser.parse_args(argv)
    refused = single_process_error(parser.prog, advice)
    if refused:
        print(refused, file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return ns


def usage_error(parser: argparse.ArgumentParser, message: object) -> int:
    """Print the usage and ``prog: error: message`` to stderr; the bad-argument status (2)."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def fail(parser: argparse.ArgumentParser, message: object) -> int:
    """Print ``prog: error: message`` to stderr; the status of data or files that cannot be
    used (1)."""
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_ERROR
