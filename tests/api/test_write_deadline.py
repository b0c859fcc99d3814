"""A write that JetStream cannot take (a leader election that outlasts the write deadline): 503
with Retry-After and the "may be stored, retry with the same Idempotency-Key" hint; the retry
with that key then lands exactly once."""

from __future__ import annotations

from typing import Any

import nats.js.errors
import pytest

from api.keys import LEDGER

from .helpers import post


async def test_past_the_write_deadline_503_may_be_stored_then_the_keyed_retry_lands_once(
    api: Any, svc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = api.server.app[LEDGER]
    monkeypatch.setattr(ledger, "settings", ledger.settings.model_copy(update={"write_deadline": 0.3}))
    real = ledger.js.publish
    tries = 0

    async def no_leader(*args: Any, **kwargs: Any) -> Any:
        nonlocal tries
        tries += 1
        raise nats.js.errors.NoStreamResponseError

    monkeypatch.setattr(ledger.js, "publish", no_leader)
    key = {"Idempotency-Key": "deadline-1"}
    resp = await post(api, svc, {"a": 1}, headers=key)
    body = await resp.json()
    assert resp.status == 503 and resp.headers["Retry-After"].isdigit(), body
    assert body["error"]["code"] == "timeout"
    assert "may or may not be stored" in body["error"]["message"]
    assert "Idempotency-Key" in body["error"]["message"]
    assert tries > 1  # retried until the deadline, not refused at the first "no response"

    monkeypatch.setattr(ledger.js, "publish", real)
    again = await post(api, svc, {"a": 1}, headers=key)
    assert again.status in (200, 202) and (await again.json())["version"] == 1
    twice = await post(api, svc, {"a": 1}, headers=key)
    assert (await twice.json())["version"] == 1  # the same write, not a second one
