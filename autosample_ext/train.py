"""``python -m autosample_ext.train``: the AutoSample pipeline from the command line.

With no arguments: AutoSample search over RNS/PNS/DNS/AOBPR then retraining, MF, on the
embedded default dataset (3:1:1 split), on the CPU, printing the final table. See ``--help``.
The parser is :mod:`autosample_ext.train_parser`; this module turns parsed arguments into a
:class:`RunConfig` (or a saved one, on ``--resume``), which checks them, and runs it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from autosample_ext.cli_common import usage_error
from autosample_ext.run import RunConfig, default_out_dir, run, summary_text
from autosample_ext.run.lock import RunLocked
from autosample_ext.run.rundir import RunDirError, read_saved_config
from autosample_ext.samplers.base import SamplerOptionError
from autosample_ext.training import StopFlag, TrainingInterrupted
from autosample_ext.distributed.context import DEFAULT_TIMEOUT_S, DistributedError, RemoteError
from autosample_ext.training.guard import TrainingDiverged
from autosample_ext.distributed.launch import init_from_env, shutdown
from autosample_ext.train_parser import (DEFAULT_THREADS, FIELD_OF_DEST, CLIError,
                                         build_parser, check_device, check_more_args, int_list,
                                         name_list, option_message, option_of_field,
                                         sampler_opts)

log = logging.getLogger("autosample_ext.train")

# Exit statuses (docs/cli.md, "Errors and exit statuses").
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: parsed arguments that are not settings of the run
_NOT_FIELDS = ("resume", "verbose", "threads", "dist_timeout")


def config_from_args(ns: argparse.Namespace) -> tuple[RunConfig, dict[str, Any]]:
    """The resolved RunConfig of the given arguments; also returns the explicitly given fields.
    The rules are RunConfig's (:meth:`RunConfig.resolved` included): their errors become
    :class:`CLIError` naming the option."""
    given: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if key in _NOT_FIELDS:
            continue
        if key in ("search_space", "sampler"):
            value = name_list(value, f"--{key.replace('_', '-')}")
        elif key in ("seeds", "ks"):
            value = int_list(value, f"--{key}")
        elif key == "device":
            value = check_device(value)
        elif key == "data" and not Path(value).exists():
            raise CLIError(f"--data: {value} does not exist")
        elif key == "sampler_opt":
            value = sampler_opts(value)
        elif key in ("no_budget_singles", "no_progress"):
            value = False
        given[FIELD_OF_DEST.get(key, key)] = value
    check_more_args(ns, given)
    try:
        cfg = RunConfig(**given).resolved(explicit=given)
    except ValueError as exc:  # ProtocolConflict, a bad value, unused --sampler-opt, ...
        raise CLIError(option_message(exc, option_of_field(build_parser()))) from None
    return cfg, given


# Settings a resumed run may change: they do not alter its results.
_RESUME_MAY_CHANGE = ("out", "progress", "device", "checkpoint_every")


def resume_config(ns: argparse.Namespace, given: dict[str, Any]) -> RunConfig:
    """The saved config of ``--out``; explicit arguments must agree with it."""
    if "out" not in given:
        raise CLIError("--resume needs --out DIR (the run directory to continue)")
    run_dir = Path(given["out"])
    path = run_dir / "config.json"
    if not path.is_file():
        raise CLIError(f"--resume: {path.resolve()} does not exist (nothing to resume)")
    try:
        saved, _ = read_saved_config(run_dir, data=given.get("data"))
    except (ValueError, OSError) as exc:
        raise CLIError(f"--resume: {exc}") from None
    saved_plain = saved.to_json()
    compared = {k: v for k, v in given.items() if k != "data"}  # --data: where the data is now
    for key, value in compared.items():
        if key in _RESUME_MAY_CHANGE:
            continue
        plain = json.loads(json.dumps(value))
        if key == "sampler_options":  # as resolved: with the protocol's defaults merged in
            plain = RunConfig(**given).resolved(explicit=given).to_json()[key]
        if saved_plain.get(key) != plain:
            raise CLIError(f"--resume: --{key.replace('_', '-')} {plain} differs from the saved "
                           f"run's {saved_plain.get(key)}; resume uses the saved config")
    updates = {k: given[k] for k in _RESUME_MAY_CHANGE if k in given and k != "out"}
    return dataclasses.replace(saved, **updates)


def _install_signal_handlers(stop: StopFlag, distributed: bool = False) -> dict[int, Any]:
    """First SIGINT/SIGTERM: checkpoint at the next step and exit; a second one: default. In a
    distributed run only a second signal of the same kind aborts (torchrun answers a Ctrl-C,
    which every process receives, with a SIGTERM to each)."""
    previous: dict[int, Any] = {}
    first: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        if stop.requested and (not distributed or signum in first):
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        if stop.requested:
            return
        first.append(signum)
        stop.request(f"received {signal.Signals(signum).name}")
        log.warning("%s: writing a checkpoint at the next step (again to abort)",
                    signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    return previous


def main(argv: Sequence[str] | None = None, *,
         on_step: Callable[[str, int], None] | None = None) -> int:
    """The command line; returns the exit status. ``on_step(tag, step)`` is called after every
    optimiser step (tests inject faults). Under torchrun every process runs ``main``
    (docs/distributed.md): rank 0 prints, the others only their own errors."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:  # the arguments the process group is created with: a bad one is a usage error (2)
        check_more_args(ns, {})
    except CLIError as exc:
        return usage_error(parser, exc)
    try:
        dist = init_from_env(getattr(ns, "dist_timeout", DEFAULT_TIMEOUT_S))
    except (ValueError, RuntimeError) as exc:
        print(f"{parser.prog}: error: cannot join the distributed job: {exc}", file=sys.stderr)
        return EXIT_ERROR
    who = f"[rank {dist.rank}] " if dist.distributed else ""
    logging.basicConfig(level=logging.DEBUG if getattr(ns, "verbose", False) else
                        logging.INFO if dist.is_main else logging.ERROR,
                        format=f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        cfg, given = config_from_args(ns)
        if getattr(ns, "resume", False):
            cfg = dist.on_main(lambda: resume_config(ns, given), "reading the saved run",
                               share=True)
    except CLIError as exc:
        if dist.is_main:
            parser.print_usage(sys.stderr)
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RemoteError, DistributedError) as exc:
        print(f"{parser.prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg)
    cfg = dataclasses.replace(cfg, out=str(out.resolve()))
    torch.set_num_threads(getattr(ns, "threads", DEFAULT_THREADS))
    log.debug("using %d CPU thread(s)", torch.get_num_threads())
    launch = dist.launch_command()
    stop = StopFlag()
    previous = _install_signal_handlers(stop, dist.distributed)
    try:
        dist.bind_device(cfg.device)
        cfg = dataclasses.replace(cfg, out=dist.broadcast_object(cfg.out, "naming the run directory"))
        summary = run(cfg, resume=getattr(ns, "resume", False), stop=stop, on_step=on_step,
                      dist=dist)
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        if dist.is_main:
            print(f"interrupted; continue with: {launch} --resume --out {shlex.quote(cfg.out)}",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"{who}aborted; the checkpoints of the last finished epochs are kept; continue "
              f"with: {launch} --resume --out {shlex.quote(cfg.out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        if dist.is_main:
            print(f"{parser.prog}: error: {exc} with --lr (the epochs so far are in "
                  f"{Path(cfg.out) / 'log.jsonl'})", file=sys.stderr)
        return EXIT_DIVERGED
    except SamplerOptionError as exc:  # an option that cannot serve this data: a usage error
        if dist.is_main:
            parser.print_usage(sys.stderr)
            print(f"{parser.prog}: error: --sampler-opt {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DistributedError as exc:
        print(f"{parser.prog}: {who}error: {exc}; the job stops (continue with: {launch} "
              f"--resume --out {shlex.quote(cfg.out)})", file=sys.stderr)
        return EXIT_ERROR
    except RemoteError as exc:  # rank 0 (or the failed rank) reports it
        if dist.is_main:
            print(f"{parser.prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, OSError, NotImplementedError, RunDirError, RunLocked) as exc:
        dist.report_failure(f"{type(exc).__name__}: {exc}")
        print(f"{parser.prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BaseException as exc:
        dist.report_failure(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        shutdown(dist)   # also after errors: a process group left to the interpreter's exit can abort it
    if dist.is_main:
        print(summary_text(summary))
    return EXIT_OK


def exit_process(status: int) -> None:
    """End the command with ``status``. A process torchrun started ends without the
    interpreter's teardown (``os._exit`` after flushing the logs and streams): its run is
    finished and written (the process group destroyed, every output file written atomically),
    and the C++ threads of the destroyed group's communication can still abort the process in
    the destructors of the teardown ("terminate called without an active exception"), which
    would turn a finished run into a failed exit status."""
    if "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    exit_process(main())
