"""The package's import graph, read from source by tools/import_cycles.py."""
from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _tool():
    """tools/import_cycles.py, loaded by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_cycles"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_at_import_time():
    tool = _tool()
    _, graphs = tool.build_graphs(ROOT / "autosample_ext")
    assert tool.simple_cycles(graphs["runtime"]) == []


def test_distributed_runtime_sits_in_no_cycle():
    """No import that can execute (function-level ones included) closes a loop through the
    distributed package: checkpoints and training sit below it."""
    tool = _tool()
    _, graphs = tool.build_graphs(ROOT / "autosample_ext")
    through = [c for c in tool.simple_cycles(graphs["deferred"])
               if any(m.startswith("autosample_ext.distributed") for m in c)]
    assert through == []
    assert "autosample_ext.distributed.context" in graphs["runtime"]


def test_cycle_finder_and_resolution(tmp_path):
    """The tool finds a known cycle, resolves relative imports and `from pkg import submodule`,
    and leaves function-level and TYPE_CHECKING imports out of the import-time graph."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nfrom .. import c\nif TYPE_CHECKING:\n    import pkg.a\n"
        "thing = 1\n")
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n")
    tool = _tool()
    _, graphs = tool.build_graphs(pkg)
    assert graphs["runtime"]["pkg.a"] == {"pkg.sub.b"}
    assert graphs["runtime"]["pkg.sub"] == {"pkg.sub.b"}
    assert graphs["runtime"]["pkg.sub.b"] == {"pkg.c"}
    assert tool.simple_cycles(graphs["runtime"]) == []
    assert tool.simple_cycles(graphs["deferred"]) == [["pkg.a", "pkg.sub.b", "pkg.c"]]
    assert sorted(map(tuple, tool.simple_cycles(graphs["static"]))) == [
        ("pkg.a", "pkg.sub.b"), ("pkg.a", "pkg.sub.b", "pkg.c")]
