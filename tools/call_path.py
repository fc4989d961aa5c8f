"""The call path of a training command from the command line down to the extension's kernels:
which of the package's files it passes through, and how often a call climbs from a lower layer
into a higher one. A count for the package's structure, not a profiler.

    python tools/call_path.py                       # the default: --sampler dns --epochs 2
    python tools/call_path.py -- --sampler rns --engine autograd --epochs 1
    python tools/call_path.py --json out.json -- --sampler dns --epochs 2

Runs ``autosample_ext.train.main`` on the given arguments (plus ``--out`` in a temporary folder)
under :func:`sys.setprofile`; at every call of an ``autosample::`` operator it records the chain of
the package's frames on the stack. Layers, lowest first, are those of ``docs/design.md``: a call
from a module into a module of a higher layer is a climb. It also lists every call of the run,
not only those on an operator's path, that goes from a lower layer into a higher one.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

#: Layer of each top-level part of the package (lowest first). A name missing here is an error.
LAYERS: dict[str, int] = {
    "ops": 0,
    "data": 1, "models": 1, "eval": 1, "losses": 1, "_C": 0,
    "samplers": 2,
    "distributed": 3,
    "training": 4,
    "search": 5,
    "run": 6, "experiment": 6, "report": 6,
    "experiments": 7, "studies": 7,
    "train": 8, "train_parser": 8, "cli_common": 8, "__main__": 8, "__init__": 8,
}


def module_of(filename: str, root: Path) -> str | None:
    """The package-relative path of ``filename`` (``training/trainer.py``), or None outside it."""
    try:
        return Path(filename).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def layer_of(module: str) -> int:
    head = module.split("/")[0].removesuffix(".py")
    if head not in LAYERS:
        raise KeyError(f"tools/call_path.py: no layer for {module!r}; add its package to LAYERS")
    return LAYERS[head]


def trace(train_args: list[str]) -> dict[str, Any]:
    import autosample_ext
    from autosample_ext.train import main

    root = Path(autosample_ext.__file__).resolve().parent
    chains: dict[str, set[tuple[str, ...]]] = {}

    upward_calls: set[tuple[str, str]] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = module_of(frame.f_code.co_filename, root)
        if callee is not None:
            caller_frame = frame.f_back
            while caller_frame is not None and module_of(caller_frame.f_code.co_filename, root) is None:
                caller_frame = caller_frame.f_back
            if caller_frame is not None:
                caller = module_of(caller_frame.f_code.co_filename, root)
                if caller != callee and layer_of(callee) > layer_of(caller):
                    upward_calls.add((caller, callee))
            return
        if frame.f_code.co_name != "__call__":
            return
        if not frame.f_code.co_filename.endswith("torch/_ops.py"):
            return
        op = frame.f_locals.get("self")
        name = str(getattr(op, "_qualified_op_name", None) or getattr(op, "_name", ""))
        if not name.startswith("autosample::"):
            return
        chain: list[str] = []
        f: FrameType | None = frame.f_back
        while f is not None:
            module = module_of(f.f_code.co_filename, root)
            if module is not None and (not chain or chain[-1] != module):
                chain.append(module)
            f = f.f_back
        chains.setdefault(name.split(".")[0], set()).add(tuple(reversed(chain)))

    with tempfile.TemporaryDirectory() as out:
        sys.setprofile(profile)
        try:
            code = main([*train_args, "--out", str(Path(out) / "run")])
        finally:
            sys.setprofile(None)
    if code:
        raise SystemExit(f"the traced command failed (exit {code})")

    files: set[str] = set()
    climbs: set[tuple[str, str]] = set()
    for op_chains in chains.values():
        for chain in op_chains:
            files.update(chain)
            for caller, callee in zip(chain, chain[1:]):
                if layer_of(callee) > layer_of(caller):
                    climbs.add((caller, callee))
    return {
        "args": train_args,
        "ops": sorted(chains),
        "files": sorted(files),
        "climbs": sorted(f"{a} -> {b}" for a, b in climbs),
        "upward_calls": sorted(f"{a} -> {b}" for a, b in upward_calls),
        "chains": {op: sorted(" > ".join(c) for c in cs) for op, cs in sorted(chains.items())},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, help="write the full result (with every chain) here")
    p.add_argument("train_args", nargs="*", help="arguments of python -m autosample_ext.train "
                   "(after --); default: --sampler dns --epochs 2")
    args = p.parse_args(argv)
    result = trace(args.train_args or ["--sampler", "dns", "--epochs", "2"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(f"operators reached: {', '.join(result['ops'])}")
    print(f"files on the path: {len(result['files'])}")
    for f in result["files"]:
        print(f"  {f}")
    print(f"climbs (caller -> callee in a higher layer): {len(result['climbs'])}")
    for c in result["climbs"]:
        print(f"  {c}")
    print(f"every call of the run from a lower layer into a higher one: {len(result['upward_calls'])}")
    for c in result["upward_calls"]:
        print(f"  {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
