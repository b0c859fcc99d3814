"""HTTP conventions (issue 18): no-op writes, PUT, 201 + Location, problem+json, request ids and
trace context (into the event), CORS, YAML by Accept, history with diffs and Link, metrics."""

from __future__ import annotations

import logging

import yaml

from ledger import Ledger
from ledger.event import Event

from .helpers import ADMIN, Stack, post

DOC = {"db": {"pool": 10, "host": "a"}}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_noop_writes_answer_unchanged_and_append_nothing(api, svc: str, stack: Stack) -> None:
    first = await post(api, svc, DOC, headers={"X-Change-Reason": "create"})
    assert first.status == 200
    for send in (
        lambda: api.post(f"/api/v1/config/{svc}", json=DOC, headers={**ADMIN, "X-Change-Reason": "again"}),
        lambda: api.put(f"/api/v1/config/{svc}", json=DOC, headers=ADMIN),
        lambda: api.patch(f"/api/v1/config/{svc}", json={}, headers=ADMIN),
        lambda: api.patch(f"/api/v1/config/{svc}", json={"db": {"pool": 10}}, headers=ADMIN),
    ):
        resp = await send()
        body = await resp.json()
        assert resp.status == 200 and body["unchanged"] is True and body["version"] == 1, body
        assert "unchanged" in body["message"]
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        events = [e async for e in led.history(svc)]
    assert [e.version for e in events] == [1]
    # A real change still appends; 1 and 1.0 are different documents.
    changed = await api.patch(f"/api/v1/config/{svc}", json={"db": {"pool": 10.0}}, headers=ADMIN)
    assert (await changed.json())["version"] == 2


async def test_put_replaces_and_creates_with_201_and_location(api, svc: str) -> None:
    created = await api.put(f"/api/v1/config/{svc}", json=DOC, headers=ADMIN)
    assert created.status == 201 and created.headers["Location"] == f"/api/v1/config/{svc}"
    replaced = await api.put(f"/api/v1/config/{svc}", json={"x": 1}, headers=ADMIN)
    assert replaced.status == 200 and "Location" not in replaced.headers
    doc = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert doc["config"] == {"x": 1} and doc["version"] == 2
    # The reference POST keeps its answer.
    body = await (await post(api, f"{svc}-ref", DOC)).json()
    assert body["message"] == "Config updated and broadcasted"


async def test_errors_are_problem_json_keeping_the_error_object(api, svc: str) -> None:
    resp = await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    assert resp.status == 404 and resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json()
    assert body["status"] == 404 and body["type"].endswith("/not_found") and body["detail"] == body["error"]["message"]
    assert body["instance"] == f"/api/v1/config/{svc}" and body["error"]["code"] == "not_found"
    missing_version = await (await api.get(f"/api/v1/config/{svc}?version=9", headers=ADMIN)).json()
    assert "no version 9" in missing_version["detail"]
    unknown = await api.get("/api/v1/nowhere", headers=ADMIN)
    assert unknown.headers["Content-Type"].startswith("application/problem+json")
    gone = await api.delete(f"/api/v1/config/{svc}", headers=ADMIN)
    assert gone.status == 404  # deleting what does not exist: not found, not 422


async def test_request_id_and_traceparent_are_echoed_and_recorded(api, svc: str, stack: Stack,
                                                                 caplog) -> None:
    caplog.set_level(logging.INFO, logger="api.access")
    resp = await api.post(f"/api/v1/config/{svc}", json=DOC,
                          headers={**ADMIN, "X-Request-Id": "req-42", "traceparent": TRACEPARENT})
    assert resp.headers["X-Request-Id"] == "req-42" and resp.headers["traceparent"] == TRACEPARENT
    generated = await api.get(f"/api/v1/config/{svc}", headers={**ADMIN, "X-Request-Id": "bad id;<script>"})
    assert len(generated.headers["X-Request-Id"]) == 32
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        event = await led.current(svc)
    assert event is not None and event.metadata == {"request_id": "req-42", "traceparent": TRACEPARENT}
    assert event.hash_ok() and Event.from_bytes(event.to_bytes()) == event
    logged = [r for r in caplog.records if getattr(r, "http", {}).get("request_id") == "req-42"]
    assert logged and logged[0].http["status"] == 200 and logged[0].http["route"] == "/api/v1/config/{service}"


def test_old_events_without_metadata_still_verify() -> None:
    from datetime import UTC, datetime

    from ledger import Replace
    from ledger.event import new_event

    old = new_event(None, "svc", Replace({"a": 1}), actor="a", reason="", occurred_at=datetime.now(UTC),
                    event_id="3f1c7e52-9d0a-4c55-9a67-1f3c1c0de1ed")
    assert "metadata" not in old.to_dict() and old.hash_ok()
    again = Event.from_bytes(old.to_bytes())
    assert again.hash_ok() and again.metadata is None


async def test_cors_and_options(stack: Stack, make_client, svc: str) -> None:
    client = await make_client(stack, cors_origins="https://app.example")
    pre = await client.options(f"/api/v1/config/{svc}", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PUT"})
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
    other = await client.options(f"/api/v1/config/{svc}", headers={"Origin": "https://evil.example"})
    assert other.status == 204 and "Access-Control-Allow-Origin" not in other.headers
    got = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert got.headers["Access-Control-Allow-Origin"] == "https://app.example"


async def test_yaml_by_content_negotiation(api, svc: str) -> None:
    await post(api, svc, DOC)
    resp = await api.get(f"/api/v1/config/{svc}", headers={**ADMIN, "Accept": "application/yaml"})
    assert resp.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(await resp.text())["config"] == DOC
    json_first = await api.get(f"/api/v1/config/{svc}",
                               headers={**ADMIN, "Accept": "application/json, application/yaml"})
    assert json_first.headers["Content-Type"].startswith("application/json")


async def test_history_beside_the_service_with_diffs_and_link(api, svc: str) -> None:
    await post(api, svc, DOC)
    await api.patch(f"/api/v1/config/{svc}", json={"db": {"pool": 20}}, headers=ADMIN)
    await api.patch(f"/api/v1/config/{svc}", json={"db": {"host": "b"}}, headers=ADMIN)
    page = await api.get(f"/api/v1/config/{svc}/history?limit=2", headers=ADMIN)
    body = await page.json()
    assert [v["version"] for v in body["versions"]] == [3, 2]
    assert body["versions"][1]["diff"]["changed"] == [{"path": "/db/pool", "from": 10, "to": 20}]
    link = page.headers["Link"]
    assert link.startswith("<") and 'rel="next"' in link and "cursor=" in link
    nxt = await api.get(link[1:link.index(">")], headers=ADMIN)
    rest = await nxt.json()
    assert [v["version"] for v in rest["versions"]] == [1] and "Link" not in nxt.headers
    reference = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    assert [v["version"] for v in reference["versions"]] == [3, 2, 1]


async def test_metrics_have_histograms_projector_and_process(api, svc: str) -> None:
    await post(api, svc, DOC)
    text = await (await api.get("/metrics")).text()
    for name in ("config_api_append_duration_seconds_bucket", "config_api_projection_wait_seconds_bucket",
                 "config_api_request_duration_seconds_bucket", "config_projector_heartbeat_age_seconds",
                 "config_projector_last_applied_seq", "config_projector_up", "process_resident_memory_bytes"):
        assert name in text, name
