"""Property: a change set is visible all-or-nothing in PostgreSQL while the projector applies it.

Change sets of random sizes (mixed with single writes) are appended while the projector is
stopped; then a projector with batches *smaller* than the sets catches up while a reader polls
PostgreSQL. Every snapshot the reader takes (one statement: one snapshot) shows each set either
complete or absent, and every checkpoint the projector ever committed (recorded by a trigger in
the same transaction) lies on a set boundary.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, Replace
from ledger.changeset import Member, commit
from projector import ProjectorSettings
from tests.support.waiting import wait_for

from .helpers import checkpoint, running

_counter = itertools.count()

_LOG = """
CREATE TABLE IF NOT EXISTS test_checkpoint_log (seq bigint NOT NULL);
CREATE OR REPLACE FUNCTION test_log_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO test_checkpoint_log VALUES (NEW.last_seq); RETURN NEW; END $$;
DROP TRIGGER IF EXISTS test_log_checkpoint ON projector_checkpoint;
CREATE TRIGGER test_log_checkpoint AFTER UPDATE ON projector_checkpoint
    FOR EACH ROW EXECUTE FUNCTION test_log_checkpoint();
"""

_SNAPSHOT = """
SELECT (SELECT coalesce(json_object_agg(service, version), '{}') FROM config_current) AS current,
       (SELECT coalesce(json_object_agg(cs, n), '{}') FROM
           (SELECT changeset_id::text AS cs, count(*) AS n FROM config_versions
             WHERE changeset_id IS NOT NULL GROUP BY changeset_id) x) AS sets
"""


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(plan=st.lists(st.tuples(st.integers(1, 7), st.booleans()), min_size=2, max_size=8))
async def test_a_change_set_is_visible_all_or_nothing(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, plan: list[tuple[int, bool]]
) -> None:
    await pg.execute(_LOG)
    await pg.execute("TRUNCATE test_checkpoint_log")
    tag = f"{next(_counter)}{uuid.uuid4().hex[:5]}"
    pool = [f"cs{tag}-{i}" for i in range(7)]
    sets: list[tuple[str, list[tuple[str, int]], int, int]] = []
    for n, single_between in plan:
        done = await commit(ledger, [Member(s, Replace({"n": n, "tag": tag})) for s in pool[:n]],
                            actor="prop", reason="set")
        members = [(m.event.service, m.event.version) for m in done.members]
        sets.append((done.changeset_id, members, done.members[0].seq, done.members[-1].seq))
        if single_between:
            await ledger.append(pool[-1], Replace({"single": n}), actor="prop", reason="single")
    head = (await ledger.js.stream_info(ledger.settings.stream)).state.last_seq

    small = projector_settings.model_copy(update={"batch_size": 3, "batch_delay_ms": 5})
    snapshots: list[tuple[dict[str, int], dict[str, int]]] = []
    done_reading = asyncio.Event()

    async def reader() -> None:
        conn = await asyncpg.connect(projector_settings.database_url)
        try:
            while not done_reading.is_set():
                row = await conn.fetchrow(_SNAPSHOT)
                snapshots.append((_json(row["current"]), _json(row["sets"])))
        finally:
            await conn.close()

    async with running(small):
        task = asyncio.create_task(reader())
        try:
            await wait_for(lambda: _at(pg, head), timeout=30, what="projector to catch up")
        finally:
            done_reading.set()
            await task
    assert snapshots
    for current, counts in snapshots:
        for cs, members, _, _ in sets:
            shown = [current.get(s, 0) >= v for s, v in members]
            assert all(shown) or not any(shown), (cs, members, current)
            assert counts.get(cs, 0) in (0, len(members))
    logged = [r["seq"] for r in await pg.fetch("SELECT seq FROM test_checkpoint_log")]
    assert logged and logged[-1] == head
    for seq in logged:
        for cs, _, first, last in sets:
            assert not first <= seq < last, f"checkpoint {seq} inside change set {cs} ({first}..{last})"


def _json(value: Any) -> dict[str, int]:
    import orjson

    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)


async def _at(pg: Any, seq: int) -> bool:
    return await checkpoint(pg) >= seq
