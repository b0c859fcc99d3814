"""``SchemaRegistry``: per-service JSON Schemas as ledger events on ``config.schemas.<service>``.

A schema event is an ordinary ``Event`` on its own subject: ``replaced`` sets the schema (its
``config`` is the schema document), ``deleted`` removes it. So schemas get what every change gets
— versions, CAS, the hash chain, actor and reason, history, time travel and ``verify`` — from the
same ``Ledger`` code, pointed at the schema subjects (``LedgerSettings.for_schemas``).

Setting a schema checks two things before appending: the schema is a valid draft 2020-12 schema
(``schema.invalid``), and the service's *current* config satisfies it (``schema``, with every
failing pointer). Both sides are checked on the service's heads (``ledger.heads``) and appended
with the CAS over every subject of the service: a config write racing a schema change is either
validated against the new schema or makes the schema's append decide again on the new config.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NATS

from .errors import NotFound, VersionConflict
from .event import Delete, Event, Replace
from .heads import Heads
from .ledger import Appended, Entry, Ledger
from .schema import check_schema, violations
from .schema import validate as validate_schema
from .settings import LedgerSettings

__all__ = ["SchemaRegistry"]


class SchemaRegistry:
    """Schemas of every service; ``config`` is the ledger of the configs they constrain."""

    def __init__(self, nc: NATS, settings: LedgerSettings, *, config: Ledger | None = None) -> None:
        self.ledger = Ledger(nc, settings.for_schemas())
        self.config = config or Ledger(nc, settings)

    async def current_entry(self, service: str) -> Entry | None:
        return await self.ledger.current_entry(service)

    async def at_entry(self, service: str, instant: datetime) -> Entry | None:
        return await self.ledger.at_entry(service, instant)

    async def at_version_entry(self, service: str, version: int) -> Entry | None:
        return await self.ledger.at_version_entry(service, version)

    async def history(self, service: str) -> AsyncIterator[Entry]:
        async for entry in self.ledger.history_entries(service):
            yield entry

    async def set(
        self,
        service: str,
        schema: Any,
        *,
        actor: str,
        reason: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Appended:
        """Set (or replace) the schema; refuses an invalid schema or one the config fails."""
        check_schema(schema)

        def config_fits(heads: Heads) -> None:
            config = heads.current_config
            if config is not None and config.config is not None:
                version = heads.schema[1].version + 1 if heads.schema else 1
                validate_schema(service, version, schema, config.config)

        return await self.ledger.append(
            service, Replace(schema), actor=actor, reason=reason,
            expected_version=expected_version, idempotency_key=idempotency_key, guard=config_fits,
        )

    async def remove(
        self, service: str, *, actor: str, reason: str, expected_version: int | None = None
    ) -> Appended:
        entry = await self.ledger.current_entry(service)
        current = entry.event.version if entry else 0
        if expected_version is not None and expected_version != current:
            raise VersionConflict(service, expected_version, current)
        if entry is None or entry.event.config is None:
            raise NotFound(f"service {service!r} has no schema", details={"service": service})
        return await self.ledger.append(
            service, Delete(), actor=actor, reason=reason, expected_version=expected_version
        )

    async def check(self, service: str, document: dict[str, Any]) -> tuple[Event | None, list[dict[str, str]]]:
        """The schema in force and the violations of ``document`` (empty: it passes)."""
        schema = await self.config.schema_in_force(service)
        if schema is None or schema.config is None:
            return None, []
        return schema, [v.to_dict() for v in violations(schema.config, document)]
