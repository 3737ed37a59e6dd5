"""Imports between backend modules point one way: no module cycles (issue 22).

The test reads every module under ``backend/`` with ``ast`` (nothing is imported), including the
imports written inside functions, and builds the graph "module A imports module B". Importing
``a.b.c`` also runs the packages ``a`` and ``a.b``, so those count as imported too (except a module's
own packages, which always run before it). Imports under ``if TYPE_CHECKING:`` never run and are left
out; so are modules named only at run time (``importlib.import_module`` in ``backend/parser.py``).
Each strongly connected group of modules is a cycle: the test fails naming one concrete cycle per
group.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BACKEND = REPO_ROOT / "backend"

Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    """``backend/io/atomic.py`` -> ``backend.io.atomic``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def backend_modules() -> dict[str, Path]:
    """Every module under ``backend/`` by dotted name."""
    return {module_name(path): path for path in sorted(BACKEND.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks (their ``else`` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = (BACKEND.parent / Path(*package) / "__init__.py").is_file()
    base = package if is_package else package[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The backend modules that running ``path`` may import (at module level or inside functions)."""
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            targets.add(source)
            targets.update(f"{source}.{alias.name}" for alias in node.names)
    own_packages = set(_with_parents(module))
    return {parent for target in targets for parent in _with_parents(target)
            if parent in known and parent not in own_packages}


def import_graph() -> Graph:
    """Module -> the backend modules it imports."""
    modules = backend_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def strongly_connected(graph: Graph) -> list[frozenset[str]]:
    """Groups of two or more modules that all reach each other (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(frozenset(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def shortest_cycle(graph: Graph, group: frozenset[str]) -> list[str]:
    """One shortest cycle inside ``group``, from its first module (by name) back to it."""
    start = min(group)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & group):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{sorted(group)} is not a cycle")


def describe(graph: Graph, group: frozenset[str]) -> str:
    """``a -> b -> a`` and, for bigger groups, every module in it."""
    line = " -> ".join(shortest_cycle(graph, group))
    if len(group) > len(shortest_cycle(graph, group)) - 1:
        line += f"  (group of {len(group)}: {', '.join(sorted(group))})"
    return line


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING
        from .atomic import atomic_path
        if TYPE_CHECKING:
            from backend.cli import main
        def later():
            from backend.contract import bands
            import backend.io.vrt
    """), encoding="utf-8")
    found = imported_modules("backend.io.probe", source, set(backend_modules()))
    assert found == {"backend.io.atomic", "backend.contract", "backend.contract.bands", "backend.io.vrt"}
    assert "backend.remote.client" in import_graph()["backend.cli"]  # imported inside main()


def test_no_import_cycles_between_backend_modules() -> None:
    graph = import_graph()
    cycles = [describe(graph, group) for group in strongly_connected(graph)]
    assert not cycles, "import cycles between backend modules:\n" + "\n".join(cycles)
