"""Issue 14's reproductions over HTTP: each answered with the right 4xx, never a 5xx or a wrong 200."""

from __future__ import annotations

import base64

import orjson

from api.openapi import build_openapi

from .helpers import ADMIN

AWS = "AKIA" + "IOSFODNN7EXAMPLE"
PEM = "-----" + "BEGIN RSA PRIVATE KEY-----"


async def _error(resp) -> dict:
    body = await resp.json()
    return body["error"]


async def _versions(api, svc: str) -> int:
    page = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    return len(page["versions"])


async def test_rollback_before_1677_is_404_and_appends_nothing(api, svc: str) -> None:
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)).status == 200
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 2}, headers=ADMIN)).status == 200
    for instant in ("1600-01-01T00:00:00Z", "1677-09-21T00:12:43Z", "0001-01-01T00:00:00Z"):
        resp = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_time": instant}, headers=ADMIN)
        assert resp.status == 404, (instant, await resp.text())
    assert await _versions(api, svc) == 2
    at = await api.get(f"/api/v1/config/{svc}", params={"at": "1600-01-01T00:00:00Z"}, headers=ADMIN)
    assert at.status == 404


async def test_instants_before_year_1000_are_answered_and_written_with_four_digits(api, svc: str) -> None:
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)).status == 200
    at = await api.get(f"/api/v1/config/{svc}", params={"at": "0999-01-01T00:00:00Z"}, headers=ADMIN)
    assert at.status == 404 and (await _error(at))["details"]["at"] == "0999-01-01T00:00:00.000000Z"
    snap = await api.get("/api/v1/snapshot", params={"at": "0999-01-01T00:00:00Z"}, headers=ADMIN)
    assert snap.status == 200 and (await snap.json())["at"] == "0999-01-01T00:00:00.000000Z"
    back = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_time": "0999-01-01T00:00:00Z"}, headers=ADMIN)
    assert back.status == 404
    diff = await api.get(f"/api/v1/config/{svc}/diff", params={"from": "0999-01-01T00:00:00Z"}, headers=ADMIN)
    assert diff.status == 200


async def test_instants_outside_0001_9999_are_400_with_a_rule(api, svc: str) -> None:
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)).status == 200
    for instant in ("0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"):
        at = await api.get(f"/api/v1/config/{svc}", params={"at": instant}, headers=ADMIN)
        back = await api.post(f"/api/v1/config/{svc}/rollback", json={"to_time": instant}, headers=ADMIN)
        diff = await api.get(f"/api/v1/config/{svc}/diff", params={"to": instant}, headers=ADMIN)
        for resp in (at, back, diff):
            assert resp.status == 400 and (await _error(resp))["details"]["rule"] == "instant.range", instant


async def test_huge_json_integers_are_422_not_500(api, svc: str) -> None:
    digits = "1" * 5000
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)).status == 200
    headers = {**ADMIN, "Content-Type": "application/json"}
    for method, path, body in (
        ("POST", f"/api/v1/config/{svc}", '{"a": ' + digits + "}"),
        ("PATCH", f"/api/v1/config/{svc}", '{"a": -' + digits + "}"),
        ("POST", f"/api/v1/config/{svc}/rollback", '{"to_version": ' + digits + "}"),
    ):
        resp = await api.request(method, path, data=body, headers=headers)
        assert resp.status == 422 and (await _error(resp))["details"]["rule"] == "json.int_range", method
    assert await _versions(api, svc) == 1


async def test_history_cursor_beyond_the_column_is_400(api, svc: str) -> None:
    assert (await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)).status == 200
    for before in (2147483648, 2**63):
        cursor = base64.urlsafe_b64encode(orjson.dumps({"before": before})).decode().rstrip("=")
        resp = await api.get(f"/api/v1/config/history/{svc}", params={"cursor": cursor}, headers=ADMIN)
        assert resp.status == 400 and (await _error(resp))["details"]["rule"] == "query.cursor"


async def test_reasons_are_checked_by_the_secrets_policy(api, svc: str) -> None:
    for value in (1, 2):
        assert (await api.post(f"/api/v1/config/{svc}", json={"a": value}, headers=ADMIN)).status == 200
    attempts = [
        ("POST", f"/api/v1/config/{svc}", {"json": {"a": 2}, "headers": {**ADMIN, "X-Change-Reason": f"key {AWS}"}},
         "secret.aws_access_key"),
        ("PATCH", f"/api/v1/config/{svc}", {"json": {"a": 3}, "params": {"reason": PEM}, "headers": ADMIN},
         "secret.private_key"),
        ("POST", f"/api/v1/config/{svc}/rollback", {"json": {"to_version": 1, "reason": "via redis://:pw@h"},
                                                    "headers": ADMIN}, "secret.url_credentials"),
        ("DELETE", f"/api/v1/config/{svc}", {"headers": {**ADMIN, "X-Change-Reason": f"Basic {base64.b64encode(b'u:p1').decode()}"}},
         "secret.authorization_basic"),
    ]
    for method, path, kwargs, rule in attempts:
        resp = await api.request(method, path, **kwargs)
        err = await _error(resp)
        assert resp.status == 422 and err["details"] == {"rule": rule, "path": "reason"}, (method, err)
        assert AWS not in str(err) and "BEGIN" not in str(err)
    history = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).text()
    assert AWS not in history and "PRIVATE KEY" not in history
    assert await _versions(api, svc) == 2


async def test_if_match_star_and_patch_on_a_missing_service_are_documented_404s(api, svc: str) -> None:
    star = await api.post(f"/api/v1/config/{svc}", json={"a": 1}, headers={**ADMIN, "If-Match": "*"})
    assert star.status == 404
    patch = await api.patch(f"/api/v1/config/{svc}", json={"a": 1}, headers=ADMIN)
    assert patch.status == 404 and (await _error(patch))["details"]["rule"] == "patch.no_config"
    doc = build_openapi()
    for method in ("post", "patch", "delete"):
        assert "404" in doc["paths"]["/api/v1/config/{service}"][method]["responses"]


async def test_watch_resuming_after_the_last_possible_version_is_not_a_5xx(api, svc: str) -> None:
    """Found by the fuzzer: ``last_event_id=2147483647`` asked PostgreSQL for version 2^31."""
    params = {"last_event_id": "2147483647"}
    async with api.get(f"/api/v1/config/{svc}/watch", params=params, headers=ADMIN) as resp:
        assert resp.status == 200
        assert (await resp.content.readline()).startswith(b"retry:")
