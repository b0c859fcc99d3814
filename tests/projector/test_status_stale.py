"""`projector status` says `stale` (and exits 3) when the projector's heartbeat is old."""

from __future__ import annotations

from datetime import UTC, datetime

from projector.__main__ import _describe
from projector.status import STALE_AFTER_S, ProjectorStatus


def status(state: str, age: float | None) -> ProjectorStatus:
    now = datetime.now(UTC)
    return ProjectorStatus(
        state=state, reason=None, failed_seq=None, stream="CONFIG_LEDGER", last_applied_seq=5,
        last_applied_at=now, stream_last_seq=5, stream_last_at=now, lag_events=0, lag_seconds=0.0,
        instance="host:1", heartbeat_at=now, heartbeat_age_seconds=age, updated_at=now,
    )


def test_an_old_heartbeat_is_stale() -> None:
    old = status("running", 38.0)
    assert old.stale and old.to_dict()["stale"] is True
    assert _describe(old).splitlines()[0].startswith("state:      stale (says running, but no heartbeat for 38.0s")
    fresh = status("running", 0.8)
    assert not fresh.stale and _describe(fresh).splitlines()[0] == "state:      running"
    assert not status("running", STALE_AFTER_S).stale
    assert not status("stopped", 3600.0).stale  # a stopped projector is not stale, it is stopped
