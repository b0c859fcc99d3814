"""Schemas as events, schema-checked writes, plans that append nothing, atomic change sets."""

from __future__ import annotations

import uuid

import nats
import pytest

from ledger import Delete, Ledger, LedgerSettings, Patch, Replace, Rollback
from ledger.changeset import Member, commit
from ledger.errors import InvalidChange, InvalidConfig, VersionConflict
from ledger.nats_io import stream_last_seq
from ledger.plan import plan, plan_set
from ledger.schemas import SchemaRegistry
from ledger.streams import apply_streams
from tests.conftest import stream_spec_for

SCHEMA = {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}, "required": ["port"]}


async def head(led: Ledger) -> int:
    return await stream_last_seq(led.nc, led.settings.stream)


def svc() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def test_a_schema_change_is_an_event_with_history(ledger: Ledger) -> None:
    s = svc()
    schemas = SchemaRegistry(ledger.nc, ledger.settings, config=ledger)
    await ledger.append(s, Replace({"port": 80}), actor="alice", reason="first")
    one = await schemas.set(s, SCHEMA, actor="alice", reason="guard the port")
    two = await schemas.set(s, {**SCHEMA, "properties": {"port": {"type": "integer"}}}, actor="bob", reason="relax")
    gone = await schemas.remove(s, actor="carol", reason="drop")
    entries = [e async for e in schemas.history(s)]
    history = [e.event for e in entries]
    assert [(e.version, e.kind.value, e.actor, e.reason) for e in history] == [
        (1, "replaced", "alice", "guard the port"), (2, "replaced", "bob", "relax"), (3, "deleted", "carol", "drop")]
    assert history[1].prev_hash == history[0].hash and all(e.hash_ok() for e in history)
    assert (await schemas.at_version_entry(s, 1)).event.config == SCHEMA
    assert (await schemas.at_entry(s, entries[0].stored_at)).event.config == SCHEMA  # time travel
    assert gone.seq > two.seq > one.seq
    assert await ledger.schema_in_force(s) is None
    assert (await ledger.current(s)).version == 1  # the config's own chain is untouched


async def test_schema_refused_when_invalid_or_when_the_current_config_fails_it(ledger: Ledger) -> None:
    s = svc()
    schemas = SchemaRegistry(ledger.nc, ledger.settings, config=ledger)
    await ledger.append(s, Replace({"port": 70000}), actor="a", reason="")
    before = await head(ledger)
    with pytest.raises(InvalidConfig) as invalid:
        await schemas.set(s, {"type": 12}, actor="a", reason="")
    assert invalid.value.rule == "schema.invalid"
    with pytest.raises(InvalidConfig) as failing:
        await schemas.set(s, SCHEMA, actor="a", reason="")
    assert failing.value.rule == "schema"
    assert [e["pointer"] for e in failing.value.details["errors"]] == ["/port"]
    assert await head(ledger) == before


async def test_a_write_that_violates_the_schema_appends_nothing(ledger: Ledger) -> None:
    s = svc()
    await ledger.append(s, Replace({"port": 80}), actor="a", reason="")
    await SchemaRegistry(ledger.nc, ledger.settings, config=ledger).set(s, SCHEMA, actor="a", reason="")
    before = await head(ledger)
    for change in (Replace({"port": "80"}), Patch({"port": 99999}), Replace({})):
        with pytest.raises(InvalidConfig) as info:
            await ledger.append(s, change, actor="a", reason="")
        assert info.value.rule == "schema"
    assert await head(ledger) == before
    ok = await ledger.append(s, Patch({"port": 443}), actor="a", reason="")
    assert ok.version == 2
    await ledger.append(s, Delete(), actor="a", reason="")  # a deletion has no document to check


async def test_a_plan_appends_nothing_and_says_what_would_happen(ledger: Ledger) -> None:
    s = svc()
    await ledger.append(s, Replace({"port": 80, "x": 1}), actor="a", reason="")
    await SchemaRegistry(ledger.nc, ledger.settings, config=ledger).set(s, SCHEMA, actor="a", reason="")
    before = await head(ledger)
    good = await plan(ledger, s, Patch({"port": 81, "x": None}))
    bad = await plan(ledger, s, Patch({"port": "x"}), if_match=7)
    secret = await plan(ledger, s, Patch({"password": "hunter2hunter2"}))
    back = await plan(ledger, s, Rollback(to_version=1))
    assert (good.ok, good.current_version, good.version, good.after) == (True, 1, 2, {"port": 81})
    assert not bad.ok and bad.conflict == {"expected_version": 7, "current_version": 1}
    assert [e["keyword"] for e in bad.schema_errors] == ["type"]
    assert secret.policy_errors[0]["rule"] == "secret.key_name"
    assert back.policy_errors[0]["rule"] == "change"  # cannot roll back to the current version
    assert await head(ledger) == before


