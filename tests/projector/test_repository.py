"""Batches: rows + checkpoint in one transaction, idempotent, fenced, NOTIFY after commit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ledger.event import Replace, new_event
from projector import CheckpointMoved, DuplicateEvent, LeadershipLost
from projector.leader import LeaderLock
from projector.repository import Batch, Repository
from projector.rows import VersionRow, version_row
from projector.status import NOTIFY_CHANNEL

from .helpers import checkpoint, comparable, pg_versions, snapshot

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rows(services: list[str], per_service: int, start_seq: int = 1) -> list[VersionRow]:
    out: list[VersionRow] = []
    last: dict[str, Any] = {}
    seq = start_seq
    for v in range(per_service):
        for s in services:
            e = new_event(last.get(s), s, Replace({"v": v}), actor="a", reason="r",
                          occurred_at=T0, event_id=str(uuid.uuid4()))
            last[s] = e
            out.append(version_row(e, seq, T0 + timedelta(microseconds=seq)))
            seq += 1
    return out


async def test_a_batch_commits_rows_current_and_checkpoint_together(pg: Any) -> None:
    repo = Repository(pg, stream="S")
    assert (await repo.load()).checkpoint.last_seq == 0
    batch_rows = rows(["a", "b"], 3)
    await repo.apply(Batch(0, batch_rows[:4]))
    await repo.apply(Batch(4, batch_rows[4:]))
    assert [comparable(r) for r in await pg_versions(pg)] == [comparable(r) for r in batch_rows]
    current = {r["service"]: (r["version"], r["stream_seq"]) for r in await pg.fetch("SELECT * FROM config_current")}
    assert current == {"a": (3, 5), "b": (3, 6)}
    state = await repo.load()
    assert state.checkpoint.last_seq == 6 and state.checkpoint.last_stored_at == batch_rows[-1].stored_at
    assert state.chains["a"].version == 3 and state.chains["a"].hash == batch_rows[4].hash


async def test_applying_a_batch_again_is_a_no_op(pg: Any) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    batch = Batch(0, rows(["a"], 3))
    await repo.apply(batch)
    before = await snapshot(pg)
    with pytest.raises(CheckpointMoved):
        await repo.apply(batch)  # a redelivery, a second writer, a retry after a lost commit ack
    with pytest.raises(CheckpointMoved):
        await repo.apply(Batch(1, batch.rows[1:]))  # overlapping
    assert await snapshot(pg) == before


async def test_notify_is_sent_on_commit_with_the_checkpoint(pg: Any, database_url: str) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(NOTIFY_CHANNEL, lambda *args: got.put_nowait(args[3]))
        await repo.apply(Batch(0, rows(["a", "b"], 2)))
        assert await asyncio.wait_for(got.get(), 5) == "4"
        with pytest.raises(CheckpointMoved):
            await repo.apply(Batch(0, rows(["c"], 1)))
        await repo.apply(Batch(4, rows(["c"], 1, start_seq=5)))
        assert await asyncio.wait_for(got.get(), 5) == "5"  # the refused batch notified nothing
    finally:
        await listener.close()


async def test_a_repeated_event_id_is_refused_and_located(pg: Any) -> None:
    repo = Repository(pg, stream="S")
    await repo.checkpoint()
    first = rows(["a"], 2)
    await repo.apply(Batch(0, first))
    again = rows(["b"], 3, start_seq=3)
    again[1] = again[1]._replace(event_id=first[0].event_id)
    before = await snapshot(pg)
    with pytest.raises(DuplicateEvent):
        await repo.apply(Batch(2, again))
    assert await snapshot(pg) == before
    assert await repo.first_duplicate(again) == (1, f"event_id {first[0].event_id} appears twice in the stream")


async def test_a_batch_is_fenced_on_the_leader_lock(pg: Any, database_url: str) -> None:
    lock_conn = await asyncpg.connect(database_url)
    other = await asyncpg.connect(database_url)
    try:
        lock = LeaderLock(lock_conn)
        assert await lock.try_acquire()
        assert not await LeaderLock(other).try_acquire()  # one leader
        repo = Repository(pg, stream="S", fence=lock.fence)
        await repo.checkpoint()
        await repo.apply(Batch(0, rows(["a"], 1)))
        await lock.release()
        with pytest.raises(LeadershipLost):
            await repo.apply(Batch(1, rows(["b"], 1, start_seq=2)))
        # a fence naming someone else's lock session fails too
        assert await LeaderLock(other).try_acquire()
        with pytest.raises(LeadershipLost):
            await repo.apply(Batch(1, rows(["c"], 1, start_seq=2)))
        assert await checkpoint(pg) == 1
    finally:
        await lock_conn.close()
        await other.close()


async def test_a_dead_lock_session_releases_the_lock(database_url: str) -> None:
    holder = await asyncpg.connect(database_url)
    standby = await asyncpg.connect(database_url)
    try:
        assert await LeaderLock(holder).try_acquire()
        assert not await LeaderLock(standby).try_acquire()
        holder.terminate()  # the session ends without an unlock (like a killed process)
        lock = LeaderLock(standby)
        stop = asyncio.Event()
        assert await lock.acquire(stop, poll=0.05, timeout=5)
    finally:
        holder.terminate()
        await standby.close()
