"""Reads: ETag/304, versions, time travel (?at=, snapshot), history pages, diff, the service list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import Ledger

from .helpers import ADMIN, Stack, bearer, post

AUDITOR = bearer("auditor")


async def test_if_none_match_gives_304(api, svc: str) -> None:
    await post(api, svc, {"a": 1})
    first = await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    etag = first.headers["ETag"]
    assert etag == '"1"'
    same = await api.get(f"/api/v1/config/{svc}", headers={**ADMIN, "If-None-Match": etag})
    assert same.status == 304 and same.headers["ETag"] == etag and await same.read() == b""
    weak_list = await api.get(f"/api/v1/config/{svc}", headers={**ADMIN, "If-None-Match": 'W/"9", W/"1"'})
    assert weak_list.status == 304
    await post(api, svc, {"a": 2})
    changed = await api.get(f"/api/v1/config/{svc}", headers={**ADMIN, "If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] == '"2"'
    old = await api.get(f"/api/v1/config/{svc}", params={"version": "1"}, headers={**ADMIN, "If-None-Match": etag})
    assert old.status == 304


async def test_version_and_at_time_travel(api, svc: str) -> None:
    await post(api, svc, {"operational": {"batch_size": 100}})
    between = datetime.now(UTC)
    await post(api, svc, {"operational": {"batch_size": 200}})

    old = await api.get(f"/api/v1/config/{svc}", params={"at": between.isoformat()}, headers=ADMIN)
    assert old.status == 200 and old.headers["ETag"] == '"1"'
    assert (await old.json())["config"] == {"operational": {"batch_size": 100}}
    # "Z" form, and a "+" that a careless client left unencoded (arrives as a space).
    z = between.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (await (await api.get(f"/api/v1/config/{svc}?at={z}", headers=ADMIN)).json())["version"] == 1
    plus = between.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    assert (await (await api.get(f"/api/v1/config/{svc}?at={plus}", headers=ADMIN)).json())["version"] == 1

    now = await api.get(f"/api/v1/config/{svc}", params={"at": datetime.now(UTC).isoformat()}, headers=ADMIN)
    assert (await now.json())["version"] == 2
    before = await api.get(f"/api/v1/config/{svc}", params={"at": "2001-01-01T00:00:00Z"}, headers=ADMIN)
    assert before.status == 404

    v1 = await api.get(f"/api/v1/config/{svc}", params={"version": "1"}, headers=ADMIN)
    assert (await v1.json())["config"] == {"operational": {"batch_size": 100}}
    missing = await api.get(f"/api/v1/config/{svc}", params={"version": "3"}, headers=ADMIN)
    body = await missing.json()
    assert missing.status == 404 and body["error"]["message"].startswith("Config not found for service:")
    both = await api.get(f"/api/v1/config/{svc}", params={"version": "1", "at": z}, headers=ADMIN)
    assert both.status == 400


async def test_snapshot_at_an_instant_is_every_service_state(api, stack: Stack, svc: str) -> None:
    a, b, c = f"{svc}-a", f"{svc}-b", f"{svc}-c"
    await post(api, a, {"v": "a1"})
    await post(api, b, {"v": "b1"})
    await post(api, c, {"v": "c1"})
    instant = datetime.now(UTC)
    await post(api, a, {"v": "a2"})
    await api.delete(f"/api/v1/config/{b}", headers=ADMIN)
    await post(api, f"{svc}-d", {"v": "d1"})

    resp = await api.get("/api/v1/snapshot", params={"at": instant.isoformat()}, headers=AUDITOR)
    snap = await resp.json()
    assert resp.status == 200
    mine = {k: (v["version"], v["config"]) for k, v in snap["services"].items() if k.startswith(svc)}
    assert mine == {a: (1, {"v": "a1"}), b: (1, {"v": "b1"}), c: (1, {"v": "c1"})}
    # The projection agrees with the stream (the source of truth) on every service at that instant.
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        truth = {e.event.service: e.event for e in await led.services(instant)}
    assert {k: v["version"] for k, v in snap["services"].items()} == {
        k: e.version for k, e in truth.items() if e.config is not None
    }
    assert all(snap["services"][k]["config"] == e.config for k, e in truth.items() if e.config is not None)

    later = await (await api.get("/api/v1/snapshot", headers=AUDITOR)).json()
    assert later["services"][a]["config"] == {"v": "a2"} and b not in later["services"]
    assert b in later["deleted"] and f"{svc}-d" in later["services"]


async def test_history_is_newest_first_and_paginated(api, svc: str) -> None:
    for i in range(7):
        await post(api, svc, {"n": i}, headers={"X-Change-Reason": f"step {i}"})
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await (await api.get(f"/api/v1/config/history/{svc}", params=params, headers=AUDITOR)).json()
        seen += [v["version"] for v in page["versions"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1] and pages == 3
    first = (await (await api.get(f"/api/v1/config/history/{svc}", headers=AUDITOR)).json())["versions"][0]
    assert first["reason"] == "step 6" and first["actor"] == "alice" and first["change"] == {"n": 6}
    assert first["hash"].startswith("sha256:") and first["prev_hash"].startswith("sha256:")
    unknown = await api.get(f"/api/v1/config/history/{svc}-nope", headers=AUDITOR)
    assert unknown.status == 404
    bad = await api.get(f"/api/v1/config/history/{svc}", params={"cursor": "!!"}, headers=AUDITOR)
    assert bad.status == 400 and (await bad.json())["error"]["details"]["rule"] == "query.cursor"


async def test_diff_between_versions_and_instants(api, svc: str) -> None:
    await post(api, svc, {"operational": {"batch_size": 100, "retries": 3}, "old": True})
    t1 = datetime.now(UTC)
    await post(api, svc, {"operational": {"batch_size": 200, "retries": 3}, "features": {"x": 1}})

    d = await (await api.get(f"/api/v1/config/{svc}/diff", params={"from": "1", "to": "2"}, headers=AUDITOR)).json()
    assert d["added"] == [{"path": "/features", "value": {"x": 1}}]
    assert d["removed"] == [{"path": "/old", "value": True}]
    assert d["changed"] == [{"path": "/operational/batch_size", "from": 100, "to": 200}]
    assert d["from"]["version"] == 1 and d["to"]["version"] == 2

    by_time = await (
        await api.get(f"/api/v1/config/{svc}/diff", params={"from": t1.isoformat()}, headers=AUDITOR)
    ).json()
    assert by_time["changed"] == d["changed"] and by_time["to"]["version"] == 2
    default = await (await api.get(f"/api/v1/config/{svc}/diff", headers=AUDITOR)).json()
    assert default["from"]["version"] == 1 and default["added"] == d["added"]
    from_start = await (
        await api.get(
            f"/api/v1/config/{svc}/diff",
            params={"from": (t1 - timedelta(days=1)).isoformat(), "to": "1"},
            headers=AUDITOR,
        )
    ).json()
    assert from_start["from"] is None and {a["path"] for a in from_start["added"]} == {"/operational", "/old"}
    assert (await api.get(f"/api/v1/config/{svc}/diff", params={"from": "9"}, headers=AUDITOR)).status == 404
    assert (await api.get(f"/api/v1/config/{svc}/diff", params={"from": "x"}, headers=AUDITOR)).status == 400


async def test_list_services(api, svc: str) -> None:
    await post(api, f"{svc}-1", {"a": 1})
    await post(api, f"{svc}-2", {"a": 1})
    await post(api, f"{svc}-2", {"a": 2})
    await api.delete(f"/api/v1/config/{svc}-1", headers=ADMIN)
    body = await (await api.get("/api/v1/config", headers=AUDITOR)).json()
    mine = {s["service"]: (s["version"], s["deleted"]) for s in body["services"] if s["service"].startswith(svc)}
    assert mine == {f"{svc}-1": (2, True), f"{svc}-2": (2, False)}
