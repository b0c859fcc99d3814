"""A ledger keeps each service's heads (config, schema, rollout) between writes; the CAS over
``config.*.<service>`` makes a decision on stale heads impossible (``ledger.heads``)."""

from __future__ import annotations

import uuid

import pytest

from ledger import Ledger, LedgerSettings, Replace
from ledger.changeset import Member, commit
from ledger.errors import InvalidConfig, UsageError
from ledger.nats_io import stream_last_seq
from ledger.schemas import SchemaRegistry

SCHEMA = {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}}


def svc() -> str:
    return f"h-{uuid.uuid4().hex[:10]}"


def count_head_reads(led: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = led.heads

    async def counted(service: str):  # type: ignore[no-untyped-def]
        reads.append(service)
        return await real(service)

    monkeypatch.setattr(led, "heads", counted)
    return reads


async def test_a_hot_write_reads_nothing_before_its_publish(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    s = svc()
    reads = count_head_reads(ledger, monkeypatch)
    await ledger.append(s, Replace({"n": 1}), actor="a")
    assert reads == [s]  # a cold service: one multi-last read
    for n in range(2, 6):
        appended = await ledger.append(s, Replace({"n": n}), actor="a")
        assert appended.version == n
    assert reads == [s]  # hot: the publish alone
    assert ledger.known(s)[1].config == {"n": 5}


async def test_a_schema_set_elsewhere_refuses_the_next_write_decided_on_kept_heads(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = svc()
    await ledger.append(s, Replace({"port": 80}), actor="a")  # heads kept: no schema
    other = await Ledger.connect(settings=ledger.settings)  # another process
    try:
        await SchemaRegistry(other.nc, other.settings, config=other).set(s, SCHEMA, actor="b", reason="guard")
    finally:
        await other.close()
    reads = count_head_reads(ledger, monkeypatch)
    before = await stream_last_seq(ledger.nc, ledger.settings.stream)
    with pytest.raises(InvalidConfig) as refused:
        await ledger.append(s, Replace({"port": 70000}), actor="a")
    assert refused.value.rule == "schema"
    assert reads == [s]  # the stream refused the CAS on the kept heads; decided again on fresh ones
    assert await stream_last_seq(ledger.nc, ledger.settings.stream) == before
    assert (await ledger.append(s, Replace({"port": 81}), actor="a")).version == 2


async def test_a_schema_set_on_kept_heads_sees_a_config_written_elsewhere(ledger: Ledger) -> None:
    s = svc()
    registry = SchemaRegistry(ledger.nc, ledger.settings, config=ledger)
    await ledger.append(s, Replace({"port": 80}), actor="a")
    await registry.set(s, {"type": "object"}, actor="a", reason="loose")  # the registry keeps its heads
    other = await Ledger.connect(settings=ledger.settings)
    try:
        await other.append(s, Replace({"port": 70000}), actor="b")  # fits the loose schema
    finally:
        await other.close()
    with pytest.raises(InvalidConfig) as refused:
        await registry.set(s, SCHEMA, actor="a", reason="tight")  # the config now fails it
    assert refused.value.rule == "schema"
    current = await ledger.schema_in_force(s)
    assert current is not None and current.config == {"type": "object"}


def test_every_family_of_a_service_must_share_one_parent() -> None:
    """The family-wide CAS filter (``config.*.<service>``) must cover the schema subjects."""
    assert LedgerSettings().family_filter("svc") == "config.*.svc"
    assert LedgerSettings(subject_prefix="t1.events").family_filter("svc") == "t1.*.svc"
    with pytest.raises(UsageError) as refused:
        LedgerSettings.from_env({"LEDGER_SCHEMA_SUBJECT_PREFIX": "elsewhere.schemas"})
    assert str(refused.value).startswith("LEDGER_SCHEMA_SUBJECT_PREFIX: 'elsewhere.schemas' must be a sibling")
    with pytest.raises(UsageError) as refused:
        LedgerSettings.from_env({"LEDGER_SUBJECT_PREFIX": "events"})
    assert str(refused.value).startswith("LEDGER_SUBJECT_PREFIX: 'events' needs a parent")


async def test_a_change_set_decided_before_a_schema_set_is_decided_again(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema changes between a change set's read and its batch: the batch's family-wide CAS
    refuses it, and the set decided again fails the new schema (nothing stored)."""
    s, t = svc(), svc()
    await ledger.append(s, Replace({"port": 80}), actor="a")
    stale = {s: await ledger.heads(s), t: await ledger.heads(t)}  # read before the schema is set
    await SchemaRegistry(ledger.nc, ledger.settings, config=ledger).set(s, SCHEMA, actor="b", reason="guard")
    real, served = ledger.heads, set()

    async def first_stale(service: str):  # type: ignore[no-untyped-def]
        if service not in served:
            served.add(service)
            return stale[service]
        return await real(service)

    monkeypatch.setattr(ledger, "heads", first_stale)
    before = await stream_last_seq(ledger.nc, ledger.settings.stream)
    with pytest.raises(InvalidConfig) as refused:
        await commit(ledger, [Member(t, Replace({"n": 1})), Member(s, Replace({"port": 70000}))],
                     actor="a", reason="both")
    assert refused.value.rule == "schema" and refused.value.details["member"] == 1
    assert await stream_last_seq(ledger.nc, ledger.settings.stream) == before
