"""Fail-stop: a message that cannot be applied stops the projector, recorded, with PostgreSQL
holding exactly what it held before that message; a restart refuses again; rebuild is the fix."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import Ledger, Patch, Replace
from ledger.errors import ProjectionDiverged
from ledger.event import Event, event_hash, format_time, idempotency_event_id
from ledger.exit_codes import ExitCode
from ops.embedded import NatsServer
from projector import EventMismatch, ProjectorSettings, StreamRegression, read_status
from tests.conftest import provision
from tests.support.waiting import wait_for

from .helpers import (
    Processes,
    assert_projection_equals,
    checkpoint,
    env_for,
    running,
    snapshot,
    stream_messages,
    wait_exit,
)

VICTIM, BYSTANDER = "victim", "bystander"


def next_fields(last: Event) -> dict[str, Any]:
    """A self-consistent next event of ``last``'s service, as a dict (hash not yet set)."""
    fields = last.to_dict()
    fields.update(
        event_id=str(uuid.uuid4()),
        version=last.version + 1,
        kind="replaced",
        change={"forged": True},
        config={"forged": True},
        occurred_at=format_time(datetime.now(UTC)),
        prev_hash=last.hash,
    )
    return fields


def hashed(fields: dict[str, Any]) -> bytes:
    fields = dict(fields)
    fields["hash"] = event_hash(fields)
    return Event.from_dict(fields).to_bytes()


def broken_chain(last: Event) -> tuple[str, bytes]:
    return VICTIM, hashed({**next_fields(last), "prev_hash": "sha256:" + "0" * 64})


def version_gap(last: Event) -> tuple[str, bytes]:
    return VICTIM, hashed({**next_fields(last), "version": last.version + 2})


def not_an_event(last: Event) -> tuple[str, bytes]:
    return VICTIM, b'{"hello": "world"}'


def altered(last: Event) -> tuple[str, bytes]:
    body = Event.from_bytes(hashed(next_fields(last))).to_dict()
    body["reason"] = "changed after hashing"
    return VICTIM, Event.from_dict(body).to_bytes()


def wrong_subject(last: Event) -> tuple[str, bytes]:
    return BYSTANDER, hashed(next_fields(last))  # a victim event on the bystander's subject


def repeated_event_id(last: Event) -> tuple[str, bytes]:
    """A valid next event reusing the event_id of the victim's first event."""
    return VICTIM, hashed({**next_fields(last), "event_id": idempotency_event_id(VICTIM, "first")})


CASES: dict[str, tuple[Callable[[Event], tuple[str, bytes]], str]] = {
    "broken_chain": (broken_chain, "broken hash chain"),
    "version_gap": (version_gap, "version gap"),
    "not_an_event": (not_an_event, "not a valid event"),
    "altered_hash": (altered, "does not recompute"),
    "wrong_subject": (wrong_subject, "published on the subject of 'bystander'"),
    "repeated_event_id": (repeated_event_id, "appears twice in the stream"),
}


async def poisoned_stream(ledger: Ledger, make: Callable[[Event], tuple[str, bytes]]) -> int:
    """Good events, the poison (published straight to a subject, no CAS headers), good events."""
    for i in range(3):
        key = "first" if i == 0 else None  # a known event_id (see repeated_event_id)
        await ledger.append(VICTIM, Replace({"i": i}), actor="t", idempotency_key=key)
        await ledger.append(BYSTANDER, Replace({"i": i}), actor="t")
    last = await ledger.current(VICTIM)
    assert last is not None
    service, body = make(last)
    ack = await ledger.js.publish(ledger.subject(service), body, stream=ledger.settings.stream)
    for i in range(3):  # after the poison: must never be applied
        await ledger.append(BYSTANDER, Patch({"after": i}), actor="t")
    return int(ack.seq)


@pytest.mark.parametrize("case", list(CASES))
async def test_poison_stops_the_projector_and_keeps_the_good_prefix(
    case: str, ledger: Ledger, projector_settings: ProjectorSettings, pg: Any
) -> None:
    make, reason = CASES[case]
    poison = await poisoned_stream(ledger, make)
    messages = await stream_messages(ledger.nc, projector_settings)

    # Everything is on the stream before the projector starts: one batch holds the good prefix,
    # the poison and the events after it, so the good part of that batch must be committed.
    async with running(projector_settings) as run:
        error = await _ended(run)
    assert isinstance(error, ProjectionDiverged), error
    assert error.seq == poison and reason in error.message
    await assert_projection_equals(pg, messages[: poison - 1])
    status = await read_status(pg)
    assert (status.state, status.failed_seq) == ("failed", poison)
    assert reason in (status.reason or "") and "python -m projector rebuild" in (status.reason or "")
    assert not status.ready()[0]

    before = await snapshot(pg)
    async with running(projector_settings, instance="restarted") as again:  # refuses again
        error = await _ended(again)
    assert isinstance(error, ProjectionDiverged) and error.seq == poison
    assert await snapshot(pg) == before
    assert (await read_status(pg)).failed_seq == poison


