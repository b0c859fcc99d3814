"""Dependencies point one way (DESIGN.md, "Packages"): checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["ledger", "projector", "api", "client", "infra_config", "ops", "rollout"]
IO_LIBRARIES = {"nats", "asyncpg", "aiohttp", "socket", "subprocess", "requests", "httpx"}
PURE_LEDGER_MODULES = ["event", "canonical", "fold", "validate", "errors", "rollout", "fleet_events", "fleet_steps", "acks"]

# package -> the project packages it may import
ALLOWED = {
    "ledger": set(),
    "projector": {"ledger"},
    "api": {"ledger", "projector"},
    "client": {"ledger"},
    "infra_config": set(),
    "ops": {"ledger", "projector", "client", "infra_config", "rollout"},
    "rollout": {"ledger", "projector"},
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
