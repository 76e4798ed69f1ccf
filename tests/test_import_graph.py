"""The layers' arrows point down only, and no module imports itself back (docs/ARCHITECTURE.md).

Every import counts: module level, inside functions and under ``TYPE_CHECKING`` alike, since a
lazy import still ties the layers together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Each package may import only the packages listed for it (besides itself and third parties).
ALLOWED: dict[str, set[str]] = {
    "audits": set(),
    "explain": {"audits"},
    "fixtures": {"audits", "explain"},
    "reports": {"audits", "explain"},
    "dashboard": {"audits", "explain", "reports"},
    "auditapp": {"audits", "explain", "reports", "fixtures"},
    "bench": {"audits", "explain", "reports", "dashboard", "fixtures", "auditapp"},
}
PACKAGES = set(ALLOWED)
#: ``python -m audits`` has to start the application; it is an entry point, not a module
#: that anything imports.
ENTRY_POINTS = {"audits.__main__"}
#: ``audits/__init__.py`` is the public Python API's facade (``from audits import audit``): it
#: reaches ``auditapp.api`` lazily, on first use of an API name. It is exempt from the layering
#: like an entry point, and no module of ours may import it (``test_nothing_imports_the_facade``).
FACADES = {"audits"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Internal modules that ``name`` imports (``from pkg import sub`` resolves to ``pkg.sub``)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            # The longest known module that the target names.
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts:
                out.add(".".join(parts))
    out.discard(name)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_the_graph_sees_the_layers(graph: dict[str, set[str]]) -> None:
    assert "audits.metrics" in graph and "auditapp.cli" in graph
    assert "audits.store" in graph["auditapp.pipeline.audit"]
    assert "explain.stage" in graph["auditapp.pipeline.audit"]  # a lazy import is seen too


def test_arrows_point_down_only(graph: dict[str, set[str]]) -> None:
    wrong = []
    for module, targets in sorted(graph.items()):
        if module in ENTRY_POINTS or module in FACADES:
            continue
        package = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and other not in ALLOWED[package]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # ``from audits import formatting`` names the package too; the facade's own edge up to
    # the application is taken only for an API name, which no module uses (test below).
    graph = {m: set() if m in FACADES else targets for m, targets in graph.items()}
    # Tarjan's strongly connected components, iteratively; a component of two or more
    # modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    cycles.append(sorted(component))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_nothing_imports_the_facade(graph: dict[str, set[str]]) -> None:
    """No module of ours takes an API name from the facade (``from audits import audit``)."""
    import audits

    assert "auditapp.api" in graph["audits"]  # the facade's lazy import is seen
    api = set(audits._API)
    users = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "audits" and not node.level:
                users += [f"{name}: {a.name}" for a in node.names if a.name in api]
    assert not users, "modules importing the API facade (import from auditapp.api): " + ", ".join(
        users
    )