async def test_a_change_set_stores_every_member_on_consecutive_sequences(ledger: Ledger) -> None:
    a, b, c = svc(), svc(), svc()
    await ledger.append(b, Replace({"n": 1}), actor="a", reason="")
    await ledger.append(c, Replace({"n": 1}), actor="a", reason="")
    done = await commit(ledger, [Member(a, Replace({"n": 1})), Member(b, Patch({"m": 2}), if_match=1),
                                 Member(c, Delete())], actor="alice", reason="together")
    seqs = [m.seq for m in done.members]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    for m in done.members:
        stored = (await ledger.current_entry(m.event.service)).event
        assert stored.changeset_id == done.changeset_id and stored.changeset_size == 3 and stored.hash_ok()
    assert (await ledger.current(b)).config == {"n": 1, "m": 2}
    again = await commit(ledger, [Member(a, Replace({"n": 1})), Member(b, Patch({"m": 2}), if_match=1),
                                  Member(c, Delete())], actor="alice", reason="together",
                         changeset_id=done.changeset_id)
    assert again.duplicate and [m.seq for m in again.members] == seqs


async def test_one_conflicting_member_leaves_every_service_unchanged(ledger: Ledger) -> None:
    a, b = svc(), svc()
    await ledger.append(a, Replace({"n": 1}), actor="a", reason="")
    await ledger.append(b, Replace({"n": 1}), actor="a", reason="")
    before = await head(ledger)
    with pytest.raises(VersionConflict) as info:
        await commit(ledger, [Member(a, Replace({"n": 2})), Member(b, Replace({"n": 2}), if_match=5)],
                     actor="a", reason="")
    assert info.value.details["member"] == 1 and info.value.details["service"] == b
    await SchemaRegistry(ledger.nc, ledger.settings, config=ledger).set(b, {"properties": {"n": {"maximum": 1}}},
                                                                      actor="a", reason="")
    before = await head(ledger)
    with pytest.raises(InvalidConfig) as schema:
        await commit(ledger, [Member(a, Replace({"n": 2})), Member(b, Replace({"n": 2}))], actor="a", reason="")
    assert schema.value.details["member"] == 1 and schema.value.rule == "schema"
    with pytest.raises(InvalidChange) as dup:
        await commit(ledger, [Member(a, Replace({"n": 2})), Member(a, Replace({"n": 3}))], actor="a", reason="")
    assert dup.value.details["rule"] == "changeset.duplicate_service"
    assert await head(ledger) == before
    assert (await ledger.current(a)).version == 1 and (await ledger.current(b)).version == 1


async def test_the_server_refuses_the_whole_batch_on_a_stale_member(ledger: Ledger) -> None:
    """A member's subject moves between decide and publish: nothing of the batch is stored."""
    from ledger.changeset import _publish, decide

    a, b = svc(), svc()
    await ledger.append(b, Replace({"n": 1}), actor="a", reason="")
    decided = await decide(ledger, [Member(a, Replace({"n": 1})), Member(b, Replace({"n": 2}))],
                           changeset_id=str(uuid.uuid4()), actor="a", reason="")
    await ledger.append(b, Replace({"n": 3}), actor="other", reason="")
    before = await head(ledger)
    assert await _publish(ledger, decided, "probe") is None
    assert await head(ledger) == before and await ledger.current(a) is None


async def test_plan_set_plans_every_member(ledger: Ledger) -> None:
    a, b = svc(), svc()
    before = await head(ledger)
    plans = await plan_set(ledger, [Member(a, Replace({"x": 1})), Member(b, Patch({"x": 1}))])
    assert [p.ok for p in plans] == [True, False] and await head(ledger) == before


async def test_streams_apply_turns_allow_atomic_on_for_an_existing_stream(ledger_settings: LedgerSettings) -> None:
    spec = stream_spec_for(ledger_settings)
    off = spec.model_copy(update={"streams": [spec.streams[0].model_copy(update={"allow_atomic": False})]})
    nc = await nats.connect(ledger_settings.nats_url)
    try:
        js = nc.jetstream()
        await apply_streams(js, off)
        assert not (await js.stream_info(ledger_settings.stream)).config.allow_atomic
        await apply_streams(js, spec)
        assert (await js.stream_info(ledger_settings.stream)).config.allow_atomic
    finally:
        await nc.close()
