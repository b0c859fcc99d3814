"""SSE watch: every version in order, and Last-Event-ID resumes without a gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from aiohttp import ClientResponse

from .helpers import ADMIN, bearer, post


async def events(resp: ClientResponse) -> AsyncIterator[tuple[str, int, dict]]:
    """Parse a text/event-stream into (event, id, data) triples (comments skipped)."""
    event, event_id, data = "", -1, []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event, event_id, orjson.loads("\n".join(data))
            event, event_id, data = "", -1, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "id":
            event_id = int(value)
        elif field == "data":
            data.append(value)


async def take(resp: ClientResponse, n: int, timeout: float = 20) -> list[tuple[str, int, dict]]:
    async def collect() -> list[tuple[str, int, dict]]:
        out = []
        async for item in events(resp):
            out.append(item)
            if len(out) == n:
                break
        return out

    return await asyncio.wait_for(collect(), timeout)


async def test_watcher_sees_every_version_in_order(api, svc: str) -> None:
    await post(api, svc, {"n": 0})
    async with api.get(f"/api/v1/config/{svc}/watch", headers=bearer("auditor")) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        first = await take(resp, 1)
        assert first[0][0] == "config" and first[0][1] == 1 and first[0][2]["config"] == {"n": 0}

        async def writer() -> None:
            for i in range(1, 16):
                await post(api, svc, {"n": i, "keep": True} if i % 2 else {"n": i})
            await api.patch(f"/api/v1/config/{svc}", json={"extra": 1}, headers=ADMIN)
            await api.delete(f"/api/v1/config/{svc}", headers=ADMIN)

        writing = asyncio.create_task(writer())
        got = await take(resp, 17)
        await writing
    assert [i for _, i, _ in got] == list(range(2, 19))
    assert all(e == "change" for e, _, _ in got)
    assert [d["version"] for _, _, d in got] == list(range(2, 19))
    assert got[0][2]["diff"] == {
        "added": [{"path": "/keep", "value": True}],
        "removed": [],
        "changed": [{"path": "/n", "from": 0, "to": 1}],
    }
    assert got[-2][2]["kind"] == "patched" and got[-2][2]["config"]["extra"] == 1
    assert got[-1][2]["kind"] == "deleted" and got[-1][2]["config"] is None


async def test_last_event_id_resumes_without_a_gap(api, svc: str) -> None:
    for i in range(3):
        await post(api, svc, {"n": i})
    async with api.get(f"/api/v1/config/{svc}/watch", headers=ADMIN) as resp:
        seen = await take(resp, 1)
    assert seen[0][1] == 3
    # Disconnected: five more versions land meanwhile.
    for i in range(3, 8):
        await post(api, svc, {"n": i})
    async with api.get(f"/api/v1/config/{svc}/watch", headers={**ADMIN, "Last-Event-ID": "3"}) as resp:
        caught_up = await take(resp, 5)
        assert [i for _, i, _ in caught_up] == [4, 5, 6, 7, 8]
        assert caught_up[0][2]["diff"]["changed"] == [{"path": "/n", "from": 2, "to": 3}]
        await post(api, svc, {"n": 99})
        live = await take(resp, 1)
    assert live[0][1] == 9 and live[0][2]["config"] == {"n": 99}
    # ?last_event_id= for clients that cannot set headers; resuming from 0 replays everything.
    async with api.get(f"/api/v1/config/{svc}/watch", params={"last_event_id": "0"}, headers=ADMIN) as resp:
        assert [i for _, i, _ in await take(resp, 9)] == list(range(1, 10))


async def test_many_watchers_and_fast_writes(api, svc: str) -> None:
    await post(api, svc, {"n": 0})
    streams = [await api.get(f"/api/v1/config/{svc}/watch", headers=bearer("admin")) for _ in range(5)]
    try:
        for s in streams:
            await take(s, 1)
        await asyncio.gather(*(post(api, svc, {"n": i}) for i in range(1, 31)))
        results = await asyncio.gather(*(take(s, 30) for s in streams))
    finally:
        for s in streams:
            s.close()
    for got in results:
        assert [i for _, i, _ in got] == list(range(2, 32))


async def test_watch_of_a_new_service_starts_empty_then_streams(api, svc: str) -> None:
    async with api.get(f"/api/v1/config/{svc}/watch", headers=ADMIN) as resp:
        assert resp.status == 200
        await post(api, svc, {"born": True})
        got = await take(resp, 1)
    assert got[0][:2] == ("change", 1) and got[0][2]["diff"]["added"] == [{"path": "/born", "value": True}]


async def test_service_token_watches_only_its_own(api) -> None:
    async with api.get("/api/v1/config/svc-b/watch", headers=bearer("svc-a")) as resp:
        assert resp.status == 403
    async with api.get("/api/v1/config/svc-a/watch", headers={**bearer("svc-a"), "Last-Event-ID": "x"}) as resp:
        assert resp.status == 400
