"""Bad input, one test per kind: each answers 4xx with the one error shape and its rule id."""

from __future__ import annotations

import pytest

from .helpers import ADMIN, Stack


def _json_headers(content_type: str = "application/json") -> dict[str, str]:
    return {**ADMIN, "Content-Type": content_type}


async def _error(resp) -> dict:
    body = await resp.json()
    # RFC 9457 problem details, keeping the error object existing clients read.
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    assert set(body) <= {"type", "title", "status", "detail", "instance", "error"}, body
    assert body["status"] == resp.status and body["detail"] == body["error"]["message"], body
    assert {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [
        (b'{"a": 1', 400, "json.syntax"),
        (b"", 400, "json.syntax"),
        (b'{"a": 1, "a": 2}', 400, "json.duplicate_key"),
        (b'{"a": NaN}', 400, "json.non_finite"),
        (b'{"a": Infinity}', 400, "json.non_finite"),
        (b'{"a": 1e999}', 400, "json.non_finite"),
        (b'{"a": "\xff"}', 400, "json.encoding"),
        (b"[1, 2]", 422, "document.type"),
        (b'"text"', 422, "document.type"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, 422, "json.depth"),
        (b"[" * 5000 + b"]" * 5000, 422, "json.depth"),
        (b'{"n": 9007199254740993}', 422, "json.int_range"),
        (b'{"s": "a\\u0000b"}', 422, "json.nul_char"),
        (b'{"s": "\\ud800"}', 422, "json.lone_surrogate"),
        (b'{"db": {"password": "hunter2"}}', 422, "secret.key_name"),
        (b'{"url": "postgres://app:s3cret@db:5432/x"}', 422, "secret.url_credentials"),
        (b'{"k": "AKIAABCDEFGHIJKLMNOP"}', 422, "secret.aws_access_key"),
    ],
)
async def test_bad_documents(api, svc: str, body: bytes, status: int, rule: str) -> None:
    resp = await api.post(f"/api/v1/config/{svc}", data=body, headers=_json_headers())
    err = await _error(resp)
    assert resp.status == status, err
    assert err["details"]["rule"] == rule
    assert "hunter2" not in err["message"] and "s3cret" not in err["message"]
    assert (await api.get(f"/api/v1/config/{svc}", headers=ADMIN)).status == 404  # nothing appended


async def test_secret_reference_is_allowed(api, svc: str) -> None:
    resp = await api.post(f"/api/v1/config/{svc}", json={"db": {"password": "${DB_PASSWORD}"}}, headers=ADMIN)
    assert resp.status == 200


async def test_body_limit_is_413(stack: Stack, make_client, svc: str) -> None:
    client = await make_client(stack, max_body=4096)
    big = b'{"blob": "' + b"x" * 5000 + b'"}'
    resp = await client.post(f"/api/v1/config/{svc}", data=big, headers=_json_headers())
    err = await _error(resp)
    assert resp.status == 413 and err["code"] == "payload_too_large" and err["details"]["rule"] == "body.size"

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    chunked = await client.post(f"/api/v1/config/{svc}", data=chunks(), headers=_json_headers())
    assert chunked.status == 413


async def test_document_over_the_ledger_limit_is_422(stack: Stack, make_client, svc: str) -> None:
    client = await make_client(stack, max_body=1_000_000)  # the body passes, the document does not
    resp = await client.post(f"/api/v1/config/{svc}", json={"blob": "x" * 300_000}, headers=ADMIN)
    err = await _error(resp)
    assert resp.status == 422 and err["details"]["rule"] == "document.size"
    default = await make_client(stack)
    resp = await default.post(f"/api/v1/config/{svc}", json={"blob": "x" * 262_144}, headers=ADMIN)
    assert resp.status == 413


@pytest.mark.parametrize(
    ("method", "suffix", "content_type"),
    [
        ("POST", "", "text/plain"),
        ("POST", "", "application/merge-patch+json"),
        ("POST", "", "application/x-www-form-urlencoded"),
        ("PATCH", "", "text/plain"),
        ("POST", "/rollback", "text/plain"),
        ("POST", "", ""),
    ],
)
async def test_wrong_content_type_is_415(api, svc: str, method: str, suffix: str, content_type: str) -> None:
    headers = {**ADMIN, "Content-Type": content_type} if content_type else ADMIN
    resp = await api.request(method, f"/api/v1/config/{svc}{suffix}", data=b'{"a": 1}', headers=headers)
    err = await _error(resp)
    assert resp.status == 415 and err["details"]["rule"] == "body.content_type"


