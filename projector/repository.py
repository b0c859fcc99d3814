"""The projection tables through asyncpg: load the checkpoint and chain states, apply a batch.

One batch = one transaction:

1. advance the checkpoint with a compare-and-set (``last_seq = <where this batch starts>``),
   fenced on the leader lock, and refresh the status row — one statement;
2. COPY the batch's rows into ``config_versions`` (binary COPY: no round trip per row);
3. upsert ``config_current`` from those rows, server side (the last event of each service);
4. ``NOTIFY config_ledger_projected, '<last_seq>'`` — delivered by PostgreSQL at commit.

Why this is exactly-once: rows and checkpoint commit together; a batch can only start at
checkpoint + 1, so applying the same batch again (a redelivery, a second instance, a retry after
an ambiguous commit) fails the compare-and-set and rolls back without touching a row. The unique
constraints (``stream_seq``, ``(service, version)``, ``event_id``) are the last line: a violation
after a successful compare-and-set means the *stream* repeats an event, a fail-stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from ledger.errors import ProjectionDiverged
from ledger.fold import ChainState

from .db import pg_errors
from .errors import CheckpointMoved, DuplicateEvent, LeadershipLost
from .leader import Fence
from .rows import VERSION_COLUMNS, VersionRow
from .status import NOTIFY_CHANNEL, keep_failed_or

__all__ = ["Checkpoint", "ProjectionState", "Batch", "Repository"]


@dataclass(frozen=True)
class Checkpoint:
    stream: str
    last_seq: int
    last_stored_at: datetime | None


@dataclass(frozen=True)
class ProjectionState:
    """Where the projection stands: its checkpoint and the last (version, hash) per service."""

    checkpoint: Checkpoint
    chains: dict[str, ChainState]


@dataclass
class Batch:
    """Verified rows following ``prev_seq``; ``failure`` is the fail-stop found right after them."""

    prev_seq: int
    rows: list[VersionRow] = field(default_factory=list)
    failure: ProjectionDiverged | None = None

    @property
    def last_seq(self) -> int:
        return self.rows[-1].stream_seq if self.rows else self.prev_seq

    @property
    def last_stored_at(self) -> datetime | None:
        return self.rows[-1].stored_at if self.rows else None

    def prefix(self, n: int) -> Batch:
        return Batch(self.prev_seq, self.rows[:n])


_INSERT_CHECKPOINT = """
INSERT INTO projector_checkpoint (id, stream, last_seq) VALUES (1, $1, 0) ON CONFLICT (id) DO NOTHING
"""

_UPSERT_CURRENT = """
INSERT INTO config_current (service, version, kind, config, hash, actor, reason, updated_at, stored_at, stream_seq)
SELECT DISTINCT ON (service) service, version, kind, config, hash, actor, reason, occurred_at, stored_at, stream_seq
FROM config_versions WHERE stream_seq > $1 AND stream_seq <= $2
ORDER BY service, stream_seq DESC
ON CONFLICT (service) DO UPDATE SET
    version = EXCLUDED.version, kind = EXCLUDED.kind, config = EXCLUDED.config, hash = EXCLUDED.hash,
    actor = EXCLUDED.actor, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at,
    stored_at = EXCLUDED.stored_at, stream_seq = EXCLUDED.stream_seq
"""


def _advance_sql(fenced: bool) -> str:
    # $1 prev_seq, $2 last_seq, $3 last stored_at, [$4 pid, $5 namespace, $6 key]
    fence = Fence(0).sql("$4", "$5", "$6") if fenced else "true"
    status = keep_failed_or("'running'", "$2")
    return f"""
WITH leader AS (SELECT {fence} AS ok),
cp AS (
    UPDATE projector_checkpoint SET last_seq = $2, last_stored_at = $3, updated_at = now()
    WHERE id = 1 AND last_seq = $1 AND (SELECT ok FROM leader)
    RETURNING last_seq
),
st AS (
    UPDATE projector_status SET {status},
        stream_last_seq = GREATEST(stream_last_seq, $2),
        stream_last_at = GREATEST(stream_last_at, $3),
        pending_since = CASE WHEN stream_last_seq > $2 THEN pending_since END,
        heartbeat_at = now(), updated_at = now()
    WHERE id = 1 AND EXISTS (SELECT 1 FROM cp)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM cp) AS advanced, (SELECT ok FROM leader) AS leader,
       (SELECT last_seq FROM projector_checkpoint WHERE id = 1) AS checkpoint,
       pg_notify('{NOTIFY_CHANNEL}', $2::text)
