"""The dependency rule of ``sealring.server`` (docs/architecture.md, "Inside the server").

Read from the source with :mod:`ast`, so imports under ``TYPE_CHECKING`` and inside functions
count too: a cycle that only the type checker sees is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sealring.server

ROOT = Path(sealring.server.__file__).parent
FRAMEWORKS = ("starlette", "sqlalchemy", "httpx")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            found.add(node.module)
            # ``from sealring.server.grants import client_credentials`` imports a module too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


GRAPH: dict[str, set[str]] = {
    _module_name(path): _imports(path) for path in sorted(ROOT.rglob("*.py"))
}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _importers_of(package: str) -> set[str]:
    return {
        module
        for module, imports in GRAPH.items()
        if not _in(module, package) and any(_in(name, package) for name in imports)
    }


def test_the_graph_is_read() -> None:
    # Guards the checks below against passing on an empty or misread graph.
    assert "sealring.server.endpoints.token" in GRAPH
    assert "sealring.server.endpoints" in GRAPH["sealring.server.app"]
    assert "sealring.server.grants.client_credentials" in GRAPH["sealring.server.grants"]


def test_only_the_app_imports_the_endpoints() -> None:
    assert _importers_of("sealring.server.endpoints") == {"sealring.server.app"}


@pytest.mark.parametrize("package", ["protocol", "tokens", "grants"])
def test_rules_and_tokens_know_no_framework_database_or_http_client(package: str) -> None:
    offenders = {
        module: sorted(n for n in imports if n.split(".")[0] in FRAMEWORKS)
        for module, imports in GRAPH.items()
        if _in(module, f"sealring.server.{package}")
    }
    assert {m: names for m, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("protocol", {"protocol", "clients", "errors"}),
        ("tokens", {"tokens"}),
        ("grants", {"grants", "protocol", "tokens", "clients", "errors"}),
        ("stores", {"stores", "clients", "accounts", "tokens", "errors"}),
        ("http", {"http", "context", "errors", "logging", "metrics", "routes"}),
    ],
)
def test_layers_import_only_what_is_below_them(package: str, allowed: set[str]) -> None:
    prefix = "sealring.server."
    used = {
        name[len(prefix) :].split(".")[0]
        for module, imports in GRAPH.items()
        if _in(module, prefix + package)
        for name in imports
        if name.startswith(prefix)
    }
    assert used <= allowed, sorted(used - allowed)


def test_context_and_routes_import_no_endpoint_and_routes_nothing_of_the_server() -> None:
    assert not any(_in(n, "sealring.server.endpoints") for n in GRAPH["sealring.server.context"])
    assert not any(_in(n, "sealring.server") for n in GRAPH["sealring.server.routes"])


def test_no_import_cycles() -> None:
    server = {m: {n for n in names if n in GRAPH and n != m} for m, names in GRAPH.items()}
    # A package's __init__ importing its own modules is how a package is assembled, not a cycle.
    edges = {
        m: {n for n in names if not (_in(n, m) and GRAPH.get(m) is not None)}
        for m, names in server.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for name in sorted(edges[module]):
            if state.get(name) == 1:
                cycle = [*stack[stack.index(name) :], name]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if name not in state:
                visit(name)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
