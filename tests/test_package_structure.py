"""The package's shape: imports flow one way (no cycles) and nothing below the CLI imports it.

The import graph is read from the source with ``ast`` (nothing is imported), so a cycle or an
upward import fails here before it fails someone's ``import``.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "latentdirs"


def _module_name(path: Path) -> str:
    parts = ("latentdirs",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """Package modules named by one import statement (``from .x import y`` -> latentdirs.x.y if a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "latentdirs"]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "latentdirs":
        return []
    found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    return found or [target]


def imports(module: str, top_level_only: bool) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(t for t in _resolve(module, node, path.name == "__init__.py") if t in MODULES)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected part with more than one module (Tarjan)."""
    index, low, stack, on_stack, parts = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return parts


def test_the_import_graph_is_read():
    graph = {m: imports(m, top_level_only=True) for m in MODULES}
    assert "latentdirs.directions" in graph["latentdirs.discovery"]
    assert "latentdirs.cli.options" in graph["latentdirs.cli.discover"]
    assert "latentdirs.generators.base" in graph["latentdirs.evaluation.compare"]


def test_module_level_imports_have_no_cycle():
    # The package __init__ re-exports the API, so every edge into it would be a cycle by construction:
    # modules below it must not import it at module level, and it is left out of the graph.
    graph = {m: imports(m, top_level_only=True) - {"latentdirs"} for m in MODULES if m != "latentdirs"}
    assert _cycles(graph) == []


def test_no_module_outside_the_cli_imports_it():
    upward = {m: sorted(t for t in imports(m, top_level_only=False) if t.startswith("latentdirs.cli"))
              for m in MODULES if not m.startswith("latentdirs.cli")}
    assert {m: t for m, t in upward.items() if t} == {}


@pytest.mark.parametrize("extra_module", ["flask", "werkzeug", "playwright", "tensorboard"])
def test_no_extra_is_imported_at_module_level_where_the_cli_reaches(extra_module):
    # The base install has none of these: the CLI and everything it imports at module level must not need them.
    reached, todo = set(), ["latentdirs.cli"] + [m for m in MODULES if m.startswith("latentdirs.cli.")]
    while todo:
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            todo += imports(m, top_level_only=True)
    offenders = []
    for m in reached:
        for node in ast.parse(MODULES[m].read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] == extra_module for n in names):
                offenders.append(m)
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
