"""Rebuild under concurrent reads: a reader polling every service throughout never sees a
missing service or a version older than it saw before; the running projector steps down for the
rebuild and resumes from the rebuilt checkpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from ledger import Ledger, Patch, Replace
from projector import ProjectorSettings, read_status, rebuild
from tests.support.waiting import wait_for

from .helpers import (
    assert_projection_equals,
    assert_versions_contiguous,
    checkpoint,
    running,
    stream_messages,
)

SERVICES = [f"rb-{i:02d}" for i in range(20)]


async def _indexes(pg: Any) -> set[str]:
    rows = await pg.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename IN ('config_versions', 'config_current')"
    )
    return {r["indexname"] for r in rows}


async def _caught_up(ledger: Ledger, pg: Any) -> bool:
    last = (await ledger.js.stream_info(ledger.settings.stream)).state.last_seq
    return bool(await checkpoint(pg) == last)


async def test_rebuild_swaps_without_readers_seeing_a_gap_or_going_back(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, database_url: str
) -> None:
    await asyncio.gather(*(ledger.append(s, Replace({"v": 0}), actor="t") for s in SERVICES))
    for n in range(1, 40):
        await asyncio.gather(*(ledger.append(s, Patch({"v": n}), actor="t") for s in SERVICES))

    async with running(projector_settings) as run:
        await wait_for(lambda: _caught_up(ledger, pg), timeout=30, what="the projection to catch up")
        table_before = await pg.fetchval("SELECT 'config_versions'::regclass::oid")
        indexes_before = await _indexes(pg)
        sessions_before = run.projector.sessions

        seen: dict[str, int] = {}
        seen_rows = 0
        problems: list[str] = []
        polls = 0
        reading = True

        async def reader() -> None:
            nonlocal polls, seen_rows
            conn = await asyncpg.connect(database_url)  # prepared statements cached, as an API would
            try:
                while reading:
                    try:
                        rows = await conn.fetch("SELECT service, version FROM config_current")
                        count = await conn.fetchval("SELECT count(*) FROM config_versions")
                    except asyncpg.PostgresError as exc:  # e.g. a table missing mid-swap
                        problems.append(f"read failed: {exc!r}")
                        polls += 1
                        continue
                    current = {r["service"]: r["version"] for r in rows}
                    for service, version in seen.items():
                        if service not in current:
                            problems.append(f"{service} missing")
                        elif current[service] < version:
                            problems.append(f"{service} went back from {version} to {current[service]}")
                    if count < seen_rows:
                        problems.append(f"config_versions shrank from {seen_rows} to {count}")
                    seen.update(current)
                    seen_rows = max(seen_rows, count)
                    polls += 1
            finally:
                await conn.close()

        writing = True

        async def writer() -> None:  # the stream keeps growing during the rebuild
            n = 100
            while writing:
                n += 1
                await asyncio.gather(*(ledger.append(s, Patch({"w": n}), actor="t") for s in SERVICES[:5]))

        reads = asyncio.create_task(reader())
        writes = asyncio.create_task(writer())
        try:
            await wait_for(lambda: polls > 5, timeout=10, what="the reader to start")
            progress: list[tuple[int, int]] = []
            polls_before = polls
            result = await rebuild(
                projector_settings, instance="rebuild-test", on_progress=lambda d, t: progress.append((d, t))
            )
            polls_during = polls - polls_before
            await wait_for(lambda: polls > polls_before + polls_during + 5, timeout=10, what="reads after the swap")
            writing = False
            await writes
            await wait_for(lambda: _caught_up(ledger, pg), timeout=30, what="the projector to resume")
        finally:
            writing = reading = False
            await asyncio.gather(reads, writes, return_exceptions=True)
        assert reads.exception() is None and writes.exception() is None

        assert problems == []
        assert polls_during > 10, polls_during
        assert result.events >= 800 and result.services == 20 and result.last_seq >= 800
        assert progress[0] == (0, result.last_seq) and progress[-1] == (result.last_seq, result.last_seq)
        assert await pg.fetchval("SELECT 'config_versions'::regclass::oid") != table_before  # swapped
        assert await _indexes(pg) == indexes_before  # the live names survive the swap
        assert await pg.fetchval("SELECT to_regclass('config_versions_rebuild')") is None
        assert run.projector.sessions > sessions_before, "the runner never stepped down"
        assert not run.task.done()
        await assert_versions_contiguous(pg)
        await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))
        assert (await read_status(pg)).state == "running"
