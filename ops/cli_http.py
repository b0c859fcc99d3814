"""The admin CLI's HTTP edge: requests to the API, errors translated at the boundary.

Plain requests go through the standard library's ``http.client`` (importing aiohttp costs more
than the CLI's whole start-up budget); the Server-Sent Events of ``watch`` come from the hub's
one HTTP client (``client.hub_http``, its SSE parser), which imports aiohttp on first use.

Every failure leaves here as an error of ``ledger.errors``: a connection that cannot be made or
a 5xx is ``Unavailable``/``WorldError``, 404 is ``NotFound``, 409 is a ``VersionConflict``,
4xx are ``UsageError``. The message is the API's own (``{"error": {"code", "message",
"details"}}``) so the user sees what the server said, on one line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from client.hub_http import HubHttp, ServerSentEvent
from ledger.errors import (
    LedgerError,
    NotFound,
    Unavailable,
    UsageError,
    VersionConflict,
    WorldError,
)

__all__ = ["AdminApi", "ApiResponse", "ApiConflict", "ServerSentEvent", "error_from_response"]


class ApiConflict(VersionConflict):
    """A 409 whose details do not name the versions (the message is the server's)."""

    def __init__(self, message: str, details: Any = None) -> None:  # noqa: D107
        LedgerError.__init__(self, message, details=details)
        self.service = ""
        self.expected = -1
        self.current = -1


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


def error_from_response(status: int, body: Any, url: str) -> LedgerError:
    """The error an HTTP error status stands for, with the API's message."""
    message, details = f"HTTP {status} from {url}", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        message = str(err.get("message") or err.get("code") or message)
        details = err.get("details")
    elif isinstance(body, str) and body.strip():
        message = f"HTTP {status}: {body.strip().splitlines()[0][:200]}"
    if status == 404:
        return NotFound(message, details=details)
    if status == 409:
        if isinstance(details, dict) and {"service", "expected_version", "current_version"} <= details.keys():
            try:
                return VersionConflict(
                    str(details["service"]), int(details["expected_version"]), int(details["current_version"])
                )
            except (TypeError, ValueError):
                pass
        return ApiConflict(message, details)
    if status in (401, 403):
        hint = "" if status == 403 else " (pass --token or set CONFIG_LEDGER_TOKEN)"
        return UsageError(f"{message}{hint}", details=details)
    if 400 <= status < 500:
        return UsageError(message, details=details)
    if status in (502, 503, 504):
        return Unavailable(message, details=details)
    return WorldError(message, details=details)


class AdminApi:
    """``async with AdminApi(url, token) as api: await api.request("GET", "/api/v1/config/x")``."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"API URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": "config-ledger-cli"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def __aenter__(self) -> AdminApi:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass  # plain requests hold no connection; event streams close their own

    @staticmethod
    def path(*parts: str) -> str:
        """``/api/v1/`` + the parts, each percent-encoded (a service name is user input)."""
        return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)

    def _unavailable(self, exc: BaseException) -> Unavailable:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if "Connect call failed" in reason or isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        return Unavailable(
            f"cannot reach the API at {self.base_url} ({reason}); is `config-ledger up` (make run) "
            "running? otherwise pass --url or set CONFIG_LEDGER_URL"
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> ApiResponse:
        """Send one request; a status >= 400 not listed in ``ok`` raises its error."""
        url = self.base_url + path
        send_headers = {**self._headers, **(headers or {})}
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            send_headers["Content-Type"] = content_type
        if params:
            path = f"{path}?{urlencode(dict(params))}"
        try:
            status, resp_headers, raw = self._send(method, path, data, send_headers)
        except (TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None
        parsed: Any = None
        if raw:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = raw.decode("utf-8", errors="replace")
        if status >= 400 and status not in ok:
            raise error_from_response(status, parsed, url)
        return ApiResponse(status, parsed, resp_headers)

    def _send(self, method: str, path: str, data: bytes | None,
              headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection (the CLI sends one or two per run)."""
        import http.client

        parts = urlsplit(self.base_url)
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        try:
            conn.request(method, parts.path.rstrip("/") + path, body=data, headers=dict(headers))
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k: v for k, v in resp.getheaders()}, raw
        except http.client.HTTPException as exc:
            raise OSError(f"bad HTTP response: {exc!r}") from None
        finally:
            conn.close()

    async def events(
        self, path: str, *, last_event_id: str | None = None, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-Sent Events from ``path`` until the server closes the stream."""
        hub = HubHttp(self.base_url, token=self.token, timeout=self.timeout,
                      user_agent="config-ledger-cli", name="the API")
        async with hub:
            async for event in hub.events(path, last_event_id=last_event_id, params=params):
                if event is not None:  # None: the stream is open
                    yield event
