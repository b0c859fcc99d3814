"""Fuzz: thousands of random methods, paths, queries, headers and bodies — never a 5xx.

Runs against the live app (ledger, PostgreSQL and projector up). Most examples fail validation
before any I/O; the ones that pass really write, which is part of the point.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from .helpers import TOKENS

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_header_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
_numbers = st.integers(-(2**70), 2**70).map(str)
_instants = st.datetimes(timezones=st.sampled_from([None])).map(lambda d: d.isoformat() + "Z")
_values = st.one_of(_text, _numbers, _instants, st.sampled_from(["1", "0", "-1", "*", '"1"', "", "2026-11-28T10:30:45Z"]))

_service = st.one_of(
    st.sampled_from(["fuzz-a", "fuzz-b", "svc-a", "history", "x"]),
    st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,70}\Z", fullmatch=True),
    _text,
)
_suffix = st.sampled_from(["", "", "/rollback", "/diff", "/watch", "/x", "/"])
_templates = st.sampled_from(
    ["/api/v1/config/{s}{x}", "/api/v1/config/history/{s}", "/api/v1/config", "/api/v1/snapshot",
     "/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/{s}", "/api/v1/{s}/{s}"]
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    template = draw(_templates)
    path = template.format(s=quote(draw(_service), safe=""), x=draw(_suffix))
    query = draw(
        st.dictionaries(
            st.sampled_from(["version", "at", "min_seq", "limit", "cursor", "from", "to", "reason", "last_event_id", "zz"]),
            _values,
            max_size=3,
        )
    )
    if query:
        path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    return path


_json_docs = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False), _text),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
    max_leaves=8,
)
_bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    _json_docs.map(orjson.dumps),
    st.dictionaries(st.sampled_from(["to_version", "to_time", "reason", "operational"]), _json_docs, max_size=3).map(orjson.dumps),
    st.sampled_from([b'{"a":1,"a":2}', b'{"a": NaN}', b"[" * 3000, b'{"p": "hunter2", "password": "x"}', b"\xff\xfe"]),
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.one_of(
            st.sampled_from(["application/json", "application/merge-patch+json", "text/plain", "application/json; charset=latin-1", ""]),
            _header_text,
        ),
        "Authorization": st.one_of(
            st.sampled_from([f"Bearer {t}" for t in TOKENS.values()]), st.just("Bearer nope"), _header_text
        ),
        "If-Match": st.one_of(_values, _header_text).filter(lambda v: all(" " <= c != "\x7f" for c in v)),
        "If-None-Match": _header_text,
        "Idempotency-Key": _header_text,
        "X-Change-Reason": _header_text,
        "X-Min-Seq": st.one_of(_numbers, _header_text),
        "Last-Event-ID": st.one_of(_numbers, _header_text),
        "Content-Length": st.sampled_from(["0", "5", "99999999999"]),
    },
)


_ROUTES = [
    ("GET", "/api/v1/config/{s}"), ("POST", "/api/v1/config/{s}"), ("PATCH", "/api/v1/config/{s}"),
    ("DELETE", "/api/v1/config/{s}"), ("POST", "/api/v1/config/{s}/rollback"),
    ("GET", "/api/v1/config/{s}/diff"), ("GET", "/api/v1/config/history/{s}"),
    ("GET", "/api/v1/config"), ("GET", "/api/v1/snapshot"), ("GET", "/api/v1/config/{s}/watch"),
    ("GET", "/api/v1/schema/{s}"), ("PUT", "/api/v1/schema/{s}"), ("DELETE", "/api/v1/schema/{s}"),
    ("POST", "/api/v1/changesets"), ("GET", "/api/v1/changesets/{s}"), ("POST", "/api/v1/changesets/{s}/rollback"),
    ("GET", "/api/v1/config/{s}/blame"),
]
_ADMIN = f"Bearer {TOKENS['admin']}"


@st.composite
def targeted(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    """A real route with an admin token: the inputs reach parsing and validation."""
    method, template = draw(st.sampled_from(_ROUTES))
    service = draw(st.one_of(st.sampled_from(["fuzz-a", "fuzz-b", "fuzz-c"]), _service))
    path = template.format(s=quote(service, safe=""))
    query = draw(st.dictionaries(st.sampled_from(["version", "at", "min_seq", "limit", "cursor", "from", "to", "reason", "dry_run"]), _values, max_size=2))
    if query:
        path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    headers = dict(draw(_headers))
    headers.setdefault("Authorization", _ADMIN)
    if method in ("POST", "PATCH", "PUT"):
        headers.setdefault("Content-Type", "application/json")
    return method, path, headers, draw(_bodies)


@st.composite
def anything(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    method = draw(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]))
    return method, draw(paths()), dict(draw(_headers)), draw(_bodies)


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=st.one_of(targeted(), targeted(), targeted(), anything()))
async def test_no_input_produces_a_5xx(api, request: tuple[str, str, dict[str, str], bytes | None]) -> None:
    method, path, headers, body = request
    if "Content-Length" in headers:
        # A lying Content-Length makes the exchange itself malformed; keep it truthful.
        headers["Content-Length"] = str(len(body or b""))
    async with api.request(method, path, headers=headers, data=body) as resp:
        status = resp.status
        if path.split("?")[0].endswith("/watch") and status == 200:
            return  # an endless stream: its status is the answer
        payload = await resp.read()
    event(f"status {status}")
    assert status < 500, (method, path, headers, body, status, payload[:500])
    if status >= 400 and method != "HEAD":
        err = orjson.loads(payload)["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str)
