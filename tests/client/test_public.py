"""The client package's public surface: small, typed, explicit, no import-time environment reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import client


def test_all_names_exist_and_are_the_documented_ones() -> None:
    assert set(client.__all__) >= {"ConfigClient", "AuditReader", "Bound", "LastKnownGood", "Source"}
    for name in client.__all__:
        assert getattr(client, name) is not None, name
    assert (Path(client.__file__).parent / "py.typed").exists()


OWN_MODULES = ["__init__", "audit", "binding", "config_client", "holder", "http_source", "hub_http", "lkg",
               "notify", "settings", "snapshot", "sources", "stream_follow", "stream_source"]


def _environment_reads(tree: ast.AST) -> list[ast.AST]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
        and isinstance(node.value, ast.Name) and node.value.id == "os"
    ]


@pytest.mark.parametrize("module", OWN_MODULES)
def test_no_environment_reads_outside_the_constructor(module: str) -> None:
    """``os.environ`` is read in one place: ``ConfigClient(environ=None)``, at construction."""
    tree = ast.parse((Path(client.__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
    allowed: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__" and module == "config_client":
            allowed += _environment_reads(node)
    assert _environment_reads(tree) == allowed
    assert len(allowed) == (1 if module == "config_client" else 0)
