"""The audit reader, straight from the stream: history, state at an instant, replay, verify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client import AuditReader
from ledger import (
    Delete,
    Entry,
    Event,
    Ledger,
    LedgerSettings,
    Patch,
    ProjectionDiverged,
    Replace,
    UsageError,
    nats_io,
)
from ledger.event import event_hash

SERVICES = ("alpha", "beta", "gamma")
US = timedelta(microseconds=1)


@dataclass
class Populated:
    ledger: Ledger
    reader: AuditReader
    entries: list[Entry]  # every entry, stream order, with the store time direct gets report

    def expected(self, service: str, instant: datetime) -> Entry | None:
        """The oracle: the last entry of ``service`` stored at or before ``instant`` (to the µs)."""
        found = None
        for entry in self.entries:
            if entry.event.service == service and entry.stored_at <= instant:
                found = entry
        return found


@pytest.fixture
async def reader(provisioned: LedgerSettings) -> AsyncIterator[AuditReader]:
    async with AuditReader.connect(settings=provisioned) as audit:
        yield audit


@pytest.fixture
async def populated(ledger: Ledger, reader: AuditReader) -> Populated:
    for i in range(18):
        service = SERVICES[i % 3]
        if i == 10:
            change: object = Delete()
        elif i < 3 or i == 13:
            change = Replace({"n": i, "nested": {"k": [i]}})
        else:
            change = Patch({"n": i})
        await ledger.append(service, change, actor="ops", reason=f"change {i}")  # type: ignore[arg-type]
    entries = []
    for seq in range(1, await nats_io.stream_last_seq(ledger.nc, ledger.settings.stream) + 1):
        msg = await nats_io.direct_next(ledger.nc, ledger.settings.stream, ledger.settings.subject_wildcard, seq)
        assert msg is not None and msg.seq == seq
        entries.append(Entry.from_stored(msg))
    return Populated(ledger, reader, entries)


def instants(p: Populated) -> st.SearchStrategy[datetime]:
    first, last = p.entries[0].stored_at, p.entries[-1].stored_at
    span = int((last - first) / US)
    edges = [e.stored_at + d for e in p.entries for d in (-US, timedelta(0), US)]
    return st.one_of(
        st.sampled_from(edges),
        st.integers(-2000, span + 2000).map(lambda us: first + us * US),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_state_at_and_snapshot_at_agree_with_the_ledger(populated: Populated, data: st.DataObject) -> None:
    p = populated
    instant = data.draw(instants(p), label="instant")
    snapshot = await p.reader.snapshot_at(instant)
    for service in (*SERVICES, "never-written"):
        expected = p.expected(service, instant)
        state = await p.reader.state_at(service, instant)
        ledger_view = await p.ledger.at(service, instant)
        assert (state.event if state else None) == ledger_view == (expected.event if expected else None)
        assert (state.seq if state else None) == (expected.seq if expected else None)
        got = snapshot.get(service)
        assert (got.event if got else None) == (expected.event if expected else None)
    assert set(snapshot) == {e.event.service for e in await p.ledger.services(instant)}


async def test_history_and_replay_until(populated: Populated) -> None:
    p = populated
    history = await p.reader.history("beta")
    assert [e async for e in p.ledger.history("beta")] == [e.event for e in history]
    assert [e.event.version for e in history] == list(range(1, 7))
    assert history[3].event.config is None  # the deletion (change 10) is part of the history
    assert await p.reader.history("never-written") == []

    cut = p.entries[8].stored_at
    replayed = [e async for e in p.reader.replay(until=cut)]
    assert [e.seq for e in replayed] == [e.seq for e in p.entries if e.stored_at <= cut]
    beta = [e.seq async for e in p.reader.replay("beta", until=cut)]
    assert beta == [e.seq for e in p.entries if e.stored_at <= cut and e.event.service == "beta"]
    assert [e async for e in p.reader.replay(until=p.entries[0].stored_at - US)] == []
    assert len([e async for e in p.reader.replay()]) == len(p.entries)


async def test_verify_a_clean_ledger(populated: Populated) -> None:
    report = await populated.reader.verify()
    assert report.ok, report.problems
    assert (report.services, report.events) == (3, 18)
    one = await populated.reader.verify("gamma")
    assert one.ok and (one.services, one.events) == (1, 6)


async def test_verify_detects_forged_events(populated: Populated) -> None:
    """Events published straight to a service's subject, without the writer's CAS headers."""
    p = populated
    js = p.ledger.nc.jetstream()
    stream = p.ledger.settings.stream
    alpha = [e.event for e in p.entries if e.event.service == "alpha"]
    gamma = [e.event for e in p.entries if e.event.service == "gamma"]
    # 1. alpha: a copy of its last event with the config changed and the old hash kept
    tampered = alpha[-1].model_copy(update={"config": {"n": "tampered"}})
    await js.publish(p.ledger.subject("alpha"), tampered.to_bytes(), stream=stream)
    # 2. gamma: a well-formed next version whose hash was not recomputed after editing
    edited = gamma[-1].model_copy(
        update={"version": gamma[-1].version + 1, "prev_hash": gamma[-1].hash, "config": {"n": "evil"}}
    )
    await js.publish(p.ledger.subject("gamma"), edited.to_bytes(), stream=stream)
    forged_seq = await nats_io.stream_last_seq(p.ledger.nc, stream)

    report = await p.reader.verify()
    assert not report.ok
    assert len(report.problems) == 2
    alpha_problem = next(m for m in report.problems if "'alpha'" in m)
    gamma_problem = next(m for m in report.problems if "'gamma'" in m)
    assert f"expected {alpha[-1].version + 1}, got {alpha[-1].version}" in alpha_problem
    assert "does not recompute" in gamma_problem
    assert f"stream sequence {forged_seq}" in gamma_problem
    assert (await p.reader.verify("beta")).ok
    assert not (await p.reader.verify("gamma")).ok

    with pytest.raises(ProjectionDiverged) as caught:
        async for _ in p.reader.replay("gamma"):
            pass
    assert caught.value.seq == forged_seq
    assert len([e async for e in p.reader.replay("gamma", verify=False)]) == 7


async def test_verify_detects_an_event_on_another_services_subject(populated: Populated) -> None:
    p = populated
    beta_last = [e.event for e in p.entries if e.event.service == "beta"][-1]
    fields = {**beta_last.to_dict(), "version": beta_last.version + 1, "prev_hash": beta_last.hash,
              "event_id": "2f0e5d0c-0000-4000-8000-00000000000b"}
    fields["hash"] = event_hash(fields)
    await p.ledger.nc.jetstream().publish(
        p.ledger.subject("alpha"), Event.from_dict(fields).to_bytes(), stream=p.ledger.settings.stream
    )
    report = await p.reader.verify()
    assert len(report.problems) == 1 and "stored on the subject of 'alpha'" in report.problems[0]


async def test_a_message_that_is_not_an_event_is_reported(populated: Populated) -> None:
    p = populated
    await p.ledger.nc.jetstream().publish(p.ledger.subject("beta"), b"not json", stream=p.ledger.settings.stream)
    report = await p.reader.verify()
    assert len(report.problems) == 1 and "not a valid event" in report.problems[0]
    with pytest.raises(ProjectionDiverged, match="not a valid event"):
        await p.reader.history("beta")


async def test_connect_forms(provisioned: LedgerSettings, ledger: Ledger) -> None:
    await ledger.append("alpha", Replace({"n": 1}), actor="ops")
    reader = await AuditReader.connect(provisioned.nats_url, provisioned)
    try:
        assert [e.event.version for e in await reader.history("alpha")] == [1]
    finally:
        await reader.close()
    shared = AuditReader(ledger.nc, ledger.settings)  # on a connection it does not own
    assert len(await shared.snapshot_at(datetime.now().astimezone())) == 1
    await shared.close()
    assert ledger.nc.is_connected
    with pytest.raises(UsageError, match="not connected"):
        await AuditReader.connect(settings=provisioned).history("alpha")
