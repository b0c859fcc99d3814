"""GET /api/v1/config/{service}/verify: the chain of one service, checked on the stream."""

from __future__ import annotations

import uuid

import nats
import orjson

from ledger import Ledger, LedgerSettings, Replace

from .helpers import ADMIN, Stack, bearer, provision


async def _own_stream(stack: Stack) -> LedgerSettings:
    """A stream the projector does not follow: a forged event here cannot fail-stop it."""
    tag = uuid.uuid4().hex[:8]
    settings = LedgerSettings(nats_url=stack.ledger_settings.nats_url, stream=f"V_{tag}", subject_prefix=f"v{tag}.events")
    await provision(settings)
    return settings


async def test_verify_reports_an_intact_chain_and_refuses_unknown_services(stack: Stack, make_client, svc: str) -> None:
    settings = await _own_stream(stack)
    async with Ledger.connect(settings=settings) as led:
        for n in range(3):
            last = await led.append(svc, Replace({"n": n}), actor="t", reason="r")
    api = await make_client(stack, ledger=settings)
    resp = await api.get(f"/api/v1/config/{svc}/verify", headers=bearer("auditor"))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["ok"] is True and body["problems"] == []
    assert (body["events"], body["version"], body["head_hash"]) == (3, 3, last.event.hash)
    resp = await api.get("/api/v1/config/never-written/verify", headers=ADMIN)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await api.get(f"/api/v1/config/{svc}/verify", headers=bearer("svc-a"))
    assert resp.status == 403


async def test_verify_finds_an_altered_event(stack: Stack, make_client, svc: str) -> None:
    settings = await _own_stream(stack)
    async with Ledger.connect(settings=settings) as led:
        await led.append(svc, Replace({"limit": 1}), actor="t", reason="r")
        good = await led.append(svc, Replace({"limit": 2}), actor="t", reason="r")
    # Someone with write access to the stream appends v3 by hand, reusing v2's hash.
    forged = good.event.to_dict() | {"version": 3, "prev_hash": good.event.hash, "config": {"limit": 99}}
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.jetstream().publish(settings.subject(svc), orjson.dumps(forged), stream=settings.stream)
    finally:
        await nc.close()
    api = await make_client(stack, ledger=settings)
    resp = await api.get(f"/api/v1/config/{svc}/verify", headers=ADMIN)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["ok"] is False and body["events"] == 3
    assert body["problems"] == [f"hash of {svc!r} version 3 does not recompute (event altered)"]