"""


class Repository:
    """The live projection tables on one asyncpg connection."""

    def __init__(self, conn: Any, *, stream: str, fence: Fence | None = None) -> None:
        self.conn = conn
        self.stream = stream
        self.fence = fence
        self._advance = _advance_sql(fence is not None)

    async def checkpoint(self) -> Checkpoint:
        """The checkpoint row (created at 0 for this stream when missing)."""
        with pg_errors("load checkpoint"):
            await self.conn.execute(_INSERT_CHECKPOINT, self.stream)
            row = await self.conn.fetchrow(
                "SELECT stream, last_seq, last_stored_at FROM projector_checkpoint WHERE id = 1"
            )
        return Checkpoint(row["stream"], int(row["last_seq"]), row["last_stored_at"])

    async def load(self) -> ProjectionState:
        """Checkpoint + chain states; refuses a projection built from another stream."""
        cp = await self.checkpoint()
        if cp.stream != self.stream:
            if cp.last_seq > 0:
                raise ProjectionDiverged(
                    f"the projection was built from stream {cp.stream!r}, not the configured "
                    f"{self.stream!r} (LEDGER_STREAM); rebuild it from the configured stream",
                    seq=cp.last_seq,
                )
            with pg_errors("adopt stream"):
                await self.conn.execute("UPDATE projector_checkpoint SET stream = $1 WHERE id = 1", self.stream)
            cp = Checkpoint(self.stream, 0, None)
        with pg_errors("load chain states"):
            rows = await self.conn.fetch("SELECT service, version, hash FROM config_current")
        return ProjectionState(cp, {r["service"]: ChainState(r["version"], r["hash"]) for r in rows})

    async def event_id_at(self, seq: int) -> str | None:
        with pg_errors("read applied event"):
            value = await self.conn.fetchval(
                "SELECT event_id::text FROM config_versions WHERE stream_seq = $1", seq
            )
        return None if value is None else str(value)

    async def apply(self, batch: Batch) -> None:
        """Commit ``batch`` (rows + checkpoint + status + NOTIFY) in one transaction.

        Raises CheckpointMoved / LeadershipLost (nothing written; back off and reload) or
        DuplicateEvent (nothing written; the stream repeats an event: locate it and fail-stop).
        """
        if not batch.rows:
            return
        args: list[Any] = [batch.prev_seq, batch.last_seq, batch.last_stored_at]
        if self.fence is not None:
            args.extend(self.fence.args)
        with pg_errors("apply batch"):
            try:
                async with self.conn.transaction():
                    result = await self.conn.fetchrow(self._advance, *args)
                    if not result["leader"]:
                        raise LeadershipLost("the leader lock is no longer held: batch not applied")
                    if not result["advanced"]:
                        raise CheckpointMoved(
                            f"checkpoint is at {result['checkpoint']}, not {batch.prev_seq}: another "
                            "writer advanced it; batch not applied"
                        )
                    await self.conn.copy_records_to_table(
                        "config_versions", records=batch.rows, columns=VERSION_COLUMNS
                    )
                    await self.conn.execute(_UPSERT_CURRENT, batch.prev_seq, batch.last_seq)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateEvent(
                    f"the batch after sequence {batch.prev_seq} repeats an applied event "
                    f"({exc.constraint_name}: {exc.detail})",
                    seq=batch.rows[0].stream_seq,
                ) from None

    async def first_duplicate(self, rows: Sequence[VersionRow]) -> tuple[int, str] | None:
        """(index, why) of the first row whose event_id or (service, version) is already taken."""
        with pg_errors("locate duplicate event"):
            taken_ids = {
                str(r["event_id"])
                for r in await self.conn.fetch(
                    "SELECT event_id::text AS event_id FROM config_versions WHERE event_id = ANY($1::uuid[])",
                    [r.event_id for r in rows],
                )
            }
            taken_versions = {
                (r["service"], r["version"])
                for r in await self.conn.fetch(
                    """SELECT v.service, v.version FROM config_versions v
                       JOIN unnest($1::text[], $2::int[]) AS b(service, version)
                         ON v.service = b.service AND v.version = b.version""",
                    [r.service for r in rows],
                    [r.version for r in rows],
                )
            }
        seen_ids: set[str] = set()
        for i, row in enumerate(rows):
            if row.event_id in taken_ids or row.event_id in seen_ids:
                return i, f"event_id {row.event_id} appears twice in the stream"
            if (row.service, row.version) in taken_versions:
                return i, f"{row.service!r} version {row.version} is already in the projection"
            seen_ids.add(row.event_id)
        return None
