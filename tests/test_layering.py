"""The import structure of src/ganscape: floors, no cycles, metrics apart from training.

The graph is read from the sources with ``ast`` (nothing is imported), module-level and function-level
imports alike, so a failure lists every violation at once with its file and line.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "ganscape"

# The floors of docs/ARCHITECTURE.md: a module imports from its own floor or below, never from above.
FLOORS = {
    "errors": 1, "jsonio": 1, "plots": 1, "store": 1,
    "config": 2, "data": 2, "nets": 2, "objectives": 2,
    "metrics": 3, "training": 3,
    "runs": 4, "hub": 4, "importers": 4,
    "study": 5, "campaign": 5, "dynamics": 5, "claims": 5,
    "cli": 6, "__main__": 6,
    ROOT: 6,  # the package's own __init__: the Python API (ganscape.train, ganscape.load_generator, ...)
}

# Imports between two parts of one floor that are still forbidden: metrics are computed without training.
FORBIDDEN_SAME_FLOOR = {("metrics", "training"): "metrics/ must not import training/"}

# Imports up a floor that only read a registry, each inside a function (lazily), never at module level:
# (importing part, imported module) -> why. Such an import may not form a cycle either way: it is left out of
# the graph the cycle checks walk.
REGISTRY_READS = {
    # The config schema lists each key's valid choices by reading, when it validates, the tables that own them.
    ("config", "ganscape.metrics"): "metric names: the METRICS registry",
    ("config", "ganscape.training.optim"): "optimizer names: the OPTIMIZERS table",
    ("config", "ganscape.training.speed"): "train.precision and train.compile: the PRECISIONS and COMPILERS tables",
}


@dataclass(frozen=True)
class Edge:
    """One import statement's dependency of ``source`` on ``target`` (both dotted module names)."""

    source: str
    target: str
    file: str
    line: int
    lazy: bool  # inside a function (or method): runs when called, not when the module is imported

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / ROOT).rglob("*.py"))}


def part_of(module: str) -> str:
    """The floor table's key of a module: its top-level package or module under ganscape, or the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of ours (``ganscape.a.b.func`` -> ``ganscape.a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The modules of ours that one import statement depends on."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: strip one package level per dot (the module itself first, unless a package)
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself.
        names = [f"{base}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        if name.split(".")[0] != ROOT:
            continue
        target = _resolve(name, modules)
        if target is not None and target not in found:
            found.append(target)
    return found


def _imports(tree: ast.AST, lazy: bool = False):
    """(import node, lazy) for every import, descending into functions (lazy) and classes and blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, lazy
        else:
            inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from _imports(node, inner)


def import_edges() -> list[Edge]:
    modules = all_modules()
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = str(path.relative_to(SRC.parent))
        for node, lazy in _imports(tree):
            for target in _targets(node, module, path.name == "__init__.py", modules):
                if target != module:
                    edges.append(Edge(module, target, where, node.lineno, lazy))
    return edges


def is_registry_read(edge: Edge) -> bool:
    return edge.lazy and any(part_of(edge.source) == part and (edge.target == target or
                                                               edge.target.startswith(target + "."))
                             for part, target in REGISTRY_READS)


def cycle_edges(edges: list[Edge]) -> list[list[Edge]]:
    """For each import cycle (a strongly connected set of modules), the edges inside it.

    Edges into the root package are left out: Python runs ``ganscape/__init__.py`` before any submodule
    whatever imports it, so naming it (e.g. for ``__version__``) adds no dependency. Registry reads too.
    """
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if edge.target != ROOT and not is_registry_read(edge):
            graph.setdefault(edge.source, set()).add(edge.target)
    components = _strongly_connected(graph)
    cycles = []
    for component in components:
        if len(component) > 1:
            inside = [e for e in edges if e.source in component and e.target in component and not is_registry_read(e)]
            cycles.append(sorted(inside, key=lambda e: (e.file, e.line)))
    return cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], 0
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def describe(edge: Edge) -> str:
    kind = "in a function" if edge.lazy else "at module level"
    return (f"{edge.where()}: {edge.source} (floor {FLOORS.get(part_of(edge.source))}) imports {edge.target} "
            f"(floor {FLOORS.get(part_of(edge.target))}) {kind}")


