"""The package layout holds: every module imports, no import circles, the sides stay apart.

- Every module of ``datacenter``, ``edge_agent`` and ``shared`` imports (a module that fails on
  its own, e.g. through a circle entered from the wrong end, fails here).
- The module-level imports of ``datacenter`` (those that run at import time: not inside a
  function or under ``if TYPE_CHECKING:``) form no circle.
- ``datacenter`` never imports ``edge_agent`` and vice versa; ``shared`` imports neither.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("datacenter", "edge_agent", "shared")
# Imported by a tool, not by us: Alembic runs env.py and the migration scripts with its context;
# the WSGI module builds the app from the configured store at import time.
NOT_IMPORTABLE_ALONE = ("datacenter.store.migrations", "datacenter.web.wsgi")
FORBIDDEN = {
    "datacenter": ("edge_agent",),
    "edge_agent": ("datacenter",),
    "shared": ("datacenter", "edge_agent"),
}


def _module_files(package: str) -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of ``package``, packages as their ``__init__``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _importable_modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.startswith(NOT_IMPORTABLE_ALONE):
                names.append(info.name)
    return names


@pytest.mark.parametrize("module", _importable_modules())
def test_every_module_imports(module: str) -> None:
    assert importlib.import_module(module).__name__ == module


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Modules named by the imports that run when ``module`` is imported."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield from _from_targets(node, module, is_package)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)


def _from_targets(node: ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    if node.level:
        base = module.split(".")
        keep = len(base) - node.level + (1 if is_package else 0)
        prefix = ".".join(base[:keep])
        source = f"{prefix}.{node.module}" if node.module else prefix
    else:
        source = node.module or ""
    yield source
    for alias in node.names:  # `from pkg import module` imports the module too
        yield f"{source}.{alias.name}"


def _graph(package: str) -> dict[str, set[str]]:
    files = dict(_module_files(package))
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = _import_time_imports(tree, module, path.name == "__init__.py")
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_datacenter_has_no_import_circle() -> None:
    graph = _graph("datacenter")
    assert "datacenter.ingest.worker" in graph["datacenter.commands.ingest"]  # the graph is real
    assert _circles(graph) == []


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_the_sides_stay_apart(package: str) -> None:
    offenders = {
        module: sorted(_imported_roots(path) & set(FORBIDDEN[package]))
        for module, path in _module_files(package)
    }
    assert {m: roots for m, roots in offenders.items() if roots} == {}
