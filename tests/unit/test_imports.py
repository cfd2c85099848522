"""Every module of the magsit package imports on its own, and the import graph has no cycles.

A cycle shows up only for some import orders ("partially initialized module"): the CLI imports
every command first and hides it, a test or a plugin importing one module alone meets it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import magsit

PACKAGE_DIR = Path(magsit.__file__).parent


def all_modules() -> dict[str, Path]:
    """Dotted name -> source file, for every module and package in magsit."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = all_modules()

# Imports each module in a magsit-free interpreter state (every magsit entry dropped from
# sys.modules before the next one), so each import runs as if it were the first. One interpreter
# for all of them: a fresh process per module would cost ~75 interpreter starts.
_IMPORT_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "magsit" or m.startswith("magsit.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own():
    assert "magsit.commands.stock" in MODULES and "magsit.cli" in MODULES
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *MODULES], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"modules that do not import on their own:\n{done.stdout}{done.stderr}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: module level, also inside top-level
    if/try/with blocks, but not under ``if TYPE_CHECKING:`` and not inside functions or classes'
    methods (those run later, when the module is complete)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _top_level_imports(node.body)
            found += _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _top_level_imports(block)
        elif isinstance(node, ast.With):
            found += _top_level_imports(node.body)
        elif isinstance(node, ast.ClassDef):
            found += _top_level_imports(node.body)  # a class body runs at import time
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The magsit modules an import statement loads (a module's parent packages load first, but
    an edge to a package's own ancestors is no cycle risk while the __init__ files stay empty)."""
    is_package = MODULES[module].name == "__init__.py"
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names = {base}
        # `from magsit.sync import stock` loads the submodule magsit.sync.stock
        names |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    return {name for name in names if name in MODULES}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in _top_level_imports(tree.body):
            edges |= _targets(module, node)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_find_cycles_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_submodule_imports_are_edges():
    node = ast.parse("from magsit.sync import stock").body[0]
    assert _targets("magsit.commands.stock", node) == {"magsit.sync", "magsit.sync.stock"}  # type: ignore[arg-type]
    node = ast.parse("from .store import StateStore").body[0]
    assert _targets("magsit.state.lock", node) == {"magsit.state.store"}  # type: ignore[arg-type]
    tree = ast.parse("import os\nif TYPE_CHECKING:\n    import magsit.cli\ndef f():\n    import magsit.cli\n")
    assert _top_level_imports(tree.body)[0].names[0].name == "os"  # type: ignore[union-attr]
    assert len(_top_level_imports(tree.body)) == 1


def test_import_graph_has_no_cycles():
    graph = import_graph()
    assert "magsit.app" in graph["magsit.commands.stock"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (modules importing each other at import time):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )
