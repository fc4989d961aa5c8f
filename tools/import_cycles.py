"""Count the import cycles of the ``autosample_ext`` package, read from source (nothing is imported).

Nodes are the package's modules (one per file; a package is its ``__init__.py``; a compiled
extension is a module without imports: the ``_C*.so`` files found, and the names given by
``--extension``, default ``_C``, so an unbuilt checkout counts the same). An edge
``a -> b`` is an import in ``a`` of the project module ``b``: relative imports are resolved
against ``a``'s package, and ``from pkg import name`` points to the submodule ``pkg.name`` when
that is a module file, else to ``pkg`` itself (its ``__init__``). Importing a submodule also runs
its parent packages' ``__init__``; those implicit edges are not drawn.

Three graphs:

* ``static``: every import anywhere in the file, in functions and ``if TYPE_CHECKING:`` blocks too;
* ``deferred``: the imports that can execute, i.e. ``static`` without ``if TYPE_CHECKING:``
  blocks (an import inside a function runs when the function is first called);
* ``runtime``: the imports executed when the module is imported: its top level (also inside
  ``if``/``try``/``with`` blocks there), without ``if TYPE_CHECKING:`` blocks and without function
  and method bodies (a class body runs at import time and counts).

A cycle is elementary (no module twice). Usage::

    python tools/import_cycles.py [--root autosample_ext] [--json]
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

GRAPHS = ("static", "deferred", "runtime")


@dataclass
class Edge:
    target: str
    typing_only: bool  # inside ``if TYPE_CHECKING:``
    deferred: bool  # inside a function or method body
    line: int


@dataclass
class ModuleInfo:
    name: str
    path: Path
    is_package: bool
    edges: list[Edge] = field(default_factory=list)


def discover(root: Path, extensions: tuple[str, ...] = ()) -> dict[str, ModuleInfo]:
    """Every module of the package at ``root`` (a folder with ``__init__.py``), by dotted name;
    ``extensions``: compiled modules' names relative to ``root`` (``"_C"``), built or not."""
    modules: dict[str, ModuleInfo] = {}
    base = root.parent
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if any(not (base.joinpath(*parts[:i]) / "__init__.py").is_file()
               for i in range(1, len(parts))):
            continue  # a script in a folder that is not a package
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        modules[name] = ModuleInfo(name, path, is_package)
    for path in sorted([*root.rglob("*.so"), *root.rglob("*.pyd")]):
        parts = list(path.relative_to(base).parent.parts) + [path.name.split(".")[0]]
        modules.setdefault(".".join(parts), ModuleInfo(".".join(parts), path, False))
    for name in extensions:
        dotted = f"{root.name}.{name}"
        modules.setdefault(dotted, ModuleInfo(dotted, root / f"{name.replace('.', '/')}.so", False))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _resolve_base(module: ModuleInfo, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(module: ModuleInfo, node: ast.Import | ast.ImportFrom,
             modules: dict[str, ModuleInfo]) -> list[str]:
    """The project modules an import statement binds (nearest existing module of a dotted name)."""
    found: list[str] = []

    def nearest(name: str | None) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    if isinstance(node, ast.Import):
        for alias in node.names:
            target = nearest(alias.name)
            if target:
                found.append(target)
        return found
    base = _resolve_base(module, node)
    if base is None:
        return found
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if sub in modules else nearest(base)
        if target:
            found.append(target)
    return found


def collect_edges(module: ModuleInfo, modules: dict[str, ModuleInfo]) -> None:
    if module.path.suffix != ".py":
        return  # a compiled extension: no Python imports
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))

    def visit(node: ast.AST, typing_only: bool, deferred: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(module, node, modules):
                if target != module.name:
                    module.edges.append(Edge(target, typing_only, deferred, node.lineno))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for child in ast.iter_child_nodes(node):
                visit(child, typing_only, True)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True, deferred)
            for child in node.orelse:
                visit(child, typing_only, deferred)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only, deferred)

    visit(tree, False, False)


def build_graphs(root: Path, extensions: tuple[str, ...] = ("_C",)
                 ) -> tuple[dict[str, ModuleInfo], dict[str, dict[str, set[str]]]]:
    """The modules under ``root`` and the three graphs, as adjacency sets by graph name."""
    modules = discover(root, extensions)
    for module in modules.values():
        collect_edges(module, modules)
    graphs: dict[str, dict[str, set[str]]] = {g: {m: set() for m in modules} for g in GRAPHS}
    for module in modules.values():
        for edge in module.edges:
            graphs["static"][module.name].add(edge.target)
            if not edge.typing_only:
                graphs["deferred"][module.name].add(edge.target)
                if not edge.deferred:
                    graphs["runtime"][module.name].add(edge.target)
    return modules, graphs


def simple_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The elementary cycles of a directed graph, each starting at its smallest node, sorted.

    Each cycle is found from its smallest node s by a depth-first search in the subgraph of the
    nodes >= s (every simple path from s back to s once); fine for a package's few hundred
    edges."""
    cycles: list[list[str]] = []
    nodes = sorted(graph)
    for start in nodes:
        stack: list[tuple[str, list[str]]] = [(start, sorted(n for n in graph[start] if n >= start))]
        path = [start]
        on_path = {start}
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                on_path.discard(node)
                continue
            nxt = todo.pop(0)
            if nxt == start:
                cycles.append(list(path))
            elif nxt not in on_path:
                path.append(nxt)
                on_path.add(nxt)
                stack.append((nxt, sorted(n for n in graph[nxt] if n >= start)))
    return sorted(cycles, key=lambda c: (len(c), c))


def report(root: Path, extensions: tuple[str, ...] = ("_C",)) -> dict[str, object]:
    modules, graphs = build_graphs(root, extensions)
    out: dict[str, object] = {"root": root.name, "modules": len(modules)}
    for name, graph in graphs.items():
        cycles = simple_cycles(graph)
        out[name] = {"edges": sum(len(t) for t in graph.values()), "cycles": len(cycles),
                     "cycle_list": [c + [c[0]] for c in cycles]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent / "autosample_ext"),
                        help="the package folder (default: the repository's autosample_ext)")
    parser.add_argument("--extension", action="append", default=None, metavar="NAME",
                        help="a compiled module of the package, relative to it (repeatable; "
                             "default: _C)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "__init__.py").is_file():
        parser.error(f"--root: {root} is not a package folder (no __init__.py)")
    result = report(root, tuple(args.extension) if args.extension is not None else ("_C",))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['root']}: {result['modules']} modules")
    for name in GRAPHS:
        graph = result[name]
        print(f"{name}: {graph['edges']} edges, {graph['cycles']} cycles")
        for cycle in graph["cycle_list"]:
            print("  " + " -> ".join(m.removeprefix(f"{result['root']}.") for m in cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
