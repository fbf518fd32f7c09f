"""The layout's rules, checked on the source: no import cycles, drivers only in storage, no hidden imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "agentdash"
DRIVERS = ("sqlite3", "duckdb", "psycopg")
# Imports inside functions, each for a stated reason (see their modules): start-up time of the light CLI commands
# and of serve's ingest port (the dashboard's NiceGUI is imported once that port answers),
# and optional database drivers that only their backend needs.
LAZY_IMPORTERS = {"agentdash.cli", "agentdash.storage"}


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


MODULES = _modules()


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    submodules = [f"{node.module}.{alias.name}" for alias in node.names]
    # `from pkg import submodule` needs the submodule, not the package's __init__
    return submodules if all(s in MODULES for s in submodules) else [node.module or "", *submodules]


def _imports(tree: ast.Module, top_level: bool) -> list[str]:
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and (id(node) in top) == top_level:
            found += _imported(node)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imports(tree, top_level=True) if m in MODULES and m != name}
            for name, tree in MODULES.items()}  # fmt: skip


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_storage_imports_a_database_driver(name):
    drivers = [m for m in _imports(MODULES[name], True) + _imports(MODULES[name], False) if m.split(".")[0] in DRIVERS]
    if not name.startswith("agentdash.storage"):
        assert drivers == [], f"{name} imports {drivers}"


@pytest.mark.parametrize("name", sorted(set(MODULES) - LAZY_IMPORTERS))
def test_no_imports_hidden_inside_functions(name):
    hidden = [m for m in _imports(MODULES[name], top_level=False) if m.startswith("agentdash")]
    assert hidden == [], f"{name} imports {hidden} inside a function"


def test_at_most_ten_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
