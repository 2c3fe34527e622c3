"""edgeunet's import graph has no cycle: module-level and function-level imports alike.

Each module's imports (``import x``, ``from . import y``, ``from .x import y``, at any depth of its
code) are edges; ``from . import x`` also counts an edge to the package, so a package ``__init__``
that imports submodules which ``from . import`` each other is a cycle too. Strongly connected
components of more than one module are the cycles (Tarjan's algorithm).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgeunet"


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``root`` (a package is its ``__init__``)."""
    modules = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _targets(node: ast.AST, package: str, modules: dict[str, Path]) -> list[str]:
    """The modules an import statement names (and, for ``from m import x``, ``m.x`` when it is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules]


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the edgeunet modules it imports anywhere in its code."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            graph[name].update(t for t in _targets(node, package, modules) if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, largest first (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return sorted(found, key=len, reverse=True)


def test_the_cycle_finder_finds_a_cycle_through_a_package_init(tmp_path):
    package = tmp_path / "edgeunet"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("from .a import f\n")
    (package / "data" / "a.py").write_text("def f():\n    from . import b\n")
    (package / "data" / "b.py").write_text("import os\n")
    (package / "lone.py").write_text("from .data import b\n")
    graph = import_graph(package)
    assert graph["edgeunet.data.a"] == {"edgeunet.data", "edgeunet.data.b"}
    assert cycles(graph) == [["edgeunet.data", "edgeunet.data.a"]]


def test_edgeunet_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(component) for component in found)
