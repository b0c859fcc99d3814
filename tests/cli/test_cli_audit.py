"""replay and verify, straight from the stream (ops/cli_audit.py) on a private NATS."""

from __future__ import annotations

import json

import nats

from ledger import Ledger, LedgerSettings, Replace
from ops.embedded import free_port

from .conftest import AsyncCliRunner


def env_of(settings: LedgerSettings) -> dict[str, str]:
    return {"NATS_URL": settings.nats_url, "LEDGER_STREAM": settings.stream,
            "LEDGER_SUBJECT_PREFIX": settings.subject_prefix}


async def test_replay_until_an_instant_shows_the_events_and_the_state_then(ledger: Ledger, acli: AsyncCliRunner) -> None:
    await ledger.append("billing", Replace({"operational": {"batch_size": 100}}), actor="alice", reason="first")
    first = await ledger.current_entry("billing")
    await ledger.append("billing", Replace({"operational": {"batch_size": 200}}), actor="bob", reason="second")
    assert first is not None
    until = first.stored_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    env = env_of(ledger.settings)

    human = await acli("replay", "billing", "--until", until, "-o", "table", env=env)
    assert human.code == 0, human.err
    assert "1 events up to" in human.out and "first" in human.out and "second" not in human.out
    assert '"batch_size": 100' in human.out

    now = await acli("replay", "billing", "--json", env=env)
    assert now.code == 0, now.err
    body = json.loads(now.out)
    assert body["version"] == 2 and body["config"] == {"operational": {"batch_size": 200}}
    assert [e["reason"] for e in body["events"]] == ["first", "second"]


async def test_replay_user_errors_are_one_line(ledger: Ledger, acli: AsyncCliRunner) -> None:
    env = env_of(ledger.settings)
    bad_time = await acli("replay", "billing", "--until", "yesterday", env=env)
    assert bad_time.code == 2 and len(bad_time.err_lines) == 1 and "--until" in bad_time.err
    missing = await acli("replay", "nobody", env=env)
    assert missing.code == 1 and len(missing.err_lines) == 1 and "no events" in missing.err
    down = await acli("replay", "billing", "--nats-url", f"nats://127.0.0.1:{free_port()}", env=env)
    assert down.code == 3 and len(down.err_lines) == 1 and "cannot connect to NATS" in down.err


async def test_verify_every_service_then_one(ledger: Ledger, acli: AsyncCliRunner) -> None:
    for service, size in (("billing", 1), ("billing", 2), ("search", 1)):
        await ledger.append(service, Replace({"operational": {"batch_size": size}}), actor="a", reason="r")
    env = env_of(ledger.settings)
    every = await acli("verify", env=env)
    assert every.code == 0, every.err
    assert "verified 2 service(s), 3 event(s)" in every.out
    one = await acli("verify", "billing", "--json", env=env)
    assert one.code == 0
    body = json.loads(one.out)
    assert body["ok"] is True and body["services"]["billing"]["version"] == 2 and body["events"] == 2
    unknown = await acli("verify", "nobody", env=env)
    assert unknown.code == 1 and "no events for service" in unknown.err


async def test_verify_finds_an_altered_event_and_exits_1(ledger: Ledger, acli: AsyncCliRunner) -> None:
    await ledger.append("billing", Replace({"operational": {"batch_size": 1}}), actor="a", reason="r")
    good = await ledger.current("billing")
    assert good is not None
    forged = good.to_dict() | {"version": 2, "prev_hash": good.hash, "config": {"operational": {"batch_size": 9}}}
    settings = ledger.settings
    nc = await nats.connect(settings.nats_url)
    try:  # written behind the ledger's back: its hash is the old event's, so it cannot recompute
        await nc.jetstream().publish(settings.subject("billing"), json.dumps(forged).encode())
    finally:
        await nc.close()
    env = env_of(settings)
    result = await acli("verify", env=env)
    assert result.code == 5  # ExitCode.INTEGRITY, not "not found"
    assert "BROKEN" in result.out and "does not recompute" in result.out
    replay = await acli("replay", "billing", env=env)
    assert replay.code == 5 and len(replay.err_lines) == 1 and "does not recompute" in replay.err
