"""Writes: optimistic concurrency, idempotency, patch/delete/rollback, reasons, the stream acknowledges."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

from ledger import Ledger, nats_io
from tests.support.waiting import wait_for

from .helpers import ADMIN, Stack, post

DOC = {"operational": {"batch_size": 100, "gap_check_interval_hours": 1}}


async def stream_last_seq(stack: Stack) -> int:
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        return await nats_io.stream_last_seq(led.nc, led.settings.stream)


async def test_stale_if_match_is_409_with_current_version(api, svc: str) -> None:
    assert (await post(api, svc, DOC)).status == 200
    assert (await post(api, svc, {"a": 2}, headers={"If-Match": '"1"'})).status == 200
    stale = await api.post(f"/api/v1/config/{svc}", json={"a": 3}, headers={**ADMIN, "If-Match": '"1"'})
    body = await stale.json()
    assert stale.status == 409
    assert body["error"]["code"] == "version_conflict"
    assert body["error"]["details"] == {"service": svc, "expected_version": 1, "current_version": 2}
    assert stale.headers["ETag"] == '"2"'
    # Create-only: "0" means "must not exist yet".
    again = await api.post(f"/api/v1/config/{svc}", json={"a": 4}, headers={**ADMIN, "If-Match": '"0"'})
    assert again.status == 409
    fresh = await api.post(f"/api/v1/config/{svc}-new", json={"a": 4}, headers={**ADMIN, "If-Match": '"0"'})
    assert fresh.status == 200
    # "*": must exist.
    star = await api.post(f"/api/v1/config/{svc}-none", json={"a": 1}, headers={**ADMIN, "If-Match": "*"})
    assert star.status == 404
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 5}, headers={**ADMIN, "If-Match": "*"})).status == 200
    metrics = await (await api.get("/metrics")).text()
    assert "config_api_conflicts_total 2.0" in metrics


async def test_idempotent_retry_returns_original_and_appends_nothing(api, stack: Stack, svc: str) -> None:
    headers = {"Idempotency-Key": "req-42", "X-Change-Reason": "first"}
    first = await post(api, svc, DOC, headers=headers)
    one = await first.json()
    assert first.status == 200 and "Idempotent-Replayed" not in first.headers
    before = await stream_last_seq(stack)

    retry = await post(api, svc, DOC, headers=headers)
    again = await retry.json()
    assert retry.status == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert again["duplicate"] is True
    assert {k: again[k] for k in ("version", "event_id", "hash", "seq")} == {
        k: one[k] for k in ("version", "event_id", "hash", "seq")
    }
    assert await stream_last_seq(stack) == before

    # Another write lands in between; the retry still answers the original (projection lookup).
    assert (await post(api, svc, {"b": 1})).status == 200
    late = await post(api, svc, DOC, headers=headers)
    assert late.status == 200 and (await late.json())["version"] == 1
    hist = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    assert [v["version"] for v in hist["versions"]] == [2, 1]

    # Same key, different change: refused, nothing appended.
    other = await post(api, svc, {"c": 1}, headers=headers)
    body = await other.json()
    assert other.status == 422 and body["error"]["details"]["rule"] == "idempotency.key_reused"
    assert (await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json())["version"] == 2


async def test_idempotent_retry_from_a_fresh_api_instance(stack: Stack, make_client, svc: str) -> None:
    """A second API process (no in-memory hint) recognises the retry too."""
    one = await make_client(stack)
    two = await make_client(stack)
    headers = {"Idempotency-Key": "abc"}
    r1 = await (await post(one, svc, DOC, headers=headers)).json()
    resp = await post(two, svc, DOC, headers=headers)
    r2 = await resp.json()
    assert resp.headers["Idempotent-Replayed"] == "true" and r2["event_id"] == r1["event_id"]


async def test_patch_delete_recreate_and_rollback(api, svc: str) -> None:
    assert (await post(api, svc, DOC)).status == 200
    patched = await api.patch(
        f"/api/v1/config/{svc}",
        data=b'{"operational": {"batch_size": 500, "gap_check_interval_hours": null}, "features": {"x": true}}',
        headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["message"] == "Config patched and broadcasted"
    doc = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert doc["config"] == {"operational": {"batch_size": 500}, "features": {"x": True}}
    assert doc["kind"] == "patched"
    t_after_patch = datetime.now(UTC)

    deleted = await api.delete(f"/api/v1/config/{svc}", headers={**ADMIN, "X-Change-Reason": "retire"})
    assert deleted.status == 200 and (await deleted.json())["version"] == 3
    gone = await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    body = await gone.json()
    assert gone.status == 404 and body["error"]["message"] == f"Config not found for service: {svc}"
    assert body["error"]["details"]["deleted"] is True
    assert body["error"]["details"]["deleted_by"] and body["error"]["details"]["deleted_at"]
    # Patching a deleted config is not possible; deleting twice neither: there is nothing (404).
    patched = await api.patch(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)
    assert patched.status == 404 and (await patched.json())["error"]["details"]["rule"] == "patch.no_config"
    assert (await api.delete(f"/api/v1/config/{svc}", headers=ADMIN)).status == 404

    back = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_version": 1, "reason": "undo"}, headers=ADMIN)
    assert back.status == 200, await back.text()
    assert (await back.json())["version"] == 4
    doc = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert doc["config"] == DOC and doc["kind"] == "rolled_back" and doc["reason"] == "undo"

    by_time = await api.post(
        f"/api/v1/config/{svc}/rollback", json={"to_time": t_after_patch.isoformat()}, headers=ADMIN
    )
    assert by_time.status == 200, await by_time.text()
    doc = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert doc["version"] == 5 and doc["config"] == {"operational": {"batch_size": 500}, "features": {"x": True}}

    missing = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_version": 99}, headers=ADMIN)
    assert missing.status == 422  # not below the current version
    to_deleted = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_version": 3}, headers=ADMIN)
    assert to_deleted.status == 422
    never = await api.post(f"/api/v1/config/{svc}-never/rollback", json={"to_version": 1}, headers=ADMIN)
    assert never.status == 404
    before = await api.post(
        f"/api/v1/config/{svc}/rollback", json={"to_time": "2000-01-01T00:00:00Z"}, headers=ADMIN
    )
    assert before.status == 404


async def test_reason_from_header_or_query_and_required_mode(stack: Stack, make_client, svc: str) -> None:
    api = await make_client(stack)
    await post(api, svc, DOC, params={"reason": "from query"})
    await post(api, svc, {"a": 1}, headers={"X-Change-Reason": "from header"})
    hist = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    assert [v["reason"] for v in hist["versions"]] == ["from header", "from query"]

    strict = await make_client(stack, require_reason=True)
    resp = await post(strict, svc, {"a": 2})
    body = await resp.json()
    assert resp.status == 422 and body["error"]["details"]["rule"] == "reason.required"
    assert (await post(strict, svc, {"a": 2}, headers={"X-Change-Reason": "why"})).status == 200


async def test_actor_is_the_token_identity_never_the_body(api, svc: str) -> None:
    await post(api, svc, {"actor": "mallory", "operational": {}})
    doc = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert doc["actor"] == "alice" and doc["config"]["actor"] == "mallory"


async def test_writes_return_while_the_projector_is_stopped_and_reads_follow_the_stream(
    stack: Stack, make_client, svc: str
) -> None:
    """PostgreSQL is not on the write path: with the projector stopped, writes still answer 200
    at once, and current reads and SSE (fed by the stream) already show them."""
    api = await make_client(stack, write_wait_ms=200)
    other = await make_client(stack, write_wait_ms=200)
    assert (await post(api, svc, DOC)).status == 200
    watch = await other.get(f"/api/v1/config/{svc}/watch", headers={**ADMIN, "Last-Event-ID": "1"})
    assert stack.projector is not None
    os.kill(stack.projector.pid, signal.SIGSTOP)
    try:
        for n in range(2, 5):
            resp = await post(api, svc, {"operational": {"batch_size": n}})
            body = await resp.json()
            assert resp.status == 200, body
            assert body["version"] == n and body["status"] == "success" and body["projected"] is False
            assert "X-Projection-Lag" not in resp.headers
            # Read-your-writes on the same process, from its own follower of the stream.
            got = await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
            assert (await got.json())["version"] == n
        # Another API process, told a version it has seen, never answers an older one.
        got = await other.get(f"/api/v1/config/{svc}", headers=ADMIN, params={"min_version": "4"})
        assert (await got.json())["version"] == 4
        # The SSE watch on the other process sees every version, from the stream.
        seen = []
        while len(seen) < 3:
            line = (await asyncio.wait_for(watch.content.readline(), 20)).decode()
            if line.startswith("id: "):
                seen.append(int(line[4:]))
        assert seen == [2, 3, 4]
    finally:
        os.kill(stack.projector.pid, signal.SIGCONT)
        watch.close()

    async def projected() -> bool:
        hist = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
        return [v["version"] for v in hist["versions"]] == [4, 3, 2, 1]

    await wait_for(projected, timeout=20, what="the projector to catch up")
    resp = await post(api, svc, {"operational": {"batch_size": 5}})
    assert resp.status == 200 and (await resp.json())["version"] == 5


async def test_concurrent_writers_on_one_service_all_land(api, svc: str) -> None:
    await post(api, svc, {"n": 0})
    results = await asyncio.gather(*(post(api, svc, {"n": i}) for i in range(1, 21)))
    assert all(r.status == 200 for r in results)
    versions = sorted([(await r.json())["version"] for r in results])
    assert versions == list(range(2, 22))
    hist = await (await api.get(f"/api/v1/config/history/{svc}", params={"limit": "100"}, headers=ADMIN)).json()
    assert [v["version"] for v in hist["versions"]] == list(range(21, 0, -1))
