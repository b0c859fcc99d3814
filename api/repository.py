"""The API's reads of the projection (``projector.schema``); no writes: only the projector writes.

Connections, the pool and the translation of PostgreSQL errors are the projector's PostgreSQL
edge (``projector.db``): ``NotMigrated`` (tables missing) and ``Unavailable`` both answer 503.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projector import db
from projector.db import pg_errors
from projector.schema import (
    CHANGED_SINCE,
    CHECKPOINT,
    CURRENT,
    SELECT_CURRENT_AS_VERSION,
    SELECT_VERSION,
    VERSIONS,
)
from projector.status import ProjectorStatus, read_status

__all__ = ["Version", "Repository", "changed_since", "create_pool", "connect"]

_VERSIONS_WHERE = f"SELECT {SELECT_VERSION} FROM {VERSIONS} WHERE "


@dataclass(frozen=True)
class Version:
    """One version of one service as projected (a row of config_versions or config_current).

    Rows from config_current carry no ``change``, ``event_id`` or ``prev_hash`` (None).
    """

    service: str
    version: int
    kind: str
    change: Any
    config: dict[str, Any] | None
    actor: str
    reason: str
    occurred_at: datetime
    stored_at: datetime
    stream_seq: int
    event_id: str | None
    prev_hash: str | None
    hash: str
    changeset_id: str | None = None  # the atomic change set this version belongs to

    @property
    def deleted(self) -> bool:
        return self.config is None

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> Version:
        return cls(
            service=r["service"],
            version=r["version"],
            kind=r["kind"],
            change=r["change"],
            config=r["config"],
            actor=r["actor"],
            reason=r["reason"],
            occurred_at=r["occurred_at"],
            stored_at=r["stored_at"],
            stream_seq=r["stream_seq"],
            event_id=r["event_id"],
            prev_hash=r["prev_hash"],
            hash=r["hash"],
            changeset_id=r.get("changeset_id"),
        )


async def create_pool(dsn: str, *, max_size: int, timeout: float) -> Any:
    """The API's lazy reader pool (``projector.db.create_pool``)."""
    return await db.create_pool(dsn, max_size=max_size, timeout=timeout, application_name="config-ledger api")


async def connect(dsn: str, *, timeout: float) -> Any:
    """A reader connection (jsonb decoded) for the projection feed's LISTEN."""
    return await db.connect(
        dsn, application_name="config-ledger api feed", timeout=timeout, command_timeout=timeout,
        decode_jsonb=True,
    )


class Repository:
    """Queries over a pool. Each method is one round trip (one snapshot)."""

    def __init__(self, pool: Any, *, timeout: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[Any]:
        with pg_errors(what):
            async with self.pool.acquire(timeout=self.timeout) as conn:
                yield conn

    async def ping(self) -> None:
        async with self._conn("ping") as conn:
            await conn.fetchval("SELECT 1")

    async def current(self, service: str) -> Version | None:
        async with self._conn("current") as conn:
            row = await conn.fetchrow(
                f"SELECT {SELECT_CURRENT_AS_VERSION} FROM {CURRENT} WHERE service = $1", service
            )
        return Version.from_record(row) if row else None

    async def version(self, service: str, version: int) -> Version | None:
        async with self._conn("version") as conn:
            row = await conn.fetchrow(
                _VERSIONS_WHERE + "service = $1 AND version = $2",
                service,
                version,
            )
        return Version.from_record(row) if row else None

    async def at(self, service: str, instant: datetime) -> Version | None:
        """The version that was current at ``instant`` (stream store time), or None."""
        async with self._conn("at") as conn:
            row = await conn.fetchrow(
                _VERSIONS_WHERE + "service = $1 AND stored_at <= $2 "
                "ORDER BY version DESC LIMIT 1",
                service,
                instant,
            )
        return Version.from_record(row) if row else None

    async def history(self, service: str, *, before: int | None, limit: int) -> list[Version]:
        """Versions newest first, below ``before`` (a version number) when given."""
        async with self._conn("history") as conn:
            rows = await conn.fetch(
                _VERSIONS_WHERE + "service = $1 "
                "AND ($2::integer IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
                service,
                before,
                limit,
            )
        return [Version.from_record(r) for r in rows]

    async def versions_from(self, service: str, first: int, *, limit: int) -> list[Version]:
        """Versions ``>= first`` oldest first (the SSE catch-up)."""
        async with self._conn("versions") as conn:
            rows = await conn.fetch(
                _VERSIONS_WHERE + "service = $1 AND version >= $2 "
                "ORDER BY version LIMIT $3",
                service,
                first,
                limit,
            )
        return [Version.from_record(r) for r in rows]

    async def changeset(self, changeset_id: str) -> list[Version]:
        """The members of one change set, in stream order."""
        async with self._conn("change set") as conn:
            rows = await conn.fetch(
                f"SELECT {SELECT_VERSION} FROM {VERSIONS} WHERE changeset_id = $1::uuid "
                "ORDER BY stream_seq",
                changeset_id,
            )
        return [Version.from_record(r) for r in rows]

    async def blame_rows(self, service: str, after: int, until: datetime | None) -> list[Any]:
        """What blame folds, after a version, oldest first, up to an instant (store time) when
        given: a patched version's merge patch (small) instead of its whole document."""
        async with self._conn("blame") as conn:
            return list(await conn.fetch(
                "SELECT version, kind, CASE WHEN kind = 'patched' THEN NULL ELSE config END AS config, "
                "CASE WHEN kind = 'patched' THEN change END AS patch, "
                "actor, reason, occurred_at, stored_at, changeset_id::text AS cs "
                "FROM config_versions WHERE service = $1 AND version > $2 "
                "AND ($3::timestamptz IS NULL OR stored_at <= $3) ORDER BY version",
                service, after, until,
            ))

    async def by_event_id(self, event_id: str) -> Version | None:
        async with self._conn("event lookup") as conn:
            row = await conn.fetchrow(
                _VERSIONS_WHERE + "event_id = $1::uuid", event_id
            )
        return Version.from_record(row) if row else None

    async def snapshot(self, instant: datetime) -> tuple[int, list[Version]]:
        """(checkpoint, the latest version of every service stored at or before ``instant``)."""
        async with self._conn("snapshot") as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            checkpoint = await conn.fetchval(
                f"SELECT coalesce(max(last_seq), 0) FROM {CHECKPOINT}"
            )
            rows = await conn.fetch(
                f"SELECT DISTINCT ON (service) {SELECT_VERSION} FROM {VERSIONS} "
                "WHERE stored_at <= $1 ORDER BY service, version DESC",
                instant,
            )
        return int(checkpoint), [Version.from_record(r) for r in rows]

    async def current_all(self) -> tuple[int, list[Version]]:
        """(checkpoint, every row of config_current) in one snapshot."""
        async with self._conn("list") as conn:
            return await changed_since(conn, None)

    async def status(self) -> ProjectorStatus:
        """The projector's own report (``projector.status.read_status``)."""
        async with self._conn("projector status") as conn:
            return await read_status(conn)


async def changed_since(conn: Any, seq: int | None) -> tuple[int, list[Version]]:
    """(checkpoint, config_current rows with stream_seq > ``seq``; all rows when None), one snapshot."""
    rows = await conn.fetch(CHANGED_SINCE, seq)
    checkpoint = int(rows[0]["checkpoint"]) if rows else 0
    return checkpoint, [Version.from_record(r) for r in rows if r["service"] is not None]
