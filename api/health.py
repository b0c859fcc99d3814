"""Readiness: NATS connected, PostgreSQL reachable, projector running and not too far behind.

The lag is measured against the stream itself (its last sequence, and the store time of the
first unprojected event), not against what the projector last wrote about itself: a projector
that died keeps reporting the lag it had.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger import Ledger, LedgerError, nats_io
from projector.status import ProjectorStatus

from .follower import StreamFollower
from .projection_wait import ProjectionFeed
from .repository import Repository
from .settings import ApiSettings

__all__ = ["Readiness", "check_readiness"]

_CHECK_TIMEOUT = 2.0


@dataclass
class Readiness:
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    lag_events: int | None = None
    lag_seconds: float | None = None
    failed: bool = False

    @property
    def ready(self) -> bool:
        return not self.reasons

    def body(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not_ready", "reasons": self.reasons, "checks": self.checks}


async def _status(repo: Repository) -> ProjectorStatus:
    return await asyncio.wait_for(repo.status(), _CHECK_TIMEOUT)


async def check_readiness(
    settings: ApiSettings, ledger: Ledger, repo: Repository, feed: ProjectionFeed, follower: StreamFollower
) -> Readiness:
    r = Readiness()
    nats_ok = ledger.nc.is_connected
    r.checks["nats"] = {"connected": nats_ok}
    if not nats_ok:
        r.reasons.append("NATS is not connected")

    status: ProjectorStatus | None = None
    try:
        status = await _status(repo)
        r.checks["postgres"] = {"reachable": True}
    except (LedgerError, OSError) as exc:
        r.checks["postgres"] = {"reachable": False, "error": str(exc)}
        r.reasons.append(f"PostgreSQL is not reachable: {exc}")

    r.checks["follower"] = {"caught_up": follower.caught_up, "stream_seq": follower.seq}
    r.checks["feed"] = {"live": feed.live, "projected_seq": feed.seq}
    if not feed.live:
        r.reasons.append(f"the projection feed (LISTEN/NOTIFY) is not connected: {feed.last_error}")

    if status is None:
        return r
    stream_last: int | None = None
    first_pending_at: datetime | None = None
    if nats_ok:
        try:
            stream_last = await nats_io.stream_last_seq(ledger.nc, ledger.settings.stream)
            if stream_last > status.last_applied_seq:
                msg = await nats_io.direct_next(
                    ledger.nc, ledger.settings.stream, ledger.settings.subject_wildcard,
                    status.last_applied_seq + 1, timeout=_CHECK_TIMEOUT,
                )
                first_pending_at = msg.stored_at if msg else None
        except LedgerError as exc:
            r.reasons.append(f"NATS did not answer the stream query: {exc}")
    if stream_last is None:  # NATS unreachable: the projector's last report is all there is
        r.lag_events, r.lag_seconds = status.lag_events, status.lag_seconds
        stream_last = status.stream_last_seq
    else:
        r.lag_events = max(0, stream_last - status.last_applied_seq)
        r.lag_seconds = (
            max(0.0, (datetime.now(UTC) - first_pending_at).total_seconds()) if first_pending_at else 0.0
        )
    r.failed = status.state == "failed"
    r.checks["projector"] = {
        "state": status.state,
        "reason": status.reason,
        "failed_seq": status.failed_seq,
        "last_seq": status.last_applied_seq,
        "stream_last_seq": stream_last,
        "lag_events": r.lag_events,
        "lag_seconds": round(r.lag_seconds, 3),
        "instance": status.instance,
        "heartbeat_age_seconds": status.heartbeat_age_seconds,
    }
    if r.failed:
        where = f" at stream sequence {status.failed_seq}" if status.failed_seq is not None else ""
        r.reasons.append(f"the projector has fail-stopped{where}: {status.reason or 'no reason given'}")
    if r.lag_events > settings.ready_max_lag:
        r.reasons.append(
            f"the projector is {r.lag_events} events behind (limit {settings.ready_max_lag})"
        )
    if r.lag_seconds > settings.ready_max_lag_seconds:
        r.reasons.append(
            f"the oldest unprojected event is {r.lag_seconds:.1f} s old "
            f"(limit {settings.ready_max_lag_seconds:g} s)"
        )
    return r
