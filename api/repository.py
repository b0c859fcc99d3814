"""SQL reads of the projector's tables (``projector/migrations/0001_init.sql``); no writes.

Nothing here writes PostgreSQL: only the projector does. Every asyncpg/OS error is translated
into the ledger's hierarchy at this boundary (``Unavailable`` when the server cannot be reached
or the schema is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ledger.errors import LedgerError, Unavailable, WorldError
from projector.status import ProjectorStatus, read_status

__all__ = [
    "Version",
    "Repository",
    "pg_errors",
    "init_connection",
    "create_pool",
    "connect",
]

_VERSION_COLUMNS = (
    "service, version, kind, change, config, actor, reason, occurred_at, stored_at, stream_seq, "
    "event_id::text AS event_id, prev_hash, hash, changeset_id::text AS changeset_id"
)
_CURRENT_COLUMNS = (
    "service, version, kind, NULL::jsonb AS change, config, actor, reason, updated_at AS occurred_at, "
    "stored_at, stream_seq, NULL::text AS event_id, NULL::text AS prev_hash, hash, "
    "(SELECT v.changeset_id::text FROM config_versions v WHERE v.stream_seq = config_current.stream_seq) "
    "AS changeset_id"
)


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
    def from_record(cls, r: asyncpg.Record) -> Version:
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


@contextlib.contextmanager
def pg_errors(what: str) -> Iterator[None]:
    """Translate asyncpg / socket errors raised inside the block."""
    try:
        yield
    except LedgerError:
        raise
    except asyncpg.UndefinedTableError:
        raise Unavailable(f"PostgreSQL has no projector tables yet ({what}); run the migrations") from None
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        OSError,  # refused, reset, and asyncio.TimeoutError (a TimeoutError in 3.11)
    ) as exc:
        raise Unavailable(f"PostgreSQL is unavailable ({what}): {type(exc).__name__}") from None
    except asyncpg.PostgresError as exc:
        raise WorldError(f"PostgreSQL refused {what}: {type(exc).__name__}") from None


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python values (orjson), on every connection we open."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
        format="text",
    )


async def create_pool(dsn: str, *, max_size: int, timeout: float) -> asyncpg.Pool:
    """A lazy pool (no connection until first use): the API starts while PostgreSQL is down."""
    with pg_errors("create pool"):
        pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=max_size,
            init=init_connection,
            timeout=timeout,
            command_timeout=timeout,
            max_inactive_connection_lifetime=60,
        )
    return pool


async def connect(dsn: str, *, timeout: float) -> asyncpg.Connection:
    with pg_errors("connect"):
        conn = await asyncpg.connect(dsn, timeout=timeout, command_timeout=timeout)
        await init_connection(conn)
    return conn


class Repository:
    """Queries over a pool. Each method is one round trip (one snapshot)."""

    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        with pg_errors(what):
            async with self.pool.acquire(timeout=self.timeout) as conn:
                yield conn

    async def ping(self) -> None:
        async with self._conn("ping") as conn:
            await conn.fetchval("SELECT 1")

    async def current(self, service: str) -> Version | None:
        async with self._conn("current") as conn:
            row = await conn.fetchrow(
                f"SELECT {_CURRENT_COLUMNS} FROM config_current WHERE service = $1", service
            )
        return Version.from_record(row) if row else None

    async def version(self, service: str, version: int) -> Version | None:
        async with self._conn("version") as conn:
            row = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE service = $1 AND version = $2",
                service,
                version,
            )
        return Version.from_record(row) if row else None

    async def at(self, service: str, instant: datetime) -> Version | None:
        """The version that was current at ``instant`` (stream store time), or None."""
        async with self._conn("at") as conn:
            row = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE service = $1 AND stored_at <= $2 "
                "ORDER BY version DESC LIMIT 1",
                service,
                instant,
            )
        return Version.from_record(row) if row else None

    async def history(self, service: str, *, before: int | None, limit: int) -> list[Version]:
        """Versions newest first, below ``before`` (a version number) when given."""
        async with self._conn("history") as conn:
            rows = await conn.fetch(
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE service = $1 "
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
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE service = $1 AND version >= $2 "
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
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE changeset_id = $1::uuid "
                "ORDER BY stream_seq",
                changeset_id,
            )
        return [Version.from_record(r) for r in rows]

    async def blame_rows(self, service: str, after: int, until: datetime | None) -> list[asyncpg.Record]:
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
                f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE event_id = $1::uuid", event_id
            )
        return Version.from_record(row) if row else None

    async def snapshot(self, instant: datetime) -> tuple[int, list[Version]]:
        """(checkpoint, the latest version of every service stored at or before ``instant``)."""
        async with self._conn("snapshot") as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            checkpoint = await conn.fetchval(
                "SELECT coalesce(max(last_seq), 0) FROM projector_checkpoint"
            )
            rows = await conn.fetch(
                f"SELECT DISTINCT ON (service) {_VERSION_COLUMNS} FROM config_versions "
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


async def changed_since(conn: asyncpg.Connection, seq: int | None) -> tuple[int, list[Version]]:
    """(checkpoint, config_current rows with stream_seq > ``seq``; all rows when None).

    One statement, hence one snapshot: the rows are exactly those the checkpoint covers (the
    projector commits rows and checkpoint in one transaction).
    """
    rows = await conn.fetch(
        f"SELECT k.checkpoint, c.* FROM (SELECT coalesce(max(last_seq), 0) AS checkpoint "
        f"FROM projector_checkpoint) k LEFT JOIN (SELECT {_CURRENT_COLUMNS} FROM config_current "
        "WHERE $1::bigint IS NULL OR stream_seq > $1) c ON true",
        seq,
    )
    checkpoint = int(rows[0]["checkpoint"]) if rows else 0
    return checkpoint, [Version.from_record(r) for r in rows if r["service"] is not None]


async def close_quietly(conn: asyncpg.Connection | None, timeout: float = 2.0) -> None:
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except Exception:  # noqa: BLE001 - the server may be gone; terminate instead
        conn.terminate()
