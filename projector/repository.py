"""The projection tables through asyncpg: load the checkpoint and chain states, apply a batch.

One batch = one transaction, three round trips:

1. ``BEGIN``;
2. binary COPY of the batch's rows into ``config_versions`` (no round trip per row);
3. ``SELECT projector_commit_batch(...); COMMIT`` (migration 0003): check the leader lock is held
   by this instance's lock session (fence), advance the checkpoint with a compare-and-set
   (``last_seq = <where this batch starts>``), upsert ``config_current`` from the batch's rows
   server side, refresh the status row, and ``NOTIFY config_ledger_projected, '<last_seq>'``
   (delivered by PostgreSQL at the commit).

Why this is exactly-once: rows and checkpoint commit together; a batch can only start at
checkpoint + 1, so applying the same batch again (a redelivery, a second instance, a retry after
an ambiguous commit) is refused — by the primary key on ``stream_seq`` or by the
compare-and-set — and rolled back without a trace. The other unique constraints
(``(service, version)``, ``event_id``) are the last line: a violation while the checkpoint is
still where the batch starts means the *stream* repeats an event, a fail-stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.errors import LedgerError, ProjectionDiverged
from ledger.fold import ChainState

from . import db
from .db import pg_errors
from .errors import CheckpointMoved, DuplicateEvent, LeadershipLost
from .leader import Fence
from .rows import VERSION_COLUMNS, VersionRow
from .schema import SELECT_CHECKPOINT, VERSIONS

__all__ = ["Checkpoint", "ProjectionState", "Batch", "Repository", "closing_statement"]


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

_LEADERSHIP_LOST, _CHECKPOINT_MOVED = "PJ001", "PJ002"  # raised by projector_commit_batch


def _sql_int(value: int | None) -> str:
    return "NULL" if value is None else str(int(value))


def closing_statement(batch: Batch, fence: Fence | None) -> str:
    """``SELECT projector_commit_batch(...); COMMIT`` — one round trip closes the batch.

    A simple query (several statements, so no parameters): every value is an int or a
    timezone-aware datetime produced here, formatted through ``int()`` / ``isoformat()``.
    """
    stored_at = batch.last_stored_at
    if stored_at is None or stored_at.tzinfo is None:
        raise ValueError("a batch needs the timezone-aware store time of its last row")
    pid, ns, key = fence.args if fence is not None else (None, None, None)
    args = ", ".join(
        [
            _sql_int(batch.prev_seq),
            _sql_int(batch.last_seq),
            f"'{stored_at.isoformat()}'::timestamptz",
            _sql_int(pid),
            _sql_int(ns),
            _sql_int(key),
        ]
    )
    return f"SELECT projector_commit_batch({args}); COMMIT"


class Repository:
    """The live projection tables on one asyncpg connection."""

    def __init__(self, conn: Any, *, stream: str, fence: Fence | None = None) -> None:
        self.conn = conn
        self.stream = stream
        self.fence = fence

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
        """Commit ``batch`` (rows + checkpoint + current + status + NOTIFY) in one transaction.

        Round trips: BEGIN, the binary COPY, then ``projector_commit_batch(...); COMMIT``.
        Raises CheckpointMoved / LeadershipLost (nothing written; back off and reload) or
        DuplicateEvent (nothing written; the stream repeats an event: locate it and fail-stop).
        """
        if not batch.rows:
            return
        closing = closing_statement(batch, self.fence)
        conn = self.conn
        with pg_errors("apply batch"):
            await conn.execute("BEGIN")
            try:
                await conn.copy_records_to_table(VERSIONS, records=batch.rows, columns=VERSION_COLUMNS)
                await conn.execute(closing)
            except BaseException as exc:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                if isinstance(exc, db.UniqueViolation):
                    raise await self._conflict(batch, exc) from None
                if isinstance(exc, db.PostgresError) and exc.sqlstate == _LEADERSHIP_LOST:
                    raise LeadershipLost(str(exc)) from None
                if isinstance(exc, db.PostgresError) and exc.sqlstate == _CHECKPOINT_MOVED:
                    raise CheckpointMoved(str(exc)) from None
                raise

    async def _conflict(self, batch: Batch, exc: Any) -> LedgerError:
        """A unique violation: another writer applied these sequences, or the stream repeats."""
        now = await self.conn.fetchval(SELECT_CHECKPOINT)
        if now != batch.prev_seq:
            return CheckpointMoved(
                f"checkpoint is at {now}, not {batch.prev_seq}: another writer applied these "
                "sequences; batch not applied"
            )
        return DuplicateEvent(
            f"the batch after sequence {batch.prev_seq} repeats an applied event "
            f"({exc.constraint_name}: {exc.detail})",
            seq=batch.rows[0].stream_seq,
        )

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
