"""The fleet over HTTP: instances view, acknowledgements, rollouts, schedules, the write guard.

No rollout controller runs here: every step is an admin's (promote/pause/abort), so the states
are deterministic. The controller's own decisions are covered in tests/fleet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.waiting import wait_for

from .helpers import ADMIN, bearer, post

CANARY = {"canary": "true"}
REST = {"canary": "false"}
STAGES = [{"labels": CANARY}, {"percent": 100}]


async def _ack(api: TestClient, svc: str, instance: str, who: str = "admin", **body: Any) -> Any:
    resp = await api.post(f"/api/v1/config/{svc}/instances/{instance}", json=body, headers=bearer(who))
    return resp.status, await resp.json()


async def _instances(api: TestClient, svc: str, **query: str) -> dict[str, Any]:
    resp = await api.get(f"/api/v1/config/{svc}/instances", params=query, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _start(api: TestClient, svc: str, **extra: Any) -> Any:
    body = {"change": {"op": "patch", "patch": {"limit": 2}}, "reason": "raise the limit", "stages": STAGES,
            "gate": {"bake_s": 3600, "min_applied": 1.0}, **extra}
    resp = await api.post(f"/api/v1/config/{svc}/rollouts", json=body, headers=ADMIN)
    return resp.status, await resp.json()


async def _get(api: TestClient, svc: str, rollout: str) -> dict[str, Any]:
    resp = await api.get(f"/api/v1/config/{svc}/rollouts/{rollout}", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _action(api: TestClient, svc: str, rollout: str, action: str) -> Any:
    resp = await api.post(f"/api/v1/config/{svc}/rollouts/{rollout}/{action}", headers=ADMIN)
    return resp.status, await resp.json()


def _rule(body: dict[str, Any]) -> str:
    return body["error"]["details"]["rule"]


async def test_the_instances_view_counts_applied_rejected_and_behind(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    assert (await post(api, svc, {"limit": 3})).status == 200  # version 2 is the target
    assert (await _ack(api, svc, "on-target", labels={"zone": "a"}, version=2, status="applied"))[0] == 202
    assert (await _ack(api, svc, "lagging", labels={"zone": "b"}, version=1, status="applied"))[0] == 202
    assert (await _ack(api, svc, "refusing", version=2, status="rejected", error="bad limit"))[0] == 202
    # a service token reports for its own service only
    assert (await _ack(api, svc, "other", who="svc-a", version=2, status="applied"))[0] == 403

    view = await _instances(api, svc)
    assert view["summary"] == {"target_version": 2, "rollout": None, "instances": 3, "applied": 1,
                               "rejected": 1, "behind": 1}
    rows = {row["instance"]: row for row in view["instances"]}
    assert set(rows) == {"on-target", "lagging", "refusing"}
    assert rows["on-target"]["labels"] == {"zone": "a"} and rows["on-target"]["version"] == 2
    assert [rows[n]["state"] for n in ("on-target", "lagging", "refusing")] == ["applied", "behind", "rejected"]
    assert rows["refusing"]["error"] == "bad limit"
    seen = datetime.fromisoformat(rows["lagging"]["last_seen"])
    assert abs((datetime.now(UTC) - seen).total_seconds()) < 60


async def test_metrics_count_instances_per_service_and_state(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    assert (await post(api, svc, {"limit": 3})).status == 200
    for name, version, status in (("a1", 2, "applied"), ("a2", 2, "applied"), ("b1", 1, "applied"),
                                  ("r1", 2, "rejected")):
        await _ack(api, svc, name, version=version, status=status)

    async def counted() -> bool:
        text = await (await api.get("/metrics")).text()
        return all(f'config_api_fleet_instances{{service="{svc}",state="{state}"}} {n}.0' in text
                   for state, n in (("applied", 2), ("rejected", 1), ("behind", 1)))

    # the target version comes from the projection cache, which follows the projector
    await wait_for(counted, timeout=15, interval=0.2, what="fleet gauges for the service")


async def test_a_dead_instance_leaves_the_view_after_its_ttl(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    await _ack(api, svc, "dying", version=1, status="applied")
    await _ack(api, svc, "alive", version=1, status="applied")
    assert {r["instance"] for r in (await _instances(api, svc, ttl_s="1"))["instances"]} == {"dying", "alive"}

    async def only_alive() -> bool:
        await _ack(api, svc, "alive", version=1, status="applied")  # the living one heartbeats
        view = await _instances(api, svc, ttl_s="1")
        return [r["instance"] for r in view["instances"]] == ["alive"] and view["summary"]["instances"] == 1

    await wait_for(only_alive, timeout=10, interval=0.2, what="the silent instance out of the view")


async def test_rollout_start_status_promote_and_per_stage_counts(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    status, started = await _start(api, svc)
    assert status == 201 and started["state"] == "running" and started["base_version"] == 1
    rid = started["id"]
    # c1 took the candidate, c2 refused it, r1 stays on the base (not in a promoted stage)
    await _ack(api, svc, "c1", labels=CANARY, version=1, rollout=rid, status="applied", staged=True)
    await _ack(api, svc, "c2", labels=CANARY, version=1, rollout=rid, status="rejected", error="no", staged=True)
    await _ack(api, svc, "r1", labels=REST, version=1, status="applied", staged=True)

    view = await _get(api, svc, rid)
    assert (view["state"], view["stage"], view["candidate"]) == ("running", 0, {"limit": 2})
    assert [(s["promoted"], s["cohort"], s["applied"], s["rejected"]) for s in view["stages"]] == [
        (True, 2, 1, 1), (False, 3, 1, 1)]
    fleet = await _instances(api, svc)
    assert fleet["summary"]["rollout"] == rid
    rows = {r["instance"]: (r["target"], r["state"]) for r in fleet["instances"]}
    assert rows == {"c1": ("candidate", "applied"), "c2": ("candidate", "rejected"), "r1": ("base", "applied")}

    assert await _action(api, svc, rid, "promote") == (200, {"id": rid, "state": "running", "stage": 1})
    view = await _get(api, svc, rid)
    assert view["stage"] == 1 and [s["promoted"] for s in view["stages"]] == [True, True]
    rows = {r["instance"]: (r["target"], r["state"]) for r in (await _instances(api, svc))["instances"]}
    assert rows["r1"] == ("candidate", "behind")  # promoted, not yet acknowledged
    status, body = await _action(api, svc, rid, "promote")
    assert status == 409 and _rule(body) == "rollout.last_stage"


async def test_pause_abort_and_a_finished_rollout_cannot_move(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    rid = (await _start(api, svc))[1]["id"]
    assert (await _action(api, svc, rid, "pause"))[1]["state"] == "paused"
    status, body = await _action(api, svc, rid, "pause")
    assert status == 409 and _rule(body) == "rollout.paused"
    assert (await _get(api, svc, rid))["state"] == "paused"
    status, body = await _start(api, svc)  # one active rollout per service, paused counts
    assert status == 409 and _rule(body) == "rollout.active" and body["error"]["details"]["rollout"] == rid
    assert (await _action(api, svc, rid, "abort"))[1]["state"] == "aborted"
    view = await _get(api, svc, rid)
    assert view["state"] == "aborted" and view["outcome"] == "manual abort"
    for action in ("promote", "pause", "abort"):
        status, body = await _action(api, svc, rid, action)
        assert status == 409 and _rule(body) == "rollout.finished", action
    current = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert current["version"] == 1 and current["config"] == {"limit": 1}
    assert (await _start(api, svc))[0] == 201  # the service is free again


async def test_a_plain_write_during_a_rollout_is_409_naming_it_unless_an_admin_forces(
    api: TestClient, svc: str
) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    rid = (await _start(api, svc))[1]["id"]
    for method in ("post", "patch", "delete"):
        resp = await getattr(api, method)(f"/api/v1/config/{svc}", json={"limit": 7}, headers={
            **ADMIN, "Content-Type": "application/merge-patch+json" if method == "patch" else "application/json"})
        body = await resp.json()
        assert resp.status == 409, method
        assert body["error"]["code"] == "rollout_conflict" and _rule(body) == "rollout.active"
        assert body["error"]["details"]["rollout"] == rid and rid in body["error"]["message"]
    rollback = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_version": 1}, headers=ADMIN)
    assert rollback.status == 409
    forced = await api.post(f"/api/v1/config/{svc}?force=true", json={"limit": 7}, headers=ADMIN)
    assert forced.status == 200 and (await forced.json())["version"] == 2
    # force is an admin's: anyone else is refused before the guard (no write permission at all)
    assert (await api.post(f"/api/v1/config/{svc}?force=true", json={"limit": 8},
                           headers=bearer("auditor"))).status == 403
    await _action(api, svc, rid, "abort")
    assert (await post(api, svc, {"limit": 9})).status == 200


async def test_schedules_create_and_cancel(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    resp = await api.post(f"/api/v1/config/{svc}/schedules", headers=ADMIN, json={
        "change": {"op": "replace", "config": {"limit": 5}}, "reason": "night change", "not_before": at})
    created = await resp.json()
    assert resp.status == 201 and created["state"] == "scheduled"
    assert datetime.fromisoformat(created["not_before"]) == datetime.fromisoformat(at)
    status, body = await _start(api, svc, not_before=at)  # a scheduled rollout is a schedule too
    assert status == 201 and body["state"] == "scheduled"
    assert (await _start(api, svc))[0] == 201  # nothing is active yet: a rollout may start now
    resp = await api.delete(f"/api/v1/config/{svc}/schedules/{created['id']}", headers=ADMIN)
    assert resp.status == 200 and (await resp.json()) == {"id": created["id"], "state": "cancelled"}
    again = await api.delete(f"/api/v1/config/{svc}/schedules/{created['id']}", headers=ADMIN)
    assert again.status == 404 and _rule(await again.json()) == "schedule.unknown"
    assert (await api.delete(f"/api/v1/config/{svc}/schedules/{body['id']}", headers=ADMIN)).status == 200
    current = await (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).json()
    assert current["version"] == 1  # nothing was written


# --- bad input on every new endpoint: 4xx with a rule, never 5xx ------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
GOOD_ROLLOUT = {"change": {"op": "patch", "patch": {"limit": 2}}, "stages": STAGES}
BAD_ROLLOUTS = [
    ({}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": []}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": [{}]}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": [{"percent": 0}]}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": [{"percent": 101}]}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": [{"labels": {"a": 1}}]}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "stages": [{"percent": 10}] * 11}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "change": {"op": "replace", "patch": {}}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "change": {"op": "delete"}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "change": {"op": "patch", "patch": [1]}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "gate": {"min_applied": 2}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "gate": {"max_rejected": -1}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "gate": {"bake_s": "soon"}}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "extra": 1}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "not_before": "tomorrow"}, "rollout.shape"),
    ({**GOOD_ROLLOUT, "not_before": "2020-01-01T00:00:00Z"}, "schedule.past"),
    ({**GOOD_ROLLOUT, "not_before": "2999-01-01T00:00:00"}, "rollout.shape"),
    ([1, 2], "rollout.shape"),
]
BAD_SCHEDULES = [
    ({}, "schedule.shape"),
    ({"change": {"op": "patch", "patch": {"a": 1}}}, "schedule.shape"),
    ({"change": {"op": "patch", "patch": {"a": 1}}, "not_before": "yesterday"}, "schedule.shape"),
    ({"change": {"op": "patch", "patch": {"a": 1}}, "not_before": "2999-01-01T00:00:00"}, "schedule.shape"),
    ({"change": {"op": "patch", "patch": {"a": 1}}, "not_before": "2020-01-01T00:00:00Z"}, "schedule.past"),
    ({"change": {"op": "nope"}, "not_before": FUTURE}, "schedule.shape"),
    ({"change": {"op": "patch", "patch": {"a": 1}}, "not_before": FUTURE, "x": 1}, "schedule.shape"),
]
BAD_ACKS = [
    ({}, "ack.shape"),
    ({"status": "maybe"}, "ack.shape"),
    ({"status": "applied", "version": -1}, "ack.shape"),
    ({"status": "applied", "labels": {"": "x"}}, "ack.shape"),
    ({"status": "applied", "labels": {"k": 5}}, "ack.shape"),
    ({"status": "applied", "error": "x" * 3000}, "ack.shape"),
    ({"status": "applied", "unknown": 1}, "ack.shape"),
]


async def _expect_4xx(resp: Any, rule: str | None) -> dict[str, Any]:
    text = await resp.text()
    assert 400 <= resp.status < 500, (resp.status, text)
    body = await resp.json()
    if rule is not None:
        assert _rule(body) == rule, body
    return body


@pytest.mark.parametrize(("body", "rule"), BAD_ROLLOUTS)
async def test_bad_rollout_requests_are_4xx_with_a_rule(api: TestClient, svc: str, body: Any, rule: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    await _expect_4xx(await api.post(f"/api/v1/config/{svc}/rollouts", json=body, headers=ADMIN), rule)


@pytest.mark.parametrize(("body", "rule"), BAD_SCHEDULES)
async def test_bad_schedules_are_4xx_with_a_rule(api: TestClient, svc: str, body: Any, rule: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    await _expect_4xx(await api.post(f"/api/v1/config/{svc}/schedules", json=body, headers=ADMIN), rule)


@pytest.mark.parametrize(("body", "rule"), BAD_ACKS)
async def test_bad_acknowledgements_are_4xx_with_a_rule(api: TestClient, svc: str, body: Any, rule: str) -> None:
    await _expect_4xx(await api.post(f"/api/v1/config/{svc}/instances/i1", json=body, headers=ADMIN), rule)


async def test_bad_paths_queries_and_bodies_on_the_fleet_endpoints(api: TestClient, svc: str) -> None:
    assert (await post(api, svc, {"limit": 1})).status == 200
    base = f"/api/v1/config/{svc}"
    cases = [
        (api.get(f"{base}/instances", params={"ttl_s": "soon"}, headers=ADMIN), "query.ttl_s"),
        (api.get(f"{base}/instances", params={"ttl_s": "0"}, headers=ADMIN), "query.ttl_s"),
        (api.get("/api/v1/config/Bad..Name/instances", headers=ADMIN), None),
        (api.post(f"{base}/instances/{'x' * 129}", json={"status": "applied"}, headers=ADMIN), "instance.id"),
        (api.post(f"{base}/instances/a.b", json={"status": "applied"}, headers=ADMIN), "instance.id"),
        (api.post(f"{base}/instances/i1", data=b"{not json", headers={**ADMIN, "Content-Type": "application/json"}),
         None),
        (api.post(f"{base}/instances/i1", data=b"status=applied", headers={**ADMIN, "Content-Type": "text/plain"}),
         "body.content_type"),
        (api.post(f"{base}/rollouts", data=b"[", headers={**ADMIN, "Content-Type": "application/json"}), None),
        (api.get(f"{base}/rollouts/nope", headers=ADMIN), "rollout.unknown"),
        (api.post(f"{base}/rollouts/nope/promote", headers=ADMIN), "rollout.unknown"),
        (api.post(f"{base}/rollouts/nope/abort", headers=ADMIN), "rollout.unknown"),
        (api.post(f"{base}/rollouts/nope/explode", headers=ADMIN), None),
        (api.delete(f"{base}/schedules/nope", headers=ADMIN), "schedule.unknown"),
        (api.post(f"{base}/rollouts", json=GOOD_ROLLOUT, headers=bearer("auditor")), None),
        (api.post(f"{base}/rollouts", json=GOOD_ROLLOUT), None),
        (api.get(f"{base}/instances", headers=bearer("svc-a")), None),
    ]
    for request, rule in cases:
        await _expect_4xx(await request, rule)
    # a candidate the ledger would refuse is refused now, not at completion
    resp = await api.post(f"/api/v1/config/{svc}-none/rollouts", json=GOOD_ROLLOUT, headers=ADMIN)
    body = await _expect_4xx(resp, None)
    assert body["error"]["code"] in ("not_found", "invalid_change", "invalid_config")



async def test_a_change_set_touching_a_service_under_a_rollout_is_409_naming_the_member(
    api: TestClient, svc: str
) -> None:
    other = f"{svc}-other"
    assert (await post(api, svc, {"limit": 1})).status == 200
    assert (await post(api, other, {"limit": 1})).status == 200
    rid = (await _start(api, svc))[1]["id"]
    changes = {"reason": "both", "changes": [{"service": other, "op": "patch", "patch": {"limit": 5}},
                                             {"service": svc, "op": "patch", "patch": {"limit": 5}}]}
    resp = await api.post("/api/v1/changesets", json=changes, headers=ADMIN)
    body = await resp.json()
    assert resp.status == 409 and _rule(body) == "rollout.active", body
    assert body["error"]["details"]["member"] == 1 and body["error"]["details"]["service"] == svc
    assert body["error"]["details"]["rollout"] == rid
    for name in (svc, other):  # all or nothing: neither member was stored
        current = await (await api.get(f"/api/v1/config/{name}", headers=ADMIN)).json()
        assert current["version"] == 1, name
