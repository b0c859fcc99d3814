"""The projector's health, as the API's /readyz and /metrics read it (one row, ``projector_status``).

Readers::

    status = await read_status(conn)          # asyncpg connection to the projection database
    ok, why = status.ready(max_lag_seconds=5)
    status.lag_events, status.lag_seconds, status.state, status.reason, status.failed_seq

    await wait_applied(conn, seq, timeout=2)  # read-your-writes: True once seq is applied

After every committed batch the projector sends ``NOTIFY config_ledger_projected, '<last_seq>'``
(``NOTIFY_CHANNEL``). The write functions below are used by the runner and by rebuild only.

A fail-stop is sticky: once ``state='failed'`` with ``failed_seq = N``, a restarted projector keeps
reporting the failure until it has applied past N (the stream was repaired) or a rebuild
succeeded; it never flips back to ``running`` just because it started again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .db import pg_errors
from .schema import NOTIFY_CHANNEL, READ_STATUS, SELECT_CHECKPOINT

__all__ = [
    "STATES",
    "ProjectorStatus",
    "read_status",
    "wait_applied",
    "mark_running",
    "heartbeat",
    "STALE_AFTER_S",
    "record_failure",
    "set_state",
]

STATES = ("starting", "running", "failed", "stopped", "rebuilding")


#: A heartbeat older than this (the projector beats every ~1 s) means the projector is not running.
STALE_AFTER_S = 10.0


@dataclass(frozen=True)
class ProjectorStatus:
    """A snapshot of ``projector_status`` + ``projector_checkpoint``.

    ``stream_last_seq``/``stream_last_at`` are what the active projector last saw on the stream
    (refreshed every heartbeat, ~1 s, and on every batch); ``heartbeat_age_seconds`` says how old
    that is. ``lag_seconds`` is the age of the oldest event not applied yet (0 when caught up).
    """

    state: str
    reason: str | None
    failed_seq: int | None
    stream: str | None
    last_applied_seq: int
    last_applied_at: datetime | None
    stream_last_seq: int
    stream_last_at: datetime | None
    lag_events: int
    lag_seconds: float
    instance: str | None
    heartbeat_at: datetime | None
    heartbeat_age_seconds: float | None
    updated_at: datetime | None

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def stale(self) -> bool:
        """Says ``running`` but has not beaten for STALE_AFTER_S: the process is likely gone."""
        return self.state == "running" and (
            self.heartbeat_age_seconds is None or self.heartbeat_age_seconds > STALE_AFTER_S)

    def ready(self, *, max_lag_seconds: float = 5.0, max_heartbeat_age: float = 5.0) -> tuple[bool, str]:
        """(ready, why) for a readiness probe: not failed, alive, and not lagging too far."""
        if self.failed:
            return False, f"projector failed at stream sequence {self.failed_seq}: {self.reason}"
        if self.state == "rebuilding":
            return False, "projection is being rebuilt"
        if self.heartbeat_age_seconds is None or self.heartbeat_age_seconds > max_heartbeat_age:
            return False, f"no projector heartbeat for {self.heartbeat_age_seconds or 0:.1f}s"
        if self.lag_seconds > max_lag_seconds:
            return False, f"projection lags {self.lag_events} events / {self.lag_seconds:.1f}s"
        return True, "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as RFC 3339 strings)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        out["stale"] = self.stale
        return out




async def read_status(conn: Any) -> ProjectorStatus:
    """The projector's state, checkpoint and lag (raises NotMigrated before the first migration)."""
    with pg_errors("read projector status"):
        row = await conn.fetchrow(READ_STATUS)
    now: datetime = row["now"]
    last_seq = int(row["last_seq"])
    stream_last = int(row["stream_last_seq"] or 0)
    lag_events = max(0, stream_last - last_seq)
    lag_seconds = 0.0
    if lag_events:
        if row["pending_since"] is not None:
            lag_seconds = (now - row["pending_since"]).total_seconds()
        elif row["stream_last_at"] is not None and row["last_stored_at"] is not None:
            lag_seconds = (row["stream_last_at"] - row["last_stored_at"]).total_seconds()
        elif row["stream_last_at"] is not None:
            lag_seconds = (now - row["stream_last_at"]).total_seconds()
        lag_seconds = max(0.0, lag_seconds)
    beat = row["heartbeat_at"]
    return ProjectorStatus(
        state=row["state"] or "starting",
        reason=row["reason"],
        failed_seq=row["failed_seq"],
        stream=row["stream"],
        last_applied_seq=last_seq,
        last_applied_at=row["last_stored_at"],
        stream_last_seq=stream_last,
        stream_last_at=row["stream_last_at"],
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        instance=row["instance"],
        heartbeat_at=beat,
        heartbeat_age_seconds=None if beat is None else max(0.0, (now - beat).total_seconds()),
        updated_at=row["updated_at"],
    )


