"""``client.hub_http``: the one status -> error mapping and the one SSE parser (pure parts),
and the transport's translation against a port nobody listens on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from client.hub_http import HubConflict, HubHttp, ServerSentEvent, error_for_status, parse_sse
from ledger.errors import NotFound, Unavailable, UsageError, VersionConflict, WorldError

URL = "http://hub/api/v1/config/x"


def _body(message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": "c", "message": message, "details": details}}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, UsageError), (401, UsageError), (403, UsageError), (404, NotFound), (409, HubConflict),
        (413, UsageError), (422, UsageError), (429, Unavailable), (500, WorldError), (502, Unavailable),
        (503, Unavailable), (504, Unavailable),
    ],
)
def test_each_status_is_one_error(status: int, kind: type[Exception]) -> None:
    error = error_for_status(status, _body("the server said so"), URL)
    assert type(error) is kind
    assert "the server said so" in error.message and f"HTTP {status}" in error.message


def test_a_409_naming_the_versions_is_a_version_conflict() -> None:
    details = {"service": "x", "expected_version": 3, "current_version": 5}
    error = error_for_status(409, _body("conflict", details), URL)
    assert type(error) is VersionConflict and (error.expected, error.current) == (3, 5)


def test_401_hints_at_the_token_and_a_non_json_body_is_quoted() -> None:
    assert "CONFIG_LEDGER_TOKEN" in error_for_status(401, None, URL).message
    assert error_for_status(502, "<html>Bad gateway</html>\n", URL).message == "HTTP 502: <html>Bad gateway</html>"
    assert error_for_status(500, None, URL).message == f"HTTP 500 from {URL}"


async def _lines(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_sse_fields_comments_multiline_data_and_ids() -> None:
    stream = _lines(
        b": keep-alive\n", b"event: config\n", b"id: 3\n", b'data: {"version":\n', b"data: 3}\n", b"\n",
        b"data: no event name\r\n", b"\r\n", b"event: ignored without data\n", b"\n",
    )
    events = [e async for e in parse_sse(stream)]
    assert events == [
        ServerSentEvent("config", '{"version":\n3}', "3"),
        ServerSentEvent("message", "no event name", "3"),  # the last id carries over
    ]
    assert events[0].json() == {"version": 3} and events[1].json() == "no event name"


async def test_transport_failures_name_the_hub(dead_hub_url: str) -> None:
    hub = HubHttp(dead_hub_url, timeout=2)
    with pytest.raises(Unavailable, match=dead_hub_url):
        await hub.request("GET", "/healthz")
    with pytest.raises(Unavailable, match=dead_hub_url):
        async for _ in hub.events("/watch"):
            pass
    with pytest.raises(UsageError, match="http"):
        HubHttp("ftp://hub")
