"""Scenario 11: atomic change sets under kill -9 of nats-server and of the projector.

A writer commits change sets of 2-6 services (``ledger.changeset.commit``, each logical set with
a fixed id, retried with that id while the outcome is unknown); the projector runs with batches
of 3 events, smaller than most sets. Cycles of: kill -9 nats-server at a random moment and
restart it on the same store; kill -9 the projector at a random moment and restart it. A reader
polls PostgreSQL (one statement, one snapshot) the whole time.

Then: every acknowledged set is in the stream whole, once, on consecutive sequences; every set
in the stream is whole (nothing half-stored); no snapshot ever showed part of a set in
PostgreSQL; and PostgreSQL equals the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import orjson
import pytest

from ledger import Ledger, LedgerSettings, Replace
from ledger.changeset import Member, commit, member_event_id
from ledger.errors import LedgerError, Unavailable
from ledger.event import Event
from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport
from .stack import Stack

SERVICES = [f"cs-{i}" for i in range(8)]
PROJECTOR_ENV = {"PROJECTOR_BATCH_SIZE": "3", "PROJECTOR_BATCH_DELAY_MS": "5"}
_SNAPSHOT = """
SELECT (SELECT coalesce(json_object_agg(changeset_id::text, n), '{}') FROM
           (SELECT changeset_id, count(*) AS n FROM config_versions
             WHERE changeset_id IS NOT NULL GROUP BY changeset_id) x) AS sets
