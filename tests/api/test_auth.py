"""Authentication and authorisation: every role against every endpoint, token sources."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from api import ApiSettings, create_app, load_tokens
from api.auth import Action, Principal
from ledger import UsageError

from .helpers import ADMIN, TOKENS, Stack, bearer

# Writes carry an If-Match no service ever reaches: an authorised caller gets 409 and nothing
# is written, an unauthorised one 401/403 before that.
NEVER = {"If-Match": '"2000000000"'}

ENDPOINTS = {
    "get": ("GET", "/api/v1/config/svc-a", None, {}),
    "get_version": ("GET", "/api/v1/config/svc-a?version=1", None, {}),
    "post": ("POST", "/api/v1/config/svc-a", {"a": 1}, NEVER),
    "patch": ("PATCH", "/api/v1/config/svc-a", {"a": 1}, NEVER),
    "delete": ("DELETE", "/api/v1/config/svc-a", None, NEVER),
    "rollback": ("POST", "/api/v1/config/svc-a/rollback", {"to_version": 1}, NEVER),
    "history": ("GET", "/api/v1/config/history/svc-a", None, {}),
    "diff": ("GET", "/api/v1/config/svc-a/diff", None, {}),
    "list": ("GET", "/api/v1/config", None, {}),
    "snapshot": ("GET", "/api/v1/snapshot", None, {}),
    "watch": ("GET", "/api/v1/config/svc-a/watch", None, {}),
    "healthz": ("GET", "/healthz", None, {}),
    "readyz": ("GET", "/readyz", None, {}),
    "metrics": ("GET", "/metrics", None, {}),
    "openapi": ("GET", "/api/v1/openapi.json", None, {}),
    "verify": ("GET", "/api/v1/config/svc-a/verify", None, {}),
    "console": ("GET", "/", None, {}),
    "schema_get": ("GET", "/api/v1/schema/svc-a", None, {}),
    "schema_put": ("PUT", "/api/v1/schema/svc-a", {}, NEVER),
    "schema_delete": ("DELETE", "/api/v1/schema/svc-a", None, NEVER),
    "changeset_post": ("POST", "/api/v1/changesets",
                       {"changes": [{"service": "svc-a", "op": "replace", "config": {}, "if_match": 2000000000}]}, {}),
    "changeset_get": ("GET", "/api/v1/changesets/00000000-0000-4000-8000-000000000000", None, {}),
    "blame": ("GET", "/api/v1/config/svc-a/blame", None, {}),
}
PUBLIC = {"healthz", "readyz", "metrics", "openapi", "console"}
ALLOWED = {
    "admin": set(ENDPOINTS),
    "auditor": {"get", "get_version", "history", "diff", "list", "snapshot", "watch", "verify",
                "schema_get", "changeset_get", "blame"} | PUBLIC,
    "svc-a": {"get", "get_version", "watch", "schema_get"} | PUBLIC,  # its own service
    "svc-b": set(PUBLIC),  # another service's token
    "none": set(PUBLIC),
    "bad": set(PUBLIC),
}
CALLERS = {
    "admin": bearer("admin"),
    "auditor": bearer("auditor"),
    "svc-a": bearer("svc-a"),
    "svc-b": bearer("svc-b"),
    "none": {},
    "bad": {"Authorization": "Bearer not-a-configured-token-at-all"},
}


@pytest.fixture
async def seeded(api):
    """svc-a exists (version 1)."""
    resp = await api.get("/api/v1/config/svc-a", headers=ADMIN)
    if resp.status == 404:
        assert (await api.post("/api/v1/config/svc-a", json={"seed": True}, headers=ADMIN)).status == 200
    return api


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_auth_matrix(seeded, endpoint: str, caller: str) -> None:
    method, path, body, extra = ENDPOINTS[endpoint]
    kwargs = {"json": body} if body is not None else {}
    async with seeded.request(method, path, headers={**CALLERS[caller], **extra}, **kwargs) as resp:
        status = resp.status
        payload = await resp.read() if endpoint != "watch" or status != 200 else b""
    if endpoint in ALLOWED[caller]:
        assert status not in (401, 403), (status, payload)
        assert status < 500
        if method != "GET":
            assert status == 409  # authorised, and refused by the If-Match: nothing written
    elif caller in ("none", "bad"):
        assert status == 401, payload
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(payload)["error"]["code"] == "unauthorized"
    else:
        assert status == 403, payload
        assert json.loads(payload)["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "bearer  ", TOKENS["admin"], f"Token {TOKENS['admin']}"]
)
async def test_malformed_authorization_is_401(api, header: str) -> None:
    resp = await api.get("/api/v1/config", headers={"Authorization": header})
    assert resp.status == 401


async def test_scheme_is_case_insensitive(api) -> None:
    resp = await api.get("/api/v1/config", headers={"Authorization": f"bearer {TOKENS['admin']}"})
    assert resp.status == 200


async def test_tokens_file_yaml_json_and_hashed(stack: Stack, make_client, tmp_path: Path, svc: str) -> None:
    raw = "a-very-long-secret-token-for-ops"
    hashed = hashlib.sha256(b"another-long-secret-for-audit").hexdigest()
    yaml_file = tmp_path / "tokens.yaml"
    yaml_file.write_text(
        f"tokens:\n  - token: {raw}\n    identity: ops\n    role: admin\n"
        f"  - token_sha256: {hashed.upper()}\n    identity: aud\n    role: auditor\n"
    )
    client = await make_client(stack, tokens=None, tokens_file=yaml_file)
    write = await client.post(f"/api/v1/config/{svc}", json={"a": 1}, headers={"Authorization": f"Bearer {raw}"})
    assert write.status == 200
    got = await client.get(f"/api/v1/config/{svc}", headers={"Authorization": "Bearer another-long-secret-for-audit"})
    assert got.status == 200 and (await got.json())["actor"] == "ops"
    denied = await client.post(
        f"/api/v1/config/{svc}", json={"a": 2}, headers={"Authorization": "Bearer another-long-secret-for-audit"}
    )
    assert denied.status == 403
    # The hash itself is not a token.
    assert (await client.get("/api/v1/config", headers={"Authorization": f"Bearer {hashed}"})).status == 401

    json_file = tmp_path / "tokens.json"
    json_file.write_text(json.dumps([{"token": raw, "identity": "ops2", "role": f"service:{svc}"}]))
    scoped = await make_client(stack, tokens=None, tokens_file=json_file)
    assert (await scoped.get(f"/api/v1/config/{svc}", headers={"Authorization": f"Bearer {raw}"})).status == 200
    assert (await scoped.get("/api/v1/config/other", headers={"Authorization": f"Bearer {raw}"})).status == 403


def test_token_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="API_TOKENS"):
        ApiSettings(auth=True).check()
    with pytest.raises(UsageError, match="role"):
        load_tokens(None, "[{token: aaaaaaaaaaaaaaaaaaaa, identity: x, role: superuser}]")
    with pytest.raises(UsageError, match="exactly one"):
        load_tokens(None, "[{identity: x, role: admin}]")
    with pytest.raises(UsageError, match="configured twice"):
        load_tokens(None, "[{token: aaaaaaaaaaaaaaaaaaaa, identity: x, role: admin}, "
                          "{token: aaaaaaaaaaaaaaaaaaaa, identity: y, role: auditor}]")
    with pytest.raises(UsageError, match="cannot read"):
        load_tokens(tmp_path / "missing.yaml", None)
    with pytest.raises(UsageError) as err:
        load_tokens(None, "[{token: short, identity: x, role: admin}]")
    assert "short" not in str(err.value)  # never echo token material
    with pytest.raises(UsageError, match="API_AUTH"):
        create_app(ApiSettings())


def test_token_store_lookup_and_env_var() -> None:
    store = load_tokens(None, '[{"token": "aaaaaaaaaaaaaaaaaaaa", "identity": "x", "role": "service:billing"}]')
    assert store.lookup("aaaaaaaaaaaaaaaaaaaa") == Principal("x", "service:billing")
    assert store.lookup("aaaaaaaaaaaaaaaaaaab") is None
    settings = ApiSettings.from_env({"API_TOKENS": "[]", "API_AUTH": "on"})
    assert settings.auth is True and settings.tokens == "[]"
    assert ApiSettings.from_env({"API_AUTH": "off"}).auth is False


def test_principal_rules() -> None:
    svc = Principal("bot", "service:billing")
    assert svc.may(Action.READ, "billing") and svc.may(Action.WATCH, "billing")
    assert not svc.may(Action.READ, "payments") and not svc.may(Action.WRITE, "billing")
    assert not svc.may(Action.AUDIT, None)
    aud = Principal("a", "auditor")
    assert aud.may(Action.AUDIT, None) and not aud.may(Action.WRITE, "x")


async def test_auth_off_uses_dev_actor_and_warns(stack: Stack, make_client, svc: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="api"):
        client = await make_client(stack, auth=False, tokens=None)
    assert any("AUTHENTICATION IS DISABLED" in r.getMessage() for r in caplog.records)
    assert (await client.post(f"/api/v1/config/{svc}", json={"a": 1})).status == 200
    assert (await (await client.get(f"/api/v1/config/{svc}")).json())["actor"] == "dev"
