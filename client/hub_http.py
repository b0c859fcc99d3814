"""The HTTP edge to the config hub: the only module of the project that is an aiohttp *client*.

One client (``HubHttp``), one Server-Sent Events parser (``parse_sse``), one translation of
HTTP failures into ``ledger.errors``. ``ConfigClient`` (``client.http_source``) and the admin
CLI (``ops.cli_http``) both use it::

    async with HubHttp("http://127.0.0.1:7000", token=token) as hub:
        resp = await hub.request("GET", hub.path("config", "billing"))
        async for event in hub.events(hub.path("config", "billing", "watch")):
            ...

Outside ``async with`` every call opens a session of its own (``ConfigClient`` asks at most
once per cache TTL, so there is nothing long-lived to leak). aiohttp is imported on first use:
importing this module (and the CLI that uses it) stays cheap.

==============================================  ================================================
failure                                         error
==============================================  ================================================
no connection, reset, DNS                       ``Unavailable`` naming the hub URL
no answer within the timeout                    ``StoreTimeout`` (an ``Unavailable``)
malformed URL                                   ``UsageError``
404                                             ``NotFound`` (the server's message)
409                                             ``VersionConflict`` (``HubConflict`` when the
                                                details do not name the versions)
401, 403, other 4xx                             ``UsageError`` (401 hints at the token)
429, 502, 503, 504                              ``Unavailable``
other 5xx                                       ``WorldError``
==============================================  ================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from ledger.errors import (
    LedgerError,
    NotFound,
    StoreTimeout,
    Unavailable,
    UsageError,
    VersionConflict,
    WorldError,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "HubConflict",
    "HubHttp",
    "HubResponse",
    "ServerSentEvent",
    "error_for_status",
    "parse_sse",
]

TOKEN_HINT = " (pass --token or set CONFIG_LEDGER_TOKEN)"


class HubConflict(VersionConflict):
    """A 409 whose details do not name the versions (the message is the server's)."""

    def __init__(self, message: str, details: Any = None) -> None:
        LedgerError.__init__(self, message, details=details)
        self.service = ""
        self.expected = -1
        self.current = -1


@dataclass(frozen=True)
class HubResponse:
    """One answer: the status, the body parsed as JSON (else text, else None), the headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes = b""


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        try:
            return orjson.loads(self.data)
        except orjson.JSONDecodeError:
            return self.data


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def error_for_status(status: int, body: Any, url: str) -> LedgerError:
    """The error an HTTP error status stands for, with the hub's own message when it sent one."""
    message, details = f"HTTP {status} from {url}", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        said = err.get("message") or err.get("code")
        message = f"{said} (HTTP {status})" if said else message
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
        return HubConflict(message, details)
    if status in (401, 403):
        return UsageError(message + (TOKEN_HINT if status == 401 else ""), details=details)
    if status == 429 or status in (502, 503, 504):
        return Unavailable(message, details=details)
    if 400 <= status < 500:
        return UsageError(message, details=details)
    return WorldError(message, details=details)


async def parse_sse(lines: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """The text/event-stream format: ``field: value`` lines, an event ends at a blank line;
    ``:`` lines are comments (keep-alives); the last ``id`` is carried over, as the spec says."""
    event, event_id = "message", None
    data: list[str] = []
    async for raw_line in lines:
        line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield ServerSentEvent(event, "\n".join(data), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value or "message"
        elif name == "id":
            event_id = value


class HubHttp:
    """The config hub's HTTP API: requests and event streams, errors translated here."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        user_agent: str = "config-ledger-client",
        name: str = "the config hub",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"hub URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.name = name  # how messages call the server
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HubHttp({self.base_url!r})"

    async def __aenter__(self) -> HubHttp:
        import aiohttp

        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @staticmethod
    def path(*parts: str) -> str:
        """``/api/v1/`` + the parts, each percent-encoded (a service name is user input)."""
        return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)

    @contextlib.asynccontextmanager
    async def _session_for_call(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        import aiohttp

        async with aiohttp.ClientSession(headers=self._headers) as session:
            yield session

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        import aiohttp

        try:
            yield
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise StoreTimeout(f"{self.name} at {self.base_url} did not answer in time ({what})") from None
        except aiohttp.InvalidURL as exc:
            raise UsageError(f"invalid config hub URL ({what}): {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise Unavailable(f"cannot reach {self.name} at {self.base_url} ({what}): {detail}") from None

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
        timeout: float | None = None,
    ) -> HubResponse:
        """Send one request; a status >= 400 not listed in ``ok`` raises its error."""
        url = self.base_url + path
        send_headers = dict(headers or {})
        data: bytes | None = None
        if body is not None:
            data = orjson.dumps(body)
            send_headers["Content-Type"] = content_type
        import aiohttp

        limit = aiohttp.ClientTimeout(total=self.timeout if timeout is None else timeout)
        with self._translated(f"{method} {url}"):
            async with (
                self._session_for_call() as session,
                session.request(
                    method, url, params=params, data=data, headers=send_headers, timeout=limit
                ) as resp,
            ):
                raw = await resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
        parsed = _parse_body(raw)
        if status >= 400 and status not in ok:
            raise error_for_status(status, parsed, url)
        return HubResponse(status, parsed, resp_headers, raw)

    async def events(
        self,
        path: str,
        *,
        last_event_id: str | None = None,
        params: Mapping[str, str] | None = None,
        idle_timeout: float | None = None,
    ) -> AsyncIterator[ServerSentEvent | None]:
        """Server-Sent Events from ``path`` until the server closes the stream.

        Yields None once, when the stream is open (so a caller knows it is connected), then
        one ``ServerSentEvent`` per event. ``idle_timeout`` bounds the silence between two
        reads (the server's keep-alives count).
        """
        url = self.base_url + path
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        import aiohttp

        limit = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=idle_timeout)
        with self._translated(f"GET {url}"):
            async with (
                self._session_for_call() as session,
                session.get(url, params=params, headers=headers, timeout=limit) as resp,
            ):
                if resp.status >= 400:
                    raise error_for_status(resp.status, _parse_body(await resp.read()), url)
                yield None
                async for event in parse_sse(resp.content):
                    yield event