async def _ended(run: Any) -> BaseException | None:
    await wait_for(run.task.done, timeout=30, what="the projector to fail-stop")
    return run.task.exception()


async def test_the_cli_exits_non_zero_on_a_fail_stop_every_time(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, procs: Processes
) -> None:
    poison = await poisoned_stream(ledger, not_an_event)
    for attempt in range(2):
        proc = procs.spawn(env_for(projector_settings), "run")
        assert await wait_exit(proc, timeout=30) == ExitCode.INTEGRITY
        errors = [line for line in procs.stderr(proc).splitlines() if line.startswith("error:")]
        assert len(errors) == 1, procs.stderr(proc)
        assert f"fail-stop at stream sequence {poison}" in errors[0] and "rebuild" in errors[0]
        assert await checkpoint(pg) == poison - 1, attempt
    status = procs.spawn(env_for(projector_settings), "status")
    assert await wait_exit(status, timeout=30) == ExitCode.INTEGRITY
    assert f"stream sequence {poison}" in procs.stdout(status)


async def test_stream_regression_and_a_different_history_fail_stop_until_rebuilt(
    nats_server: NatsServer,
    ledger: Ledger,
    projector_settings: ProjectorSettings,
    pg: Any,
    procs: Processes,
) -> None:
    for i in range(5):
        for svc in ("a", "b"):
            await ledger.append(svc, Replace({"i": i}), actor="t")
    async with running(projector_settings) as run:
        await wait_for(lambda: _equals(checkpoint(pg), 10), timeout=30, what="the projection to catch up")
        before = await snapshot(pg)

        # NATS comes back with an empty store: a shorter, different history.
        nats_server.kill()
        shutil.rmtree(nats_server.store_dir)
        nats_server.start()
        await provision(ledger.settings)
        async with Ledger.connect(settings=ledger.settings) as fresh:
            for i in range(3):
                await fresh.append("a", Replace({"other": i}), actor="t")
            error = await _ended(run)  # the running projector notices by itself
        assert isinstance(error, StreamRegression), error
    assert await snapshot(pg) == before
    status = await read_status(pg)
    assert status.state == "failed" and "stream regression" in (status.reason or "")

    async with running(projector_settings) as again:
        assert isinstance(await _ended(again), StreamRegression)
    # rebuild refuses to drop applied events unless told to
    refused = procs.spawn(env_for(projector_settings), "rebuild")
    assert await wait_exit(refused, timeout=30) == ExitCode.INTEGRITY
    assert "--accept-regression" in procs.stderr(refused)
    assert await snapshot(pg) == before

    async with Ledger.connect(settings=ledger.settings) as fresh:
        for i in range(10):  # now longer than the checkpoint, but not the projected history
            await fresh.append("c", Replace({"other": i}), actor="t")
    async with running(projector_settings) as again:
        error = await _ended(again)
    assert isinstance(error, EventMismatch) and "different event at an applied sequence" in error.message
    assert await snapshot(pg) == before

    # The operator's fix: rebuild from the stream that is now the truth.
    rebuilt = procs.spawn(env_for(projector_settings), "rebuild")
    assert await wait_exit(rebuilt, timeout=60) == 0, procs.stderr(rebuilt)
    assert "rebuild: 13/13 events (100%)" in procs.stderr(rebuilt)
    assert "rebuilt 13 events of 2 services" in procs.stdout(rebuilt)
    status = await read_status(pg)
    assert not status.failed and status.reason is None
    await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))

    async with running(projector_settings) as resumed, Ledger.connect(settings=ledger.settings) as fresh:
        await fresh.append("a", Patch({"resumed": True}), actor="t")
        await wait_for(lambda: _equals(checkpoint(pg), 14), timeout=30, what="the projection to resume")
        assert not resumed.task.done()
        await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))
        assert (await read_status(pg)).state == "running"


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)