async def test_content_type_with_charset_is_fine(api, svc: str) -> None:
    resp = await api.post(
        f"/api/v1/config/{svc}", data=b'{"a": 1}', headers=_json_headers("application/json; charset=utf-8")
    )
    assert resp.status == 200
    patch = await api.patch(f"/api/v1/config/{svc}", data=b'{"b": 1}', headers=_json_headers())
    assert patch.status == 200


@pytest.mark.parametrize("name", ["Bad", "a b", "-lead", "x" * 64, "é", "a.b", "%00"])
async def test_bad_service_name_is_400(api, name: str) -> None:
    resp = await api.post(f"/api/v1/config/{name}", json={"a": 1}, headers=ADMIN)
    err = await _error(resp)
    assert resp.status == 400 and err["details"]["rule"] == "service_name"
    get = await api.get(f"/api/v1/config/{name}", headers=ADMIN)
    assert get.status == 400


@pytest.mark.parametrize(
    ("params", "headers", "rule"),
    [
        ({"version": "0"}, {}, "query.version"),
        ({"version": "abc"}, {}, "query.version"),
        ({"version": "99999999999"}, {}, "query.version"),
        ({"at": "yesterday"}, {}, "instant.syntax"),
        ({"at": "2026-01-01T00:00:00"}, {}, "instant.zone"),
        ({"min_seq": "-1"}, {}, "min_seq"),
        ({}, {"X-Min-Seq": "soon"}, "min_seq"),
    ],
)
async def test_bad_read_parameters_are_400(api, svc: str, params: dict, headers: dict, rule: str) -> None:
    resp = await api.get(f"/api/v1/config/{svc}", params=params, headers={**ADMIN, **headers})
    err = await _error(resp)
    assert resp.status == 400 and err["details"]["rule"] == rule


@pytest.mark.parametrize(
    ("headers", "params", "status", "rule"),
    [
        ({"If-Match": "abc"}, {}, 400, "header.if_match"),
        ({"If-Match": '"1", "2"'}, {}, 400, "header.if_match"),
        ({"Idempotency-Key": " "}, {}, 400, "idempotency_key.empty"),
        ({"Idempotency-Key": "k" * 201}, {}, 400, "idempotency_key.length"),
        ({}, {"reason": "r" * 2001}, 400, "reason.length"),
        ({}, {"reason": "a\x00b"}, 400, "reason.encoding"),
    ],
)
async def test_bad_write_headers(api, svc: str, headers: dict, params: dict, status: int, rule: str) -> None:
    resp = await api.post(f"/api/v1/config/{svc}", json={"a": 1}, params=params, headers={**ADMIN, **headers})
    err = await _error(resp)
    assert resp.status == status and err["details"]["rule"] == rule


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"to_version": 1, "to_time": "2026-01-01T00:00:00Z"}', b'{"to_version": "1"}',
     b'{"to_version": 0}', b'{"to_version": true}', b'{"to_time": 5}', b'{"x": 1}', b"[]",
     b'{"to_version": 1, "reason": 5}'],
)
async def test_bad_rollback_bodies_are_422(api, svc: str, body: bytes) -> None:
    resp = await api.post(f"/api/v1/config/{svc}/rollback", data=body, headers=_json_headers())
    err = await _error(resp)
    assert resp.status == 422 and err["details"]["rule"] == "rollback.shape"


async def test_unknown_path_and_method_use_the_error_shape(api) -> None:
    missing = await api.get("/api/v1/nothing", headers=ADMIN)
    assert missing.status == 404 and (await _error(missing))["code"] == "not_found"
    wrong = await api.put("/api/v1/config/x/diff", json={}, headers=ADMIN)  # PUT /config/x is a replace
    assert wrong.status == 405 and (await _error(wrong))["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]
