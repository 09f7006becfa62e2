"""No import cycles in ``src/gristmill``.

The graph is built from the source with :mod:`ast`, without importing anything. An edge
``a -> b`` is any ``import`` or ``from ... import`` of module ``b`` in module ``a``:

* at module level **and inside functions and methods** (a deferred import is still an
  arrow between two modules: ``rundir.py`` importing ``report/rundir.py`` inside
  ``finish()`` while ``report/rundir.py`` imports ``rundir.py`` at the top is a cycle
  of design, even though Python resolves it at run time);
* except imports under ``if TYPE_CHECKING:``, which never run;
* ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
* importing ``a.b.c`` also runs the ``__init__`` of the packages ``a.b`` and ``a``, so it
  adds edges to those packages too, unless the importer lives inside them (a package's own
  modules are imported through it; ``pkg/__init__.py`` re-exporting ``pkg.mod`` is not a
  cycle).

A failure prints every cycle found (one strongly connected component each, with one
closed path through it), e.g. ``gristmill.audit.audit -> gristmill.audit.card ->
gristmill.audit.audit``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "gristmill"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(added: dict[str, str] | None = None) -> dict[str, set[str]]:
    """``module -> modules it imports`` within the package (see the module doc for the rules); ``added``:
    source text appended to some modules (for tests of the test)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        source = path.read_text(encoding="utf-8") + "\n" + (added or {}).get(name, "")
        for node in _imports(ast.parse(source, str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
                continue
            base = _resolve(node, name, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in mods else base)
        own = set(_ancestors(name)) | ({name} if is_package else set())
        for t in list(targets):
            targets.update(a for a in _ancestors(t) if a not in own)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0

    def visit(v: str) -> None:  # recursive: import chains are far shorter than the recursion limit
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path through each strongly connected component of more than one module."""
    return [_closed_path(graph, comp) for comp in components(graph)]


def _closed_path(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself (breadth first)."""
    start = min(comp)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


def _describe(graph: dict[str, set[str]]) -> str:
    found = components(graph)
    lines = [f"{len(found)} import cycle(s) in src/{PACKAGE}:"]
    for comp in found:
        path = _closed_path(graph, comp)
        more = sorted(comp - set(path))
        lines.append("  " + " -> ".join(path) + (f"   (with {', '.join(more)})" if more else ""))
    return "\n".join(lines)


def test_the_graph_sees_function_level_imports_and_skips_type_checking() -> None:
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\n\ndef f():\n    from c import d\n")
    found = []
    for node in _imports(tree):
        found += [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
    assert sorted(found) == ["a", "c"]


def test_cycle_finder_reports_a_closed_path() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles(graph) == [["p.a", "p.b", "p.c", "p.a"]]
    assert cycles({"p.a": {"p.b"}, "p.b": set()}) == []


def test_relative_imports_resolve() -> None:
    node = ast.parse("from ..x import y").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve(node, "gristmill.pkg.mod", False) == "gristmill.x"
    assert _resolve(node, "gristmill.pkg", True) == "gristmill.x"


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the package was found
    found = components(graph)
    assert not found, _describe(graph)


def test_the_issue_cycles_would_be_caught() -> None:
    """Issue 17's two cycles each ran through an import inside a function; put the other half back and the
    graph has the cycle again."""
    old_report_rundir = "from gristmill.rundir import read_metrics\n"  # rundir.finish() imports report.rundir
    graph = import_graph({"gristmill.report.rundir": old_report_rundir})
    assert {"gristmill.rundir", "gristmill.report.rundir"} in components(graph)
    old_write_audit = "def write_audit(run_dir):\n    from gristmill.audit.card import write_card\n"
    graph = import_graph({"gristmill.audit.audit": old_write_audit})  # card.py imports audit.py at the top
    assert any({"gristmill.audit.audit", "gristmill.audit.card"} <= c for c in components(graph))
