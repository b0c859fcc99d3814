"""Resilience: PostgreSQL (stop "immediate", like a crash) and NATS go away in the middle of a
catch-up and come back; the projector retries with backoff, resumes from the checkpoint and
converges with nothing lost and nothing duplicated."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ledger import Ledger, LedgerSettings
from ledger.event import Event, Patch, Replace, new_event
from ops.embedded import NatsServer, PostgresServer
from projector import read_status
from tests.support.waiting import wait_for

from .helpers import (
    assert_projection_equals,
    assert_versions_contiguous,
    running,
    settings_for,
    stream_messages,
)


class Publisher:
    """Appends valid events quickly: raw, concurrent ``js.publish`` (chains kept locally)."""

    def __init__(self, ledger: Ledger, services: list[str]) -> None:
        self.ledger = ledger
        self.services = services
        self.last: dict[str, Event] = {}

    async def publish(self, rounds: int) -> None:
        """Publish ``rounds`` x one event per service (NATS must stay up meanwhile)."""
        for _ in range(rounds):
            events = []
            for s in self.services:
                prev = self.last.get(s)
                change = Patch({"n": prev.version}) if prev else Replace({"n": 0})
                events.append(new_event(prev, s, change, actor="t", reason="r",
                                        occurred_at=datetime.now(UTC), event_id=str(uuid.uuid4())))
            await asyncio.gather(
                *(self.ledger.js.publish(self.ledger.subject(e.service), e.to_bytes(),
                                         stream=self.ledger.settings.stream)
                  for e in events)
            )
            for e in events:
                self.last[e.service] = e


async def _checkpoint(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=2)
    try:
        return int(await conn.fetchval("SELECT last_seq FROM projector_checkpoint") or 0)
    finally:
        await conn.close()


async def _stream_last(ledger: Ledger) -> int:
    return int((await ledger.js.stream_info(ledger.settings.stream)).state.last_seq)


async def test_postgres_and_nats_outages_during_projection(
    nats_server: NatsServer, ledger: Ledger, provisioned: LedgerSettings, private_pg: PostgresServer
) -> None:
    url = private_pg.url()
    settings = settings_for(provisioned, url, heartbeat_ms=200, retry_max_ms=1000, batch_size=100)
    publisher = Publisher(ledger, [f"res-{i:02d}" for i in range(20)])
    await publisher.publish(10)

    async def applied_at_least(n: int) -> bool:
        return await _checkpoint(url) >= n

    async def caught_up() -> bool:
        return await _checkpoint(url) == await _stream_last(ledger)

    async with running(settings) as run:
        await wait_for(caught_up, timeout=30, what="the first catch-up")

        # PostgreSQL crashes in the middle of a catch-up (while events keep arriving).
        start = await _stream_last(ledger)
        publishing = asyncio.create_task(publisher.publish(150))
        await wait_for(lambda: applied_at_least(start + 100), timeout=30, what="the catch-up to start")
        await asyncio.to_thread(private_pg.stop, "immediate")
        await publishing  # the rest of 3,000 events accumulate while PostgreSQL is down
        assert not run.task.done()
        await asyncio.to_thread(private_pg.start)
        await wait_for(caught_up, timeout=60, what="convergence after the PostgreSQL outage")
        assert not run.task.done(), run.task

    # NATS goes away in the middle of a catch-up: a backlog of 8,000 events (more than the
    # reader buffers), published before the projector starts so that no publish is in doubt.
    start = await _stream_last(ledger)
    await publisher.publish(400)
    total = await _stream_last(ledger)
    async with running(settings, instance="second") as run:
        await wait_for(lambda: applied_at_least(start + 200), timeout=30, what="the catch-up to start")
        await asyncio.to_thread(nats_server.stop)
        assert await _checkpoint(url) < total  # stopped in the middle
        assert not run.task.done()
        await asyncio.to_thread(nats_server.start)
        await wait_for(caught_up, timeout=60, what="convergence after the NATS outage")
        assert not run.task.done(), run.task

    async with _conn(url) as conn:
        await assert_versions_contiguous(conn)
        await assert_projection_equals(conn, await stream_messages(ledger.nc, settings))
        assert (await read_status(conn)).state == "stopped"




class _conn:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Any:
        self.conn = await asyncpg.connect(self.url)
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()
