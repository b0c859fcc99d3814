"""``projection_problems`` (PostgreSQL vs the stream) on hand-made tables: it can fail."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson

from ledger.event import Event, Replace, new_event
from ledger.nats_io import StoredMsg

from .stack import migrate_db, projection_problems

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stream(n: int, service: str = "svc") -> list[StoredMsg]:
    msgs, prev = [], None
    for i in range(n):
        prev = new_event(prev, service, Replace({"w": f"m{i}"}), actor="t", reason="r",
                         occurred_at=T0, event_id=f"00000000-0000-4000-8000-{i:012d}")
        msgs.append(StoredMsg(f"config.events.{service}", i + 1, prev.to_bytes(), T0, {}))
    return msgs


async def project(conn: asyncpg.Connection, msgs: list[StoredMsg]) -> None:
    """What a correct projector leaves behind, written by hand."""
    latest: dict[str, tuple[int, Event]] = {}
    for m in msgs:
        e = Event.from_bytes(m.data)
        await conn.execute(
            "INSERT INTO config_versions (stream_seq, service, version, kind, change, config, actor, "
            "reason, occurred_at, stored_at, event_id, prev_hash, hash) "
            "VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7,$8,$9,$10,$11::uuid,$12,$13)",
            m.seq, e.service, e.version, e.kind.value, orjson.dumps(e.change).decode(),
            orjson.dumps(e.config).decode(), e.actor, e.reason, e.occurred_at, m.stored_at,
            e.event_id, e.prev_hash, e.hash)
        latest[e.service] = (m.seq, e)
    for service, (seq, e) in latest.items():
        await conn.execute(
            "INSERT INTO config_current (service, version, kind, config, hash, actor, reason, "
            "updated_at, stored_at, stream_seq) VALUES ($1,$2,$3,$4::jsonb,$5,$6,$7,$8,$9,$10)",
            service, e.version, e.kind.value, orjson.dumps(e.config).decode(), e.hash, e.actor,
            e.reason, e.occurred_at, T0, seq)
    await conn.execute(
        "INSERT INTO projector_checkpoint (id, stream, last_seq) VALUES (1, 'CONFIG_LEDGER', $1) "
        "ON CONFLICT (id) DO UPDATE SET last_seq = EXCLUDED.last_seq", msgs[-1].seq if msgs else 0)


async def test_projection_check_passes_then_fails_on_each_kind_of_divergence(database_url: str) -> None:
    await migrate_db(database_url)
    msgs = stream(5)
    conn = await asyncpg.connect(database_url)
    try:
        await project(conn, msgs)
        assert await projection_problems(database_url, msgs) == []

        await conn.execute("DELETE FROM config_versions WHERE stream_seq = 3")
        found = await projection_problems(database_url, msgs)
        assert any("missing seqs [3]" in p for p in found), found
        await conn.execute("DELETE FROM config_versions")
        await conn.execute("DELETE FROM config_current")
        await project(conn, msgs)

        await conn.execute("UPDATE config_versions SET config = '{\"w\": \"x\"}' WHERE stream_seq = 2")
        found = await projection_problems(database_url, msgs)
        assert any("differing seqs [2]" in p for p in found), found
        await conn.execute("DELETE FROM config_versions")
        await conn.execute("DELETE FROM config_current")
        await project(conn, msgs)

        await conn.execute("UPDATE config_current SET version = 4")
        found = await projection_problems(database_url, msgs)
        assert any("config_current" in p for p in found), found
        await conn.execute("DELETE FROM config_versions")
        await conn.execute("DELETE FROM config_current")
        await project(conn, msgs)

        await conn.execute("UPDATE projector_checkpoint SET last_seq = 4")
        found = await projection_problems(database_url, msgs)
        assert any("checkpoint 4" in p for p in found), found
        # Extra rows (a projection of a stream that has since lost messages) are reported too.
        assert any("extra seqs [5]" in p for p in await projection_problems(database_url, msgs[:4]))
    finally:
        await conn.close()
