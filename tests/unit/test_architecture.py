"""The shape of the code: no import cycles, small modules, a shim that only translates."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "controller"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports, at any depth of the file (deferred imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def import_graph() -> nx.DiGraph:
    modules = _modules()
    known = set(modules)
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path, known):
            if target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    return graph


def test_no_import_cycle_among_controller_modules() -> None:
    graph = import_graph()
    assert graph.number_of_edges() > 100  # the graph really was read
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_no_module_over_500_lines() -> None:
    sizes = {name: len(p.read_text().splitlines()) for name, p in _modules().items()}
    assert len(sizes) > 50
    too_big = {n: s for n, s in sizes.items() if s > MAX_LINES}
    assert too_big == {}


def test_every_module_says_its_role() -> None:
    missing = [
        name
        for name, path in _modules().items()
        if path.name != "__init__.py" and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def test_the_shim_only_translates() -> None:
    """The OpenFlow shim imports nothing that decides (cookies, policies, flows, placement),
    and no branch in it looks at a cookie, a policy or a flow."""
    shim = PACKAGE / "southbound" / "ofapp.py"
    tree = ast.parse(shim.read_text())
    imported = _imports(shim, set(_modules()))
    assert imported <= {
        "controller.southbound",
        "controller.southbound.ofmsg",
        "controller.southbound.framework",
        "controller.southbound.collector",
    }, imported
    words = ("cookie", "policy", "flow_id", "Cookie", "placer", "te.", "strategy")
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.IfExp | ast.While | ast.match_case):
            test = node.pattern if isinstance(node, ast.match_case) else node.test
            text = ast.unparse(test)
            assert not any(w in text for w in words), f"the shim decides on {text!r}"
