"""Schemas, dry runs, change sets and blame over HTTP: rules, rule ids, nothing appended on refusal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledger import Ledger, nats_io
from tests.support.waiting import wait_for

from .helpers import ADMIN, Stack, bearer, post

SCHEMA = {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}, "required": ["port"]}


async def last_seq(stack: Stack) -> int:
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        return await nats_io.stream_last_seq(led.nc, led.settings.stream)


async def call(api: Any, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    headers = {**ADMIN, "X-Change-Reason": "test", **kw.pop("headers", {})}
    resp = await api.request(method, path, headers=headers, **kw)
    return resp.status, await resp.json()


async def test_schema_put_get_history_and_delete(api, svc: str) -> None:
    assert (await post(api, svc, {"port": 80})).status == 200
    status, body = await call(api, "PUT", f"/api/v1/schema/{svc}", json=SCHEMA)
    assert status == 200 and body["version"] == 1
    status, got = await call(api, "GET", f"/api/v1/schema/{svc}")
    assert status == 200 and got["schema"] == SCHEMA and got["actor"] == "alice" and got["reason"] == "test"
    relaxed = {"type": "object"}
    assert (await call(api, "PUT", f"/api/v1/schema/{svc}", json=relaxed))[0] == 200
    assert (await call(api, "GET", f"/api/v1/schema/{svc}?version=1"))[1]["schema"] == SCHEMA
    assert (await call(api, "GET", f"/api/v1/schema/{svc}?at={got['stored_at']}"))[1]["version"] == 1
    assert (await call(api, "DELETE", f"/api/v1/schema/{svc}"))[0] == 200
    status, gone = await call(api, "GET", f"/api/v1/schema/{svc}")
    assert status == 404 and gone["error"]["details"]["removed_at_version"] == 3
    # A service reads its own schema, not another's.
    own = await api.get(f"/api/v1/schema/{svc}?version=1", headers=bearer("svc-a"))
    assert own.status == 403


async def test_schema_refusals_name_the_rule_and_the_paths(api, svc: str) -> None:
    assert (await post(api, svc, {"port": 70000})).status == 200
    status, bad = await call(api, "PUT", f"/api/v1/schema/{svc}", json={"type": "nonsense"})
    assert status == 422 and bad["error"]["details"]["rule"] == "schema.invalid"
    status, fails = await call(api, "PUT", f"/api/v1/schema/{svc}", json=SCHEMA)
    assert status == 422 and fails["error"]["details"]["rule"] == "schema"
    assert fails["error"]["details"]["errors"][0]["pointer"] == "/port"
    assert fails["error"]["details"]["errors"][0]["keyword"] == "maximum"
    status, plan = await call(api, "PUT", f"/api/v1/schema/{svc}?dry_run=true", json=SCHEMA)
    assert status == 200 and not plan["ok"] and plan["schema_errors"][0]["pointer"] == "/port"


async def test_every_write_is_checked_against_the_schema_and_appends_nothing(api, stack: Stack, svc: str) -> None:
    assert (await post(api, svc, {"port": 80})).status == 200
    assert (await call(api, "PUT", f"/api/v1/schema/{svc}", json=SCHEMA))[0] == 200
    before = await last_seq(stack)
    status, post_bad = await call(api, "POST", f"/api/v1/config/{svc}", json={"port": "eighty"})
    assert status == 422 and post_bad["error"]["details"]["rule"] == "schema"
    assert post_bad["error"]["details"]["errors"] == [
        {"pointer": "/port", "keyword": "type", "message": "'eighty' is not of type 'integer'",
         "schema_path": "/properties/port/type"}]
    status, patch_bad = await call(api, "PATCH", f"/api/v1/config/{svc}", json={"port": None})
    assert status == 422 and patch_bad["error"]["details"]["errors"][0]["keyword"] == "required"
    status, cs_bad = await call(api, "POST", "/api/v1/changesets",
                                json={"changes": [{"service": svc, "op": "replace", "config": {"port": -1, "x": 1}},
                                                  {"service": f"{svc}-b", "op": "replace", "config": {}}]})
    assert status == 200  # -1 is an integer below the maximum: valid
    before = await last_seq(stack)
    status, cs_bad = await call(api, "POST", "/api/v1/changesets",
                                json={"changes": [{"service": f"{svc}-c", "op": "replace", "config": {}},
                                                  {"service": svc, "op": "patch", "patch": {"port": 1e6}}]})
    assert status == 422 and cs_bad["error"]["details"]["member"] == 1
    assert await last_seq(stack) == before


@pytest.mark.parametrize("method, suffix, body", [
    ("POST", "", {"port": 1}),
    ("PATCH", "", {"port": 2}),
    ("DELETE", "", None),
    ("POST", "/rollback", {"to_version": 1}),
])
async def test_dry_run_appends_nothing_on_every_write(api, stack: Stack, svc: str, method: str, suffix: str,
                                                      body: Any) -> None:
    assert (await post(api, svc, {"port": 80, "keep": True})).status == 200
    assert (await post(api, svc, {"port": 81, "keep": True})).status == 200
    before = await last_seq(stack)
    kw = {"json": body} if body is not None else {}
    if method == "PATCH":
        kw["headers"] = {"Content-Type": "application/merge-patch+json"}
    status, plan = await call(api, method, f"/api/v1/config/{svc}{suffix}?dry_run=true", **kw)
    assert status == 200 and plan["dry_run"] is True and plan["ok"] is True
    assert plan["current_version"] == 2 and plan["version"] == 3
    assert await last_seq(stack) == before
    if method == "DELETE":
        assert plan["config"] is None and {d["path"] for d in plan["diff"]["removed"]} == {"/port", "/keep"}
    elif suffix:
        assert plan["diff"]["changed"] == [{"path": "/port", "from": 81, "to": 80}]


async def test_dry_run_reports_a_conflict_and_a_policy_breach(api, svc: str) -> None:
    assert (await post(api, svc, {"a": 1})).status == 200
    status, plan = await call(api, "POST", f"/api/v1/config/{svc}?dry_run=1", json={"token": "ghp_" + "a" * 36},
                              headers={"If-Match": '"9"'})
    assert status == 200 and not plan["ok"]
    assert plan["conflict"] == {"expected_version": 9, "current_version": 1}
    assert plan["policy_errors"][0]["rule"].startswith("secret.")
    status, bad = await call(api, "POST", f"/api/v1/config/{svc}?dry_run=maybe", json={})
    assert status == 400 and bad["error"]["details"]["rule"] == "query.dry_run"


async def test_change_set_all_or_nothing_history_get_and_rollback(api, stack: Stack, svc: str) -> None:
    a, b = f"{svc}-a", f"{svc}-b"
    assert (await post(api, a, {"n": 1})).status == 200
    changes = {"reason": "both at once", "changes": [
        {"service": a, "op": "patch", "patch": {"n": 2}, "if_match": 1},
        {"service": b, "op": "replace", "config": {"n": 1}}]}
    before = await last_seq(stack)
    status, plan = await call(api, "POST", "/api/v1/changesets?dry_run=true", json=changes)
    assert status == 200 and plan["ok"] and [m["version"] for m in plan["members"]] == [2, 1]
    assert await last_seq(stack) == before
    status, done = await call(api, "POST", "/api/v1/changesets", json=changes)
    assert status == 200 and [m["version"] for m in done["members"]] == [2, 1]
    cs = done["changeset_id"]
    status, listed = await call(api, "GET", f"/api/v1/changesets/{cs}")
    assert status == 200 and [(m["service"], m["version"]) for m in listed["members"]] == [(a, 2), (b, 1)]
    history = await (await api.get(f"/api/v1/config/history/{a}", headers=ADMIN)).json()
    assert history["versions"][0]["changeset_id"] == cs and history["versions"][1]["changeset_id"] is None
    diff = await (await api.get(f"/api/v1/config/{a}/diff", headers=ADMIN)).json()
    assert diff["to"]["changeset_id"] == cs and diff["from"]["changeset_id"] is None
    # A stale member refuses the whole set (409 naming it); nothing changes anywhere.
    before = await last_seq(stack)
    status, conflict = await call(api, "POST", "/api/v1/changesets", json=changes)
    assert status == 409 and conflict["error"]["details"]["member"] == 0
    assert conflict["error"]["details"]["service"] == a
    assert await last_seq(stack) == before
    # Rolling the set back is one new atomic set.
    status, undone = await call(api, "POST", f"/api/v1/changesets/{cs}/rollback", json={"reason": "undo"})
    assert status == 200 and [(m["service"], m["kind"]) for m in undone["members"]] == [(a, "rolled_back"),
                                                                                      (b, "deleted")]
    assert (await (await api.get(f"/api/v1/config/{a}", headers=ADMIN)).json())["config"] == {"n": 1}
    assert (await api.get(f"/api/v1/config/{b}", headers=ADMIN)).status == 404
    # Rolling back the same set again: its services moved on -> 409.
    assert (await call(api, "POST", f"/api/v1/changesets/{cs}/rollback", json={}))[0] == 409


async def test_change_set_idempotency_key_appends_once(api, stack: Stack, svc: str) -> None:
    body = {"changes": [{"service": svc, "op": "replace", "config": {"x": 1}}]}
    first = await call(api, "POST", "/api/v1/changesets", json=body, headers={"Idempotency-Key": "k1"})
    before = await last_seq(stack)
    again = await call(api, "POST", "/api/v1/changesets", json=body, headers={"Idempotency-Key": "k1"})
    assert again[1]["duplicate"] and again[1]["changeset_id"] == first[1]["changeset_id"]
    assert await last_seq(stack) == before


@pytest.mark.parametrize("body, status, rule", [
    ({"changes": []}, 422, "changeset.shape"),
    ({"changes": [{"service": "a", "op": "explode"}]}, 422, "changeset.shape"),
    ({"changes": [{"service": "a", "op": "replace"}]}, 422, "changeset.shape"),
    ({"changes": [{"service": "a", "op": "delete", "config": {}}]}, 422, "changeset.shape"),
    ({"changes": [{"service": "a", "op": "replace", "config": {}, "extra": 1}]}, 422, "changeset.shape"),
    ({"changes": [{"service": "a", "op": "rollback", "to_version": "1"}]}, 422, "changeset.shape"),
    ({"changes": [{"service": "Bad Name", "op": "delete"}]}, 400, "service_name"),
    ({"changes": [{"service": "dup", "op": "replace", "config": {}},
                  {"service": "dup", "op": "replace", "config": {}}]}, 422, "changeset.duplicate_service"),
    ({"changes": [{"service": "a", "op": "replace", "config": {"password": "hunter2hunter2"}}]}, 422,
     "secret.key_name"),
    ([1, 2], 422, "changeset.shape"),
])
async def test_bad_change_sets_are_4xx_with_a_rule(api, body: Any, status: int, rule: str) -> None:
    got, err = await call(api, "POST", "/api/v1/changesets", json=body)
    assert got == status and err["error"]["details"]["rule"] == rule


@pytest.mark.parametrize("method, path, kw, status, rule", [
    ("POST", "/api/v1/changesets", {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400,
     "json.syntax"),
    ("GET", "/api/v1/changesets/not-a-uuid", {}, 422, "changeset.id"),
    ("POST", "/api/v1/changesets/not-a-uuid/rollback", {"json": {}}, 422, "changeset.id"),
    ("POST", f"/api/v1/changesets/{uuid.uuid4()}/rollback", {"json": {"x": 1}}, 422, "changeset.shape"),
    ("PUT", "/api/v1/schema/x", {"data": b"[1,", "headers": {"Content-Type": "application/json"}}, 400,
     "json.syntax"),
    ("PUT", "/api/v1/schema/x", {"json": [1]}, 422, "schema.invalid"),
    ("GET", "/api/v1/schema/x?version=0", {}, 400, "query.version"),
    ("GET", "/api/v1/schema/x?at=yesterday", {}, 400, "instant.syntax"),
    ("GET", "/api/v1/config/x/blame?at=yesterday", {}, 400, "instant.syntax"),
    ("DELETE", "/api/v1/schema/x?dry_run=2", {}, 400, "query.dry_run"),
])
async def test_bad_input_on_every_new_endpoint_is_4xx_with_a_rule(api, method: str, path: str, kw: Any,
                                                                   status: int, rule: str) -> None:
    got, err = await call(api, method, path, **kw)
    assert got == status and err["error"]["details"]["rule"] == rule


async def test_not_found_on_the_new_endpoints(api, svc: str) -> None:
    assert (await call(api, "GET", f"/api/v1/changesets/{uuid.uuid4()}"))[0] == 404
    assert (await call(api, "GET", f"/api/v1/schema/{svc}"))[0] == 404
    assert (await call(api, "DELETE", f"/api/v1/schema/{svc}"))[0] == 404
    assert (await call(api, "GET", f"/api/v1/config/{svc}/blame"))[0] == 404


async def test_blame_names_who_set_each_leaf_now_and_as_of_an_instant(api, stack: Stack, svc: str) -> None:
    assert (await post(api, svc, {"a": 1, "b": {"c": 1}}, headers={"X-Change-Reason": "start"})).status == 200
    first = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    status, done = await call(api, "POST", "/api/v1/changesets",
                              json={"reason": "bump c", "changes": [{"service": svc, "op": "patch",
                                                                     "patch": {"b": {"c": 2}}}]})
    assert status == 200
    await wait_for(lambda: stack.projected(svc, 2), what="projection of version 2")
    status, blame = await call(api, "GET", f"/api/v1/config/{svc}/blame")
    lines = {x["pointer"]: x for x in blame["lines"]}
    assert status == 200 and blame["version"] == 2
    assert (lines["/a"]["version"], lines["/a"]["reason"], lines["/a"]["actor"]) == (1, "start", "alice")
    assert (lines["/b/c"]["version"], lines["/b/c"]["value"]) == (2, 2)
    assert lines["/b/c"]["changeset_id"] == done["changeset_id"]
    status, old = await call(api, "GET", f"/api/v1/config/{svc}/blame?at={first['stored_at']}")
    assert status == 200 and old["version"] == 1 and {x["pointer"]: x["value"] for x in old["lines"]} == {
        "/a": 1, "/b/c": 1}


async def test_openapi_documents_every_new_endpoint(api) -> None:
    doc = await (await api.get("/api/v1/openapi.json")).json()
    for path, method in [("/api/v1/schema/{service}", "put"), ("/api/v1/schema/{service}", "get"),
                         ("/api/v1/schema/{service}", "delete"), ("/api/v1/changesets", "post"),
                         ("/api/v1/changesets/{changeset_id}", "get"),
                         ("/api/v1/changesets/{changeset_id}/rollback", "post"),
                         ("/api/v1/config/{service}/blame", "get")]:
        op = doc["paths"][path][method]
        assert op["summary"] and "200" in op["responses"] and {"400", "422"} & set(op["responses"])


async def test_watch_shows_the_change_set(api, svc: str) -> None:
    from .test_sse import take

    assert (await post(api, svc, {"n": 0})).status == 200
    async with api.get(f"/api/v1/config/{svc}/watch", headers=bearer("auditor")) as resp:
        first = await take(resp, 1)
        assert first[0][2]["changeset_id"] is None
        status, done = await call(api, "POST", "/api/v1/changesets",
                                  json={"changes": [{"service": svc, "op": "patch", "patch": {"n": 1}}]})
        assert status == 200
        [(_, version, data)] = await take(resp, 1)
        assert version == 2 and data["changeset_id"] == done["changeset_id"]
