"""Dependencies going away: NATS down → 503 on writes; PostgreSQL down → 503 on reads needing it."""

from __future__ import annotations

from api.keys import FEED, LEDGER
from tests.support.waiting import wait_for

from .helpers import ADMIN, post


async def _expect_unavailable(resp) -> dict:
    body = await resp.json()
    assert resp.status == 503, body
    assert resp.headers["Retry-After"].isdigit()
    assert body["error"]["code"] in ("unavailable", "timeout")
    return body


async def test_nats_down_writes_503_reads_still_served(nats_server, pg_cluster, make_stack, make_client, svc: str) -> None:
    stack = await make_stack(nats_server.url, pg_cluster)
    client = await make_client(stack)
    assert (await post(client, svc, {"a": 1})).status == 200
    nc = client.server.app[LEDGER].nc

    nats_server.kill()
    await wait_for(lambda: not nc.is_connected, timeout=10, what="the API to notice NATS is gone")
    await _expect_unavailable(await client.post(f"/api/v1/config/{svc}", json={"a": 2}, headers=ADMIN))
    await _expect_unavailable(await client.delete(f"/api/v1/config/{svc}", headers=ADMIN))
    # Reads come from the projection and do not need NATS.
    got = await client.get(f"/api/v1/config/{svc}", headers=ADMIN)
    assert got.status == 200 and (await got.json())["config"] == {"a": 1}
    ready = await client.get("/readyz")
    assert ready.status == 503 and "NATS is not connected" in (await ready.json())["reasons"]

    nats_server.start()
    await wait_for(lambda: nc.is_connected, timeout=20, what="the API to reconnect to NATS")
    assert (await post(client, svc, {"a": 3})).status == 200
    got = await client.get(f"/api/v1/config/{svc}", headers=ADMIN)
    assert (await got.json())["config"] == {"a": 3}


async def test_postgres_down_reads_needing_it_503(nats_server, private_pg, make_stack, make_client, svc: str) -> None:
    stack = await make_stack(nats_server.url, private_pg.url())
    client = await make_client(stack, write_wait_ms=300)
    assert (await post(client, svc, {"a": 1})).status == 200
    feed = client.server.app[FEED]

    private_pg.kill()
    await wait_for(lambda: not feed.live, timeout=15, what="the feed to notice PostgreSQL is gone")
    for path in (f"/api/v1/config/{svc}?version=1", f"/api/v1/config/history/{svc}",
                 "/api/v1/snapshot", f"/api/v1/config/{svc}/diff?from=1"):
        await _expect_unavailable(await client.get(path, headers=ADMIN))
    ready = await client.get("/readyz")
    assert ready.status == 503 and any("PostgreSQL" in r for r in (await ready.json())["reasons"])

    # Writes still reach the ledger and answer at once (PostgreSQL is not on the write path);
    # current reads follow the stream, read-your-writes included.
    lagging = await post(client, svc, {"a": 2})
    assert lagging.status == 200 and (await lagging.json())["projected"] is False
    got = await client.get(f"/api/v1/config/{svc}", headers=ADMIN)
    assert got.status == 200 and (await got.json())["config"] == {"a": 2}

    private_pg.start()
    if stack.projector is None or stack.projector.poll() is not None:
        stack.start_projector()  # a projector may exit when its database goes away
    await wait_for(lambda: feed.live, timeout=30, what="the feed to reconnect")
    await wait_for(lambda: stack.projected(svc, 2), timeout=30, what="the projector to catch up")
    got = await client.get(f"/api/v1/config/{svc}?version=2", headers=ADMIN)
    assert got.status == 200 and (await got.json())["config"] == {"a": 2}
    hist = await (await client.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    assert [v["version"] for v in hist["versions"]] == [2, 1]


async def test_api_starts_while_postgres_is_down(nats_server, private_pg, make_stack, make_client, svc: str) -> None:
    stack = await make_stack(nats_server.url, private_pg.url())
    stack.stop_projector()
    private_pg.kill()
    client = await make_client(stack)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    await _expect_unavailable(await client.get(f"/api/v1/config/history/{svc}", headers=ADMIN))
    private_pg.start()
    stack.start_projector()
    feed = client.server.app[FEED]
    await wait_for(lambda: feed.live, timeout=30, what="the feed to connect")
    assert (await post(client, svc, {"a": 1})).status == 200
