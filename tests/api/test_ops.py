"""/healthz, /readyz (lag, fail-stop), /metrics (a registry per app), /api/v1/openapi.json."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from api import ROUTES, build_openapi
from api.auth import Action
from ledger import Ledger, Replace
from tests.support.waiting import wait_for

from .helpers import ADMIN, Stack, post


async def test_healthz(api) -> None:
    resp = await api.get("/healthz")
    assert resp.status == 200 and (await resp.json()) == {"status": "ok"}


async def test_readyz_when_everything_is_up(api) -> None:
    resp = await api.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["checks"]["nats"]["connected"] and body["checks"]["postgres"]["reachable"]
    assert body["checks"]["projector"]["lag_events"] == 0


@pytest.fixture
async def own_stack(nats_server, pg_cluster: str, make_stack) -> Stack:
    return await make_stack(nats_server.url, pg_cluster)


async def _ready(client) -> tuple[int, dict]:
    resp = await client.get("/readyz")
    return resp.status, await resp.json()


async def test_readyz_reports_projector_lag_and_recovers(own_stack: Stack, make_client) -> None:
    client = await make_client(own_stack, ready_max_lag=2, ready_max_lag_seconds=3600)
    own_stack.stop_projector()
    async with Ledger.connect(settings=own_stack.ledger_settings) as led:
        for i in range(3):
            await led.append("lagging", Replace({"n": i}), actor="t")
    status, body = await _ready(client)
    assert status == 503
    assert any("3 events behind" in r for r in body["reasons"]), body
    assert body["checks"]["projector"]["lag_events"] == 3

    metrics = await (await client.get("/metrics")).text()
    assert "config_api_projection_lag_events 3.0" in metrics

    strict = await make_client(own_stack, ready_max_lag=1000, ready_max_lag_seconds=0.0)
    status, body = await _ready(strict)
    assert status == 503 and any("oldest unprojected event" in r for r in body["reasons"]), body

    own_stack.start_projector()
    await wait_for(lambda: _is_ready(client), timeout=30, what="readyz after the projector caught up")


async def _is_ready(client) -> bool:
    return (await _ready(client))[0] == 200


async def test_readyz_reports_a_fail_stopped_projector(own_stack: Stack, make_client) -> None:
    client = await make_client(own_stack)
    own_stack.stop_projector()
    conn = await asyncpg.connect(own_stack.database_url)
    try:  # what the projector records when it fail-stops (projector_status, see 0001_init.sql)
        await conn.execute(
            "UPDATE projector_status SET state = 'failed', reason = 'broken hash chain', failed_seq = 7"
        )
    finally:
        await conn.close()
    status, body = await _ready(client)
    assert status == 503
    assert any("fail-stopped at stream sequence 7: broken hash chain" in r for r in body["reasons"]), body
    metrics = await (await client.get("/metrics")).text()
    assert "config_api_projector_failed 1.0" in metrics


async def test_metrics_count_requests_per_route_and_each_app_has_its_own(api, stack: Stack, make_client, svc: str) -> None:
    await post(api, svc, {"a": 1})
    await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    await api.get("/api/v1/config/x", headers={"Authorization": "Bearer wrong"})
    await api.post(f"/api/v1/config/{svc}", json={"a": 2}, headers={**ADMIN, "If-Match": '"7"'})
    resp = await api.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert 'config_api_requests_total{method="GET",route="/api/v1/config/{service}",status="200"} 2.0' in text
    assert 'config_api_requests_total{method="GET",route="/api/v1/config/{service}",status="401"} 1.0' in text
    assert 'config_api_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/config/{service}"}' in text
    assert 'config_api_appends_total{kind="replaced",outcome="appended"} 1.0' in text
    assert "config_api_conflicts_total 1.0" in text
    assert "config_api_projection_lag_events 0.0" in text
    assert "config_api_projected_seq" in text and "config_api_cache_services" in text
    # Unknown paths share one label value: no cardinality explosion.
    await api.get("/nope/1")
    await api.get("/nope/2")
    assert 'route="unmatched",status="404"} 2.0' in await (await api.get("/metrics")).text()

    other = await make_client(stack)
    fresh = await (await other.get("/metrics")).text()
    assert 'route="/api/v1/config/{service}",status="200"' not in fresh


async def test_openapi_document_is_valid_and_complete(api) -> None:
    resp = await api.get("/api/v1/openapi.json")
    doc = await resp.json()
    assert resp.status == 200
    validate(doc)  # OpenAPI 3.1 (openapi-spec-validator)
    assert doc["openapi"].startswith("3.1")
    for route in ROUTES:
        op = doc["paths"][re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)][route.method.lower()]
        assert op["responses"], route
        if route.action is Action.PUBLIC:
            assert op["security"] == []
        else:
            assert op["security"] == [{"bearerAuth": []}] and "401" in op["responses"] and "403" in op["responses"]
        if route.action is Action.WRITE:
            assert {"409", "422", "503"} <= set(op["responses"]) and {"200", "201", "202"} & set(op["responses"])
    assert doc == build_openapi()
    assert "error" in doc["components"]["schemas"]["ErrorBody"]["required"]  # RFC 9457 members besides


async def test_unexpected_errors_are_a_generic_500_and_routes_deny_by_default(stack: Stack, caplog) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from api import create_app
    from api.keys import ACTIONS

    async def boom(request):
        raise RuntimeError("secret internals")

    async def unguarded(request):
        return web.json_response({"leak": True})

    app = create_app(stack.api_settings())
    app.router.add_get("/boom", boom, name="boom")
    app.router.add_get("/unguarded", unguarded, name="unguarded")
    app[ACTIONS]["boom"] = Action.PUBLIC
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/boom")
        body = await resp.json()
        assert resp.status == 500
        assert body["error"] == {"code": "internal", "message": "internal server error; the server log has the details", "details": None}
        assert body["status"] == 500 and body["detail"] == body["error"]["message"]
        assert "secret internals" not in await resp.text()
        assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
        denied = await client.get("/unguarded", headers=ADMIN)
        assert denied.status == 403