def floor_violations(edges: list[Edge]) -> list[str]:
    found = []
    for edge in edges:
        source, target = part_of(edge.source), part_of(edge.target)
        if target == ROOT or source == target or source not in FLOORS or target not in FLOORS:
            continue
        if FLOORS[target] > FLOORS[source] and not is_registry_read(edge):
            found.append(describe(edge))
        elif (source, target) in FORBIDDEN_SAME_FLOOR:
            found.append(f"{describe(edge)}: {FORBIDDEN_SAME_FLOOR[(source, target)]}")
    return found


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges()


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "src" / ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_graph_reader_sees_both_kinds_of_import(tmp_path, monkeypatch):
    """A hand-made package: a top-level import, a relative one, one inside a function and a module importing
    itself (no edge), each found with its line, and the two-module cycle they form (the independent answer is
    written out by hand)."""
    _package(tmp_path, {"__init__.py": "",
                        "sub/__init__.py": "VERSION = 1\n\n\ndef version():\n    from ganscape.sub import VERSION\n",
                        "errors.py": "import os\n\n\ndef f():\n    if os:\n        from ganscape.sub import b\n",
                        "sub/b.py": "from ..errors import f\nfrom ganscape import errors\nimport ganscape\n"})
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    found = sorted((e.source, e.target, e.line, e.lazy) for e in import_edges())
    assert found == [("ganscape.errors", "ganscape.sub.b", 6, True),  # in a block of a function: lazy too
                     ("ganscape.sub.b", "ganscape", 3, False),
                     ("ganscape.sub.b", "ganscape.errors", 1, False),
                     ("ganscape.sub.b", "ganscape.errors", 2, False)]
    assert [sorted({e.source for e in cycle}) for cycle in cycle_edges(import_edges())] == \
           [["ganscape.errors", "ganscape.sub.b"]]
    assert cycle_edges([e for e in import_edges() if not e.lazy]) == []  # module level only: no cycle


def test_the_floor_rules_on_a_hand_made_package(tmp_path, monkeypatch):
    """Which imports break the rules, by hand: up a floor (lazily or not), metrics into training, and a
    registry read at module level; a lazy registry read, a downward import and one within a part are fine."""
    _package(tmp_path, {
        "__init__.py": "", "hub.py": "from ganscape.errors import GanscapeError\n",
        "errors.py": "def f():\n    import ganscape.hub\n",
        "metrics/__init__.py": "from ganscape.metrics.fid import F\n", "metrics/fid.py": "import ganscape.training\n",
        "training/__init__.py": "",
        "config/__init__.py": "def names():\n    from ganscape.metrics import METRICS\n",
        "config/schema.py": "from ganscape.metrics import METRICS\n"})
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    found = floor_violations(import_edges())
    assert [line.split(": ")[0] for line in found] == [
        "src/ganscape/config/schema.py:1", "src/ganscape/errors.py:2", "src/ganscape/metrics/fid.py:1"]
    assert "metrics/ must not import training/" in found[2] and "in a function" in found[1]


def test_every_part_has_a_floor():
    parts = sorted({part_of(module) for module in all_modules()} - set(FLOORS))
    assert parts == [], f"give these parts of ganscape a floor in FLOORS (and in docs/ARCHITECTURE.md): {parts}"


def test_no_import_cycles_at_module_level(edges):
    cycles = cycle_edges([e for e in edges if not e.lazy])
    report = "\n\n".join("\n".join(describe(e) for e in cycle) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycles at module level:\n{report}"


def test_no_import_cycles_counting_imports_inside_functions(edges):
    cycles = cycle_edges(edges)
    report = "\n\n".join("\n".join(describe(e) for e in cycle) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycles (imports inside functions included):\n{report}"


def test_no_import_up_a_floor(edges):
    found = floor_violations(edges)
    assert not found, f"{len(found)} imports up a floor or across a forbidden line:\n" + "\n".join(found)
