"""One active projector: two runner processes, one holds the lock; kill -9 the active one and
the standby applies the next event within 2 s; no event is applied twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg

from ledger import Ledger, Patch, Replace
from projector import NOTIFY_CHANNEL, ProjectorSettings, read_status
from projector.leader import LEADER_KEY, LOCK_NAMESPACE
from tests.support.waiting import wait_for

from .helpers import (
    Processes,
    assert_projection_equals,
    assert_versions_contiguous,
    checkpoint,
    env_for,
    stream_messages,
)

SERVICES = [f"ha-{i}" for i in range(5)]


async def _lock_holders(pg: Any) -> list[int]:
    rows = await pg.fetch(
        """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = $1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.objid::bigint = $2 AND l.objsubid = 2""",
        LOCK_NAMESPACE,
        LEADER_KEY,
    )
    return [int(r["application_name"].rsplit(":", 1)[1]) for r in rows]


async def _active_pid(pg: Any) -> int | None:
    status = await read_status(pg)
    if status.state != "running" or not status.instance:
        return None
    return int(status.instance.rsplit(":", 1)[1])


async def test_standby_takes_over_within_two_seconds(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, database_url: str, procs: Processes
) -> None:
    env = env_for(projector_settings)
    runners = {p.pid: p for p in (procs.spawn(env, "run"), procs.spawn(env, "run"))}

    notified: list[int] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *a: notified.append(int(a[3])))
    writing = True

    async def writer() -> None:
        n = 0
        await asyncio.gather(*(ledger.append(s, Replace({"n": 0}), actor="t") for s in SERVICES))
        while writing:
            n += 1
            await asyncio.gather(*(ledger.append(s, Patch({"n": n}), actor="t") for s in SERVICES))

    task = asyncio.create_task(writer())
    try:
        await wait_for(lambda: _active_pid(pg), timeout=30, what="one runner to become active")
        await wait_for(lambda: _above(checkpoint(pg), 100), timeout=30, what="projection to progress")
        active = await _active_pid(pg)
        assert active in runners
        (standby,) = set(runners) - {active}
        assert await _lock_holders(pg) == [active]  # exactly one leader; the other waits
        assert runners[standby].poll() is None

        killed_at = time.monotonic()
        procs.kill9(runners[active])
        applied_at_kill = await checkpoint(pg)  # the dead process can commit nothing more
        await wait_for(lambda: _above(checkpoint(pg), applied_at_kill), timeout=10, what="the standby to take over")
        takeover = time.monotonic() - killed_at
        assert takeover < 2.0, f"standby applied the next event {takeover:.2f}s after the kill"
        await wait_for(lambda: _equals(_active_pid(pg), standby), timeout=5, what="status to name the standby")
        assert await _lock_holders(pg) == [standby]
        await wait_for(lambda: _above(checkpoint(pg), applied_at_kill + 100), timeout=30, what="more progress")
    finally:
        writing = False
        await task
    last = (await ledger.js.stream_info(ledger.settings.stream)).state.last_seq
    await wait_for(lambda: _equals(checkpoint(pg), last), timeout=30, what="the standby to catch up")
    with contextlib.suppress(Exception):
        await listener.close()

    await assert_versions_contiguous(pg)
    await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))
    assert notified == sorted(set(notified)), "a sequence was committed twice"
    assert runners[standby].poll() is None, procs.stderr(runners[standby])


async def _above(value: Any, limit: int) -> bool:
    return bool(await value > limit)


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)
