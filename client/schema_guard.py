"""Opt-in JSON Schema check of what a ``ConfigClient`` receives (``client.require_schema``).

The guard joins the client's acceptance checks (``ConfigHolder.checks``): a document that fails the
schema is rejected as a whole (logged with its version and the failing pointers; no callback
runs; the last-known-good file keeps the last good config). The server already refuses writes
that fail the schema in force; the client-side check protects a service from a document that
predates its schema, or from a schema the service itself requires but the ledger does not.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import InvalidConfig
from ledger.schema import check_schema, violations

__all__ = ["SchemaGuard"]


class SchemaGuard:
    """Validates documents against one JSON Schema (draft 2020-12, formats asserted)."""

    def __init__(self, schema: dict[str, Any], service: str) -> None:
        check_schema(schema)
        self.schema = schema
        self.service = service

    def __repr__(self) -> str:
        return f"SchemaGuard({self.service!r})"

    def validate(self, config: dict[str, Any], version: int | None) -> None:
        found = violations(self.schema, config)
        if found:
            shown = f"version {version}" if version is not None else "the config"
            where = ", ".join(f"{v.pointer or '/'} ({v.keyword})" for v in found[:5])
            raise InvalidConfig("schema", f"{shown} of {self.service} fails the schema at {where}",
                                path=found[0].pointer)
