"""No import circle among cpcframe's core modules (``cpcframe/``, plugins excluded).

Two graphs are read from the source with ``ast`` (nothing is imported):

* the design graph: every ``import`` of a cpcframe module anywhere in a file, at module
  level, inside functions and under ``if TYPE_CHECKING:``. A circle here means two
  modules that can only be understood together (``loading`` <-> ``embedding`` once).
* the import-time graph: the imports that run when a module is imported (module level,
  not under ``TYPE_CHECKING``), plus the packages an import enters: importing
  ``cpcframe.runs.atomic`` from ``cpcframe.data`` first runs ``cpcframe/runs/__init__.py``.
  A circle here is a partially initialised module at run time (``cpcframe.runs`` eagerly
  importing ``loading`` -> ``build`` -> ``data`` -> ``cpcframe.runs``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from testpaths import ROOT

CORE = ROOT / "cpcframe"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> list[str]:
    """The cpcframe modules an import statement names (a ``from`` import of a submodule
    names the submodule, of anything else the module it comes from)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        # ``import a.b.c`` imports a, a.b and a.b.c; the deepest known one stands for them.
        return [max((m for m in MODULES if n == m or n.startswith(m + ".")), key=len, default="")
                for n in names]
    if node.level:  # relative: from the importer's package
        package = importer.split(".")
        is_package = MODULES[importer].name == "__init__.py"
        base = package[: len(package) - node.level + (1 if is_package else 0)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        found.append(sub if sub in MODULES else source)
    return found


def imports(name: str) -> list[tuple[str, bool]]:
    """``(target, runs_at_import_time)`` for every cpcframe import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_import_time = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import_time)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(node, name):
                if target in MODULES and target != name:
                    found.append((target, at_import_time))
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time)

    visit(tree, True)
    return found


def packages_entered(importer: str, target: str) -> list[str]:
    """Packages whose ``__init__`` runs before ``target``: its ancestors that are not
    ancestors of the importer (those are initialised, or initialising, already)."""
    parts = target.split(".")
    ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
    own = importer.split(".")
    mine = {".".join(own[:i]) for i in range(1, len(own) + 1)}
    return [a for a in ancestors if a not in mine and a in MODULES]


def design_graph() -> dict[str, set[str]]:
    return {name: {t for t, _ in imports(name)} for name in MODULES}


def import_time_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        edges: set[str] = set()
        for target, at_import_time in imports(name):
            if at_import_time:
                edges.add(target)
                edges.update(packages_entered(name, target))
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("graph", [design_graph, import_time_graph], ids=["design", "import-time"])
def test_core_modules_import_no_circle(graph):
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_finds_circles_and_reads_every_kind_of_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    edges = dict(imports("cpcframe.runs.loading"))
    assert edges["cpcframe.build"] is True  # module level
    assert "cpcframe.runs.embedding" in edges
    top = imports("cpcframe")
    assert ("cpcframe.runs.loading", False) in top  # inside load()
    assert packages_entered("cpcframe.data.cache_dir", "cpcframe.runs.atomic") == ["cpcframe.runs"]
    assert packages_entered("cpcframe.runs", "cpcframe.runs.atomic") == []


def test_loading_and_embedding_do_not_import_each_other_either_way_round():
    graph = design_graph()
    assert "cpcframe.runs.loading" not in graph["cpcframe.runs.embedding"]
