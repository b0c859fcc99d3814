"""projector_status for /readyz and /metrics: state, lag, sticky fail-stop, wait_applied."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from projector import NotMigrated, read_status, wait_applied
from projector import status as st
from projector.repository import Batch, Repository

from .helpers import connect
from .test_repository import rows


async def test_status_of_a_fresh_projection(pg: Any) -> None:
    s = await read_status(pg)
    assert (s.state, s.last_applied_seq, s.stream_last_seq, s.lag_events, s.lag_seconds) == ("starting", 0, 0, 0, 0.0)
    assert s.reason is None and s.failed_seq is None and not s.failed
    assert s.to_dict()["state"] == "starting"


async def test_not_migrated(database_url: str) -> None:
    async with connect(database_url) as conn:
        with pytest.raises(NotMigrated):
            await read_status(conn)


async def test_lag_and_readiness(pg: Any) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    await repo.apply(Batch(0, rows(["a"], 4)))
    now = datetime.now(UTC)
    await st.heartbeat(pg, instance="h:1", stream_last_seq=10, stream_last_at=now,
                       pending_since=now - timedelta(seconds=30))
    s = await read_status(pg)
    assert (s.state, s.instance, s.last_applied_seq, s.stream_last_seq, s.lag_events) == ("running", "h:1", 4, 10, 6)
    assert 29 < s.lag_seconds < 60
    assert s.heartbeat_age_seconds is not None and s.heartbeat_age_seconds < 5
    ready, why = s.ready(max_lag_seconds=5)
    assert not ready and "lags 6 events" in why
    await st.heartbeat(pg, instance="h:1", stream_last_seq=4, stream_last_at=now, pending_since=None)
    s = await read_status(pg)
    assert (s.lag_events, s.lag_seconds) == (0, 0.0) and s.ready() == (True, "ok")


async def test_a_fail_stop_is_sticky_until_the_projection_moves_past_it(pg: Any) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    await repo.apply(Batch(0, rows(["a"], 2)))
    await st.record_failure(pg, reason="version gap", seq=3, instance="h:1")
    for write in (
        st.mark_running(pg, instance="h:2"),
        st.heartbeat(pg, instance="h:2", stream_last_seq=3, stream_last_at=None, pending_since=None),
        st.set_state(pg, "stopped", instance="h:2"),
    ):
        await write
        s = await read_status(pg)
        assert (s.state, s.reason, s.failed_seq) == ("failed", "version gap", 3)
        assert s.ready()[0] is False and "failed at stream sequence 3" in s.ready()[1]
    await repo.apply(Batch(2, rows(["b"], 1, start_seq=3)))  # the stream was repaired: seq 3 applied
    s = await read_status(pg)
    assert (s.state, s.reason, s.failed_seq) == ("running", None, None)


async def test_wait_applied_wakes_on_the_commit(pg: Any, database_url: str) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    reader = await asyncpg.connect(database_url)
    try:
        assert await wait_applied(reader, 1, timeout=0.05) is False
        waiter = asyncio.create_task(wait_applied(reader, 3, timeout=10))
        await repo.apply(Batch(0, rows(["a"], 2)))  # seq 2: not enough
        await repo.apply(Batch(2, rows(["b", "c"], 1, start_seq=3)))
        assert await asyncio.wait_for(waiter, 10) is True
        assert await wait_applied(reader, 2, timeout=0.05) is True  # already applied
    finally:
        await reader.close()
