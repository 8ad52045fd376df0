"""The package's shape: imports flow one way, down the README's Architecture list (no cycles, no
import of a module listed higher), and nothing below the CLI imports it.

The import graph is read from the source with ``ast`` (nothing is imported), so a cycle or an
upward import fails here before it fails someone's ``import``. The order is the README's own list,
read from it, so the picture a newcomer reads and the rule the tests enforce are one.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "latentdirs"


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
    assert "latentdirs.directions" in graph["latentdirs.discovery.train"]
    assert "latentdirs.discovery.train" in graph["latentdirs.discovery"]  # the package re-exports its modules
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


def architecture_order(readme: str) -> list[list[str]]:
    """The README's Architecture list, top first: each entry's module prefixes (``cli/`` -> latentdirs.cli,
    ``gan/train.py`` -> latentdirs.gan.train, ``data/, gan/`` -> two prefixes of one entry)."""
    section = readme.split("## Architecture", 1)[1]
    block = section.split("```", 2)[1]
    entries = []
    for line in block.splitlines():
        match = re.match(r"^  (\S+(?:, \S+)*)(?:\s{2,}|$)", line)  # an entry; descriptions are indented deeper
        if match:
            entries.append(["latentdirs." + name.rstrip("/").removesuffix(".py").replace("/", ".")
                            for name in match.group(1).split(", ")])
    return entries


ORDER = architecture_order((ROOT / "README.md").read_text())


def rank(module: str) -> int | None:
    """Position in the README's list of the most specific entry that holds ``module``."""
    best = None
    for position, prefixes in enumerate(ORDER):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), position)
    return None if best is None else best[1]


def test_the_readme_order_is_read():
    assert ORDER[0] == ["latentdirs.cli"] and ["latentdirs.data", "latentdirs.gan"] in ORDER
    assert rank("latentdirs.gan.train") < rank("latentdirs.render") < rank("latentdirs.gan.networks")
    assert rank("latentdirs.evaluation.rca") == rank("latentdirs.evaluation")


def test_every_module_is_in_the_readme_architecture():
    # the package __init__ re-exports the API: it sits above the list, as the CLI's users see it
    missing = sorted(m for m in MODULES if m != "latentdirs" and rank(m) is None)
    assert missing == [], "add these to README.md's Architecture list"


def test_imports_flow_down_the_readme_list():
    # Every import counts, also one inside a function: it is still a dependency, only a later one.
    upward = sorted(f"{m} imports {t}" for m in MODULES if m != "latentdirs" and rank(m) is not None
                    for t in imports(m, top_level_only=False) if t != "latentdirs" and rank(t) is not None
                    and rank(t) < rank(m))
    assert upward == [], "an import of a module listed higher in README.md's Architecture: move the code, " \
                         "or move the entry if the dependency is legitimate"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
