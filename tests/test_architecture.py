"""Dependencies point one way (DESIGN.md, "Packages"): checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["ledger", "projector", "api", "client", "infra_config", "ops"]
IO_LIBRARIES = {"nats", "asyncpg", "aiohttp", "socket", "subprocess", "requests", "httpx"}
PURE_LEDGER_MODULES = ["event", "canonical", "fold", "validate", "errors"]

# package -> the project packages it may import
ALLOWED = {
    "ledger": set(),
    "projector": {"ledger"},
    "api": {"ledger", "projector"},
    "client": {"ledger"},
    "infra_config": set(),
    "ops": {"ledger", "projector", "client", "infra_config"},
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
    for package in set(PACKAGES) - {"api"}:
        for path in (ROOT / package).rglob("*.py"):
            assert "api" not in imports_of(path), f"{path.relative_to(ROOT)} imports api"


def _ledger_module_imports(path: Path) -> set[str]:
    """The ``ledger`` modules ``path`` imports (``from . import x``, ``from .x``, ``ledger.x``),
    function-level imports included."""
    modules = {p.stem for p in (ROOT / "ledger").glob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 and not base:
                found.update(a.name for a in node.names if a.name in modules)
            elif node.level == 1:
                found.add(base.split(".")[0])
            elif base.startswith("ledger."):
                found.add(base.split(".")[1])
    return found & modules


def test_no_import_cycle_inside_ledger() -> None:
    """e.g. nats_io <-> watch: the edge (nats_io) does not import what builds on it."""
    graph = {p.stem: _ledger_module_imports(p) - {p.stem} for p in (ROOT / "ledger").glob("*.py")}
    graph.pop("__init__", None)
    for deps in graph.values():
        deps.discard("__init__")

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()):
            if nxt == target or (nxt not in seen and (seen.add(nxt) or reaches(nxt, target, seen))):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, set()))
    assert not cycles, f"ledger modules in an import cycle: {cycles} ({ {m: sorted(graph[m]) for m in cycles} })"
