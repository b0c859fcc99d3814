"""Scenario 7: poison published straight to a service subject → the projector fail-stops.

Someone bypasses the ledger and publishes (a) a message that is not an event, or (b) a
well-formed event that breaks the hash chain. The projector must stop at it (exit non-zero,
``projector_status`` failed at that sequence), /readyz turns red, and everything before the
poison stays intact in PostgreSQL; a restarted projector refuses again instead of skipping it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import nats
import pytest

from ledger.event import Event, event_hash, format_time
from ledger.nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID

from .conftest import FaultReport
from .scenario import Load
from .stack import SETTINGS, Stack, pg_rows, projection_problems, to_stream_events

VICTIM, BYSTANDER = "victim", "bystander"


def chain_breaking(last: Event) -> bytes:
    """The next version of ``last``'s service, self-consistent (hash recomputes) but with a
    ``prev_hash`` that is not ``last.hash``."""
    fields: dict[str, Any] = last.to_dict()
    fields.update(
        event_id="00000000-0000-4000-8000-0000000000bd",
        version=last.version + 1,
        kind="replaced",
        change={"w": "forged"},
        config={"w": "forged"},
        occurred_at=format_time(datetime.now(UTC)),
        prev_hash="sha256:" + "0" * 64,
    )
    fields.pop("hash")
    fields["hash"] = event_hash(fields)
    forged = Event.from_dict(fields)
    assert forged.hash_ok() and forged.prev_hash != last.hash
    return forged.to_bytes()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("poison", ["not_an_event", "broken_chain"])
async def test_poison_message_fail_stops_the_projector(
    stack: Stack, fault_report: FaultReport, poison: str
) -> None:
    stack.start_projector()
    stack.start_api()
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    victim, bystander = await load.http_writers([VICTIM, BYSTANDER], per_service=1)
    for _ in range(4):
        assert (await victim.write_one()).status == 200
        assert (await bystander.write_one()).status == 200
    before = await stack.wait_projection_idle()
    last_victim = [m for m in before if m.subject == SETTINGS.subject(VICTIM)][-1]

    body = b"this is not an event" if poison == "not_an_event" else chain_breaking(
        Event.from_bytes(last_victim.data))
    nc = await nats.connect(stack.nats.url)
    try:
        ack = await nc.jetstream().publish(
            SETTINGS.subject(VICTIM), body, stream=SETTINGS.stream,
            headers={MSG_ID: "poison-1", EXPECTED_LAST_SUBJECT_SEQ: str(last_victim.seq)})
    finally:
        await nc.close()
    poison_seq = ack.seq

    projector = stack.projector
    assert projector is not None
    await stack.wait_exit(projector, timeout=30, what="the projector to fail-stop (exit)")
    assert projector.returncode not in (0, None), f"fail-stop must exit non-zero: {projector.returncode}"
    rows = await pg_rows(stack.database_url)
    assert rows["status"]["state"] == "failed", rows["status"]
    assert rows["status"]["failed_seq"] == poison_seq, rows["status"]
    # Everything before the poison is intact; nothing of it or after it was applied.
    assert await projection_problems(stack.database_url, before) == []
    status, body_json = await stack.readyz()
    assert status == 503, body_json
    assert "fail" in str(body_json).lower(), body_json
    # The API still serves what was projected before the poison.
    await load.http_readers([BYSTANDER])
    op = await load.readers[-1].read()
    assert op.outcome == "ok" and op.version == 4, op

    # A restart does not skip the poison.
    projector.start()
    await stack.wait_exit(projector, timeout=30, what="the restarted projector to refuse")
    assert projector.returncode not in (0, None)
    assert await projection_problems(stack.database_url, before) == []
    rows = await pg_rows(stack.database_url)
    assert rows["status"]["state"] == "failed" and rows["status"]["failed_seq"] == poison_seq

    # The history up to the poison checks out (the poison itself is not one of our writes).
    events = [e for e in to_stream_events(await stack.stream_msgs()) if e.seq != poison_seq]
    await load.close()
    await load.verify(fault_report, projection=False, stream=events)
    fault_report.set(poison=poison, poison_seq=poison_seq, projector_exit=projector.returncode,
                     readyz=status)
