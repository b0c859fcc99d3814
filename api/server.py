"""The HTTP server around the app: connection limits and aiohttp's own errors in the JSON shape.

aiohttp holds a connection open as long as the client likes (its keep-alive default is an hour,
and a request's headers or body may be dribbled forever). Here (``ApiSettings``):

- ``keepalive_timeout_s``: a connection with no request in progress (before the first byte of a
  request, or between requests) is closed after this long. SSE streams have a request in progress
  and are exempt; their heartbeat (``sse_heartbeat_s``) keeps proxies from closing them.
- ``header_timeout_s``: once the first byte of a request arrived, its request line and headers
  must be complete within this, else ``408`` and the connection is closed.
- ``body_timeout_s``: a request body must arrive within this (``api.body.read_body``: ``408``);
  what a handler left unread is drained for at most this long (at most 10 s) before closing.
- ``max_connections_per_client``: more simultaneous connections from one client address are
  answered ``429`` and closed at once (0: no cap).

aiohttp answers malformed requests (a header or URL over 8190 bytes, a bad request line) itself,
as plain text that repeats part of the input and with an ERROR traceback in the log. Here they
leave as the JSON error (``api.errors``), saying which limit was hit and repeating nothing, and
are logged at INFO in one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .errors import ErrorBody, error_body, error_response
from .settings import ApiSettings

__all__ = ["GuardedSite", "ConnectionGuard", "runner_kwargs"]

log = logging.getLogger("api")


def runner_kwargs(settings: ApiSettings) -> dict[str, Any]:
    """The per-connection handler arguments (``web.AppRunner(**…)`` and our handlers)."""
    return {
        "access_log": None,
        "keepalive_timeout": settings.keepalive_timeout_s,
        # the rest of a body the handler did not read (a 408, 413, 415…) is drained this long
        "lingering_time": min(settings.body_timeout_s, 10.0),
    }


class ConnectionGuard:
    """The open connections per client address (shared by every connection of one site)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        cap = self.settings.max_connections_per_client
        if cap and self.open[address] >= cap:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


def _refusal(status: int, reason: str, code: str, message: str, rule: str) -> bytes:
    body = error_body(code, message, {"rule": rule})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ErrorBody.media_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    )
    return head.encode("ascii") + body


def _client_error(exc: BaseException | None) -> tuple[str, str]:
    """(rule, message) for a request aiohttp could not parse; nothing of the input is repeated."""
    if isinstance(exc, LineTooLong):
        return "http.line_too_long", "the request line or a header is longer than 8190 bytes"
    if isinstance(exc, BadHttpMethod):
        return "http.method", "the request method is not valid HTTP"
    if isinstance(exc, BadHttpMessage) and "many headers" in str(exc).lower():
        return "http.too_many_headers", "the request has too many headers"
    return "http.malformed", "the request is not valid HTTP/1.1"


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler with the limits above and JSON errors."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address: str | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(address):
            log.info("refused a connection from %s: %d already open", address, self._guard.open[address])
            assert isinstance(transport, asyncio.Transport)
            transport.write(
                _refusal(429, "Too Many Requests", "too_many_connections",
                         "too many connections from this address", "connection.per_client")
            )
            transport.close()
            return
        self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        if self._address is None:
            return  # refused in connection_made: aiohttp never saw it
        self._guard.release(self._address)
        self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        idle = self._waiter is not None and not self._waiter.done()
        if idle and self._header_timer is None and data:
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(self._guard.settings.header_timeout_s, self._headers_late)
        super().data_received(data)
        if self._header_timer is not None and (self._waiter is None or self._waiter.done()):
            self._cancel_header_timer()  # a whole request arrived (or the parser failed)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport is None or not (self._waiter is not None and not self._waiter.done()):
            return
        log.info("closed a connection from %s: request headers not complete in %ss",
                 self._address, self._guard.settings.header_timeout_s)
        self.transport.write(
            _refusal(408, "Request Timeout", "request_timeout",
                     f"request headers not complete within {self._guard.settings.header_timeout_s} s",
                     "connection.header_timeout")
        )
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        rule, text = _client_error(exc)
        log.info("client error from %s: %d %s", request.remote, status, rule)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        response = error_response(status, "bad_request", text, {"rule": rule})
        response.force_close()
        return response


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose connections are ``GuardedHandler``s."""

    def __init__(self, runner: web.AppRunner, settings: ApiSettings, **kwargs: Any) -> None:
        super().__init__(runner, settings.host, settings.port, **kwargs)
        self.settings = settings
        self.guard = ConnectionGuard(settings)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        handler_kwargs = runner_kwargs(self.settings)

        def factory() -> GuardedHandler:
            return GuardedHandler(server, self.guard, loop=loop, **handler_kwargs)

        self._server = await loop.create_server(
            factory, self._host, self._port, backlog=self._backlog, reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])