async def wait_applied(conn: Any, seq: int, *, timeout: float) -> bool:
    """Wait until the projection has applied stream sequence ``seq``; False after ``timeout``.

    Listens on ``NOTIFY_CHANNEL`` (so it wakes on the commit, no polling) and checks the
    checkpoint once after subscribing, so a commit between the two is not missed.
    """
    reached = asyncio.Event()

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            if int(payload) >= seq:
                reached.set()

    with pg_errors("listen for projection"):
        await conn.add_listener(NOTIFY_CHANNEL, on_notify)
    try:
        with pg_errors("read checkpoint"):
            current = await conn.fetchval(SELECT_CHECKPOINT)
        if current is not None and current >= seq:
            return True
        try:
            async with asyncio.timeout(timeout):
                await reached.wait()
        except TimeoutError:
            return False
        return True
    finally:
        with contextlib.suppress(Exception):
            await conn.remove_listener(NOTIFY_CHANNEL, on_notify)


# --- writes (runner and rebuild) -------------------------------------------------------------

# A recorded fail-stop stays until the projection moved past the failed sequence.
_STILL_FAILED = "(state = 'failed' AND (failed_seq IS NULL OR failed_seq > {cp}))"
_KEEP_OR_CLEAR = """
    state = CASE WHEN {f} THEN 'failed' ELSE {state} END,
    reason = CASE WHEN {f} THEN reason ELSE NULL END,
    failed_seq = CASE WHEN {f} THEN failed_seq ELSE NULL END
"""


def keep_failed_or(state_sql: str, checkpoint_sql: str) -> str:
    """SET clause: ``state_sql`` unless a fail-stop ahead of ``checkpoint_sql`` is recorded."""
    return _KEEP_OR_CLEAR.format(f=_STILL_FAILED.format(cp=checkpoint_sql), state=state_sql)


_CHECKPOINT_NOW = f"({SELECT_CHECKPOINT})"


async def mark_running(conn: Any, *, instance: str) -> None:
    """A leader starts projecting (its start-up checks passed)."""
    sql = f"""
        UPDATE projector_status SET {keep_failed_or("'running'", _CHECKPOINT_NOW)},
               instance = $1, heartbeat_at = now(), updated_at = now()
        WHERE id = 1
    """
    with pg_errors("mark projector running"):
        await conn.execute(sql, instance)


async def heartbeat(
    conn: Any,
    *,
    instance: str,
    stream_last_seq: int | None,
    stream_last_at: datetime | None,
    pending_since: datetime | None,
) -> None:
    """The leader is alive; what it saw on the stream (None when NATS did not answer)."""
    sql = f"""
        UPDATE projector_status SET {keep_failed_or("'running'", _CHECKPOINT_NOW)},
               instance = $1, heartbeat_at = now(),
               stream_last_seq = COALESCE($2, stream_last_seq),
               stream_last_at = COALESCE($3, stream_last_at),
               pending_since = CASE WHEN $2::bigint IS NULL THEN pending_since ELSE $4 END
        WHERE id = 1
    """
    with pg_errors("projector heartbeat"):
        await conn.execute(sql, instance, stream_last_seq, stream_last_at, pending_since)


async def record_failure(conn: Any, *, reason: str, seq: int | None, instance: str) -> None:
    """Fail-stop: record why and where (sticky, see the module docstring)."""
    with pg_errors("record projector failure"):
        await conn.execute(
            """
            UPDATE projector_status SET state = 'failed', reason = $1, failed_seq = $2,
                   instance = $3, heartbeat_at = now(), updated_at = now()
            WHERE id = 1
            """,
            reason,
            seq,
            instance,
        )


async def set_state(conn: Any, state: str, *, instance: str) -> None:
    """``stopped`` / ``rebuilding`` / ``starting``; a pending fail-stop is kept."""
    if state not in STATES or state == "failed":
        raise ValueError(f"state must be one of {STATES[:1] + STATES[3:]}, not {state!r}")
    sql = f"""
        UPDATE projector_status SET {keep_failed_or("$1", _CHECKPOINT_NOW)},
               instance = $2, updated_at = now()
        WHERE id = 1
    """
    with pg_errors(f"set projector state {state}"):
        await conn.execute(sql, state, instance)
