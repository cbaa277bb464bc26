"""The import graph of ``mrdd/``, built from the sources with ``ast``: no cycles, and no
module imports one of a higher layer.

Every import counts, wherever it is written: at module level, inside a function (a lazy
import hides a cycle rather than removing it) and under ``if TYPE_CHECKING:`` (a
dependency all the same). The layers, reading downwards (a module may import its own
layer and the ones below it, never one above; ``scripts/`` sit on top of them all):

======================================  ==================================================
layer                                   modules
======================================  ==================================================
the API                                 ``mrdd`` (the package root), ``api``, ``export``,
                                        ``bench``, ``cli``
training                                ``train``
evaluation                              ``eval``
models                                  ``models``
networks and data                       ``nn``, ``data``
configuration                           ``config``
foundations                             ``errors``, ``version``, ``atomic``
======================================  ==================================================

docs/method.md ("How the code is layered") holds the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrdd"

#: Top layer first; each entry names the top-level modules or subpackages of ``mrdd``.
LAYERS = (
    ("mrdd", "api", "export", "bench", "cli"),
    ("train",),
    ("eval",),
    ("models",),
    ("nn", "data"),
    ("config",),
    ("errors", "version", "atomic"),
)


def package_modules(root: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name → (file, whether it is a package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported_modules(name: str, source: str, is_package: bool, known: set[str]) -> dict[str, int]:
    """The package modules ``source`` (module ``name``) imports, with the line of the first
    import of each; every import statement counts, however deep in the tree it sits.
    ``from a import b`` names the module ``a.b`` when there is one, else ``a``."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, is_package, node.level, node.module)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target in known:
                found.setdefault(target, node.lineno)
    return found


def _absolute(name: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``name``."""
    if level == 0:
        return module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[: len(parts) - level + 1]
    return ".".join([*parts, *([module] if module else [])])


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module → {imported package module: line}."""
    modules = package_modules(root)
    known = set(modules)
    return {
        name: imported_modules(name, path.read_text(), is_package, known)
        for name, (path, is_package) in modules.items()
    }


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of a module's layer (0: the top)."""
    unit = module.split(".")[1] if "." in module else module
    for depth, units in enumerate(LAYERS):
        if unit in units:
            return depth
    raise KeyError(f"{module} belongs to no layer: add {unit!r} to LAYERS (and the docs)")


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """One line per import of a module of a higher layer than the importer's."""
    return [
        f"{importer} (layer {LAYERS[layer_of(importer)]}) imports {target} (layer "
        f"{LAYERS[layer_of(target)]}) at line {line}"
        for importer, targets in sorted(graph.items())
        for target, line in sorted(targets.items())
        if layer_of(target) < layer_of(importer)
    ]


# --- the package ----------------------------------------------------------------------


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_module_imports_a_higher_layer():
    violations = layer_violations(import_graph())
    assert not violations, "\n".join(violations)


def test_every_module_has_a_layer():
    for module in package_modules():
        layer_of(module)  # raises naming the module that has none


def test_the_docs_hold_the_same_layer_table():
    text = (PACKAGE.parent / "docs" / "method.md").read_text()
    section = text.split("## How the code is layered", 1)[1]
    for units in LAYERS:
        assert " ".join(f"`{u}`" for u in units) in section, units


# --- the checker itself -----------------------------------------------------------------


def test_imports_in_functions_and_type_checking_blocks_count():
    source = """
from typing import TYPE_CHECKING
import mrdd.config
from mrdd.data import base
from . import metrics
if TYPE_CHECKING:
    from mrdd.models.mrdd import MRDD

def later():
    from ..train import run
"""
    known = {"mrdd.config", "mrdd.data", "mrdd.data.base", "mrdd.eval.metrics", "mrdd.train.run"}
    known |= {"mrdd.models.mrdd", "mrdd.eval", "mrdd.train", "mrdd.models"}
    found = imported_modules("mrdd.eval.protocol", source, False, known)
    assert found == {
        "mrdd.config": 3,
        "mrdd.data.base": 4,
        "mrdd.eval.metrics": 5,
        "mrdd.models.mrdd": 7,
        "mrdd.train.run": 10,
    }


def test_relative_imports_of_a_package_resolve_from_the_package_itself():
    assert _absolute("mrdd.data", True, 1, "base") == "mrdd.data.base"
    assert _absolute("mrdd.data.base", False, 1, "identity") == "mrdd.data.identity"
    assert _absolute("mrdd.data.base", False, 2, "config") == "mrdd.config"


def test_a_cycle_is_found_and_named_and_a_dag_has_none():
    dag = {"a": {"b": 1, "c": 1}, "b": {"c": 1}, "c": {}}
    assert find_cycle(dag) is None
    assert find_cycle({**dag, "c": {"d": 3}, "d": {"b": 2}}) == ["b", "c", "d", "b"]
    assert find_cycle({"x": {"x": 1}}) == ["x", "x"]


def test_an_upward_import_is_reported_with_its_line():
    graph = {"mrdd.config": {"mrdd.eval.metrics": 395}, "mrdd.eval.metrics": {"mrdd.config": 3}}
    assert layer_violations(graph) == [
        "mrdd.config (layer ('config',)) imports mrdd.eval.metrics (layer ('eval',)) at line 395"
    ]
    with pytest.raises(KeyError, match="add 'plugins' to LAYERS"):
        layer_of("mrdd.plugins.x")
