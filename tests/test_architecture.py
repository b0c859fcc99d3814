"""Dependencies point one way (DESIGN.md, "Packages"): checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["ledger", "projector", "api", "client", "infra_config", "ops", "rollout"]
IO_LIBRARIES = {"nats", "asyncpg", "aiohttp", "socket", "subprocess", "requests", "httpx"}
PURE_LEDGER_MODULES = ["event", "change", "instants", "canonical", "fold", "validate", "errors", "rollout", "fleet_events", "fleet_steps", "acks"]

# package -> the project packages it may import (infra_config: the one settings mechanism)
ALLOWED = {
    "ledger": {"infra_config"},
    "projector": {"ledger", "infra_config"},
    "api": {"ledger", "projector", "infra_config"},
    "client": {"ledger", "infra_config"},
    "infra_config": set(),
    "ops": {"ledger", "projector", "client", "infra_config", "api", "rollout"},
    "rollout": {"ledger", "projector", "infra_config"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_point_one_way(package: str) -> None:
    others = set(PACKAGES) - {package}
    for path in (ROOT / package).rglob("*.py"):
        illegal = (imports_of(path) & others) - ALLOWED[package]
        # the CLI and the embedded stack orchestrate processes; they talk to the others over
        # HTTP/subprocess, and may import them only where listed here
        assert not illegal, f"{path.relative_to(ROOT)} imports {sorted(illegal)}"


@pytest.mark.parametrize("module", PURE_LEDGER_MODULES)
def test_pure_core_does_no_io(module: str) -> None:
    used = imports_of(ROOT / "ledger" / f"{module}.py")
    assert not used & IO_LIBRARIES, f"ledger/{module}.py imports {sorted(used & IO_LIBRARIES)}"


def test_nothing_imports_api() -> None:
    """Only the operations package (the embedded stack, ``settings explain``) composes the API."""
    for package in set(PACKAGES) - {"api", "ops"}:
        for path in (ROOT / package).rglob("*.py"):
            assert "api" not in imports_of(path), f"{path.relative_to(ROOT)} imports api"


# --- the module graph (module-level imports, as Python runs them) ------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}


def _runtime_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The module-level statements that run at import (``if TYPE_CHECKING:`` blocks excluded)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                continue
            out += _runtime_statements(node.body) + _runtime_statements(node.orelse)
        elif isinstance(node, ast.Try):
            out += _runtime_statements(node.body)
            for handler in node.handlers:
                out += _runtime_statements(handler.body)
        else:
            out.append(node)
    return out


def _imported(name: str, path: Path, *, lazy: bool = False) -> set[str]:
    """Every name a module's import statements pull in (absolute, dotted); with ``lazy``, the
    imports inside functions too (a function-level import that dodges a cycle is still one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [n for n in ast.walk(tree) if n not in _type_checking_only(tree)] if lazy else _runtime_statements(tree.body)
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules
    return found


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    return {
        inner
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


def module_graph(*, lazy: bool = False) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (at import time; ``lazy``: at all)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = set()
        for target in _imported(name, path, lazy=lazy):
            # importing a.b.c runs a, then a.b, then a.b.c
            parts = target.split(".")
            edges.update(m for i in range(1, len(parts) + 1) if (m := ".".join(parts[:i])) in MODULES)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_of(module: str) -> str:
    return module.partition(".")[0]


def _closure(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


# The NATS edge's own cycle (nats_io imports watch inside a function) is removed by the NATS edge
# rework of issue 11; the integrator deletes this entry when that lands.
KNOWN_CYCLES: list[list[str]] = []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules() -> None:
    """A package's ``__init__`` importing its own modules is the package, not a cycle; any other
    loop means two modules each need the other to exist first."""
    graph = module_graph(lazy=True)
    own_init = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert [c for c in _cycles(own_init) if c not in KNOWN_CYCLES] == []


def test_client_library_pulls_in_no_operations_or_server_dependency() -> None:
    """What ``import client`` loads (transitively) is free of the operations package and of the
    server-only libraries, so ``pip install config-ledger`` (no extra) is enough for a service."""
    graph = module_graph()
    loaded = _closure(graph, {m for m in MODULES if _package_of(m) == "client"})
    assert not {m for m in loaded if _package_of(m) in {"ops", "api", "projector"}}, sorted(loaded)
    forbidden = {"ops", "rich", "asyncpg", "prometheus_client"}
    for module in sorted(loaded):
        third_party = {name.split(".")[0] for name in _imported(module, MODULES[module])}
        assert not third_party & forbidden, f"{module} imports {sorted(third_party & forbidden)}"


# composition roots: the only modules of api/projector that may look at the process environment
COMPOSITION_ROOTS = {"api/__main__.py", "projector/__main__.py"}


@pytest.mark.parametrize("package", ["api", "projector"])
def test_settings_are_read_only_through_infra_config(package: str) -> None:
    """No ``os.environ`` / ``os.getenv`` below the composition roots; each settings model is a
    ``ledger.settings.SettingsModel`` (the layered ``infra_config`` mechanism)."""
    for path in (ROOT / package).rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        if rel in COMPOSITION_ROOTS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                assert node.attr not in {"environ", "getenv", "environb"}, f"{rel}:{node.lineno} reads os.{node.attr}"
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                names = {alias.name for alias in node.names}
                assert not names & {"environ", "getenv"}, f"{rel}:{node.lineno} imports from os {names}"
    settings_module = ROOT / package / "settings.py"
    assert "SettingsModel" in settings_module.read_text(encoding="utf-8"), settings_module


# foreign system -> the modules allowed to import it (its edge)
EDGES = {
    "asyncpg": {"projector.db"},  # pool, connections, the one error translator
    "aiohttp": {"client.hub_http"},  # the client side; the API's server side is below
}


@pytest.mark.parametrize("library", sorted(EDGES))
def test_each_foreign_system_is_imported_in_its_edge_only(library: str) -> None:
    for module, path in MODULES.items():
        if library == "aiohttp" and _package_of(module) == "api":
            continue  # the HTTP server (aiohttp.web) is the API itself
        tops = {name.split(".")[0] for name in _imported(module, path)}
        lazy = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        if library in tops | lazy:
            assert module in EDGES[library], f"{module} imports {library}; only {sorted(EDGES[library])} may"


def test_the_api_is_no_http_client() -> None:
    """The API serves HTTP; it never calls out over HTTP (no aiohttp client session)."""
    for path in (ROOT / "api").rglob("*.py"):
        assert "ClientSession" not in path.read_text(encoding="utf-8"), path