"""


@dataclass
class Outcomes:
    sizes: dict[str, int] = field(default_factory=dict)  # changeset id -> members (every attempted set)
    acked: dict[str, list[int]] = field(default_factory=dict)  # changeset id -> stored sequences
    unknown: set[str] = field(default_factory=set)
    attempts: int = 0


async def _writer(led: Ledger, out: Outcomes, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        members = [Member(s, Replace({"n": n, "s": s})) for s in random.sample(SERVICES, random.randint(2, 6))]
        cs = str(uuid.uuid4())
        out.sizes[cs] = len(members)
        deadline = time.monotonic() + 40
        while True:
            out.attempts += 1
            try:
                done = await commit(led, members, actor="s11", reason=f"set {n}", changeset_id=cs)
                out.acked[cs] = [m.seq for m in done.members]
                out.unknown.discard(cs)
                break
            except (TimeoutError, Unavailable, LedgerError, OSError):
                out.unknown.add(cs)  # outcome unknown until a retry with the same id answers
                if time.monotonic() > deadline or stop.is_set():
                    return
                await asyncio.sleep(0.05)
        await asyncio.sleep(random.uniform(0, 0.01))


async def _reader(database_url: str, sizes: dict[str, int], partial: list[str], stop: asyncio.Event) -> int:
    snapshots = 0
    while not stop.is_set():
        try:
            conn = await asyncpg.connect(database_url, timeout=2)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                counts = orjson.loads(await conn.fetchval(_SNAPSHOT))
                snapshots += 1
                partial.extend(f"{cs}: {n} of {sizes.get(cs)}" for cs, n in counts.items() if n != sizes.get(cs))
                await asyncio.sleep(0.005)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
    return snapshots


@pytest.mark.timeout(150 + 90 * SCALE)
async def test_change_sets_survive_kill9_of_nats_and_projector(stack: Stack, fault_report: FaultReport) -> None:
    stack.start_projector(env=PROJECTOR_ENV)
    out = Outcomes()
    partial: list[str] = []
    stop_writer, stop_reader = asyncio.Event(), asyncio.Event()
    settings = LedgerSettings(nats_url=stack.nats.url, request_timeout=2)
    async with Ledger.connect(settings=settings) as led:
        writer = asyncio.create_task(_writer(led, out, stop_writer))
        reader = asyncio.create_task(_reader(stack.database_url, out.sizes, partial, stop_reader))
        nats_kills = projector_kills = 0
        for _ in range(4 * SCALE):
            await _wait_progress(out, 3)
            await asyncio.sleep(random.uniform(0.05, 0.4))
            stack.nats.kill()
            nats_kills += 1
            await asyncio.sleep(random.uniform(0.1, 0.4))
            stack.nats.start()
            await _wait_progress(out, 3)
            await asyncio.sleep(random.uniform(0.0, 0.3))
            assert stack.projector is not None
            stack.projector.kill()
            projector_kills += 1
            await asyncio.sleep(random.uniform(0.05, 0.3))
            stack.start_projector()
        await _wait_progress(out, 3)
        stop_writer.set()
        await asyncio.wait_for(writer, 60)
        msgs = await stack.wait_projection_idle(timeout=60)
        stop_reader.set()
        snapshots = await asyncio.wait_for(reader, 30)

    events = [(m.seq, Event.from_bytes(m.data)) for m in msgs]
    by_set: dict[str, list[tuple[int, Event]]] = {}
    for seq, e in events:
        if e.changeset_id is not None:
            by_set.setdefault(e.changeset_id, []).append((seq, e))
    problems: list[str] = []
    for cs, seqs in out.acked.items():
        stored = by_set.get(cs, [])
        if [s for s, _ in stored] != seqs:
            problems.append(f"acknowledged set {cs} stored at {[s for s, _ in stored]}, acked at {seqs}")
    for cs, stored in by_set.items():
        seqs = [s for s, _ in stored]
        size = stored[0][1].changeset_size
        if len(stored) != size or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            problems.append(f"set {cs} stored in part or apart: {seqs} (size {size})")
        if [e.event_id for _, e in stored] != [member_event_id(cs, i) for i in range(len(stored))]:
            problems.append(f"set {cs} members out of order or foreign")
    ids = Counter(e.event_id for _, e in events)
    problems += [f"event {i} stored {n} times" for i, n in ids.items() if n > 1]
    problems += await stack.projection_problems()
    fault_report.set(
        sets_attempted=len(out.sizes), sets_acked=len(out.acked), sets_unknown=len(out.unknown),
        sets_in_stream=len(by_set), attempts=out.attempts, nats_kills=nats_kills,
        projector_kills=projector_kills, pg_snapshots=snapshots, partial_snapshots=len(partial),
    )
    assert not partial, f"PostgreSQL showed part of a change set: {partial[:5]}"
    assert not problems, problems
    assert len(out.acked) >= 8 * SCALE, f"too few sets acknowledged to mean anything: {len(out.acked)}"
    assert snapshots > 0


async def _wait_progress(out: Outcomes, n: int, timeout: float = 40.0) -> None:
    """Wait for ``n`` more acknowledged sets (writes flow again)."""
    target = len(out.acked) + n
    await wait_for(lambda: len(out.acked) >= target, timeout=timeout, what=f"{target} acknowledged sets")


@pytest.mark.timeout(120)
async def test_a_batch_cut_by_kill9_of_nats_stores_nothing_and_its_retry_stores_it_whole(stack: Stack) -> None:
    """Deterministic mid-set crash: the first members of a batch reach the server (flushed),
    then nats-server is killed before the commit. After the restart nothing of the set is in
    the stream; the retry with the same change-set id stores it once, whole."""
    from ledger.changeset import BATCH_ID, BATCH_SEQ, decide
    from ledger.nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID, stream_last_seq

    settings = LedgerSettings(nats_url=stack.nats.url, request_timeout=2)
    for cycle in range(2):
        members = [Member(s, Replace({"cycle": cycle})) for s in SERVICES[:5]]
        cs = str(uuid.uuid4())
        async with Ledger.connect(settings=settings) as led:
            before = await stream_last_seq(led.nc, settings.stream)
            decided = await decide(led, members, changeset_id=cs, actor="s11", reason="cut")
            assert isinstance(decided, list)
            for i, d in enumerate(decided[:3], start=1):  # never the commit
                await led.nc.publish(led.subject(d.member.service), d.event.to_bytes(), headers={
                    BATCH_ID: f"{cs}.cut", BATCH_SEQ: str(i), MSG_ID: d.event.event_id,
                    EXPECTED_LAST_SUBJECT_SEQ: str(d.expected_seq)})
            await led.nc.flush()
            stack.nats.kill()
        stack.nats.start()
        async with Ledger.connect(settings=settings) as led:
            assert await stream_last_seq(led.nc, settings.stream) == before, "part of a cut batch was stored"
            done = await commit(led, members, actor="s11", reason="retry", changeset_id=cs)
            assert not done.duplicate
            seqs = [m.seq for m in done.members]
            assert seqs == list(range(before + 1, before + 6))
            assert await stream_last_seq(led.nc, settings.stream) == before + 5
